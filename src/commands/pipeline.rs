//! The steps `run`, `replay` and `sweep` share: scan the archive once, evaluate the rule and
//! the baseline at T, write what came out (`summary.json` last).

use polars::prelude::*;
use polars_core::runtime::THREAD_POOL;

use crate::archive::{list_archive, named_object, resolve, ArchiveObject, Listing, Location, Sink};
use crate::cluster::Plan;
use crate::error::{Error, Result};
use crate::job::{AsOf, RunJob};
use crate::progress::Progress;
use crate::read::{scan_archive, Cache, Extracted, Loaded, ScanPlan, Scope, View};
use crate::report::{write_reports, write_summary, Evaluated, Outputs, Summary, Timings};
use crate::rule::{
    by_tenant, deleted_guests, event_counts, finding_order, findings, intended_findings,
    intended_time_to_redeem, pair, pair_precise, precise_counts, precise_findings,
    precise_time_to_redeem, split_suppressed, tenant_keys, with_precise_counts, Semantics,
    TenantKey, Window,
};
use crate::time::{format_instant, millis, parse_instant, Laps};

/// The archive read once: what `run`, `replay` and `sweep` all start from.
pub struct Scanned {
    pub(crate) archive: Location,
    pub(crate) out: Location,
    pub x: Extracted,
    /// Tenants reported on: those seen in the rows read (and asked for with `--tenant`).
    pub tenants: Vec<String>,
    /// The same, with the Entra tenants of their events: what every table has a row for.
    pub keys: Vec<TenantKey>,
    pub(crate) list_seconds: f64,
    pub(crate) scan_seconds: f64,
    /// The `--since` the events were cut to (the job's, else its plan's).
    pub(crate) since: Option<i64>,
}

/// What `job` reads: its tenants, `--since` (a plan's when the job gives none), and T when
/// given.
fn scope(job: &RunJob, plan: Option<&Plan>, until: Option<i64>) -> Result<Scope> {
    let from_plan = plan
        .and_then(|p| p.since.as_deref())
        .map(parse_instant)
        .transpose()?;
    let tenants = match plan {
        Some(p) if job.tenants.is_empty() => p.tenants.clone(),
        _ => job.tenants.clone(),
    };
    if let Some(p) = plan.filter(|p| !p.tenants.is_empty()) {
        if let Some(t) = tenants.iter().find(|t| !p.tenants.contains(t)) {
            return Err(Error::Usage(format!(
                "--tenant {t} is not among the plan's tenants ({}); plan again with it",
                p.tenants.join(", ")
            )));
        }
    }
    if let (Some(asked), Some(planned)) = (job.since, from_plan) {
        if asked < planned {
            return Err(Error::Usage(format!(
                "--since {} is earlier than the plan's --since {}: the plan holds no objects \
                 from before it; plan again with the earlier --since",
                format_instant(asked),
                format_instant(planned)
            )));
        }
    }
    Ok(Scope {
        tenants,
        since: job.since.or(from_plan),
        until,
        folder_skew: job.folder_skew,
        lifecycle: job.semantics == Semantics::Precise,
    })
}

/// Where the objects come from: the archive listed now, or a plan's frozen objects; and the
/// cache they are read through, opened (its error, if any, is reported after those of
/// resolving `--out`, as when it was opened after).
struct Source {
    archive: Location,
    listing: Listing,
    cache: Option<Result<(Cache, Opened)>>,
    plan: Option<Plan>,
    options: Vec<(String, String)>,
    list_seconds: f64,
}

fn source(job: &RunJob, until: Option<i64>, progress: &Progress) -> Result<(Source, Scope)> {
    let mut laps = Laps::new();
    let Some(url) = &job.plan else {
        let archive = resolve(&job.archive, &job.storage_options, false)?;
        let scope = scope(job, None, until)?;
        // The cache's segments are read while the archive is listed: neither needs the other,
        // and on a warm rerun the two were most of the run, one after the other.
        let (listing, cache) = std::thread::scope(|s| -> Result<_> {
            let opening = job
                .cache
                .as_ref()
                .map(|spec| {
                    std::thread::Builder::new()
                        .name("unredeemed-cache".into())
                        .spawn_scoped(s, || {
                            open_view(spec, &job.storage_options, &archive, &scope, progress)
                        })
                })
                .transpose()
                .map_err(Error::Runtime)?;
            let listing = list_in_scope(&archive, &scope, progress);
            let listed = laps.lap();
            let cache = opening.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            Ok((listing.map(|l| (l, listed)), cache))
        })?;
        let (listing, list_seconds) = listing?;
        let source = Source {
            archive,
            listing,
            cache,
            plan: None,
            options: job.storage_options.clone(),
            list_seconds,
        };
        return Ok((source, scope));
    };
    let plan = read_plan(url, &job.storage_options)?;
    let options = plan_options(&plan, &job.storage_options);
    let archive = resolve(&plan.archive, &options, false)?;
    let listing = plan.listing(None);
    let scope = scope(job, Some(&plan), until)?;
    progress.log(&format!(
        "plan {}: {} object(s) of {} in {} shard(s)",
        plan.id,
        plan.objects.len(),
        archive.display,
        plan.shards.len()
    ));
    let list_seconds = laps.lap();
    let cache = Some(
        open_cache(&plan.cache, &options, &archive, progress)
            .map(|(c, l)| (c, Opened::Segments(l))),
    );
    let source = Source {
        archive,
        listing,
        cache,
        plan: Some(plan),
        options,
        list_seconds,
    };
    Ok((source, scope))
}

/// Lists the archive, entering only the folders that can hold something in `scope`.
pub(super) fn list_in_scope(
    archive: &Location,
    scope: &Scope,
    progress: &Progress,
) -> Result<Listing> {
    progress.log(&format!("listing {}", archive.display));
    let descend = |folder: &str| scope.folder_may_hold(folder);
    let mut listing = list_archive(
        archive,
        scope
            .prunes_folders()
            .then_some(&descend as &dyn Fn(&str) -> bool),
    )?;
    let (kept, out): (Vec<_>, Vec<_>) = std::mem::take(&mut listing.objects)
        .into_iter()
        .partition(|o| scope.key_may_hold(&o.key));
    listing.objects = kept;
    // The listing lives all run long: no room to spare in it.
    listing.objects.shrink_to_fit();
    listing.out_of_scope = out.into_iter().map(|o| o.key).collect();
    Ok(listing)
}

/// Reads and checks a plan.
pub(super) fn read_plan(url: &str, options: &[(String, String)]) -> Result<Plan> {
    let at = named_object(url, options, false)?;
    Plan::parse(&at.display, &at.read("plan")?)
}

/// The plan's storage options, under the job's own (which win).
pub(super) fn plan_options(plan: &Plan, job: &[(String, String)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = plan
        .storage_options
        .iter()
        .filter(|(k, _)| !job.iter().any(|(j, _)| j == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    all.extend(job.iter().cloned());
    all
}

/// Lists and reads the cache's segments, or says why it is unusable.
pub(super) fn open_cache(
    spec: &str,
    options: &[(String, String)],
    archive: &Location,
    progress: &Progress,
) -> Result<(Cache, Loaded)> {
    let cache = Cache::open(resolve(spec, options, true)?, &archive.display);
    let loaded = cache.load(|_| true, |w| progress.warn(w))?;
    Ok((cache, loaded))
}

/// The cache as opened for a run.
enum Opened {
    /// The view of the run's scope (its segments are read only if it is not this run's).
    View(View),
    Segments(Loaded),
}

/// Opens the cache and reads the view of `scope`, or (without one) every segment.
fn open_view(
    spec: &str,
    options: &[(String, String)],
    archive: &Location,
    scope: &Scope,
    progress: &Progress,
) -> Result<(Cache, Opened)> {
    let cache = Cache::open(resolve(spec, options, true)?, &archive.display);
    if let Some(v) = cache.read_view(View::file_name(scope)) {
        return Ok((cache, Opened::View(v)));
    }
    let loaded = cache.load(|_| true, |w| progress.warn(w))?;
    Ok((cache, Opened::Segments(loaded)))
}

/// Shards and objects named in one message, at most.
const SHOWN: usize = 20;

/// The first few of `keys`, and how many more.
fn some(keys: &[&str]) -> String {
    let mut text = keys
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        text.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    text
}

/// `--require-cached`: every object must have an entry; else which do not, by shard.
fn require_cached(src: &Source, cache: &Cache, loaded: &Loaded) -> Result<()> {
    let missing: Vec<&ArchiveObject> = src
        .listing
        .objects
        .iter()
        .filter(|o| !loaded.contains(&cache.identity(o)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let detail = match &src.plan {
        Some(plan) => {
            let shard_of = plan.shard_of();
            let mut by_shard: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
            for o in &missing {
                let shard = shard_of.get(o.key.as_str()).copied().unwrap_or(0);
                by_shard.entry(shard).or_default().push(&o.key);
            }
            let shards: Vec<String> = by_shard.keys().map(usize::to_string).collect();
            let lines: Vec<String> = by_shard
                .iter()
                .take(SHOWN)
                .map(|(s, keys)| format!("shard {s}: {}", some(keys)))
                .collect();
            format!(
                "shard(s) {} not extracted (rerun `unredeemed extract --shard I` for each); {}",
                some(&shards.iter().map(String::as_str).collect::<Vec<_>>()),
                lines.join("; ")
            )
        }
        None => some(&missing.iter().map(|o| o.key.as_str()).collect::<Vec<_>>()),
    };
    Err(Error::archive(
        &src.archive.display,
        Some(format!(
            "--require-cached: {} of {} object(s) have no cache entry: {detail}",
            missing.len(),
            src.listing.objects.len()
        )),
        None,
    ))
}

/// The listed objects' events: the view's when it is this run's, else read (hits from the
/// segments). The cache then keeps what was read afresh, and the view of a run whose every
/// object was a hit.
fn extract(
    job: &RunJob,
    src: &mut Source,
    scope: &Scope,
    progress: &Progress,
) -> Result<Extracted> {
    let (cache, view_key) = match src.cache.take().transpose()? {
        None => (None, None),
        Some((c, Opened::Segments(l))) => (Some((c, l)), None),
        Some((c, Opened::View(v))) => {
            let key = View::key_for(scope, src.listing.objects.iter().map(|o| c.identity(o)));
            if v.key() == key {
                progress.log("cache: every object's events read from the view of the last run");
                return v.extracted(&src.listing);
            }
            let loaded = c.load(|_| true, |w| progress.warn(w))?;
            (Some((c, loaded)), Some(key))
        }
    };
    if let (true, Some((c, l))) = (job.require_cached, &cache) {
        require_cached(src, c, l)?;
    }
    let plan = ScanPlan {
        scope,
        cache: cache.as_ref().map(|(c, l)| (c, l)),
        skip_bad_files: job.skip_bad_files,
        progress,
        reader: job.reader,
    };
    let mut x = scan_archive(&src.archive, &src.listing, &plan)?;
    if let Some((c, l)) = &cache {
        x.metrics.cache_segments = l.segments.len();
        keep(c, l, src, &x, progress);
        let every_hit =
            x.metrics.cache_misses == 0 && x.metrics.cache_hits == x.metrics.files_listed;
        if src.plan.is_none() && every_hit {
            let key = view_key.unwrap_or_else(|| {
                View::key_for(scope, src.listing.objects.iter().map(|o| c.identity(o)))
            });
            if let Err(e) = c.write_view(View::file_name(scope), &View::of(key, &x)) {
                progress.warn(&format!("cannot keep the cache's view: {}", e.report()));
            }
        }
    }
    Ok(x)
}

/// The cache keeps the entries read afresh (and compacts its segments when there are many).
fn keep(c: &Cache, l: &Loaded, src: &Source, x: &Extracted, progress: &Progress) {
    // A fresh listing that pruned no folder and dropped no object is the whole archive:
    // what it lacks is gone.
    let complete = src.plan.is_none()
        && src.listing.folders_pruned == 0
        && src.listing.out_of_scope.is_empty();
    match c.keep(l, &src.listing.objects, complete, &x.fresh) {
        Ok(kept) if kept.written.is_some() => progress.log(&match kept.deleted {
            0 => format!(
                "cache: {} object(s) written to a new segment",
                x.fresh.len()
            ),
            n => format!("cache: {n} segment(s) compacted into one"),
        }),
        Ok(_) => {}
        Err(e) => progress.warn(&format!("cannot cache: {}", e.report())),
    }
}

/// Resolves the locations, lists and prunes the archive (or takes a plan's objects), and
/// extracts its events up to `until` (`None`: everything).
pub fn scan(job: &RunJob, until: Option<i64>, progress: &Progress) -> Result<Scanned> {
    let mut laps = Laps::new();
    let (src, scope) = source(job, until, progress)?;
    let out = resolve(&job.out, &src.options, true)?;
    if let Some(ex) = &job.exclusions {
        for w in &ex.warnings {
            progress.warn(w);
        }
    }
    laps.lap();
    let mut src = src;
    let x = extract(job, &mut src, &scope, progress)?;
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
        .filter(|t| scope.tenants.is_empty() || scope.tenants.contains(t))
        .cloned()
        .collect();
    for t in &scope.tenants {
        if !x.tenant_rows.contains_key(t) {
            progress.warn(&format!("tenant `{t}` has no rows in the archive"));
        }
    }
    let keys = tenant_keys(&x.events, &tenants)?;
    Ok(Scanned {
        archive: src.archive,
        out,
        x,
        tenants,
        keys,
        list_seconds: src.list_seconds,
        scan_seconds,
        since: scope.since,
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
    // Invites are paired once: the findings (but `sentinel`'s), the baseline and `precise`'s
    // counts and deleted guests all read the pairing.
    // The events are counted meanwhile (both read every redeem's UPN).
    let (paired, counts) = THREAD_POOL.install(|| {
        rayon::join(
            || timed(|| pair_at(job.semantics, events, as_of)),
            || event_counts(events, as_of),
        )
    });
    let (pairs, paired) = paired?;
    // The rule and the baseline read the same events and not each other: side by side (on
    // a warm rerun each is a few milliseconds of polars' fixed costs).
    let (judged, based) = THREAD_POOL.install(|| {
        rayon::join(
            || timed(|| judge(job, events, &pairs, window)),
            || timed(|| baseline(s, &pairs)),
        )
    });
    let ((found, suppressed), join_seconds) = judged?;
    let ((ttr, baseline), baseline_seconds) = based?;
    let evaluated = Evaluated {
        window,
        findings: &found,
        suppressed: suppressed.as_ref(),
        by_tenant: &baseline,
        event_counts: &counts?,
    };
    let timings = Timings {
        list_seconds: s.list_seconds,
        scan_seconds: s.scan_seconds,
        join_seconds: paired + join_seconds,
        baseline_seconds,
        ..Timings::default()
    };
    let mut summary = Summary::new(
        job,
        &s.archive.display,
        &s.x,
        &s.tenants,
        &evaluated,
        timings,
    )?;
    summary.since = s.since.map(format_instant);
    Ok(Assessed {
        window,
        findings: found,
        suppressed,
        time_to_redeem: ttr,
        by_tenant: baseline,
        summary,
    })
}

/// What `f` gives, and how long it took (s).
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let started = std::time::Instant::now();
    let out = f()?;
    Ok((out, millis(started.elapsed())))
}

/// Invites paired with their redemptions at T.
enum Paired {
    /// `intended`'s pairing (`sentinel`'s baseline reads it too).
    Intended(DataFrame),
    Precise(DataFrame),
}

/// The invites of `events` paired at T as `semantics` pairs them (`sentinel`: as `intended`,
/// for the baseline).
fn pair_at(semantics: Semantics, events: &DataFrame, as_of: i64) -> Result<Paired> {
    let events = events.clone().lazy();
    Ok(match semantics {
        Semantics::Precise => Paired::Precise(pair_precise(events, as_of)?.collect()?),
        _ => Paired::Intended(pair(events, as_of).collect()?),
    })
}

/// The findings at T and what is set apart from them (exclusions; `precise`'s deleted guests).
fn judge(
    job: &RunJob,
    events: &DataFrame,
    pairs: &Paired,
    window: Window,
) -> Result<(DataFrame, Option<DataFrame>)> {
    let found = match (pairs, job.semantics) {
        (Paired::Precise(p), _) => precise_findings(p, window)?,
        (Paired::Intended(p), Semantics::Intended) => intended_findings(p, window)?,
        _ => findings(events, window, job.semantics)?,
    };
    let (found, suppressed) = match &job.exclusions {
        Some(ex) => {
            let (kept, gone) = split_suppressed(&ex.classify(&found, lit(window.as_of))?)?;
            (kept, Some(gone))
        }
        None => (found, None),
    };
    let suppressed = match pairs {
        Paired::Precise(p) => Some(with_deleted(suppressed, p, window)?),
        Paired::Intended(_) => suppressed,
    };
    Ok((found, suppressed))
}

/// The time to redeem of every pair, and the baseline per tenant.
fn baseline(s: &Scanned, pairs: &Paired) -> Result<(DataFrame, DataFrame)> {
    Ok(match pairs {
        Paired::Precise(p) => {
            let ttr = precise_time_to_redeem(p)?;
            let baseline = with_precise_counts(by_tenant(&ttr, &s.keys)?, precise_counts(p)?)?;
            (ttr, baseline)
        }
        Paired::Intended(p) => {
            let ttr = intended_time_to_redeem(p)?;
            let baseline = by_tenant(&ttr, &s.keys)?;
            (ttr, baseline)
        }
    })
}

/// `precise`: the suppressions plus the invites to deleted guests (`pairs`: its pairing at
/// T), in finding order.
fn with_deleted(suppressed: Option<DataFrame>, pairs: &DataFrame, w: Window) -> Result<DataFrame> {
    let deleted = deleted_guests(pairs, w)?;
    let Some(s) = suppressed else {
        return Ok(deleted);
    };
    Ok(concat([s.lazy(), deleted.lazy()], UnionArgs::default())?
        .sort_by_exprs(
            finding_order(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
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
            keys: &s.keys,
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
