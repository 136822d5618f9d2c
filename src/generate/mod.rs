//! The one seeded data generator shared by tests, the sample archive and benches.
//!
//! It writes realistic AuditLogs Parquet (the full column set, mostly noise operations) with
//! guest invites whose redeem delays mix minutes, days, weeks and never, and with every awkward
//! case the rule must survive: case drift, UPN case drift, redeem text in `displayName` or in
//! `userPrincipalName`, failed redeems, re-invites, redeems before the invite, app-initiated
//! invites, invites without a UPN, duplicate deliveries, one UPN in two tenants, and near-miss
//! operation names. It also adds, every day and in each tenant, one invite from the rule's
//! false-positive scenarios ([`scenario`]), never redeemed, which `data/example-config/` suppresses.
//! Same seed, same bytes. The same rows can be written as Parquet or as the JSON Lines blobs
//! Azure writes (`json`).

mod frame;
mod json;
mod life;
mod rows;
pub mod scenario;
mod story;

use chrono::{DateTime, Datelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use self::frame::frame;
pub use self::json::GenFormat;
use self::rows::{make_tenants, noise_row, Row, Tenant, DAY, MS};
use crate::archive::{Location, Sink};
use crate::error::{Error, Result};
use crate::report::parquet_bytes;

#[derive(Debug, Clone)]
pub struct GenSpec {
    pub tenants: u32,
    pub days: u32,
    /// First day, ns since the epoch (UTC).
    pub start: i64,
    pub rows_per_day: u32,
    pub invites_per_day: f64,
    pub seed: u64,
    pub nested: bool,
    pub rows_per_file: usize,
    /// Parquet, or the JSON Lines blobs Azure writes (from the same event stream).
    pub format: GenFormat,
    /// Gzip the JSON blobs (`*.json.gz`).
    pub gzip: bool,
}

/// What was written, for the caller's log line.
#[derive(Debug, Default)]
pub struct GenStats {
    pub files: usize,
    pub rows: u64,
    pub invites: u64,
    pub bytes: u64,
}

/// Writes the archive under `out` as `y=YYYY/m=MM/d=DD/part-NNNNN.parquet`, or as the JSON
/// blobs of `spec.format` (the same rows either way).
pub(crate) fn generate(spec: &GenSpec, out: &Location) -> Result<GenStats> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let start_us = spec.start.div_euclid(1_000);
    let end_us = start_us + spec.days as i64 * DAY;
    let tenants = make_tenants(&mut rng, spec.tenants);
    let guests = guests(&mut rng, spec, &tenants, start_us, end_us);
    let mut stats = GenStats {
        invites: guests
            .iter()
            .filter(|r| r.operation.eq_ignore_ascii_case("Invite external user"))
            .count() as u64,
        ..Default::default()
    };
    let sink = Sink::open(out.clone());
    let mut next_guest = 0;
    for day in 0..spec.days as i64 {
        let day_start = start_us + day * DAY;
        let mut rows: Vec<Row> = Vec::new();
        for (t, tenant) in tenants.iter().enumerate() {
            for _ in 0..spec.rows_per_day {
                let when = day_start + rng.gen_range(0..DAY / MS) * MS;
                rows.push(noise_row(&mut rng, tenant, t, when));
            }
        }
        while next_guest < guests.len() && guests[next_guest].time < day_start + DAY {
            rows.push(guests[next_guest].clone());
            next_guest += 1;
        }
        duplicate_deliveries(&mut rng, &mut rows);
        write_day(&sink, spec, &tenants, day_start, &rows, &mut stats)?;
    }
    if stats.files == 0 {
        return Err(Error::Usage("nothing to generate".into()));
    }
    Ok(stats)
}

/// Every guest event of the period, in time order: the stories, and the scenario invites.
fn guests(
    rng: &mut ChaCha8Rng,
    spec: &GenSpec,
    tenants: &[Tenant],
    start_us: i64,
    end_us: i64,
) -> Vec<Row> {
    let mut guests = story::guest_events(rng, spec, tenants, start_us, end_us);
    // Scenario invites from their own stream, so the rest of the archive does not depend on them.
    let mut srng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5CE7_A210);
    let mut serial = 0;
    for day in 0..spec.days as i64 {
        for (t, tenant) in tenants.iter().enumerate() {
            serial += 1;
            let at = start_us + day * DAY + srng.gen_range(0..DAY / MS) * MS;
            let kind = (day as usize + t) % scenario::KINDS;
            guests.push(scenario::scenario_invite(
                &mut srng, tenant, t, at, kind, serial,
            ));
        }
    }
    guests.retain(|r| r.time >= start_us && r.time < end_us);
    guests.sort_by_key(|r| r.time);
    guests
}

/// Duplicate deliveries: the same event (same Id) written twice; then the day in time order.
fn duplicate_deliveries(rng: &mut ChaCha8Rng, rows: &mut Vec<Row>) {
    let dups: Vec<Row> = rows
        .iter()
        .filter(|r| {
            let p = if r.logged_by == "Invited Users" || r.logged_by == "B2B Auth" {
                0.03
            } else {
                0.005
            };
            rng.gen_bool(p)
        })
        .cloned()
        .collect();
    rows.extend(dups);
    rows.sort_by_key(|r| r.time);
}

/// One day's rows as `y=/m=/d=/part-NNNNN.parquet` objects of at most `rows_per_file` rows.
fn write_day(
    sink: &Sink,
    spec: &GenSpec,
    tenants: &[Tenant],
    day_start: i64,
    rows: &[Row],
    stats: &mut GenStats,
) -> Result<()> {
    let date: DateTime<Utc> = DateTime::from_timestamp_micros(day_start)
        .ok_or_else(|| Error::Usage("the generated period is out of range".into()))?;
    if spec.format != GenFormat::Parquet {
        for (key, bytes) in json::blobs(rows, tenants, spec.format, spec.gzip)? {
            stats.bytes += bytes.len() as u64;
            stats.files += 1;
            sink.put(&key, bytes)?;
        }
        stats.rows += rows.len() as u64;
        return Ok(());
    }
    for (part, chunk) in rows.chunks(spec.rows_per_file).enumerate() {
        let df = frame(chunk, tenants, spec.nested)?;
        let key = format!(
            "y={:04}/m={:02}/d={:02}/part-{part:05}.parquet",
            date.year(),
            date.month(),
            date.day()
        );
        let bytes = parquet_bytes(&df).map_err(|e| Error::write(&key, e))?;
        stats.bytes += bytes.len() as u64;
        stats.rows += chunk.len() as u64;
        stats.files += 1;
        sink.put(&key, bytes)?;
    }
    Ok(())
}
