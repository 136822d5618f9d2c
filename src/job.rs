//! Validated jobs: what `cli` resolves the flags into before any work starts, and what every
//! stage takes instead of the raw flags.

use crate::read::Reader;
use crate::rule::{Exclusions, Rule, Semantics};

/// When the rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The latest `TimeGenerated` in the archive, so reruns give the same answer.
    Latest,
    At(i64),
}

/// A validated `run` (and the common part of `replay` and `sweep`).
#[derive(Debug, Clone)]
pub struct RunJob {
    /// Path or URL of the archive.
    pub archive: String,
    /// Path or URL of the output folder.
    pub out: String,
    /// `--storage-option KEY=VALUE` pairs, on top of the environment.
    pub storage_options: Vec<(String, String)>,
    pub skip_bad_files: bool,
    /// Extraction cache location (path or URL); `None` disables it (unless a plan names one).
    pub cache: Option<String>,
    /// `--plan`: the frozen objects and the cache to read them through.
    pub plan: Option<String>,
    /// `--require-cached`: an object without a cache entry is an error.
    pub require_cached: bool,
    pub as_of: AsOf,
    pub lookback: i64,
    pub threshold: i64,
    pub semantics: Semantics,
    pub since: Option<i64>,
    /// `--folder-skew` (ns): how far from its date folder an event may be filed.
    pub folder_skew: i64,
    pub tenants: Vec<String>,
    pub quiet: bool,
    /// Metadata reported with the findings (`--rule`, else the built-in rule).
    pub rule: Rule,
    /// Exclusion rules from `--config` (`None`: none, or `--no-exclusions`).
    pub exclusions: Option<Exclusions>,
    /// How objects are read (`--reader`).
    pub reader: Reader,
}

/// A validated `replay`: `run.as_of` is the last tick bound (`--to`).
#[derive(Debug, Clone)]
pub struct ReplayJob {
    pub run: RunJob,
    pub from: i64,
    pub every: i64,
}

/// A validated `sweep`.
#[derive(Debug, Clone)]
pub struct SweepJob {
    pub run: RunJob,
    /// Candidate thresholds (ns), ascending and distinct.
    pub thresholds: Vec<i64>,
    /// Quantile of time-to-redeem the suggested threshold covers, in (0, 1].
    pub target_quantile: f64,
}

/// A validated `plan`.
#[derive(Debug, Clone)]
pub struct PlanJob {
    pub archive: String,
    pub cache: String,
    pub shards: usize,
    pub plan: String,
    pub storage_options: Vec<(String, String)>,
    pub since: Option<i64>,
    pub folder_skew: i64,
    pub tenants: Vec<String>,
    pub quiet: bool,
}

/// A validated `extract`: the shard index is checked against the plan once it is read.
#[derive(Debug, Clone)]
pub struct ExtractJob {
    pub plan: String,
    pub(crate) shard: crate::cluster::ShardIndex,
    /// Objects per cache segment.
    pub segment_objects: usize,
    pub storage_options: Vec<(String, String)>,
    pub reader: Reader,
    pub quiet: bool,
}
