//! The fan-out of extraction over a cluster's workers: `plan` freezes the archive's objects
//! and splits them into shards balanced by bytes; each worker (`extract`) fills the shared
//! extraction cache with its shard's objects; the final `run --plan` reads the cache.

mod plan;
mod shard;

pub(crate) use plan::Plan;
pub(crate) use shard::{shard_index, ShardIndex};
