//! `unredeemed plan`: list the archive once, freeze its objects and split them into shards.

use std::collections::BTreeMap;

use super::pipeline::list_in_scope;
use crate::archive::{display_url, is_harmless_key, is_secret_key, named_object, resolve};
use crate::cluster::Plan;
use crate::error::Result;
use crate::job::PlanJob;
use crate::progress::Progress;
use crate::read::Scope;
use crate::time::format_instant;

/// What `plan` wrote.
pub struct PlanOutcome {
    pub id: String,
    pub objects: usize,
    /// `(shard, objects, bytes)` of every shard.
    pub shards: Vec<(usize, usize, u64)>,
    /// The shard table printed on stdout.
    pub table: String,
}

/// Lists, assigns and writes the plan.
pub fn plan(job: &PlanJob) -> Result<PlanOutcome> {
    let progress = Progress::new(job.quiet);
    let archive = resolve(&job.archive, &job.storage_options, false)?;
    // The cache must be usable by the workers: a bad URL or option fails here, not in N pods.
    resolve(&job.cache, &job.storage_options, true)?;
    let target = named_object(&job.plan, &job.storage_options, true)?;
    let scope = Scope {
        tenants: job.tenants.clone(),
        since: job.since,
        until: None,
        folder_skew: job.folder_skew,
        lifecycle: true,
    };
    let listing = list_in_scope(&archive, &scope, &progress)?;
    let options: BTreeMap<String, String> = job
        .storage_options
        .iter()
        .filter(|(k, _)| !is_secret_key(k) || is_harmless_key(k))
        .cloned()
        .collect();
    let plan = Plan::new(
        &absolute(&archive.display),
        &absolute(&display_url(&job.cache)),
        options,
        (job.since.map(format_instant), job.tenants.clone()),
        &listing,
        job.shards,
    );
    target.write(plan.to_json())?;
    progress.log(&format!("plan {} written to {}", plan.id, target.display));
    Ok(PlanOutcome {
        id: plan.id.clone(),
        objects: plan.objects.len(),
        shards: plan
            .shards
            .iter()
            .map(|s| (s.shard, s.objects, s.bytes))
            .collect(),
        table: shard_table(&plan),
    })
}

/// The shard table printed on stdout.
fn shard_table(plan: &Plan) -> String {
    let total: u64 = plan.shards.iter().map(|s| s.bytes).sum();
    let mean = total as f64 / plan.shards.len().max(1) as f64;
    let max = plan.shards.iter().map(|s| s.bytes).max().unwrap_or(0);
    let mut out = String::from("shard  objects  bytes\n");
    for s in &plan.shards {
        out.push_str(&format!("{:>5}  {:>7}  {}\n", s.shard, s.objects, s.bytes));
    }
    out.push_str(&format!(
        "plan {}: {} object(s), {total} bytes in {} shard(s); largest shard {:.3}x the mean\n",
        plan.id,
        plan.objects.len(),
        plan.shards.len(),
        if mean > 0.0 { max as f64 / mean } else { 1.0 }
    ));
    out
}

/// A local path made absolute (the workers do not share this working directory); URLs as
/// given.
fn absolute(spec: &str) -> String {
    if spec.contains("://") {
        return spec.to_string();
    }
    std::fs::canonicalize(spec).map_or_else(|_| spec.to_string(), |p| p.display().to_string())
}
