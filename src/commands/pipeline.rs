//! The steps `run`, `replay` and `sweep` share: scan the archive once, evaluate the rule and
//! the baseline at T, write what came out (`summary.json` last).

use polars::prelude::*;

use crate::archive::{list_archive, resolve, Location, Sink};
use crate::error::{Error, Result};
use crate::job::{AsOf, RunJob};
use crate::progress::Progress;
use crate::read::{scan_archive, Cache, Extracted, ScanPlan, Scope};
use crate::report::{write_reports, write_summary, Evaluated, Outputs, Summary, Timings};
use crate::rule::{by_tenant, event_counts, findings, split_suppressed, time_to_redeem, Window};
use crate::time::Laps;

/// The archive read once: what `run`, `replay` and `sweep` all start from.
pub struct Scanned {
    pub(crate) archive: Location,
    pub(crate) out: Location,
    pub x: Extracted,
    /// Tenants reported on: those seen in the rows read (and asked for with `--tenant`).
    pub tenants: Vec<String>,
    pub(crate) list_seconds: f64,
    pub(crate) scan_seconds: f64,
}

/// What `job` reads: its tenants, `--since`, and T when given.
fn scope(job: &RunJob, until: Option<i64>) -> Scope {
    Scope {
        tenants: job.tenants.clone(),
        since: job.since,
        until,
    }
}

/// Resolves the locations, lists and prunes the archive, and extracts its events up to `until`
/// (`None`: everything).
pub fn scan(job: &RunJob, until: Option<i64>, progress: &Progress) -> Result<Scanned> {
    let mut laps = Laps::new();
    let archive = resolve(&job.archive, &job.storage_options, false)?;
    let out = resolve(&job.out, &job.storage_options, true)?;
    if let Some(ex) = &job.exclusions {
        for w in &ex.warnings {
            progress.warn(w);
        }
    }
    progress.log(&format!("listing {}", archive.display));
    let scope = scope(job, until);
    laps.lap();
    let descend = |folder: &str| scope.folder_may_hold(folder);
    let listing = list_archive(
        &archive,
        scope
            .prunes_folders()
            .then_some(&descend as &dyn Fn(&str) -> bool),
    )?;
    let list_seconds = laps.lap();
    let cache = job.cache.as_deref().map(Cache::open).transpose()?;
    let plan = ScanPlan {
        scope: &scope,
        cache: cache.as_ref(),
        skip_bad_files: job.skip_bad_files,
        progress,
        reader: job.reader,
    };
    let x = scan_archive(&archive, &listing, &plan)?;
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
            AsOf::Latest => self.x.max_time.ok_or_else(|| {
                Error::archive(
                    &self.archive.display,
                    Some(
                        "no rows were read, so there is no latest TimeGenerated; pass a time"
                            .into(),
                    ),
                    None,
                )
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
    let events = &s.x.events;
    let window = Window {
        as_of,
        lookback: job.lookback,
        threshold: job.threshold,
    };
    let mut laps = Laps::new();
    let found = findings(events, window, job.semantics)?;
    let (found, suppressed) = match &job.exclusions {
        Some(ex) => {
            let (kept, gone) = split_suppressed(&ex.classify(&found, lit(as_of))?)?;
            (kept, Some(gone))
        }
        None => (found, None),
    };
    let join_seconds = laps.lap();
    let ttr = time_to_redeem(events, as_of)?;
    let baseline = by_tenant(&ttr, &s.tenants)?;
    let baseline_seconds = laps.lap();
    let evaluated = Evaluated {
        window,
        findings: &found,
        suppressed: suppressed.as_ref(),
        by_tenant: &baseline,
        event_counts: &event_counts(events, as_of)?,
    };
    let timings = Timings {
        list_seconds: s.list_seconds,
        scan_seconds: s.scan_seconds,
        join_seconds,
        baseline_seconds,
        ..Timings::default()
    };
    let summary = Summary::new(
        job,
        &s.archive.display,
        &s.x,
        &s.tenants,
        &evaluated,
        timings,
    )?;
    Ok(Assessed {
        window,
        findings: found,
        suppressed,
        time_to_redeem: ttr,
        by_tenant: baseline,
        summary,
    })
}

/// Scan, then the rule and the baseline at T (`job.as_of`): what every command starts with.
pub(super) fn prepare(job: &RunJob) -> Result<(Progress, Scanned, Assessed)> {
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

/// Writes everything `a` (and the optional replay/sweep results) holds; `summary.json` last.
pub(super) fn write(
    s: &Scanned,
    a: &mut Assessed,
    replay: Option<&crate::analysis::Replay>,
    sweep: Option<&crate::analysis::Sweep>,
    progress: &Progress,
) -> Result<()> {
    let sink = Sink::open(s.out.clone());
    let mut laps = Laps::new();
    write_reports(
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
    write_summary(&sink, &a.summary)?;
    progress.log(&format!("reports written to {}", sink.display()));
    Ok(())
}
