//! unredeemed: hunt Entra ID guest invites that were never redeemed, over archived AuditLogs.
//!
//! The stages, in order: [`source`] lists the archive, [`extract`] turns AuditLogs rows into
//! invite/redeem events, [`detect`] evaluates the rule (both readings), [`baseline`] pairs
//! invites with redeems for time-to-redeem, and [`report`] writes the results. [`cli`] turns
//! flags into a validated [`RunJob`] before any of them runs.

pub mod baseline;
pub mod cache;
pub mod cli;
pub mod detect;
pub mod error;
pub mod extract;
pub mod generate;
pub mod progress;
pub mod prune;
pub mod report;
pub mod rule;
pub mod source;
pub mod timefmt;

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::detect::{Semantics, Window};
pub use crate::error::{Error, Result};
use crate::extract::{ev, ScanFilter, ScanPlan};
use crate::progress::Progress;
use crate::prune::TimeWindow;
use crate::report::{Outputs, Summary, TenantCounts};
use crate::timefmt::{format_instant, NANOS_PER_SECOND};

/// When the rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The latest `TimeGenerated` in the archive, so reruns give the same answer.
    Latest,
    At(i64),
}

/// A validated `run`: every stage takes this, never the raw flags.
#[derive(Debug, Clone)]
pub struct RunJob {
    /// Path or URL of the archive.
    pub archive: String,
    /// Path or URL of the output folder.
    pub out: String,
    /// `--storage-option KEY=VALUE` pairs, on top of the environment.
    pub storage_options: Vec<(String, String)>,
    pub skip_bad_files: bool,
    /// Extraction cache folder; `None` disables it.
    pub cache: Option<std::path::PathBuf>,
    pub as_of: AsOf,
    pub lookback: i64,
    pub threshold: i64,
    pub semantics: Semantics,
    pub since: Option<i64>,
    pub tenants: Vec<String>,
    pub quiet: bool,
}

/// What a run produced (also written as `summary.json`).
pub struct RunOutcome {
    pub summary: Summary,
}

pub fn run(job: &RunJob) -> Result<RunOutcome> {
    let progress = Progress::new(job.quiet);
    let mut clock = std::time::Instant::now();
    let mut lap = || {
        let now = std::time::Instant::now();
        let secs = (now - clock).as_secs_f64();
        clock = now;
        (secs * 1e3).round() / 1e3
    };
    let archive = source::resolve(&job.archive, &job.storage_options, false)?;
    let out = source::resolve(&job.out, &job.storage_options, true)?;
    progress.log(&format!("listing {}", archive.display));
    let filter = ScanFilter {
        tenants: job.tenants.clone(),
        since: job.since,
    };
    let window = TimeWindow {
        since: job.since,
        until: match job.as_of {
            AsOf::At(t) => Some(t),
            AsOf::Latest => None,
        },
    };
    lap();
    let listing = source::list_archive(&archive, &window)?;
    let list_seconds = lap();
    let cache = match &job.cache {
        Some(dir) => Some(cache::Cache::open(dir).map_err(|e| {
            Error::Usage(format!(
                "cannot use the cache folder `{}`: {e}",
                dir.display()
            ))
        })?),
        None => None,
    };
    let plan = ScanPlan {
        filter: &filter,
        cache: cache.as_ref(),
        window,
        skip_bad_files: job.skip_bad_files,
        progress: &progress,
    };
    let x = extract::extract_archive(&archive, &listing, &plan)?;
    let scan_seconds = lap();
    progress.log(&format!(
        "read {} of {} object(s) ({} pruned), {} rows, {} bytes fetched",
        x.metrics.files,
        x.metrics.files_listed,
        x.metrics.files_pruned,
        x.metrics.rows_scanned,
        x.metrics.bytes_read
    ));
    let as_of = match job.as_of {
        AsOf::At(t) => t,
        AsOf::Latest => x.max_time.ok_or_else(|| Error::ArchiveUnreadable {
            location: archive.display.clone(),
            reason: "no rows were read, so there is no latest TimeGenerated; pass --as-of".into(),
        })?,
    };
    let window = Window {
        as_of,
        lookback: job.lookback,
        threshold: job.threshold,
    };

    let tenants: Vec<String> = x
        .tenant_rows
        .keys()
        .filter(|t| job.tenants.is_empty() || job.tenants.contains(t))
        .cloned()
        .collect();
    for t in &job.tenants {
        if !x.tenant_rows.contains_key(t) {
            progress.warn(&format!("tenant `{t}` has no rows in the archive"));
        }
    }

    lap();
    let findings = detect::findings(&x.events, window, job.semantics)?;
    let join_seconds = lap();
    let ttr = baseline::time_to_redeem(&x.events, as_of)?;
    let by_tenant = baseline::by_tenant(&ttr, &tenants)?;
    let baseline_seconds = lap();
    let counts = detect::event_counts(&x.events, as_of)?;

    let mut per_tenant: BTreeMap<String, TenantCounts> = tenants
        .iter()
        .map(|t| {
            let c = TenantCounts {
                rows: x.tenant_rows[t],
                ..Default::default()
            };
            (t.clone(), c)
        })
        .collect();
    let u = |df: &DataFrame, c: &str| -> Result<Vec<u64>> {
        let s = df
            .column(c)?
            .as_materialized_series()
            .cast(&DataType::UInt64)?;
        Ok(s.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let names = |df: &DataFrame| -> Result<Vec<String>> {
        Ok(df
            .column(ev::TENANT)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or("").to_string())
            .collect())
    };
    {
        let t = names(&counts)?;
        let (inv, app, inv0, red, red0) = (
            u(&counts, "invites")?,
            u(&counts, "app_initiated_invites")?,
            u(&counts, "invites_without_upn")?,
            u(&counts, "redeems")?,
            u(&counts, "redeems_without_upn")?,
        );
        for i in 0..t.len() {
            if let Some(c) = per_tenant.get_mut(&t[i]) {
                c.invites = inv[i];
                c.app_initiated_invites = app[i];
                c.invites_without_upn = inv0[i];
                c.redeems = red[i];
                c.redeems_without_upn = red0[i];
            }
        }
        let t = names(&by_tenant)?;
        let (red, pen) = (u(&by_tenant, "Redeemed")?, u(&by_tenant, "Pending")?);
        for i in 0..t.len() {
            if let Some(c) = per_tenant.get_mut(&t[i]) {
                c.baseline_redeemed = red[i];
                c.baseline_pending = pen[i];
            }
        }
        for t in names(&findings)? {
            if let Some(c) = per_tenant.get_mut(&t) {
                c.findings += 1;
            }
        }
    }
    let sum = |f: fn(&TenantCounts) -> u64| per_tenant.values().map(f).sum::<u64>();
    let mut summary = Summary {
        timings: report::Timings {
            list_seconds,
            scan_seconds,
            join_seconds,
            baseline_seconds,
            write_seconds: 0.0,
        },
        as_of: format_instant(as_of),
        lookback_seconds: job.lookback / NANOS_PER_SECOND,
        threshold_seconds: job.threshold / NANOS_PER_SECOND,
        semantics: job.semantics,
        since: job.since.map(format_instant),
        rule: rule::RULE,
        archive: archive.display.clone(),
        files: x.metrics.files,
        files_listed: x.metrics.files_listed,
        files_pruned: x.metrics.files_pruned,
        folders_pruned: x.metrics.folders_pruned,
        row_groups_pruned: x.metrics.row_groups_pruned,
        bytes: x.metrics.bytes,
        bytes_read: x.metrics.bytes_read,
        rows_scanned: x.metrics.rows_scanned,
        bad_files: x.metrics.bad_files.clone(),
        cache_hits: x.metrics.cache_hits,
        cache_misses: x.metrics.cache_misses,
        invites: sum(|c| c.invites),
        redeems: sum(|c| c.redeems),
        findings: sum(|c| c.findings),
        duplicates_dropped: x.duplicates_dropped,
        app_initiated_invites: sum(|c| c.app_initiated_invites),
        invites_without_upn: sum(|c| c.invites_without_upn),
        redeems_without_upn: sum(|c| c.redeems_without_upn),
        unparseable_json: x.unparseable_json,
        tenants: per_tenant,
    };

    let sink = source::Sink::open(out);
    lap();
    report::write_reports(
        &sink,
        &Outputs {
            summary: &summary,
            window,
            findings: &findings,
            time_to_redeem: &ttr,
            by_tenant: &by_tenant,
        },
    )?;
    summary.timings.write_seconds = lap();
    report::write_summary(&sink, &summary)?;
    progress.log(&format!("reports written to {}", sink.display()));
    Ok(RunOutcome { summary })
}
