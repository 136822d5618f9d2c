//! unredeemed: hunt Entra ID guest invites that were never redeemed, over archived AuditLogs.
//!
//! The stages, in order: [`source`] lists the archive, [`extract`] turns AuditLogs rows into
//! invite/redeem events, [`detect`] evaluates the rule (both readings), [`baseline`] pairs
//! invites with redeems for time-to-redeem, and [`report`] writes the results. [`cli`] turns
//! flags into a validated [`RunJob`] before any of them runs.

pub mod baseline;
pub mod cache;
pub mod cli;
pub mod config;
pub mod detect;
pub mod error;
pub mod exclude;
pub mod extract;
pub mod generate;
pub mod late;
pub mod progress;
pub mod prune;
pub mod replay;
pub mod report;
pub mod rule;
pub mod source;
pub mod sweep;
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
    /// Metadata reported with the findings (`--rule`, else the built-in rule).
    pub rule: rule::Rule,
    /// Exclusion rules from `--config` (`None`: none, or `--no-exclusions`).
    pub exclusions: Option<exclude::Exclusions>,
    /// How objects are read (`--reader`).
    pub reader: extract::Reader,
}

/// What a run produced (also written as `summary.json`).
pub struct RunOutcome {
    pub summary: Summary,
}

/// Seconds, rounded to the millisecond.
fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

/// Seconds since the previous lap, rounded to the millisecond.
struct Laps(std::time::Instant);

impl Laps {
    fn new() -> Self {
        Laps(std::time::Instant::now())
    }
    fn lap(&mut self) -> f64 {
        let now = std::time::Instant::now();
        let secs = now - self.0;
        self.0 = now;
        millis(secs)
    }
}

/// The archive read once: what `run`, `replay` and `sweep` all start from.
pub struct Scanned {
    pub archive: source::Location,
    pub out: source::Location,
    pub x: extract::Extracted,
    /// Tenants reported on: those seen in the rows read (and asked for with `--tenant`).
    pub tenants: Vec<String>,
    pub list_seconds: f64,
    pub scan_seconds: f64,
}

/// Resolves the locations, lists and prunes the archive, and extracts its events up to `until`
/// (`None`: everything).
pub fn scan(job: &RunJob, until: Option<i64>, progress: &Progress) -> Result<Scanned> {
    let mut laps = Laps::new();
    let archive = source::resolve(&job.archive, &job.storage_options, false)?;
    let out = source::resolve(&job.out, &job.storage_options, true)?;
    if let Some(ex) = &job.exclusions {
        for w in &ex.warnings {
            progress.warn(w);
        }
    }
    progress.log(&format!("listing {}", archive.display));
    let filter = ScanFilter {
        tenants: job.tenants.clone(),
        since: job.since,
    };
    let window = TimeWindow {
        since: job.since,
        until,
    };
    laps.lap();
    let listing = source::list_archive(&archive, &window)?;
    let list_seconds = laps.lap();
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
        progress,
        reader: job.reader,
    };
    let x = extract::extract_archive(&archive, &listing, &plan)?;
    let scan_seconds = laps.lap();
    progress.log(&format!(
        "read {} of {} object(s) ({} pruned), {} rows, {} bytes fetched",
        x.metrics.files,
        x.metrics.files_listed,
        x.metrics.files_pruned,
        x.metrics.rows_scanned,
        x.metrics.bytes_read
    ));
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
    Ok(Scanned {
        archive,
        out,
        x,
        tenants,
        list_seconds,
        scan_seconds,
    })
}

impl Scanned {
    /// T: the given instant, or the latest `TimeGenerated` read.
    pub fn resolve_as_of(&self, as_of: AsOf) -> Result<i64> {
        match as_of {
            AsOf::At(t) => Ok(t),
            AsOf::Latest => self.x.max_time.ok_or_else(|| Error::ArchiveUnreadable {
                location: self.archive.display.clone(),
                reason: "no rows were read, so there is no latest TimeGenerated; pass a time"
                    .into(),
            }),
        }
    }
}

/// The rule and the baseline evaluated at one T, with the summary that describes them.
pub struct Assessed {
    pub window: Window,
    /// Findings kept (not suppressed by an exclusion).
    pub findings: DataFrame,
    /// Findings suppressed, with `Rule` and `Reason`; `None` without exclusions.
    pub suppressed: Option<DataFrame>,
    pub time_to_redeem: DataFrame,
    pub by_tenant: DataFrame,
    pub summary: Summary,
}

/// Findings, baseline and counts at `as_of`.
pub fn assess(job: &RunJob, s: &Scanned, as_of: i64) -> Result<Assessed> {
    let x = &s.x;
    let window = Window {
        as_of,
        lookback: job.lookback,
        threshold: job.threshold,
    };
    let mut laps = Laps::new();
    let findings = detect::findings(&x.events, window, job.semantics)?;
    let (findings, suppressed) = match &job.exclusions {
        Some(ex) => {
            let (kept, gone) = exclude::split(&ex.classify(&findings, lit(as_of))?)?;
            (kept, Some(gone))
        }
        None => (findings, None),
    };
    let join_seconds = laps.lap();
    let ttr = baseline::time_to_redeem(&x.events, as_of)?;
    let by_tenant = baseline::by_tenant(&ttr, &s.tenants)?;
    let baseline_seconds = laps.lap();
    let counts = detect::event_counts(&x.events, as_of)?;

    let mut per_tenant: BTreeMap<String, TenantCounts> = s
        .tenants
        .iter()
        .map(|t| {
            let c = TenantCounts {
                rows: x.tenant_rows[t],
                ..Default::default()
            };
            (t.clone(), c)
        })
        .collect();
    {
        let t = names(&counts)?;
        let (inv, app, inv0, red, red0) = (
            u64s(&counts, "invites")?,
            u64s(&counts, "app_initiated_invites")?,
            u64s(&counts, "invites_without_upn")?,
            u64s(&counts, "redeems")?,
            u64s(&counts, "redeems_without_upn")?,
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
        let (red, pen) = (u64s(&by_tenant, "Redeemed")?, u64s(&by_tenant, "Pending")?);
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
        if let Some(gone) = &suppressed {
            for t in names(gone)? {
                if let Some(c) = per_tenant.get_mut(&t) {
                    c.suppressed += 1;
                }
            }
        }
    }
    let exclusions = match (&job.exclusions, &suppressed) {
        (Some(ex), Some(gone)) => Some(report::ExclusionSummary::new(ex, gone)?),
        _ => None,
    };
    let sum = |f: fn(&TenantCounts) -> u64| per_tenant.values().map(f).sum::<u64>();
    let summary = Summary {
        timings: report::Timings {
            list_seconds: s.list_seconds,
            scan_seconds: s.scan_seconds,
            decode_seconds: millis(x.decode_time),
            extract_seconds: millis(x.extract_time),
            join_seconds,
            baseline_seconds,
            write_seconds: 0.0,
        },
        as_of: format_instant(as_of),
        lookback_seconds: job.lookback / NANOS_PER_SECOND,
        threshold_seconds: job.threshold / NANOS_PER_SECOND,
        semantics: job.semantics,
        since: job.since.map(format_instant),
        rule: job.rule.clone(),
        archive: s.archive.display.clone(),
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
        suppressed: sum(|c| c.suppressed),
        exclusions,
        tenants: per_tenant,
        replay: None,
        sweep: None,
    };
    Ok(Assessed {
        window,
        findings,
        suppressed,
        time_to_redeem: ttr,
        by_tenant,
        summary,
    })
}

/// Writes everything `a` (and the optional replay/sweep results) holds; `summary.json` last.
pub fn write(
    s: &Scanned,
    a: &mut Assessed,
    replay: Option<&replay::Replay>,
    sweep: Option<&sweep::Sweep>,
    progress: &Progress,
) -> Result<()> {
    let sink = source::Sink::open(s.out.clone());
    let mut laps = Laps::new();
    report::write_reports(
        &sink,
        &Outputs {
            summary: &a.summary,
            window: a.window,
            findings: &a.findings,
            suppressed: a.suppressed.as_ref(),
            time_to_redeem: &a.time_to_redeem,
            by_tenant: &a.by_tenant,
            replay,
            sweep,
        },
    )?;
    a.summary.timings.write_seconds = laps.lap();
    report::write_summary(&sink, &a.summary)?;
    progress.log(&format!("reports written to {}", sink.display()));
    Ok(())
}

fn u64s(df: &DataFrame, c: &str) -> Result<Vec<u64>> {
    let s = df
        .column(c)?
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    Ok(s.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

fn names(df: &DataFrame) -> Result<Vec<String>> {
    Ok(df
        .column(ev::TENANT)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect())
}

/// Scan, then the rule and the baseline at T (`job.as_of`): what every command starts with.
fn prepare(job: &RunJob) -> Result<(Progress, Scanned, Assessed)> {
    let progress = Progress::new(job.quiet);
    let until = match job.as_of {
        AsOf::At(t) => Some(t),
        AsOf::Latest => None,
    };
    let s = scan(job, until, &progress)?;
    let as_of = s.resolve_as_of(job.as_of)?;
    let a = assess(job, &s, as_of)?;
    Ok((progress, s, a))
}

/// `unredeemed run`: the rule at one T.
pub fn run(job: &RunJob) -> Result<RunOutcome> {
    let (progress, s, mut a) = prepare(job)?;
    write(&s, &mut a, None, None, &progress)?;
    Ok(RunOutcome { summary: a.summary })
}

/// `unredeemed replay`: the rule at every tick from `from` to `to` (T), in one pass.
pub fn replay(job: &replay::ReplayJob) -> Result<RunOutcome> {
    let (progress, s, mut a) = prepare(&job.run)?;
    let mut laps = Laps::new();
    let r = replay::replay(&s.x.events, &s.tenants, job, a.window.as_of)?;
    a.summary.replay = Some(r.summary(laps.lap()));
    progress.log(&format!(
        "replayed {} tick(s): {} alert(s) on {} invite(s)",
        r.ticks,
        r.alerts.height(),
        r.alerting_invites
    ));
    write(&s, &mut a, Some(&r), None, &progress)?;
    Ok(RunOutcome { summary: a.summary })
}

/// `unredeemed sweep`: flagged counts over a list of thresholds, and a suggested one.
pub fn sweep(job: &sweep::SweepJob) -> Result<RunOutcome> {
    let (progress, s, mut a) = prepare(&job.run)?;
    let w = sweep::sweep(&a.time_to_redeem, &s.tenants, job, a.window.as_of)?;
    a.summary.sweep = Some(w.summary()?);
    write(&s, &mut a, None, Some(&w), &progress)?;
    Ok(RunOutcome { summary: a.summary })
}
