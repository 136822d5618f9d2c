//! Validated jobs: what `cli` resolves the flags into before any work starts, and what every
//! stage takes instead of the raw flags.

use std::path::PathBuf;

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
    /// Extraction cache folder; `None` disables it.
    pub cache: Option<PathBuf>,
    pub as_of: AsOf,
    pub lookback: i64,
    pub threshold: i64,
    pub semantics: Semantics,
    pub since: Option<i64>,
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
