//! The files a run writes under `--out`: per-tenant findings (Parquet, CSV, Markdown) and
//! suppressions, the baseline, replay and sweep tables, and `summary.json` last. Every file is
//! serialised in memory and written with one atomic put.

use polars::prelude::*;
use polars_core::runtime::THREAD_POOL;
use rayon::prelude::*;

use super::frames::PerTenant;
use super::html;
use super::markdown::{markdown, ReplayView, SweepView, TenantView};
use super::summary::Summary;
use crate::analysis::{Replay, Sweep};
use crate::archive::Sink;
use crate::error::{Error, Result};
use crate::rule::columns::out;
use crate::rule::{TenantKey, Window};

/// Everything one run writes.
pub(crate) struct Outputs<'a> {
    pub(crate) summary: &'a Summary,
    /// Every reported tenant key (a `TenantId` may hold several Entra tenants).
    pub(crate) keys: &'a [TenantKey],
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

/// A frame as written: `names` as UTC timestamps, and an unknown Entra tenant (`""` inside
/// the job, so that it joins) as null.
fn written(df: &DataFrame, names: &[&str]) -> Result<DataFrame> {
    let mut exprs: Vec<Expr> = names.iter().map(|n| utc(n)).collect();
    if df.schema().contains(out::AAD_TENANT) {
        let aad = col(out::AAD_TENANT);
        exprs.push(
            when(aad.clone().eq(lit("")))
                .then(lit(NULL).cast(DataType::String))
                .otherwise(aad)
                .alias(out::AAD_TENANT),
        );
    }
    Ok(df.clone().lazy().with_columns(exprs).collect()?)
}

/// A frame as Parquet bytes, with polars' defaults (the generator's archives).
pub(crate) fn parquet_bytes(df: &DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(&mut df.clone())?;
    Ok(buf)
}

/// A report file as Parquet bytes: zstd at level 1. polars' default level wrote files no smaller
/// here, and cost a warm rerun a tenth more time.
fn report_parquet_bytes(df: &DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    let level = polars_parquet::write::ZstdLevel::try_new(1)?;
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(Some(level)))
        .finish(&mut df.clone())?;
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
    let bytes = report_parquet_bytes(df).map_err(|e| Error::write(&key, e))?;
    files.push((key, bytes));
    Ok(())
}

/// Every frame of the run cut per tenant, once.
struct Parts<'a> {
    findings: PerTenant,
    suppressed: Option<PerTenant>,
    by_tenant: PerTenant,
    time_to_redeem: PerTenant,
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
            time_to_redeem: per(o.time_to_redeem)?,
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

    fn view<'s>(&'s self, o: &'s Outputs, key: &'s TenantKey) -> TenantView<'s> {
        TenantView {
            tenant: &key.tenant,
            aad_tenant: &key.aad_tenant,
            summary: o.summary,
            window: o.window,
            findings: self.findings.of(key),
            suppressed: self.suppressed.as_ref().map(|p| p.of(key)),
            by_tenant: self.by_tenant.of(key),
            time_to_redeem: self.time_to_redeem.of(key),
            replay: self
                .replay
                .as_ref()
                .map(|(replay, by_tick, alerts, gone)| ReplayView {
                    replay,
                    by_tick: by_tick.of(key),
                    alerts: alerts.of(key),
                    suppressed: gone.as_ref().map(|g| g.of(key)),
                }),
            sweep: self
                .sweep
                .as_ref()
                .map(|(sweep, table, suggested)| SweepView {
                    sweep,
                    table: table.of(key),
                    suggested: suggested.of(key),
                }),
        }
    }
}

/// The rows of one `TenantId`: its Entra tenants' rows, in key order.
fn stacked<'f>(frames: impl Iterator<Item = &'f DataFrame>) -> Result<DataFrame> {
    let mut frames = frames;
    let mut all = frames
        .next()
        .cloned()
        .ok_or_else(|| Error::Internal("a tenant without a key".into()))?;
    for f in frames {
        all.vstack_mut(f)?;
    }
    Ok(all)
}

/// One tenant's files: findings (Parquet, CSV), suppressions, `report.md`; `views` are its
/// Entra tenants (one, where a workspace holds one or the input names none).
fn tenant_files(views: &[TenantView]) -> Result<Files> {
    let Some(first) = views.first() else {
        return Ok(Vec::new());
    };
    let dir = tenant_dir(first.tenant);
    let mut files = Vec::with_capacity(4);
    let own = written(
        &stacked(views.iter().map(|v| v.findings))?,
        &[out::INVITE_TIME],
    )?;
    parquet_file(&mut files, format!("{dir}/findings.parquet"), &own)?;
    let key = format!("{dir}/findings.csv");
    let csv = csv_bytes(&own).map_err(|e| Error::write(&key, e))?;
    files.push((key, csv));
    if first.suppressed.is_some() {
        let gone = stacked(views.iter().filter_map(|v| v.suppressed))?;
        let gone = written(&gone, &[out::INVITE_TIME])?;
        parquet_file(&mut files, format!("{dir}/suppressed.parquet"), &gone)?;
    }
    let mds = views.iter().map(markdown).collect::<Result<Vec<_>>>()?;
    let page = html::tenant_page(views, &mds)?;
    files.push((
        format!("{dir}/report.md"),
        mds.join("\n---\n\n").into_bytes(),
    ));
    files.push((format!("{dir}/report.html"), page.into_bytes()));
    Ok(files)
}

/// The files that are not per tenant: replay, sweep and baseline tables.
fn shared_files(o: &Outputs) -> Result<Files> {
    let mut files = Vec::new();
    if let Some(r) = o.replay {
        let alerts = written(&r.alerts, &[out::EVALUATED_AT, out::INVITE_TIME])?;
        parquet_file(&mut files, "replay/alerts.parquet".into(), &alerts)?;
        let by_tick = written(&r.by_tick, &[out::EVALUATED_AT])?;
        parquet_file(&mut files, "replay/by_tick.parquet".into(), &by_tick)?;
        if let Some(gone) = &r.suppressed {
            let gone = written(gone, &[out::EVALUATED_AT, out::INVITE_TIME])?;
            parquet_file(&mut files, "replay/suppressed.parquet".into(), &gone)?;
        }
    }
    if let Some(w) = o.sweep {
        let table = written(&w.table, &[])?;
        parquet_file(&mut files, "sweep/sweep.parquet".into(), &table)?;
        let suggested = written(&w.suggested, &[])?;
        parquet_file(&mut files, "sweep/suggested.parquet".into(), &suggested)?;
    }
    let ttr = written(o.time_to_redeem, &[out::INVITE_TIME, out::REDEEM_TIME])?;
    parquet_file(&mut files, "baseline/time_to_redeem.parquet".into(), &ttr)?;
    let by_tenant = written(o.by_tenant, &[])?;
    parquet_file(&mut files, "baseline/by_tenant.parquet".into(), &by_tenant)?;
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
    // tenants, and a warm rerun, are mostly this), beside the shared tables, then written,
    // several puts at a time.
    let tenants: Vec<&String> = o.summary.tenants.keys().collect();
    let (per_tenant, shared) = THREAD_POOL.install(|| {
        rayon::join(
            || {
                tenants
                    .par_iter()
                    .map(|t| {
                        let views: Vec<TenantView> = o
                            .keys
                            .iter()
                            .filter(|k| &&k.tenant == t)
                            .map(|k| parts.view(o, k))
                            .collect();
                        tenant_files(&views)
                    })
                    .collect::<Result<Vec<Files>>>()
            },
            || shared_files(o),
        )
    });
    let mut files: Files = per_tenant?.into_iter().flatten().collect();
    files.extend(shared?);
    files.push(("index.html".into(), index(o, &parts)?.into_bytes()));
    sink.put_all(files)
}

/// `index.html`: a row per tenant, with the time to redeem of its (first) Entra tenant and the
/// sweep's suggested threshold.
fn index(o: &Outputs, parts: &Parts) -> Result<String> {
    let mut rows = Vec::with_capacity(o.summary.tenants.len());
    for (tenant, counts) in &o.summary.tenants {
        let key = o.keys.iter().find(|k| &k.tenant == tenant);
        // A tenant with no invites has no baseline row.
        let quantiles = match key.map(|k| parts.by_tenant.of(k)) {
            Some(b) if b.height() > 0 => [out::P50_SECONDS, out::P90_SECONDS, out::P99_SECONDS]
                .map(|c| first_float(b, c))
                .into_iter()
                .collect::<Result<Vec<_>>>()?,
            _ => vec![None; 3],
        };
        let suggested = match (&parts.sweep, key) {
            (Some((_, _, suggested)), Some(k)) => {
                let s = suggested.of(k);
                match s.height() {
                    0 => None,
                    _ => s
                        .column(out::SUGGESTED_THRESHOLD)?
                        .str()?
                        .get(0)
                        .map(String::from),
                }
            }
            _ => None,
        };
        rows.push(html::IndexRow {
            tenant,
            dir: tenant_dir(tenant),
            counts,
            quantiles,
            suggested,
        });
    }
    Ok(html::index_page(o.summary, &mut rows))
}

/// A float column's first value.
fn first_float(df: &DataFrame, c: &str) -> Result<Option<f64>> {
    Ok(df.column(c)?.f64()?.get(0))
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
