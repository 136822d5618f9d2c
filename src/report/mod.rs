//! What a run hands over: `summary.json` (and the metrics inside it), the files under
//! `--out` (findings, suppressions, baseline, replay and sweep tables, `report.md`), and the
//! short table on stdout.

mod charts;
mod files;
mod frames;
mod html;
mod markdown;
mod stdout;
mod summary;
mod text;

pub(crate) use files::{parquet_bytes, write_reports, write_summary, Outputs};
pub use stdout::stdout_table;
pub(crate) use summary::Evaluated;
pub use summary::{Summary, TenantCounts, Timings};
