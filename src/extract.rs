//! AuditLogs rows → guest invite and redeem events.
//!
//! Each object is scanned on its own: archives mix column orders, extra columns, timestamp
//! units and JSON-text vs nested layouts of the dynamic columns, so every object's schema is
//! checked and normalised to one event schema before the objects are combined. The filter on
//! `Category`/`OperationName` is pushed into the scan, and the JSON fields are parsed only for
//! the surviving rows (well under 1% of an archive).

use std::collections::BTreeMap;

use polars::prelude::*;
use rayon::prelude::*;

use std::sync::Arc;

use polars_buffer::Buffer;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::prune::{object_may_match, TimeWindow};
use crate::source::{block_on, fetch_needed, spawn, Fetched, Listing, Location, SourceObject};
use tokio::task::JoinHandle;

pub const CATEGORY: &str = "usermanagement";
pub const INVITE_OP: &str = "invite external user";
pub const REDEEM_OP: &str = "redeem external user invite";

/// The columns the job reads; every other column is ignored.
pub const NEEDED: [&str; 8] = [
    "TenantId",
    "Id",
    "TimeGenerated",
    "Category",
    "OperationName",
    "Result",
    "TargetResources",
    "InitiatedBy",
];

/// Event frame columns (one row per candidate invite/redeem event).
pub mod ev {
    pub const TENANT: &str = "TenantId";
    pub const ID: &str = "Id";
    /// Event time, i64 nanoseconds since the epoch, UTC.
    pub const TIME: &str = "Time";
    pub const IS_INVITE: &str = "IsInvite";
    pub const RESULT_OK: &str = "ResultOk";
    /// `TargetResources[0].userPrincipalName`.
    pub const TR_UPN: &str = "TrUpn";
    /// `TargetResources[0].displayName`.
    pub const TR_DISPLAY: &str = "TrDisplay";
    /// `InitiatedBy.user.userPrincipalName`.
    pub const INIT_UPN: &str = "InitUpn";
    /// `InitiatedBy.user.ipAddress`.
    pub const INIT_IP: &str = "InitIp";
    /// How many of this row's JSON values could not be parsed (0..=2).
    pub const BAD_JSON: &str = "BadJson";
}

/// Which rows a run needs at all; pushed into every object's scan.
#[derive(Debug, Clone, Default)]
pub struct ScanFilter {
    /// Only these tenants (all when empty).
    pub tenants: Vec<String>,
    /// Drop events before this instant (ns).
    pub since: Option<i64>,
}

/// Everything the later stages need from one pass over the archive.
#[derive(Debug)]
pub struct Extracted {
    /// Deduplicated candidate events (see [`ev`]).
    pub events: DataFrame,
    pub metrics: ScanMetrics,
    /// Latest `TimeGenerated` of any row read (the default as-of).
    pub max_time: Option<i64>,
    /// Rows per tenant, for every tenant seen in the rows read.
    pub tenant_rows: BTreeMap<String, u64>,
    pub duplicates_dropped: u64,
    pub unparseable_json: u64,
    /// Decoder-thread time spent scanning objects (summed over threads; objects read by polars'
    /// reader include their event extraction).
    pub decode_time: std::time::Duration,
    /// Wall time of the one event-extraction pass over the late-read objects' candidate rows.
    pub extract_time: std::time::Duration,
}

/// What the scan touched, for `summary.json`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScanMetrics {
    pub files_listed: usize,
    /// Date folders not even listed: outside the window.
    pub folders_pruned: usize,
    /// Objects skipped whole: by their date folders or, all row groups out of the window, by
    /// their statistics.
    pub files_pruned: usize,
    /// Objects read.
    pub files: usize,
    pub row_groups_pruned: usize,
    /// Total size of the objects read.
    pub bytes: u64,
    /// Bytes actually fetched from storage (footers and needed column chunks).
    pub bytes_read: u64,
    pub rows_scanned: u64,
    /// Objects whose events came from the extraction cache, and objects extracted afresh.
    pub cache_hits: usize,
    pub cache_misses: usize,
    /// Objects skipped with `--skip-bad-files`, with the reason.
    pub bad_files: Vec<BadFile>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BadFile {
    pub key: String,
    pub reason: String,
}

/// How to scan: which rows matter, and what to do with a bad object.
pub struct ScanPlan<'a> {
    pub filter: &'a ScanFilter,
    /// Extraction cache; with it, objects are extracted whole (no tenant, time or row-group
    /// cut) so that every later run can reuse them, and the cut is applied afterwards.
    pub cache: Option<&'a Cache>,
    pub window: TimeWindow,
    pub skip_bad_files: bool,
    pub progress: &'a Progress,
    pub reader: Reader,
}

/// Objects fetched at once; bounds memory to this many (sparse) objects.
const IN_FLIGHT: usize = 8;

/// The threads that decode objects: twice the cores, because a decoder often waits (for its
/// object's fetch, or inside polars for its own workers) and the cores should not. Measured:
/// 2 threads 3.8–4.3 s, 4–8 threads 3.3–3.5 s on the 10 M-row benchmark (BENCHMARKS.md).
fn decoders() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(2 * cores)
            .thread_name(|i| format!("unredeemed-decode-{i}"))
            .build()
            .expect("a thread pool can be built")
    })
}

pub fn extract_archive(loc: &Location, listing: &Listing, plan: &ScanPlan) -> Result<Extracted> {
    let objects = &listing.objects;
    let mut m = ScanMetrics {
        files_listed: objects.len(),
        folders_pruned: listing.folders_pruned,
        ..Default::default()
    };
    // As in listing, folder dates prune on the `--since` side only (late events are filed
    // later); row-group statistics are exact `TimeGenerated` bounds and prune both sides.
    let folder_window = TimeWindow {
        since: plan.window.since,
        until: None,
    };
    let todo: Vec<&SourceObject> = objects
        .iter()
        .filter(|o| object_may_match(&o.key, &folder_window))
        .collect();
    m.files_pruned = objects.len() - todo.len();
    plan.progress
        .start(todo.len(), todo.iter().map(|o| o.size).sum());

    let mut frames: Vec<(usize, DataFrame)> = Vec::with_capacity(todo.len());
    let mut raws: Vec<(usize, crate::late::Raw)> = Vec::new();
    let mut cached: Vec<(&SourceObject, ObjectScan)> = Vec::new();
    let store = |cache: &Cache, obj: &SourceObject, entry: &ObjectScan| {
        if let Err(e) = cache.store(&loc.display, obj, entry) {
            plan.progress
                .warn(&format!("cannot cache `{}`: {e}", obj.key));
        }
    };
    let mut decode_time = std::time::Duration::ZERO;
    let mut max_time: Option<i64> = None;
    let mut tenant_rows: BTreeMap<String, u64> = BTreeMap::new();
    // With a cache, entries are whole objects: no row-group cut, no tenant or time filter.
    let whole = ScanFilter::default();
    let filter = if plan.cache.is_some() {
        &whole
    } else {
        plan.filter
    };
    let row_groups = if plan.cache.is_some() {
        None
    } else {
        Some(plan.window)
    };
    // A pipeline without barriers: a window of IN_FLIGHT fetches runs ahead, and each decoder
    // thread takes the next fetched object as soon as it is free. Results are folded in key
    // order afterwards (so the first bad object reported is the first in key order).
    // A cache hit, or the fetch under way.
    type Started = (Option<ObjectScan>, Option<JoinHandle<Result<Fetched>>>);
    // Its index in key order, the hit, or the fetched bytes.
    type Step = (usize, Option<ObjectScan>, Option<Result<Fetched>>);
    // Per object: what scanning it gave, bytes read, row groups pruned, time by phase.
    type Outcome = (Result<Option<Scan>>, u64, usize, std::time::Duration);
    struct Feed<'a> {
        todo: &'a [&'a SourceObject],
        next_spawn: usize,
        next_yield: usize,
        window: std::collections::VecDeque<Started>,
        /// Cache hits by index in `todo`, taken as the objects are started.
        hits: Vec<Option<ObjectScan>>,
    }
    // Cache entries are looked up first, all at once: a warm rerun is nothing but these.
    let hits: Vec<Option<ObjectScan>> = match plan.cache {
        Some(c) => {
            decoders().install(|| todo.par_iter().map(|o| c.load(&loc.display, o)).collect())
        }
        None => todo.iter().map(|_| None).collect(),
    };
    let failed = std::sync::atomic::AtomicBool::new(false);
    let feed = std::sync::Mutex::new(Feed {
        todo: &todo,
        next_spawn: 0,
        next_yield: 0,
        window: std::collections::VecDeque::new(),
        hits,
    });
    let start = |o: &SourceObject, hit: Option<ObjectScan>| -> Result<Started> {
        let fetch = match hit {
            Some(_) => None,
            None => {
                let (store, obj) = (loc.store.clone(), o.clone());
                Some(spawn(async move {
                    fetch_needed(store.as_ref(), &obj, &NEEDED, row_groups).await
                })?)
            }
        };
        Ok((hit, fetch))
    };
    // Each call hands out the next object in key order, its fetch awaited, and tops the
    // window up; `None` once all are handed out or after a fatal error.
    let next = || -> Option<Result<Step>> {
        let mut f = feed.lock().expect("the feed lock is never poisoned");
        if failed.load(std::sync::atomic::Ordering::Relaxed) || f.next_yield >= f.todo.len() {
            return None;
        }
        while f.next_spawn < f.todo.len() && f.window.len() < IN_FLIGHT {
            let o = f.todo[f.next_spawn];
            let i = f.next_spawn;
            let hit = f.hits[i].take();
            match start(o, hit) {
                Ok(w) => f.window.push_back(w),
                Err(e) => return Some(Err(e)),
            }
            f.next_spawn += 1;
        }
        let idx = f.next_yield;
        f.next_yield += 1;
        let (hit, handle) = f
            .window
            .pop_front()
            .expect("the window holds the next object");
        let obj = f.todo[idx];
        drop(f);
        let fetched = match handle {
            None => None,
            Some(h) => Some(match block_on(h) {
                Ok(joined) => joined.unwrap_or_else(|e| {
                    Err(Error::ObjectUnreadable {
                        object: obj.key.clone(),
                        reason: format!("fetch task failed: {e}"),
                    })
                }),
                Err(e) => return Some(Err(e)),
            }),
        };
        Some(Ok((idx, hit, fetched)))
    };
    let mut results: Vec<(usize, Outcome)> = decoders().install(|| {
        std::iter::from_fn(next)
            .par_bridge()
            .map(|step| -> Result<(usize, Outcome)> {
                let (idx, hit, f) = step?;
                let obj = todo[idx];
                let out = match (hit, f) {
                    (Some(entry), _) => (Ok(Some(Scan::Events(entry))), 0, 0, Default::default()),
                    (None, None) => unreachable!("a missed object is fetched"),
                    (None, Some(Err(e))) => (Err(e), 0, 0, Default::default()),
                    (None, Some(Ok(f))) if f.rows == Some((0, 0)) => (
                        Ok(None),
                        f.bytes_read,
                        f.row_groups_pruned,
                        Default::default(),
                    ),
                    (None, Some(Ok(f))) => {
                        let (read, pruned) = (f.bytes_read, f.row_groups_pruned);
                        match scan_object(&obj.key, f, filter, plan.reader) {
                            Ok((scan, spent)) => {
                                // Late-read objects are cached once their events are extracted.
                                if let (Some(cache), Scan::Events(entry)) = (plan.cache, &scan) {
                                    store(cache, obj, entry);
                                }
                                (Ok(Some(scan)), read, pruned, spent)
                            }
                            Err(e) => (Err(e), read, pruned, Default::default()),
                        }
                    }
                };
                let fatal = match &out.0 {
                    Err(
                        Error::CorruptObject { .. }
                        | Error::MissingColumn { .. }
                        | Error::WrongType { .. },
                    ) => !plan.skip_bad_files,
                    Err(_) => true,
                    Ok(_) => false,
                };
                if fatal {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                plan.progress.advance(obj.size);
                Ok((idx, out))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    results.sort_by_key(|r| r.0);
    {
        for (idx, (scan, read, pruned, took)) in results {
            decode_time += took;
            let obj = todo[idx];
            if plan.cache.is_some() {
                if read == 0 && scan.is_ok() {
                    m.cache_hits += 1;
                } else {
                    m.cache_misses += 1;
                }
            }
            m.bytes_read += read;
            m.row_groups_pruned += pruned;
            match scan {
                Ok(None) => {
                    m.files_pruned += 1;
                }
                Ok(Some(scan)) => {
                    let (rows, latest, per_tenant) = match &scan {
                        Scan::Events(e) => (e.rows, e.max_time, &e.tenant_rows),
                        Scan::Raw(r) => (r.rows, r.max_time, &r.tenant_rows),
                    };
                    m.files += 1;
                    m.bytes += obj.size;
                    m.rows_scanned += rows;
                    max_time = max_time.max(latest);
                    for (t, n) in per_tenant {
                        *tenant_rows.entry(t.clone()).or_default() += n;
                    }
                    plan.progress.rows(m.rows_scanned);
                    match scan {
                        Scan::Events(e) => frames.push((idx, e.events)),
                        Scan::Raw(r) => raws.push((idx, r)),
                    }
                }
                // Only the object's own fault: a store that stops answering (expired
                // credentials, throttling) must stop the run, not thin out its evidence.
                Err(
                    e @ (Error::CorruptObject { .. }
                    | Error::MissingColumn { .. }
                    | Error::WrongType { .. }),
                ) if plan.skip_bad_files => {
                    plan.progress.warn(&format!("skipping `{}`: {e}", obj.key));
                    m.bad_files.push(BadFile {
                        key: obj.key.clone(),
                        reason: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
    plan.progress.finish();
    // The late-read objects' candidate rows become events in one pass over all of them.
    let extracting = std::time::Instant::now();
    let extracted = extract_raws(&raws, filter)?;
    for ((idx, raw), events) in raws.into_iter().zip(extracted) {
        if plan.cache.is_some() {
            let entry = ObjectScan {
                events: events.clone(),
                rows: raw.rows,
                max_time: raw.max_time,
                tenant_rows: raw.tenant_rows,
            };
            cached.push((todo[idx], entry));
        }
        frames.push((idx, events));
    }
    if let Some(cache) = plan.cache {
        decoders().install(|| {
            cached
                .par_iter()
                .for_each(|(obj, entry)| store(cache, obj, entry))
        });
    }
    let extract_time = extracting.elapsed();
    // In key order, as the objects were listed (dedup keeps the first of equal deliveries).
    frames.sort_by_key(|(idx, _)| *idx);
    let frames: Vec<LazyFrame> = frames.into_iter().map(|(_, f)| f.lazy()).collect();
    let all = if frames.is_empty() {
        empty_events().lazy()
    } else {
        concat(frames, UnionArgs::default())?
    };
    let mut all = all.collect()?;
    if plan.cache.is_some() {
        all = apply_filter(all, plan.filter)?;
    }
    let before = all.height() as u64;
    let events = dedup(all.lazy()).collect()?;
    let duplicates_dropped = before - events.height() as u64;
    let unparseable_json = events
        .column(ev::BAD_JSON)?
        .as_materialized_series()
        .sum::<u64>()?;
    Ok(Extracted {
        events,
        metrics: m,
        max_time,
        tenant_rows,
        duplicates_dropped,
        unparseable_json,
        decode_time,
        extract_time,
    })
}

/// The tenant and time cut of a [`ScanFilter`], on already extracted events.
fn apply_filter(events: DataFrame, filter: &ScanFilter) -> Result<DataFrame> {
    let mut pred = lit(true);
    if let Some(since) = filter.since {
        pred = pred.and(col(ev::TIME).gt_eq(lit(since)));
    }
    if let Some(t) = tenant_predicate(&col(ev::TENANT), &filter.tenants) {
        pred = pred.and(t);
    }
    Ok(events.lazy().filter(pred).collect()?)
}

/// Deliveries repeat in archives: one event per (TenantId, Id), the earliest delivery kept.
/// Events without an `Id` cannot be matched to a twin and are all kept.
pub fn dedup(events: LazyFrame) -> LazyFrame {
    let sorted = events.sort_by_exprs(
        [col(ev::TIME), col(ev::TENANT), col(ev::ID)],
        SortMultipleOptions::default().with_maintain_order(true),
    );
    let with_id = sorted
        .clone()
        .filter(col(ev::ID).is_not_null())
        .unique_stable_generic(
            Some(vec![col(ev::TENANT), col(ev::ID)]),
            UniqueKeepStrategy::First,
        );
    let without_id = sorted.filter(col(ev::ID).is_null());
    concat([with_id, without_id], UnionArgs::default()).expect("same schema on both sides")
}

pub type ObjectScan = crate::cache::Entry;

/// How an object's rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Reader {
    #[default]
    /// The late-materialized reader where the layout allows, polars otherwise.
    Auto,
    /// polars' Parquet reader: every needed column decoded whole.
    Polars,
    /// The late-materialized reader only; an object it cannot read is an error (for tests).
    Late,
}

/// What scanning one object gives.
pub enum Scan {
    /// Its events (polars' reader, or the cache).
    Events(ObjectScan),
    /// Its candidate rows, raw (the late reader): see [`extract_raws`].
    Raw(crate::late::Raw),
}

/// Scans one fetched object into its candidate events (or rows) and row statistics; also
/// returns how long that took.
pub fn scan_object(
    key: &str,
    f: Fetched,
    filter: &ScanFilter,
    reader: Reader,
) -> Result<(Scan, std::time::Duration)> {
    let corrupt = |e: PolarsError| Error::CorruptObject {
        object: key.to_string(),
        reason: e.to_string(),
    };
    let started = std::time::Instant::now();
    if reader != Reader::Polars {
        if let Some(meta) = &f.meta {
            let scan = crate::late::scan(
                meta,
                f.groups.clone(),
                |r| f.range(r),
                filter.since,
                &filter.tenants,
            );
            match scan {
                Ok(raw) => return Ok((Scan::Raw(raw), started.elapsed())),
                Err(crate::late::Unsupported(why)) if reader == Reader::Late => {
                    return Err(Error::CorruptObject {
                        object: key.to_string(),
                        reason: format!("late reader: {why}"),
                    })
                }
                Err(_) => {}
            }
        }
    }
    let (bytes, rows) = (f.sparse(), f.rows);
    let args = ScanArgsParquet {
        glob: false,
        hive_options: HiveOptions::new_disabled(),
        ..Default::default()
    };
    let sources = ScanSources::Buffers(Arc::from(vec![Buffer::from(bytes)]));
    let mut lf = LazyFrame::scan_parquet_sources(sources, args).map_err(corrupt)?;
    if let Some((offset, len)) = rows {
        // Only the row groups that were fetched: the slice keeps polars out of the others.
        lf = lf.slice(offset as i64, len as IdxSize);
    }
    let schema = lf.clone().collect_schema().map_err(corrupt)?;
    let cols = Columns::resolve(key, &schema)?;

    // Pass 1: per-tenant row counts and latest time (three narrow columns).
    let stats = lf
        .clone()
        .group_by([cols.tenant.clone().alias(ev::TENANT)])
        .agg([len().alias("rows"), cols.time.clone().max().alias("max")])
        .collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single())
        .map_err(corrupt)?;
    let tenants = stats.column(ev::TENANT)?.str()?.clone();
    let rows = stats
        .column("rows")?
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    let rows = rows.u64()?;
    let maxes = stats.column("max")?.i64()?;
    let mut tenant_rows = Vec::with_capacity(stats.height());
    let mut total = 0u64;
    let mut max_time: Option<i64> = None;
    for i in 0..stats.height() {
        let n = rows.get(i).unwrap_or(0);
        total += n;
        max_time = max_time.max(maxes.get(i));
        tenant_rows.push((tenants.get(i).unwrap_or("").to_string(), n));
    }

    // Pass 2: the candidate rows, only the needed columns (nothing else was fetched).
    let raw = lf
        .select(NEEDED.map(col))
        .filter(predicate(&cols, filter))
        .collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single())
        .map_err(corrupt)?;
    let events = candidate_events(raw.lazy(), &cols, filter, None).map_err(corrupt)?;
    let events = compact(events)?;
    let scan = ObjectScan {
        events,
        rows: total,
        max_time,
        tenant_rows,
    };
    Ok((Scan::Events(scan), started.elapsed()))
}

/// Column carrying each candidate row's object through [`extract_raws`].
const OBJECT: &str = "_object";

/// The events of the late-read objects' candidate rows, one frame per object (in `raws`'
/// order), extracted in one pass over all of them: per object, the fixed cost of an
/// expression plan would outweigh its few dozen rows.
fn extract_raws(raws: &[(usize, crate::late::Raw)], filter: &ScanFilter) -> Result<Vec<DataFrame>> {
    if raws.is_empty() {
        return Ok(vec![]);
    }
    let tagged: Vec<LazyFrame> = raws
        .iter()
        .enumerate()
        .map(|(i, (_, r))| {
            r.frame
                .clone()
                .lazy()
                .with_column(lit(i as u32).cast(DataType::UInt32).alias(OBJECT))
        })
        .collect();
    let all = concat(tagged, UnionArgs::default())?.collect()?;
    let cols = Columns::resolve("(candidate rows)", all.schema())?;
    let events = compact(candidate_events(all.lazy(), &cols, filter, Some(OBJECT))?)?;
    // Rows keep their order through the filter: each object's events are one run.
    let tags: Vec<u32> = events.column(OBJECT)?.u32()?.into_no_null_iter().collect();
    let events = events.drop(OBJECT)?;
    let mut out = Vec::with_capacity(raws.len());
    let mut start = 0;
    for i in 0..raws.len() as u32 {
        let len = tags[start..].iter().take_while(|&&t| t == i).count();
        out.push(events.slice(start as i64, len));
        start += len;
    }
    if start != tags.len() {
        return Err(Error::Polars(PolarsError::ComputeError(
            "candidate rows out of object order".into(),
        )));
    }
    Ok(out)
}

/// The rows that are invite or redeem candidates, within the tenant and time cut.
fn predicate(cols: &Columns, filter: &ScanFilter) -> Expr {
    // KQL `=~` as anchored case-insensitive regexes: lower-casing every row would build a new
    // string per row; the regex engine scans the originals.
    let mut pred = cols
        .category
        .clone()
        .str()
        .contains(lit(format!("(?i)^{CATEGORY}$")), true)
        .and(
            cols.operation
                .clone()
                .str()
                .contains(lit(format!("(?i)^(?:{INVITE_OP}|{REDEEM_OP})$")), true),
        );
    if let Some(since) = filter.since {
        pred = pred.and(cols.time.clone().gt_eq(lit(since)));
    }
    if let Some(t) = tenant_predicate(&cols.tenant, &filter.tenants) {
        pred = pred.and(t);
    }
    pred
}

/// The events of the candidate rows `raw` (already cut by [`predicate`] or a superset of it:
/// the predicate is applied again), JSON parsed only for those rows.
fn candidate_events(
    raw: LazyFrame,
    cols: &Columns,
    filter: &ScanFilter,
    keep: Option<&str>,
) -> PolarsResult<DataFrame> {
    let op = cols.operation.clone().str().to_lowercase();
    // `InitiatedBy` is read for invites only: no rule looks at a redeem's initiator, and the
    // late reader then never decompresses the pages that hold only redeems.
    let is_invite = op.eq(lit(INVITE_OP));
    let invite_only = |e: Expr, none: Expr| when(is_invite.clone()).then(e).otherwise(none);
    let mut exprs = vec![
        cols.tenant.clone().alias(ev::TENANT),
        cols.id.clone().alias(ev::ID),
        cols.time.clone().alias(ev::TIME),
        is_invite.clone().alias(ev::IS_INVITE),
        cols.result
            .clone()
            .str()
            .to_lowercase()
            .eq(lit("success"))
            .fill_null(lit(false))
            .alias(ev::RESULT_OK),
        cols.targets
            .field(&[Step::Index0, Step::Key("userPrincipalName")])
            .alias(ev::TR_UPN),
        cols.targets
            .field(&[Step::Index0, Step::Key("displayName")])
            .alias(ev::TR_DISPLAY),
        invite_only(
            cols.initiated
                .field(&[Step::Key("user"), Step::Key("userPrincipalName")]),
            null_string(),
        )
        .alias(ev::INIT_UPN),
        invite_only(
            cols.initiated
                .field(&[Step::Key("user"), Step::Key("ipAddress")]),
            null_string(),
        )
        .alias(ev::INIT_IP),
        (cols.targets.bad_json() + invite_only(cols.initiated.bad_json(), lit(0u32)))
            .alias(ev::BAD_JSON),
    ];
    exprs.extend(keep.map(col));
    raw.filter(predicate(cols, filter))
        .select(exprs)
        // A few thousand rows: the streaming engine's set-up would cost more than the work.
        .collect_with_engine(Engine::InMemory)
        .map(|r| r.unwrap_single())
}

/// Copies the string columns into buffers of their own. Decoded strings are views into the
/// object's decompressed pages, so a filtered frame of a few rows would otherwise keep those
/// megabytes alive until the end of the scan: memory would grow with the archive.
fn compact(df: DataFrame) -> Result<DataFrame> {
    let columns = df
        .columns()
        .iter()
        .map(|c| -> Result<Column> {
            Ok(match c.dtype() {
                DataType::String => {
                    let fresh: StringChunked = c.str()?.iter().collect();
                    fresh.with_name(c.name().clone()).into_column()
                }
                _ => c.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DataFrame::new(df.height(), columns)?)
}

fn tenant_predicate(tenant: &Expr, tenants: &[String]) -> Option<Expr> {
    tenants
        .iter()
        .map(|t| tenant.clone().eq(lit(t.as_str())))
        .reduce(|a, b| a.or(b))
}

/// The event frame with no rows (an archive whose objects hold no guest events).
pub fn empty_events() -> DataFrame {
    let s = |n: &str| Column::new_empty(n.into(), &DataType::String);
    DataFrame::new_infer_height(vec![
        s(ev::TENANT),
        s(ev::ID),
        Column::new_empty(ev::TIME.into(), &DataType::Int64),
        Column::new_empty(ev::IS_INVITE.into(), &DataType::Boolean),
        Column::new_empty(ev::RESULT_OK.into(), &DataType::Boolean),
        s(ev::TR_UPN),
        s(ev::TR_DISPLAY),
        s(ev::INIT_UPN),
        s(ev::INIT_IP),
        Column::new_empty(ev::BAD_JSON.into(), &DataType::UInt32),
    ])
    .expect("columns of equal length")
}

/// One step into a dynamic value: `[0]` or `.key`.
#[derive(Clone, Copy)]
enum Step {
    Index0,
    Key(&'static str),
}

/// A dynamic column (`TargetResources`, `InitiatedBy`) in whichever layout this object has.
enum Dynamic {
    Json(Expr),
    Nested(Expr, DataType),
    Absent,
}

impl Dynamic {
    /// The value at `path` as a string (null when any step is missing), like KQL's
    /// `tostring(col[0].["key"])` before its null-to-"" conversion.
    fn field(&self, path: &[Step]) -> Expr {
        match self {
            Dynamic::Json(e) => {
                let mut p = String::from("$");
                for step in path {
                    match step {
                        Step::Index0 => p.push_str("[0]"),
                        Step::Key(k) => {
                            p.push('.');
                            p.push_str(k);
                        }
                    }
                }
                e.clone().str().json_path_match(lit(p))
            }
            Dynamic::Nested(e, dtype) => nested_field(e.clone(), dtype, path),
            Dynamic::Absent => null_string(),
        }
    }

    /// 1 where the value is JSON text that does not parse, else 0.
    fn bad_json(&self) -> Expr {
        match self {
            Dynamic::Json(e) => {
                let text = e.clone().str().strip_chars(lit(NULL));
                (text
                    .clone()
                    .is_not_null()
                    .and(text.clone().neq(lit("")))
                    .and(text.clone().neq(lit("null")))
                    .and(text.str().json_path_match(lit("$")).is_null()))
                .cast(DataType::UInt32)
            }
            _ => lit(0u32),
        }
    }
}

fn null_string() -> Expr {
    lit(NULL).cast(DataType::String)
}

fn nested_field(mut e: Expr, dtype: &DataType, path: &[Step]) -> Expr {
    let mut dtype = dtype.clone();
    for step in path {
        match (step, &dtype) {
            (Step::Index0, DataType::List(inner)) => {
                e = e.list().get(lit(0i64), true);
                dtype = (**inner).clone();
            }
            (Step::Key(k), DataType::Struct(fields)) => {
                match fields.iter().find(|f| f.name().as_str() == *k) {
                    Some(f) => {
                        e = e.struct_().field_by_name(k);
                        dtype = f.dtype().clone();
                    }
                    None => return null_string(),
                }
            }
            _ => return null_string(),
        }
    }
    match dtype {
        DataType::String => e,
        d if d.is_primitive() || d.is_bool() => e.cast(DataType::String),
        _ => null_string(),
    }
}

/// The needed columns of one object, checked and normalised to expressions.
struct Columns {
    tenant: Expr,
    id: Expr,
    time: Expr,
    category: Expr,
    operation: Expr,
    result: Expr,
    targets: Dynamic,
    initiated: Dynamic,
}

impl Columns {
    fn resolve(object: &str, schema: &Schema) -> Result<Self> {
        let get = |name: &str| -> Result<&DataType> {
            schema.get(name).ok_or_else(|| Error::MissingColumn {
                object: object.to_string(),
                column: name.to_string(),
                needed: NEEDED.join(", "),
            })
        };
        let wrong = |name: &str, found: &DataType, expected: &str| Error::WrongType {
            object: object.to_string(),
            column: name.to_string(),
            found: found.to_string(),
            expected: expected.to_string(),
        };
        let string = |name: &str| -> Result<Expr> {
            match get(name)? {
                DataType::String => Ok(col(name)),
                DataType::Null => Ok(null_string()),
                d if d.is_categorical() || d.is_enum() => Ok(col(name).cast(DataType::String)),
                d => Err(wrong(name, d, "string")),
            }
        };
        let dynamic = |name: &str, nested_ok: fn(&DataType) -> bool| -> Result<Dynamic> {
            match get(name)? {
                DataType::String => Ok(Dynamic::Json(col(name))),
                DataType::Null => Ok(Dynamic::Absent),
                d if nested_ok(d) => Ok(Dynamic::Nested(col(name), d.clone())),
                d => Err(wrong(name, d, "JSON string or nested list/struct")),
            }
        };
        let time = match get("TimeGenerated")? {
            // The physical value of a zoned datetime is already UTC; a naive one is taken as UTC.
            DataType::Datetime(_, _) => col("TimeGenerated").dt().timestamp(TimeUnit::Nanoseconds),
            d => return Err(wrong("TimeGenerated", d, "timestamp")),
        };
        Ok(Columns {
            tenant: string("TenantId")?.fill_null(lit("")),
            id: string("Id")?,
            time,
            category: string("Category")?,
            operation: string("OperationName")?,
            result: string("Result")?,
            targets: dynamic("TargetResources", |d| matches!(d, DataType::List(_)))?,
            initiated: dynamic("InitiatedBy", |d| matches!(d, DataType::Struct(_)))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_the_earliest_delivery_per_tenant_and_id() {
        let mut df = empty_events();
        let rows = df!(
            ev::TENANT => ["a", "a", "b", "a", "a"],
            ev::ID => [Some("x"), Some("x"), Some("x"), None, None],
            ev::TIME => [20i64, 10, 30, 5, 5],
            ev::IS_INVITE => [true; 5],
            ev::RESULT_OK => [true; 5],
            ev::TR_UPN => ["late", "early", "other", "n1", "n2"],
            ev::TR_DISPLAY => [None::<&str>; 5],
            ev::INIT_UPN => ["i"; 5],
            ev::INIT_IP => ["ip"; 5],
            ev::BAD_JSON => [0u32; 5],
        )
        .unwrap();
        df.vstack_mut(&rows).unwrap();
        let out = dedup(df.lazy()).collect().unwrap();
        let mut upns: Vec<&str> = out
            .column(ev::TR_UPN)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect();
        upns.sort();
        // Same Id in another tenant is another event; events without an Id are all kept.
        assert_eq!(upns, ["early", "n1", "n2", "other"]);
    }
}
