//! The scan of a whole archive: every listed object, through the cache where it holds the
//! object, else fetched and read (`schedule`), folded in key order into one deduplicated event
//! frame and the metrics of what was read.

// `todo[i]`: every index here is one `schedule::run` handed out for `todo`.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use polars::prelude::*;
use polars_parquet::parquet::metadata::FileMetadata;

use super::cache::{Cache, Entry, Loaded, Slice};
use super::events::{by_object, dedup, extract_raws, infer_entra, OBJECT};
use super::json::{self, Quality as JsonQuality};
use super::object::{scan_object, Reader, Scan};
use super::pruned::{self, Pruned};
use super::raw::{Raw, Tagged};
use super::schedule;
use super::scope::Scope;
use super::statistics;
use crate::archive::{
    fetch_needed, fetch_whole, is_json_key, ArchiveObject, Fetched, Got, Listing, Location,
    ReadAhead,
};
use crate::error::{guarded, Error, Result};
use crate::progress::Progress;
use crate::rule::columns::{empty_events, ev};

/// Everything the later stages need from one pass over the archive.
#[derive(Debug)]
pub struct Extracted {
    /// Deduplicated candidate events (see `rule::columns::ev`).
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
    pub decode_time: Duration,
    /// Wall time of the one event-extraction pass over the late-read objects' candidate rows.
    pub extract_time: Duration,
    /// With a cache: the entries extracted afresh (identity, entry), in key order.
    pub(crate) fresh: Vec<(String, Entry)>,
    /// How far the fetches ran ahead, and what the store throttled.
    pub(crate) paced: schedule::Paced,
}

/// What the scan touched, for `summary.json` (in this order there).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScanMetrics {
    /// Objects read.
    pub files: usize,
    pub files_listed: usize,
    /// Objects skipped whole: all their row groups out of the window, by their statistics.
    pub files_pruned: usize,
    /// Date folders not even listed: outside the window.
    pub folders_pruned: usize,
    pub row_groups_pruned: usize,
    /// Total size of the objects read.
    pub bytes: u64,
    /// Bytes actually fetched from storage (footers and needed column chunks).
    pub bytes_read: u64,
    pub rows_scanned: u64,
    /// Objects skipped with `--skip-bad-files`, with the reason.
    pub bad_files: Vec<BadFile>,
    /// JSON objects with lines that could not be read, with their counts.
    pub bad_lines: Vec<BadLines>,
    /// What pruned each folder and object that contributed nothing (or, by row-group
    /// statistics, less), by key.
    pub pruned: Vec<Pruned>,
    /// Objects whose events came from the extraction cache, and objects extracted afresh.
    pub cache_hits: usize,
    pub cache_misses: usize,
    /// Cache segments read (a warm run reads a handful, however many objects).
    pub cache_segments: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BadFile {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BadLines {
    pub key: String,
    #[serde(flatten)]
    pub quality: JsonQuality,
}

/// How to scan: what is in scope, where the cache is, and what to do with a bad object.
pub(crate) struct ScanPlan<'a> {
    pub(crate) scope: &'a Scope,
    /// The cache and the segments read from it.
    pub(crate) cache: Option<(&'a Cache, &'a Loaded)>,
    pub(crate) skip_bad_files: bool,
    pub(crate) progress: &'a Progress,
    pub(crate) reader: Reader,
}

/// What became of one object.
struct Outcome {
    scan: Result<Option<Scan>>,
    /// Its events came from the cache.
    cached: bool,
    bytes_read: u64,
    row_groups_pruned: usize,
    /// What pruned the object, or some of its row groups.
    pruned: Option<Pruned>,
    decode_time: Duration,
}

impl Outcome {
    fn hit(entry: Entry) -> Self {
        Outcome {
            scan: Ok(Some(Scan::Events(entry))),
            cached: true,
            bytes_read: 0,
            row_groups_pruned: 0,
            pruned: None,
            decode_time: Duration::ZERO,
        }
    }

    fn failed(e: Error) -> Self {
        Outcome {
            scan: Err(e),
            cached: false,
            bytes_read: 0,
            row_groups_pruned: 0,
            pruned: None,
            decode_time: Duration::ZERO,
        }
    }
}

/// Scans every listed object into events.
pub(crate) fn scan_archive(
    loc: &Location,
    listing: &Listing,
    plan: &ScanPlan,
) -> Result<Extracted> {
    let todo: Vec<&ArchiveObject> = listing.objects.iter().collect();
    // Cache entries hold whole objects, so that every run can share them: with a cache the
    // objects are read with no cut at all, and the run's scope is applied to their events.
    let extract = match plan.cache {
        Some(_) => Scope::everything(),
        None => plan.scope.clone(),
    };
    plan.progress
        .start(todo.len(), todo.iter().map(|o| o.size).sum());
    let hits = lookup(&todo, plan);
    let mut fold = Fold::new(listing, &todo, &extract);
    // Hits are folded here, as they are: a warm run hands nothing to the fetch pipeline.
    let missed: Vec<(usize, &ArchiveObject)> = todo
        .iter()
        .enumerate()
        .filter(|(i, _)| !hits.contains_key(i))
        .map(|(i, o)| (i, *o))
        .collect();
    for (i, entry) in hits {
        fold.add(i, Outcome::hit(entry), plan);
        plan.progress.advance(todo[i].size);
    }
    let paced = read_objects(loc, &todo, &missed, &extract, plan, |i, outcome| {
        fold.add(i, outcome, plan);
    })?;
    fold.extract_late(todo.len());
    if let Some((_, e)) = fold.failed {
        return Err(e);
    }
    fold.m.pruned.sort_by(|a, b| a.key.cmp(&b.key));
    fold.m.bad_files.sort_by(|a, b| a.key.cmp(&b.key));
    fold.m.bad_lines.sort_by(|a, b| a.key.cmp(&b.key));
    plan.progress.finish();
    let (frames, mut fresh) = (fold.frames, fold.fresh);
    let extracting = std::time::Instant::now();
    let late = stack(fold.late_events)?;
    if plan.cache.is_some() {
        fresh.extend(late_entries(fold.late_stats, late.as_ref())?);
    }
    fresh.sort_by_key(|(i, _)| *i);
    let fresh = match plan.cache {
        Some((cache, _)) => fresh
            .into_iter()
            .map(|(i, e)| (cache.identity(todo[i]), e))
            .collect(),
        None => Vec::new(),
    };
    let extract_time = fold.extract_time + extracting.elapsed();
    let events = combine(frames, late, plan.cache.is_some().then_some(plan.scope))?;
    Ok(Extracted {
        duplicates_dropped: events.1,
        unparseable_json: events
            .0
            .column(ev::BAD_JSON)?
            .as_materialized_series()
            .sum::<u64>()?,
        events: events.0,
        metrics: fold.m,
        max_time: fold.max_time,
        tenant_rows: fold.tenant_rows,
        decode_time: fold.decode_time,
        extract_time,
        fresh,
        paced,
    })
}

/// Cache entries are looked up first, all at once: a warm rerun is nothing but these. By
/// index, the hits only.
fn lookup(todo: &[&ArchiveObject], plan: &ScanPlan) -> BTreeMap<usize, Entry> {
    match plan.cache {
        Some((cache, loaded)) => todo
            .iter()
            .enumerate()
            .filter_map(|(i, o)| Some((i, loaded.get(&cache.identity(o))?.clone())))
            .collect(),
        None => BTreeMap::new(),
    }
}

/// Fetches and reads every object that missed the cache (`missed`: index in `todo`, object);
/// every outcome goes to `absorb` with its index as it comes (in no particular order).
fn read_objects(
    loc: &Location,
    todo: &[&ArchiveObject],
    missed: &[(usize, &ArchiveObject)],
    extract: &Scope,
    plan: &ScanPlan,
    absorb: impl FnMut(usize, Outcome) + Send,
) -> Result<schedule::Paced> {
    if missed.is_empty() {
        return Ok(schedule::Paced::default());
    }
    let store = loc.objects();
    let cut = Arc::new(extract.clone());
    let remote = loc.remote;
    let fetch = move |obj: ArchiveObject| {
        let (store, cut) = (store.clone(), cut.clone());
        async move {
            // Statistics are checked before they prune, whether or not this run prunes: an
            // object is damaged or not whatever the window.
            let keep = |meta: &FileMetadata, rg| {
                statistics::check(meta, rg).map_err(|why| Error::corrupt(&obj.key, why))?;
                Ok(cut.row_group_may_hold(meta, rg))
            };
            if is_json_key(&obj.key) {
                return fetch_whole(store.as_ref(), &obj).await.map(Got::Json);
            }
            fetch_needed(store.as_ref(), &obj, remote, cut.read_columns(), keep)
                .await
                .map(|f| Got::Parquet(Box::new(f)))
        }
    };
    let decode = |i: usize, got: Result<Got>| {
        let obj = todo[i];
        let outcome = match got {
            Err(e) => Outcome::failed(e),
            Ok(Got::Parquet(f)) => read_fetched(obj, *f, extract, plan),
            Ok(Got::Json(bytes)) => read_json(obj, &bytes, extract),
        };
        let fatal = match &outcome.scan {
            Err(e) if e.is_bad_object() => !plan.skip_bad_files,
            Err(_) => true,
            Ok(_) => false,
        };
        plan.progress.advance(obj.size);
        (outcome, fatal)
    };
    schedule::run(
        loc.remote,
        ReadAhead::of(loc),
        missed,
        fetch,
        decode,
        absorb,
    )
}

/// Reads one fetched object.
fn read_fetched(obj: &ArchiveObject, f: Fetched, extract: &Scope, plan: &ScanPlan) -> Outcome {
    let (bytes_read, row_groups_pruned) = (f.bytes_read, f.row_groups_pruned);
    let mut outcome = Outcome {
        scan: Ok(None),
        cached: false,
        bytes_read,
        row_groups_pruned,
        pruned: pruned::object(&obj.key, &f, extract),
        decode_time: Duration::ZERO,
    };
    if f.is_empty() {
        return outcome;
    }
    match guarded(&obj.key, || scan_object(&obj.key, f, extract, plan.reader)) {
        Ok((scan, spent)) => {
            outcome.scan = Ok(Some(scan));
            outcome.decode_time = spent;
        }
        Err(e) => outcome.scan = Err(e),
    }
    outcome
}

/// Reads one JSON object, fetched whole.
fn read_json(obj: &ArchiveObject, bytes: &[u8], extract: &Scope) -> Outcome {
    let started = std::time::Instant::now();
    let scan = guarded(&obj.key, || json::scan(&obj.key, bytes, extract));
    Outcome {
        scan: scan.map(|raw| Some(Scan::Raw(Box::new(raw)))),
        cached: false,
        bytes_read: bytes.len() as u64,
        row_groups_pruned: 0,
        pruned: None,
        decode_time: started.elapsed(),
    }
}

/// The outcomes folded as they come: metrics, row statistics, and the events or candidate
/// rows of each object read. Nothing that depends on their order: lists are sorted by key at
/// the end, and of the fatal failures the first in key order is the one reported.
struct Fold<'a> {
    todo: &'a [&'a ArchiveObject],
    /// What the late-read objects' events are extracted with.
    extract: &'a Scope,
    m: ScanMetrics,
    max_time: Option<i64>,
    tenant_rows: BTreeMap<String, u64>,
    decode_time: Duration,
    frames: Vec<Framed>,
    /// The late-read objects' candidate rows not yet extracted.
    late: Tagged,
    /// The late-read objects' events, extracted from their candidate rows a batch at a time.
    late_events: Vec<DataFrame>,
    extract_time: Duration,
    /// With a cache: the late-read objects' statistics, for their entries.
    late_stats: Vec<(usize, Stats)>,
    /// Objects read by polars' reader, as cache entries.
    fresh: Vec<(usize, Entry)>,
    /// The first fatal failure in key order.
    failed: Option<(usize, Error)>,
}

/// One late-read object's row statistics.
struct Stats {
    rows: u64,
    max_time: Option<i64>,
    tenant_rows: Vec<(String, u64)>,
}

/// Candidate text extracted at a time: the raw rows held stay bounded however long the
/// history, and each batch is large enough that its fixed cost does not count. Tests set
/// `UNREDEEMED_EXTRACT_BATCH` (bytes) to extract every object alone.
fn late_batch() -> usize {
    static BATCH: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BATCH.get_or_init(|| {
        std::env::var("UNREDEEMED_EXTRACT_BATCH")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(4 << 20)
    })
}

impl<'a> Fold<'a> {
    fn new(listing: &Listing, todo: &'a [&'a ArchiveObject], extract: &'a Scope) -> Self {
        Fold {
            todo,
            extract,
            m: ScanMetrics {
                files_listed: listing.objects.len(),
                folders_pruned: listing.folders_pruned,
                pruned: pruned::listed(listing),
                ..Default::default()
            },
            max_time: None,
            tenant_rows: BTreeMap::new(),
            decode_time: Duration::ZERO,
            frames: Vec::new(),
            late: Tagged::default(),
            late_events: Vec::new(),
            extract_time: Duration::ZERO,
            late_stats: Vec::new(),
            fresh: Vec::new(),
            failed: None,
        }
    }

    fn add(&mut self, i: usize, o: Outcome, plan: &ScanPlan) {
        let obj = self.todo[i];
        let m = &mut self.m;
        self.decode_time += o.decode_time;
        if plan.cache.is_some() {
            if o.cached {
                m.cache_hits += 1;
            } else {
                m.cache_misses += 1;
            }
        }
        m.bytes_read += o.bytes_read;
        m.row_groups_pruned += o.row_groups_pruned;
        m.pruned.extend(o.pruned);
        match o.scan {
            Ok(None) => {
                m.files_pruned += 1;
                // An object with no row group: cached as empty, so it is not read again.
                if plan.cache.is_some() {
                    self.fresh.push((i, Entry::empty()));
                }
            }
            Ok(Some(scan)) => self.read(obj, i, scan, o.cached, plan),
            // Only the object's own fault: a store that stops answering (expired credentials,
            // throttling) must stop the run, not thin out its evidence.
            Err(e) if e.is_bad_object() && plan.skip_bad_files => {
                // Store errors can quote request URLs: secrets masked, as in the final error.
                let reason = crate::archive::redact(&e.chain());
                plan.progress
                    .warn(&format!("skipping `{}`: {reason}", obj.key));
                m.bad_files.push(BadFile {
                    key: obj.key.clone(),
                    reason,
                });
            }
            Err(e) => self.fail(i, e),
        }
    }

    fn fail(&mut self, i: usize, e: Error) {
        if self.failed.as_ref().is_none_or(|(at, _)| i < *at) {
            self.failed = Some((i, e));
        }
    }

    /// The candidate rows held become events. A failure is reported as object `at`'s, the
    /// last one in (the object whose rows fail is named in the error).
    fn extract_late(&mut self, at: usize) {
        if self.late.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        match extract_late(self.todo, std::mem::take(&mut self.late), self.extract) {
            Ok(events) => self.late_events.extend(events),
            Err(e) => self.fail(at, e),
        }
        self.extract_time += started.elapsed();
    }

    /// Folds an object read (or found in the cache).
    fn read(&mut self, obj: &ArchiveObject, i: usize, scan: Scan, cached: bool, plan: &ScanPlan) {
        let m = &mut self.m;
        let (rows, latest, per_tenant) = scan.stats();
        m.files += 1;
        m.bytes += obj.size;
        m.rows_scanned += rows;
        self.max_time = self.max_time.max(latest);
        for (t, n) in per_tenant {
            *self.tenant_rows.entry(t.clone()).or_default() += n;
        }
        plan.progress.rows(m.rows_scanned);
        match scan {
            Scan::Events(e) => {
                if plan.cache.is_some() && !cached {
                    self.fresh.push((i, e.clone()));
                }
                if e.events.height() > 0 {
                    self.frames.push((i, e.events, e.from));
                }
            }
            Scan::Raw(r) => {
                let Raw {
                    candidates,
                    rows,
                    max_time,
                    tenant_rows,
                    quality,
                } = *r;
                let clean = quality.as_ref().is_none_or(|q| q.is_clean());
                if let Some(quality) = quality.filter(|_| !clean) {
                    m.bad_lines.push(BadLines {
                        key: obj.key.clone(),
                        quality,
                    });
                }
                // Tags are indexes into the listing, which `extract_late` checks fit.
                self.late
                    .add(u32::try_from(i).unwrap_or(u32::MAX), candidates);
                if self.late.text() >= late_batch() {
                    self.extract_late(i);
                }
                // An object with lines that could not be read gets no entry: every run reads
                // and reports it again (a growing blob's last line is complete by then).
                if plan.cache.is_some() && clean {
                    let stats = Stats {
                        rows,
                        max_time,
                        tenant_rows,
                    };
                    self.late_stats.push((i, stats));
                }
            }
        }
    }
}

/// The late-read objects' events in one frame tagged with their objects ([`extract_raws`]).
/// Rows the late reader checked should not fail here; if they do, the object whose rows fail is
/// named, and the run stops (`--skip-bad-files` does not apply: the object was read).
fn extract_late(
    todo: &[&ArchiveObject],
    raws: Tagged,
    extract: &Scope,
) -> Result<Option<DataFrame>> {
    if u32::try_from(todo.len()).is_err() {
        return Err(Error::Internal("over 2^32 objects".into()));
    }
    if raws.is_empty() {
        return Ok(None);
    }
    let all = raws.frame(OBJECT)?;
    guarded("(the late-read objects)", || extract_raws(&all, extract)).or_else(|e| {
        for (i, one) in by_object(&all)? {
            guarded(&todo[i as usize].key, || extract_raws(&one, extract))?;
        }
        Err(e)
    })
}

/// The batches of events as one frame (each object's rows are in one batch).
fn stack(batches: Vec<DataFrame>) -> Result<Option<DataFrame>> {
    let mut batches = batches.into_iter();
    let Some(mut all) = batches.next() else {
        return Ok(None);
    };
    for b in batches {
        all.vstack_mut_owned(b)?;
    }
    Ok(Some(all))
}

/// Cache entries of the late-read objects: each one's events and statistics.
fn late_entries(
    stats: Vec<(usize, Stats)>,
    late: Option<&DataFrame>,
) -> Result<Vec<(usize, Entry)>> {
    let mut events: BTreeMap<usize, DataFrame> = match late {
        Some(l) => by_object(l)?
            .into_iter()
            .map(|(i, e)| Ok((i as usize, e.drop(OBJECT)?)))
            .collect::<Result<_>>()?,
        None => BTreeMap::new(),
    };
    Ok(stats
        .into_iter()
        .map(|(i, s)| {
            let entry = Entry {
                events: events.remove(&i).unwrap_or_else(empty_events),
                rows: s.rows,
                max_time: s.max_time,
                tenant_rows: s.tenant_rows,
                from: None,
            };
            (i, entry)
        })
        .collect())
}

/// The objects' events in key order (dedup keeps the first of equal deliveries), cut to
/// `scope` when they were read whole, deduplicated; and how many duplicates were dropped.
/// `late` holds the late-read objects' events, tagged with their objects; `frames` the others'.
fn combine(
    mut frames: Vec<Framed>,
    late: Option<DataFrame>,
    scope: Option<&Scope>,
) -> Result<(DataFrame, u64)> {
    // Objects without events add nothing: an archive of hourly blobs has tens of thousands.
    frames.retain(|(_, f, _)| f.height() > 0);
    frames.sort_by_key(|(i, _, _)| *i);
    let frames = merge_runs(frames);
    // Stacked as they are (a lazy union of thousands of frames was most of a warm run), each
    // tagged with its object only when the late-read objects' rows must be sorted in among them.
    let interleave = late.is_some() && !frames.is_empty();
    let mut all: Option<DataFrame> = None;
    for (i, mut f) in frames {
        if interleave {
            let tag = UInt32Chunked::full(OBJECT.into(), i as u32, f.height());
            f.with_column(tag.into_column())?;
        }
        stack_below(&mut all, f)?;
    }
    if let Some(mut late) = late {
        if !interleave {
            late.drop_in_place(OBJECT)?;
        }
        stack_below(&mut all, late)?;
    }
    let all = match all {
        None => empty_events(),
        // Back in key order, each object's rows in theirs.
        Some(all) if interleave => all
            .lazy()
            .sort_by_exprs(
                [col(OBJECT)],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .drop(cols([OBJECT]))
            .collect()?,
        Some(mut all) => {
            all.rechunk_mut_par();
            all
        }
    };
    let all = match scope {
        Some(scope) => scope.cut(all.lazy()).collect()?,
        None => all,
    };
    let all = infer_entra(all)?;
    let before = all.height() as u64;
    let events = dedup(all)?;
    let dropped = before - events.height() as u64;
    Ok((events, dropped))
}

/// An object's events (by its index in the listing), and where they lie in a cache segment.
type Framed = (usize, DataFrame, Option<Slice>);

/// `frames` (in key order) with each run of consecutive objects whose events lie one after the
/// other in one segment as one slice of it: a warm rerun's hits are a compacted segment's
/// entries in key order, and stacking hundreds of slices, then copying them into one, was a
/// tenth of the rerun. A merged run keeps its first object's index.
fn merge_runs(frames: Vec<Framed>) -> Vec<(usize, DataFrame)> {
    /// A run: its first object and frame, the slice it starts at, its last object and end.
    struct Run {
        first: usize,
        frame: DataFrame,
        from: Option<Slice>,
        last: usize,
        end: usize,
        merged: bool,
    }
    impl Run {
        /// The run's events: its one frame, or the slice of the segment it spans (sliced once,
        /// at its end: a slice of every column per object was the cost this saves).
        fn done(self) -> (usize, DataFrame) {
            match (self.merged, self.from) {
                (true, Some(s)) => (
                    self.first,
                    s.segment.slice(s.offset as i64, self.end - s.offset),
                ),
                _ => (self.first, self.frame),
            }
        }
    }
    let mut out = Vec::with_capacity(frames.len());
    let mut run: Option<Run> = None;
    for (i, f, from) in frames {
        let len = f.height();
        if let (Some(r), Some(s)) = (run.as_mut(), &from) {
            let same = r.from.as_ref().is_some_and(|first| first.id == s.id);
            if r.last + 1 == i && same && s.offset == r.end {
                r.last = i;
                r.end += len;
                r.merged = true;
                continue;
            }
        }
        out.extend(run.take().map(Run::done));
        let end = from.as_ref().map_or(0, |s| s.offset + len);
        run = Some(Run {
            first: i,
            frame: f,
            from,
            last: i,
            end,
            merged: false,
        });
    }
    out.extend(run.map(Run::done));
    out
}

/// `f` below the frames stacked so far (its columns in their order).
fn stack_below(all: &mut Option<DataFrame>, f: DataFrame) -> Result<()> {
    match all {
        Some(a) => {
            let f = match f.get_column_names() == a.get_column_names() {
                true => f,
                false => f.select(a.get_column_names_owned())?,
            };
            a.vstack_mut_owned(f)?;
        }
        None => *all = Some(f),
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The values of column `n` of each frame.
    fn values(frames: &[(usize, DataFrame)]) -> Vec<(usize, Vec<i64>)> {
        frames
            .iter()
            .map(|(i, f)| {
                let v = f.column("n").unwrap().i64().unwrap();
                (*i, v.into_no_null_iter().collect())
            })
            .collect()
    }

    #[test]
    fn runs_of_one_segment_become_one_slice_and_nothing_else_does() {
        let segment = df!("n" => [0i64, 1, 2, 3, 4, 5, 6]).unwrap();
        let other = df!("n" => [10i64, 11, 12, 13, 14, 15, 16]).unwrap();
        let at = |i: usize, seg: &DataFrame, id: usize, offset: usize, len: usize| -> Framed {
            let from = Slice {
                id,
                offset,
                segment: seg.clone(),
            };
            (i, seg.slice(offset as i64, len), Some(from))
        };
        let fresh = (6, df!("n" => [20i64]).unwrap(), None);
        let frames = vec![
            at(0, &segment, 1, 0, 2),
            at(1, &segment, 1, 2, 1),
            // Object 2 has no events; 3 follows 1 in the segment but not in the listing.
            at(3, &segment, 1, 3, 1),
            at(4, &segment, 1, 4, 1),
            // Another segment, then an object read afresh, then a gap in the segment.
            at(5, &other, 2, 5, 2),
            fresh,
            at(7, &segment, 1, 6, 1),
            // Next in the listing, same segment, but not where the run ends.
            at(8, &segment, 1, 0, 1),
        ];
        let merged = merge_runs(frames);
        assert_eq!(
            values(&merged),
            [
                (0, vec![0, 1, 2]),
                (3, vec![3, 4]),
                (5, vec![15, 16]),
                (6, vec![20]),
                (7, vec![6]),
                (8, vec![0]),
            ]
        );
        assert_eq!(
            merged[0].1.first_col_n_chunks(),
            1,
            "one slice, not a stack"
        );
    }
}
