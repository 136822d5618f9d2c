//! A plan: the archive's objects frozen at planning time (key, size, ETag, last-modified) and
//! assigned to shards balanced by bytes, with where the archive and the cache live. It holds
//! no secret: credentials come from each worker's environment.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::archive::{ArchiveObject, Listing};
use crate::error::{Error, Result};
use crate::read::fnv;

/// The plan format this build reads and writes.
pub(crate) const FORMAT: &str = "unredeemed-plan/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub(crate) format: String,
    /// A hash of the archive, the objects and their shards: names the shards' cache segments.
    pub(crate) id: String,
    pub(crate) archive: String,
    pub(crate) cache: String,
    /// `--storage-option`s without secret values.
    pub(crate) storage_options: BTreeMap<String, String>,
    /// The listing's `--since` (RFC 3339) and `--tenant` pruning.
    pub(crate) since: Option<String>,
    pub(crate) tenants: Vec<String>,
    pub(crate) folders_pruned: usize,
    pub(crate) shards: Vec<ShardTotals>,
    pub(crate) objects: Vec<PlannedObject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardTotals {
    pub(crate) shard: usize,
    pub(crate) objects: usize,
    pub(crate) bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlannedObject {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) e_tag: Option<String>,
    pub(crate) last_modified: Option<String>,
    pub(crate) shard: usize,
}

/// Shards for objects of these sizes: largest first, each to the lightest shard so far (ties to
/// the lowest index; equal sizes in the given order). The heaviest shard then exceeds the mean
/// by less than the largest object. Deterministic: the same sizes give the same shards.
pub(crate) fn assign(sizes: &[u64], shards: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| (Reverse(sizes[i]), i));
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> =
        (0..shards).map(|s| Reverse((0, s))).collect();
    let mut out = vec![0; sizes.len()];
    for i in order {
        let Some(Reverse((load, s))) = heap.pop() else {
            break;
        };
        out[i] = s;
        heap.push(Reverse((load + sizes[i], s)));
    }
    out
}

impl Plan {
    /// The plan of `listing` over `shards` shards.
    pub(crate) fn new(
        archive: &str,
        cache: &str,
        storage_options: BTreeMap<String, String>,
        (since, tenants): (Option<String>, Vec<String>),
        listing: &Listing,
        shards: usize,
    ) -> Self {
        let sizes: Vec<u64> = listing.objects.iter().map(|o| o.size).collect();
        let assigned = assign(&sizes, shards);
        let objects: Vec<PlannedObject> = listing
            .objects
            .iter()
            .zip(assigned)
            .map(|(o, shard)| PlannedObject {
                key: o.key.clone(),
                size: o.size,
                e_tag: o.e_tag.clone(),
                last_modified: o.last_modified.map(|t| t.to_rfc3339()),
                shard,
            })
            .collect();
        let mut totals: Vec<ShardTotals> = (0..shards)
            .map(|shard| ShardTotals {
                shard,
                objects: 0,
                bytes: 0,
            })
            .collect();
        for o in &objects {
            totals[o.shard].objects += 1;
            totals[o.shard].bytes += o.size;
        }
        let mut plan = Plan {
            format: FORMAT.into(),
            id: String::new(),
            archive: archive.into(),
            cache: cache.into(),
            storage_options,
            since,
            tenants,
            folders_pruned: listing.folders_pruned,
            shards: totals,
            objects,
        };
        plan.id = plan.identity();
        plan
    }

    fn identity(&self) -> String {
        let objects = serde_json::to_string(&self.objects).unwrap_or_default();
        format!(
            "{:016x}",
            fnv(&format!(
                "{}\n{}\n{objects}",
                self.archive,
                self.shards.len()
            ))
        )
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses a plan and checks it holds together (its own id, shards in range).
    pub(crate) fn parse(display: &str, bytes: &[u8]) -> Result<Plan> {
        let bad = |why: String| Error::Usage(format!("`{display}` is not a usable plan: {why}"));
        let plan: Plan = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if plan.format != FORMAT {
            return Err(bad(format!(
                "format `{}`, this build reads `{FORMAT}`",
                plan.format
            )));
        }
        if plan.shards.is_empty() {
            return Err(bad("no shards".into()));
        }
        if let Some(o) = plan.objects.iter().find(|o| o.shard >= plan.shards.len()) {
            return Err(bad(format!("`{}` is in shard {}", o.key, o.shard)));
        }
        if plan.identity() != plan.id {
            return Err(bad("its id does not match its objects (edited?)".into()));
        }
        Ok(plan)
    }

    /// The segment label of shard `i`'s cache segments, and the prefix all shards share.
    pub(crate) fn label(&self, shard: usize) -> String {
        format!("{}{shard:05}", self.label_prefix())
    }

    pub(crate) fn label_prefix(&self) -> String {
        format!("plan-{}-shard-", self.id)
    }

    /// The objects (of shard `only`, or all) as the archive's listing.
    pub(crate) fn listing(&self, only: Option<usize>) -> Listing {
        let objects = self
            .objects
            .iter()
            .filter(|o| only.is_none_or(|s| o.shard == s))
            .map(|o| ArchiveObject {
                key: o.key.clone(),
                size: o.size,
                e_tag: o.e_tag.clone(),
                // Written by `to_rfc3339` above: one that does not parse only misses the cache.
                last_modified: o
                    .last_modified
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc()),
            })
            .collect();
        Listing {
            objects,
            folders_pruned: if only.is_none() {
                self.folders_pruned
            } else {
                0
            },
            pruned_folders: Vec::new(),
            out_of_scope: Vec::new(),
        }
    }

    /// Shard of every object key.
    pub(crate) fn shard_of(&self) -> BTreeMap<&str, usize> {
        self.objects
            .iter()
            .map(|o| (o.key.as_str(), o.shard))
            .collect()
    }
}

/// The path of `key` (as listed: already in the store's encoding) under `prefix`.
#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Over many archive shapes and shard counts: every object in exactly one shard, the
    /// heaviest shard under mean + largest object (so within 10% of the mean whenever no object
    /// exceeds a tenth of it), and the same shards on every call.
    #[test]
    fn shards_are_balanced_disjoint_covering_and_deterministic() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for case in 0..400 {
            let n = rng.gen_range(0..300);
            let shards = rng.gen_range(1..40);
            let spread: u64 = [10, 1_000, 1_000_000][case % 3];
            let sizes: Vec<u64> = (0..n).map(|_| rng.gen_range(1..=spread)).collect();
            let a = assign(&sizes, shards);
            assert_eq!(a, assign(&sizes, shards), "deterministic");
            assert_eq!(a.len(), n);
            assert!(a.iter().all(|&s| s < shards), "in range");
            let mut load = vec![0u64; shards];
            for (i, &s) in a.iter().enumerate() {
                load[s] += sizes[i];
            }
            assert_eq!(
                load.iter().sum::<u64>(),
                sizes.iter().sum::<u64>(),
                "covering"
            );
            let mean = sizes.iter().sum::<u64>() as f64 / shards as f64;
            let biggest = sizes.iter().copied().max().unwrap_or(0) as f64;
            let max = load.iter().copied().max().unwrap_or(0) as f64;
            assert!(
                max <= mean + biggest,
                "case {case}: {max} > {mean} + {biggest}"
            );
            if biggest <= 0.1 * mean {
                assert!(max <= 1.1 * mean, "case {case}: {max} vs mean {mean}");
            }
        }
    }

    #[test]
    fn more_shards_than_objects_leaves_shards_empty() {
        let a = assign(&[5, 9, 1], 7);
        let mut used = a.clone();
        used.sort();
        used.dedup();
        assert_eq!(used.len(), 3, "{a:?}");
    }
}
