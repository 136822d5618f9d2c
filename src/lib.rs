//! unredeemed: hunt Entra ID guest invites that were never redeemed, over archived AuditLogs.
//!
//! The pipeline, one folder a stage:
//!
//! - [`cli`] turns flags into a validated [`job`] before any work starts;
//! - `archive` is where the data lives: locations, credentials, listing, ranged fetching, and
//!   the sink reports go to;
//! - `read` is the scan: what is in scope, the fetch/decode pipeline, the two object readers,
//!   rows → events, the extraction cache;
//! - `rule` is the model (columns, invites, redeems, pairing), detection in its three readings,
//!   the baseline, exclusions and the files that configure them;
//! - `analysis` is replay and sweep over the same events;
//! - `report` writes `summary.json`, the per-tenant files and the table on stdout;
//! - `cluster` is the fan-out: plans, shards and their indexes;
//! - `commands` orchestrates them for `run`, `replay`, `sweep`, `plan`, `extract` and
//!   `generate` (the one seeded data generator, `generate`).
//!
//! Modules are crate-private; what tests, benches and the binary use is re-exported here.

mod analysis;
mod archive;
pub mod cli;
mod cluster;
mod commands;
pub mod error;
mod generate;
pub mod job;
pub mod progress;
mod read;
mod report;
mod rule;
pub mod time;

pub use analysis::{parse_thresholds, replay_ticks, Replay, Sweep, MAX_TICKS};
pub use archive::redact;
pub use commands::{
    assess, execute, extract, generate, plan, replay, run, scan, sweep, Assessed, ExtractOutcome,
    PlanOutcome, RunOutcome, Scanned,
};
pub use error::{Error, Result};
pub use generate::{scenario, GenFormat, GenSpec, GenStats};
#[doc(hidden)]
pub use read::{decompression_floor, Floor, Meter};
pub use read::{BadFile, BadLines, Extracted, JsonQuality, Pruned, PrunedBy, Reader, ScanMetrics};
pub use report::{stdout_table, Summary, TenantCounts, Timings};
pub use rule::{
    by_tenant, columns, findings, tenant_keys, time_to_redeem, Config, Exclusions, Params, Rule,
    Semantics, TenantKey, Window, DELETED_RULE, MATCHED_BY,
};
