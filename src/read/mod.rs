//! The scan: every object of the archive in scope read into the invite and redeem events the
//! rule evaluates. `scope` decides what is read, `schedule` runs fetching and decoding (the
//! concurrency model), `object` picks the reader for one object (`late`, the page-level
//! reader, or `whole`, polars'), `events` turns candidate rows into events, and `cache` keeps
//! each object's events for the next run.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod cache;
mod claims;
mod events;
mod late;
mod object;
mod scan;
mod schedule;
mod scope;
mod whole;

pub(crate) use cache::{fnv, Cache, Loaded};
pub use object::Reader;
pub(crate) use scan::{scan_archive, ScanPlan};
pub use scan::{BadFile, Extracted, ScanMetrics};
pub(crate) use scope::Scope;
