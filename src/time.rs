//! Time points and KQL-style durations. Internally every instant is an `i64` of nanoseconds
//! since the Unix epoch in UTC: exact for any Parquet timestamp unit (INT96 included) and cheap
//! to compare inside polars expressions.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Parses a KQL-style timespan: an integer followed by `d`, `h`, `m`, `s` or `ms`
/// (`14d`, `36h`, `90m`, `30s`). Returns nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| bad_duration(text))?;
    let (digits, unit) = t.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad_duration(text))?;
    let unit_ns = match unit {
        "d" => 86_400 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "s" => NANOS_PER_SECOND,
        "ms" => 1_000_000,
        _ => return Err(bad_duration(text)),
    };
    n.checked_mul(unit_ns).ok_or_else(|| bad_duration(text))
}

fn bad_duration(text: &str) -> Error {
    Error::Usage(format!(
        "invalid duration `{text}`: expected a whole number and a unit, e.g. `14d`, `36h`, `90m`, `30s`"
    ))
}

/// Parses an instant: RFC 3339 (`2026-03-01T12:00:00Z`, any offset), a naive date-time taken
/// as UTC (`2026-03-01T12:00:00`, `2026-03-01 12:00:00`), or a date meaning its midnight UTC.
pub fn parse_instant(text: &str) -> Result<i64> {
    let t = text.trim();
    if let Some(ns) = utc_z(t.as_bytes()) {
        return Ok(ns);
    }
    let parsed = DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
                .map(|n| n.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|n| n.and_utc())
        });
    let dt = parsed.ok_or_else(|| {
        Error::Usage(format!(
            "invalid time `{text}`: expected RFC 3339 (2026-03-01T12:00:00Z), a UTC date-time or a date"
        ))
    })?;
    dt.timestamp_nanos_opt()
        .ok_or_else(|| Error::Usage(format!("time `{text}` is out of range")))
}

/// The one spelling nearly every archived record uses, `2026-03-01T12:00:00.1234567Z` (no
/// fraction, or 1 to 9 of its digits), read without chrono's general parser: a JSON scan
/// reads the time of every line, and the parser was a twentieth of its CPU. Anything else,
/// a leap second included, is `None` and left to it; the fields are checked as it checks them.
fn utc_z(t: &[u8]) -> Option<i64> {
    let (head, rest) = t.split_at_checked(19)?;
    let num = |r: std::ops::Range<usize>| {
        head.get(r)?.iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !seps.iter().all(|&(i, c)| head.get(i) == Some(&c)) {
        return None;
    }
    let rest = rest.strip_suffix(b"Z")?;
    let nanos = match rest {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            digits.iter().try_fold(0u32, |n, &b| {
                b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
            })? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    date.and_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)?
        .and_utc()
        .timestamp_nanos_opt()
}

/// Seconds, rounded to the millisecond (how `summary.json` reports stage timings).
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

/// A stopwatch for stage timings: seconds since the previous lap.
pub(crate) struct Laps(std::time::Instant);

impl Laps {
    pub(crate) fn new() -> Self {
        Laps(std::time::Instant::now())
    }

    pub(crate) fn lap(&mut self) -> f64 {
        let now = std::time::Instant::now();
        let secs = now - self.0;
        self.0 = now;
        millis(secs)
    }
}

pub fn now() -> i64 {
    Utc::now()
        .timestamp_nanos_opt()
        .expect("the current time fits in i64 nanoseconds")
}

/// RFC 3339 in UTC with the shortest exact sub-second part.
pub fn format_instant(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Human form of a duration for reports: `5d`, `36h`, `90m`, `30s` when exact.
pub fn format_duration(ns: i64) -> String {
    let s = ns / NANOS_PER_SECOND;
    if ns % NANOS_PER_SECOND != 0 {
        format!("{}ms", ns / 1_000_000)
    } else if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3_600 == 0 {
        format!("{}h", s / 3_600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The quick path agrees with chrono's parser on valid and invalid times alike.
    #[test]
    fn utc_times_read_quickly_as_chrono_reads_them() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3339);
        let chrono = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .ok()
                .and_then(|d| d.timestamp_nanos_opt())
        };
        let mut quick = 0;
        for _ in 0..200_000 {
            let digits = rng.gen_range(0..=11);
            let mut t = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                rng.gen_range(1600..2400),
                rng.gen_range(0..=13),
                rng.gen_range(0..=32),
                rng.gen_range(0..=24),
                rng.gen_range(0..=60),
                rng.gen_range(0..=61),
            );
            if digits > 0 {
                t.push('.');
                (1..digits).for_each(|_| t.push(char::from(b'0' + rng.gen_range(0..10))));
            }
            t.push_str(["Z", "z", "+00:00", ""][rng.gen_range(0..4)]);
            if rng.gen_bool(0.05) {
                // A byte replaced: a separator, a digit or the zone gone wrong.
                let mut b = t.into_bytes();
                let i = rng.gen_range(0..b.len());
                b[i] = b"0:-T.Z x"[rng.gen_range(0..8)];
                t = String::from_utf8(b).unwrap();
            }
            if let Some(ns) = utc_z(t.as_bytes()) {
                quick += 1;
                assert_eq!(Some(ns), chrono(&t), "{t}");
            }
            if let Some(want) = chrono(&t) {
                assert_eq!(parse_instant(&t).ok(), Some(want), "{t}");
            }
        }
        assert!(quick > 10_000, "only {quick} read by the quick path");
        assert_eq!(
            utc_z(b"2016-12-31T23:59:60Z"),
            None,
            "a leap second is chrono's"
        );
    }

    #[test]
    fn durations_follow_kql_units() {
        assert_eq!(
            parse_duration("14d").unwrap(),
            14 * 86_400 * NANOS_PER_SECOND
        );
        assert_eq!(
            parse_duration("36h").unwrap(),
            36 * 3_600 * NANOS_PER_SECOND
        );
        assert_eq!(parse_duration("90m").unwrap(), 90 * 60 * NANOS_PER_SECOND);
        assert_eq!(parse_duration("30s").unwrap(), 30 * NANOS_PER_SECOND);
        assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
        for bad in ["", "d", "14", "14w", "-1d", "1.5d", "99999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(format_duration(parse_duration("5d").unwrap()), "5d");
        assert_eq!(format_duration(parse_duration("36h").unwrap()), "36h");
    }

    #[test]
    fn instants_accept_rfc3339_naive_and_dates() {
        let z = parse_instant("2026-03-01T00:00:00Z").unwrap();
        assert_eq!(parse_instant("2026-03-01").unwrap(), z);
        assert_eq!(parse_instant("2026-03-01T00:00:00").unwrap(), z);
        assert_eq!(parse_instant("2026-03-01T01:00:00+01:00").unwrap(), z);
        assert_eq!(format_instant(z), "2026-03-01T00:00:00Z");
        assert!(parse_instant("yesterday").is_err());
    }
}
