//! The scan: every object of the archive in scope read into the invite and redeem events the
//! rule evaluates. `scope` decides what is read, `schedule` runs fetching and decoding (the
//! concurrency model), `object` picks the reader for one Parquet object (`late`, the page-level
//! reader, or `whole`, polars'), `json` reads JSON Lines objects, `events` turns candidate rows
//! (`raw`) into events, and `cache` keeps
//! each object's events for the next run. Footers are trusted only once checked: `statistics`
//! before any of them prunes, `claims` (page headers) before any reader runs; `pruned` says
//! what pruned each object.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod cache;
mod claims;
mod dynamic;
mod events;
mod json;
mod late;
mod object;
mod pace;
mod pruned;
mod raw;
mod scan;
mod schedule;
mod scope;
mod statistics;
mod view;
mod whole;

pub(crate) use cache::{fnv, Cache, Loaded};
pub use json::Quality as JsonQuality;
pub use late::{Floor, Meter};
pub use object::Reader;
pub use pruned::{Pruned, PrunedBy};
pub(crate) use scan::{scan_archive, ScanPlan};
pub use scan::{BadFile, BadLines, Extracted, ScanMetrics};
pub(crate) use scope::Scope;
pub(crate) use view::View;

/// The decompression floor of one Parquet object, whole in `object`, and what the late reader
/// decompresses of it (the floor benchmark: `examples/floor.rs`). An error when the object's
/// footer cannot be read or the late reader does not read its layout.
#[doc(hidden)]
pub fn decompression_floor(object: &bytes::Bytes) -> crate::Result<Floor> {
    let mut cursor = std::io::Cursor::new(&object[..]);
    let meta =
        polars_parquet::parquet::read::read_metadata_with_size(&mut cursor, object.len() as u64)
            .map_err(|e| crate::Error::Unsupported(format!("unreadable footer: {e}")))?;
    late::decompression_floor(&meta, |r| {
        let r = usize::try_from(r.start).ok()?..usize::try_from(r.end).ok()?;
        object.get(r.clone()).map(|_| object.slice(r))
    })
}
