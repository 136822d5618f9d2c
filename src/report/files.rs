//! The files a run writes under `--out`: per-tenant findings (Parquet, CSV, Markdown) and
//! suppressions, the baseline, replay and sweep tables, and `summary.json` last. Every file is
//! serialised in memory and written with one atomic put.

use polars::prelude::*;
use polars_core::runtime::THREAD_POOL;
use rayon::prelude::*;

use super::frames::PerTenant;
use super::markdown::{markdown, ReplayView, SweepView, TenantView};
use super::summary::Summary;
use crate::analysis::{Replay, Sweep};
use crate::archive::Sink;
use crate::error::{Error, Result};
use crate::rule::columns::out;
use crate::rule::Window;

/// Everything one run writes.
pub(crate) struct Outputs<'a> {
    pub(crate) summary: &'a Summary,
    pub(crate) window: Window,
    /// All findings, times as i64 ns.
    pub(crate) findings: &'a DataFrame,
    /// Suppressed findings (`Rule`, `Reason` added); `None` without exclusions.
    pub(crate) suppressed: Option<&'a DataFrame>,
    pub(crate) time_to_redeem: &'a DataFrame,
    pub(crate) by_tenant: &'a DataFrame,
    pub(crate) replay: Option<&'a Replay>,
    pub(crate) sweep: Option<&'a Sweep>,
}

/// Output timestamps: microseconds (what ADX and most readers use), zoned UTC.
fn utc(name: &str) -> Expr {
    let zoned = |unit| DataType::Datetime(unit, Some(TimeZone::UTC));
    // Internal times are i64 ns: reinterpret as ns, then convert the unit.
    col(name)
        .cast(zoned(TimeUnit::Nanoseconds))
        .cast(zoned(TimeUnit::Microseconds))
}

fn with_utc(df: &DataFrame, names: &[&str]) -> Result<DataFrame> {
    let exprs: Vec<Expr> = names.iter().map(|n| utc(n)).collect();
    Ok(df.clone().lazy().with_columns(exprs).collect()?)
}

/// A frame as Parquet bytes (polars' defaults: what every report file uses).
pub(crate) fn parquet_bytes(df: &DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    ParquetWriter::new(&mut buf).finish(&mut df)?;
    Ok(buf)
}

fn csv_bytes(df: &DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    CsvWriter::new(&mut buf)
        .with_datetime_format(Some("%Y-%m-%dT%H:%M:%S%.6fZ".into()))
        .finish(&mut df)?;
    Ok(buf)
}

/// Folder-safe form of a tenant id (ids are GUIDs; anything else is percent-encoded, and a
/// name too long for a file system is cut and made unique with a hash of the whole id).
fn tenant_dir(tenant: &str) -> String {
    const MAX: usize = 160;
    let mut s = String::from("tenant=");
    for b in tenant.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
        if s.len() > MAX {
            s.truncate(MAX);
            s.push_str(&format!("~{:016x}", crate::read::fnv(tenant)));
            break;
        }
    }
    s
}

/// The files to write: `(key under --out, bytes)`.
type Files = Vec<(String, Vec<u8>)>;

fn parquet_file(files: &mut Files, key: String, df: &DataFrame) -> Result<()> {
    let bytes = parquet_bytes(df).map_err(|e| Error::write(&key, e))?;
    files.push((key, bytes));
    Ok(())
}

/// Every frame of the run cut per tenant, once.
struct Parts<'a> {
    findings: PerTenant,
    suppressed: Option<PerTenant>,
    by_tenant: PerTenant,
    replay: Option<(&'a Replay, PerTenant, PerTenant, Option<PerTenant>)>,
    sweep: Option<(&'a Sweep, PerTenant, PerTenant)>,
}

impl<'a> Parts<'a> {
    fn new(o: &Outputs<'a>) -> Result<Self> {
        let per = |df: &DataFrame| PerTenant::new(df);
        Ok(Parts {
            findings: per(o.findings)?,
            suppressed: o.suppressed.map(per).transpose()?,
            by_tenant: per(o.by_tenant)?,
            replay: match o.replay {
                Some(r) => Some((
                    r,
                    per(&r.by_tick)?,
                    per(&r.alerts)?,
                    r.suppressed.as_ref().map(per).transpose()?,
                )),
                None => None,
            },
            sweep: match o.sweep {
                Some(w) => Some((w, per(&w.table)?, per(&w.suggested)?)),
                None => None,
            },
        })
    }

    fn view<'s>(&'s self, o: &'s Outputs, tenant: &'s str) -> TenantView<'s> {
        TenantView {
            tenant,
            summary: o.summary,
            window: o.window,
            findings: self.findings.of(tenant),
            suppressed: self.suppressed.as_ref().map(|p| p.of(tenant)),
            by_tenant: self.by_tenant.of(tenant),
            replay: self
                .replay
                .as_ref()
                .map(|(replay, by_tick, alerts, gone)| ReplayView {
                    replay,
                    by_tick: by_tick.of(tenant),
                    alerts: alerts.of(tenant),
                    suppressed: gone.as_ref().map(|g| g.of(tenant)),
                }),
            sweep: self
                .sweep
                .as_ref()
                .map(|(sweep, table, suggested)| SweepView {
                    sweep,
                    table: table.of(tenant),
                    suggested: suggested.of(tenant),
                }),
        }
    }
}

/// One tenant's files: findings (Parquet, CSV), suppressions, `report.md`.
fn tenant_files(v: &TenantView) -> Result<Files> {
    let dir = tenant_dir(v.tenant);
    let mut files = Vec::with_capacity(4);
    let own = with_utc(v.findings, &[out::INVITE_TIME])?;
    parquet_file(&mut files, format!("{dir}/findings.parquet"), &own)?;
    let key = format!("{dir}/findings.csv");
    let csv = csv_bytes(&own).map_err(|e| Error::write(&key, e))?;
    files.push((key, csv));
    if let Some(gone) = v.suppressed {
        let gone = with_utc(gone, &[out::INVITE_TIME])?;
        parquet_file(&mut files, format!("{dir}/suppressed.parquet"), &gone)?;
    }
    files.push((format!("{dir}/report.md"), markdown(v)?.into_bytes()));
    Ok(files)
}

/// The files that are not per tenant: replay, sweep and baseline tables.
fn shared_files(o: &Outputs) -> Result<Files> {
    let mut files = Vec::new();
    if let Some(r) = o.replay {
        let alerts = with_utc(&r.alerts, &[out::EVALUATED_AT, out::INVITE_TIME])?;
        parquet_file(&mut files, "replay/alerts.parquet".into(), &alerts)?;
        let by_tick = with_utc(&r.by_tick, &[out::EVALUATED_AT])?;
        parquet_file(&mut files, "replay/by_tick.parquet".into(), &by_tick)?;
        if let Some(gone) = &r.suppressed {
            let gone = with_utc(gone, &[out::EVALUATED_AT, out::INVITE_TIME])?;
            parquet_file(&mut files, "replay/suppressed.parquet".into(), &gone)?;
        }
    }
    if let Some(w) = o.sweep {
        parquet_file(&mut files, "sweep/sweep.parquet".into(), &w.table)?;
        parquet_file(&mut files, "sweep/suggested.parquet".into(), &w.suggested)?;
    }
    let ttr = with_utc(o.time_to_redeem, &[out::INVITE_TIME, out::REDEEM_TIME])?;
    parquet_file(&mut files, "baseline/time_to_redeem.parquet".into(), &ttr)?;
    parquet_file(&mut files, "baseline/by_tenant.parquet".into(), o.by_tenant)?;
    Ok(files)
}

/// Per-tenant reports and the baseline (`summary.json` is written last, by [`write_summary`]).
/// The summaries this run will write go first: until they are written again, the folder holds
/// none, so a run killed halfway is never mistaken for a complete one.
pub(crate) fn write_reports(sink: &Sink, o: &Outputs) -> Result<()> {
    for key in summaries(o.summary) {
        sink.remove(key)?;
    }
    let parts = Parts::new(o)?;
    // Tenants are independent: their files are built in parallel (an MSSP's run over many
    // tenants, and a warm rerun, are mostly this), then written, several puts at a time.
    let tenants: Vec<&String> = o.summary.tenants.keys().collect();
    let per_tenant: Vec<Files> = THREAD_POOL.install(|| {
        tenants
            .par_iter()
            .map(|t| tenant_files(&parts.view(o, t)))
            .collect::<Result<_>>()
    })?;
    let mut files: Files = per_tenant.into_iter().flatten().collect();
    files.extend(shared_files(o)?);
    sink.put_all(files)
}

/// The summaries [`write_summary`] writes for `summary`.
fn summaries(summary: &Summary) -> Vec<&'static str> {
    let mut keys = vec!["summary.json"];
    if summary.replay.is_some() {
        keys.push("replay/summary.json");
    }
    if summary.sweep.is_some() {
        keys.push("sweep/summary.json");
    }
    keys
}

/// `summary.json`, and for `replay` and `sweep` a copy beside their outputs, so that running
/// both into one folder keeps each command's own parameters.
pub(crate) fn write_summary(sink: &Sink, summary: &Summary) -> Result<()> {
    let json = serde_json::to_vec_pretty(summary)
        .map_err(|e| Error::write(format!("{}/summary.json", sink.display()), e))?;
    // The copies first, `summary.json` last.
    for key in summaries(summary).into_iter().rev() {
        sink.put(key, json.clone())?;
    }
    Ok(())
}
