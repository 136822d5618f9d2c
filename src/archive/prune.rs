//! The facts pruning decides on: the time span a key's date folders name, and the time span
//! of a row group from its statistics. What to prune with them is
//! `read::Scope`'s decision.
//!
//! Folder dates are taken to be `TimeGenerated`-based, as in Log Analytics and ADX exports.

use chrono::{Datelike, Months, NaiveDate, TimeDelta};
use polars_parquet::parquet::metadata::FileMetadata;
use polars_parquet::parquet::schema::types::{
    PrimitiveConvertedType, PrimitiveLogicalType, PrimitiveType, TimeUnit,
};
use polars_parquet::parquet::statistics::Statistics;

/// Instants in ns; `None` leaves that side open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimeWindow {
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
}

impl TimeWindow {
    pub(crate) fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Can events in `[start, end]` (inclusive, ns) fall in the window?
    pub(crate) fn overlaps(&self, start: i64, end: i64) -> bool {
        self.since.is_none_or(|s| end >= s) && self.until.is_none_or(|u| start <= u)
    }
}

#[derive(Default)]
struct Parts {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    hour: Option<u32>,
}

/// The time span `[start, end)` (ns) a folder path covers, if its segments name one:
/// `y=/m=/d=[/h=]` (Azure Monitor's `y=/m=/d=/h=/m=` repeats `m=` for the minute),
/// `year=/month=/day=[/hour=]`, `date=YYYY-MM-DD`, `timestamp=YYYY-MM-DDTHH`.
pub(crate) fn folder_span(folders: &str) -> Option<(i64, i64)> {
    let mut p = Parts::default();
    for seg in folders.split('/') {
        let Some((k, v)) = seg.split_once('=') else {
            continue;
        };
        match k.to_ascii_lowercase().as_str() {
            "y" | "year" => p.year = v.parse().ok(),
            "m" if p.month.is_some() => {} // the second `m=` is the minute
            "m" | "month" => p.month = v.parse().ok(),
            "d" | "day" => p.day = v.parse().ok(),
            "h" | "hour" => p.hour = v.parse().ok(),
            "date" => {
                let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
                (p.year, p.month, p.day) = (Some(d.year()), Some(d.month()), Some(d.day()));
            }
            "timestamp" => {
                let d = NaiveDate::parse_from_str(v.get(..10)?, "%Y-%m-%d").ok()?;
                (p.year, p.month, p.day) = (Some(d.year()), Some(d.month()), Some(d.day()));
                p.hour = v.get(11..13).and_then(|h| h.parse().ok());
            }
            _ => {}
        }
    }
    let year = p.year?;
    let start_date = NaiveDate::from_ymd_opt(year, p.month.unwrap_or(1), p.day.unwrap_or(1))?;
    let start = start_date.and_hms_opt(p.hour.unwrap_or(0), 0, 0)?;
    let end = match (p.month, p.day, p.hour) {
        (Some(_), Some(_), Some(_)) => start + TimeDelta::hours(1),
        (Some(_), Some(_), None) => start + TimeDelta::days(1),
        (Some(_), None, _) => start.checked_add_months(Months::new(1))?,
        (None, _, _) => start.checked_add_months(Months::new(12))?,
    };
    Some((
        start.and_utc().timestamp_nanos_opt()?,
        end.and_utc().timestamp_nanos_opt()?,
    ))
}

/// Nanoseconds per stored unit of an INT64 timestamp column, from its logical or converted
/// type; `None` when it is not a timestamp this job reads.
pub(crate) fn nanos_per_unit(t: &PrimitiveType) -> Option<i64> {
    match (t.logical_type, t.converted_type) {
        (Some(PrimitiveLogicalType::Timestamp { unit, .. }), _) => Some(match unit {
            TimeUnit::Milliseconds => 1_000_000,
            TimeUnit::Microseconds => 1_000,
            TimeUnit::Nanoseconds => 1,
        }),
        (None, Some(PrimitiveConvertedType::TimestampMillis)) => Some(1_000_000),
        (None, Some(PrimitiveConvertedType::TimestampMicros)) => Some(1_000),
        _ => None,
    }
}

/// Min and max (ns) of a row group's timestamp `column` from its statistics, when present.
pub(crate) fn row_group_span(meta: &FileMetadata, rg: usize, column: &str) -> Option<(i64, i64)> {
    let chunk = meta
        .row_groups
        .get(rg)?
        .columns_under_root_iter(column)?
        .next()?;
    let Statistics::Int64(s) = chunk.statistics(&meta.footer_buf).and_then(|r| r.ok())? else {
        return None;
    };
    let per_unit = nanos_per_unit(&s.primitive_type)?;
    Some((
        s.min_value?.checked_mul(per_unit)?,
        s.max_value?.checked_mul(per_unit)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The span of an object key's folders (its last segment is the object's name).
    fn span(key: &str) -> Option<(String, String)> {
        folder_span(key.rsplit_once('/').map_or("", |(dirs, _)| dirs)).map(|(s, e)| {
            (
                crate::time::format_instant(s),
                crate::time::format_instant(e),
            )
        })
    }

    #[test]
    fn date_folders_give_spans() {
        let s = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(
            span("y=2026/m=03/d=01/part-0.parquet"),
            s("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")
        );
        assert_eq!(
            span("WorkspaceResourceId=/subscriptions/x/y=2025/m=01/d=02/h=03/m=00/PT05M.parquet"),
            s("2025-01-02T03:00:00Z", "2025-01-02T04:00:00Z")
        );
        assert_eq!(
            span("year=2026/month=2/day=28/hour=23/a.parquet"),
            s("2026-02-28T23:00:00Z", "2026-03-01T00:00:00Z")
        );
        assert_eq!(
            span("date=2026-01-31/a.parquet"),
            s("2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z")
        );
        assert_eq!(
            span("ws/timestamp=2026-01-31T05/a.parquet"),
            s("2026-01-31T05:00:00Z", "2026-01-31T06:00:00Z")
        );
        assert_eq!(
            span("y=2026/m=12/a.parquet"),
            s("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        assert_eq!(span("TenantId=abc/a.parquet"), None);
        assert_eq!(span("y=2026/m=13/a.parquet"), None);
        // A file name is not a folder.
        assert_eq!(span("y=2026.parquet"), None);
    }
}
