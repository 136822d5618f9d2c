//! Where the archive lives and where reports go, all through `object_store`: resolving a
//! location (and masking its secrets), listing, the facts pruning uses, ranged fetching of a
//! Parquet object's needed bytes (a JSON object is fetched whole), and the sink reports are
//! written to. The I/O runtime lives here too.

mod ahead;
mod fetch;
mod folder;
mod list;
mod location;
mod observe;
mod prune;
mod runtime;
mod secrets;
mod single;
mod sink;

pub(crate) use ahead::{ReadAhead, AHEAD_AT_LEAST};
pub(crate) use fetch::{fetch_needed, fetch_whole, is_json_key, Fetched, Got};
pub(crate) use list::{list_archive, Listing};
pub(crate) use location::{display_url, resolve, ArchiveObject, Location};
pub(crate) use observe::throttled;
pub(crate) use prune::{folder_span, nanos_per_unit, row_group_span, TimeWindow};
pub(crate) use runtime::block_on;
pub use secrets::redact;
pub(crate) use secrets::{is_harmless_key, is_secret_key};
pub(crate) use single::named_object;
pub(crate) use sink::Sink;
