//! What hunters and detection engineers ask of the same events beyond one run: the rule
//! replayed at every tick of a period, and candidate thresholds swept over the baseline.

mod replay;
mod sweep;

pub(crate) use replay::tick_count;
pub use replay::{replay_ticks, Replay, ReplaySummary, MAX_TICKS};
pub(crate) use sweep::{check_quantile, sweep};
pub use sweep::{parse_thresholds, Sweep, SweepSummary, DEFAULT_THRESHOLDS};
