//! `unredeemed extract`: one shard of a plan into the plan's cache. Objects already cached (by
//! an earlier attempt of this shard, or by any run) are skipped; the rest are extracted in
//! chunks, each written as one cache segment, so a worker killed midway loses one chunk.

use super::pipeline::{plan_options, read_plan};
use crate::archive::{resolve, Listing};
use crate::error::Result;
use crate::job::ExtractJob;
use crate::progress::Progress;
use crate::read::{scan_archive, Cache, Loaded, ScanPlan, Scope};

/// What one shard did (printed on stdout).
#[derive(Debug)]
pub struct ExtractOutcome {
    pub plan: String,
    pub shard: usize,
    pub shards: usize,
    pub objects: usize,
    pub already_cached: usize,
    pub extracted: usize,
    pub bytes_read: u64,
    pub segments_written: usize,
}

pub fn extract(job: &ExtractJob) -> Result<ExtractOutcome> {
    let progress = Progress::new(job.quiet);
    let plan = read_plan(&job.plan, &job.storage_options)?;
    let shard = job.shard.within(plan.shards.len())?;
    let options = plan_options(&plan, &job.storage_options);
    let archive = resolve(&plan.archive, &options, false)?;
    let listing = plan.listing(Some(shard));
    let cache = Cache::open(resolve(&plan.cache, &options, true)?, &archive.display);
    // Other shards' segments of this plan hold none of this shard's objects.
    let (others, own) = (plan.label_prefix(), plan.label(shard));
    let mine = format!("{own}-");
    let cached = cache.identities(
        |n| !n.starts_with(&others) || n.starts_with(&mine),
        |w| progress.warn(w),
    )?;
    let todo: Vec<_> = listing
        .objects
        .iter()
        .filter(|o| !cached.contains(&cache.identity(o)))
        .cloned()
        .collect();
    progress.log(&format!(
        "shard {shard} of plan {}: {} object(s), {} already cached",
        plan.id,
        listing.objects.len(),
        listing.objects.len() - todo.len()
    ));
    let mut outcome = ExtractOutcome {
        plan: plan.id.clone(),
        shard,
        shards: plan.shards.len(),
        objects: listing.objects.len(),
        already_cached: listing.objects.len() - todo.len(),
        extracted: 0,
        bytes_read: 0,
        segments_written: 0,
    };
    let everything = Scope::everything();
    let none = Loaded::default();
    for chunk in todo.chunks(job.segment_objects.max(1)) {
        let part = Listing {
            objects: chunk.to_vec(),
            folders_pruned: 0,
            pruned_folders: Vec::new(),
            out_of_scope: Vec::new(),
        };
        let x = scan_archive(
            &archive,
            &part,
            &ScanPlan {
                scope: &everything,
                cache: Some((&cache, &none)),
                skip_bad_files: false,
                progress: &progress,
                reader: job.reader,
            },
        )?;
        let entries: Vec<_> = x.fresh.iter().map(|(id, e)| (id.clone(), e)).collect();
        let name = cache.write(&own, &entries)?;
        progress.log(&format!(
            "segment {name} written ({} object(s))",
            entries.len()
        ));
        outcome.extracted += entries.len();
        outcome.bytes_read += x.metrics.bytes_read;
        outcome.segments_written += 1;
    }
    Ok(outcome)
}
