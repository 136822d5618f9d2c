//! The flags of every command, with their help text (clap derive).

use clap::Args;

use crate::analysis::DEFAULT_THRESHOLDS;
use crate::generate::GenFormat;
use crate::read::Reader;
use crate::rule::Semantics;

/// Flags shared by `run`, `replay` and `sweep`: where to read and write, and the rule.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Archive root (path or URL): searched recursively for `*.parquet`, `*.json` and
    /// `*.jsonl` objects (gzip'd too), or one object.
    #[arg(long, default_value = "data/sample")]
    pub archive: String,
    /// Folder (path or URL) the reports are written to.
    #[arg(long, default_value = "reports")]
    pub out: String,
    /// Extra object_store setting, KEY=VALUE; repeat for several. Also the retry policy:
    /// max_retries, retry_timeout, backoff_initial, backoff_max, backoff_base.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = parse_option)]
    pub storage_options: Vec<(String, String)>,
    /// Skip unreadable or corrupt objects (listed in summary.json) instead of stopping.
    #[arg(long)]
    pub skip_bad_files: bool,
    /// Extraction cache (path or URL, as --archive): the events of each object, reused while
    /// the object is unchanged. Default: $XDG_CACHE_HOME/unredeemed/extract or
    /// ~/.cache/unredeemed/extract.
    #[arg(long, value_name = "DIR|URL")]
    pub cache: Option<String>,
    /// Do not read or write the extraction cache.
    #[arg(long, conflicts_with = "cache")]
    pub no_cache: bool,
    /// Read the archive's objects as frozen by `unredeemed plan`, through the plan's cache
    /// (which `extract` workers filled); replaces --archive and --cache.
    #[arg(long, value_name = "URL", conflicts_with_all = ["archive", "cache", "no_cache"])]
    pub plan: Option<String>,
    /// Fail (exit 3), naming the shards and objects, when an object has no cache entry,
    /// instead of scanning it here.
    #[arg(long, conflicts_with = "no_cache")]
    pub require_cached: bool,
    /// How far back from the as-of time invites are considered (KQL timespan: 14d, 36h, 90m,
    /// 30s) [default: the config's, the rule file's, else 14d].
    #[arg(long, value_name = "DUR")]
    pub lookback: Option<String>,
    /// How long an invite may stay unredeemed before it is a finding [default: the config's,
    /// the rule file's, else 5d].
    #[arg(long, value_name = "DUR")]
    pub threshold: Option<String>,
    /// `intended`: what the rule means; `sentinel`: the query read literally [default: the
    /// config's, else intended].
    #[arg(long, value_enum)]
    pub semantics: Option<Semantics>,
    /// Config file (TOML): rule parameters, watchlists and exclusion rules.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Sentinel rule file (YAML): its metadata, and its `let lookback` / `let invitethreshold`.
    #[arg(long, value_name = "FILE")]
    pub rule: Option<std::path::PathBuf>,
    /// Apply no exclusion rule from the config (the raw result).
    #[arg(long)]
    pub no_exclusions: bool,
    /// Drop events before this time (bounds the baseline's history).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// How far from its date folder an event may be filed (diagnostic-settings blobs fill by
    /// time received): `--since` prunes a folder only when it ends more than this before it.
    #[arg(long, default_value = "48h", value_name = "DUR")]
    pub folder_skew: String,
    /// Only these tenants (TenantId); repeat for several.
    #[arg(long = "tenant", value_name = "ID")]
    pub tenants: Vec<String>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Object reader. `auto`: late materialization (only the pages holding an invite or redeem
    /// are decompressed) for flat layouts, polars' reader for the rest; `polars`: polars' reader
    /// for every object; `late`: the late reader only, an object it cannot read is an error.
    #[arg(long, value_enum, default_value_t = Reader::Auto)]
    pub reader: Reader,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Evaluate as of this time (RFC 3339, a UTC date-time or date, or `now`).
    /// Default: the latest TimeGenerated in the archive, so reruns give the same answer.
    #[arg(long, value_name = "TIME|now")]
    pub as_of: Option<String>,
    /// Exit with status 1 when there is at least one finding.
    #[arg(long)]
    pub fail_on_findings: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// First tick (RFC 3339, a UTC date-time or date).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// Last tick bound: ticks are from, from+every, … up to and including this time.
    /// Default: the latest TimeGenerated in the archive.
    #[arg(long, value_name = "TIME|now")]
    pub to: Option<String>,
    /// Time between ticks (how often the scheduled rule would have run).
    #[arg(long, default_value = "1d", value_name = "DUR")]
    pub every: String,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Evaluate as of this time; default: the latest TimeGenerated in the archive.
    #[arg(long, value_name = "TIME|now")]
    pub as_of: Option<String>,
    /// Candidate thresholds, comma-separated KQL timespans.
    #[arg(long, default_value = DEFAULT_THRESHOLDS, value_name = "DUR,DUR,…")]
    pub thresholds: String,
    /// Quantile of time-to-redeem the suggested threshold covers, in (0, 1].
    #[arg(long, default_value_t = 0.99, value_name = "Q")]
    pub target_quantile: f64,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder (path or URL) to write the archive to, in hive-dated folders `y=YYYY/m=MM/d=DD`.
    #[arg(long)]
    pub out: String,
    /// Extra object_store setting, KEY=VALUE; repeat for several. Also the retry policy:
    /// max_retries, retry_timeout, backoff_initial, backoff_max, backoff_base.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = parse_option)]
    pub storage_options: Vec<(String, String)>,
    /// Number of tenants (workspaces).
    #[arg(long, default_value_t = 3)]
    pub tenants: u32,
    /// Number of days of logs.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// First day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-01-01")]
    pub start: String,
    /// AuditLogs rows per tenant and day (mostly noise operations).
    #[arg(long, default_value_t = 400)]
    pub rows_per_day: u32,
    /// Guest invites per tenant and day (the redeem/awkward-case events come on top).
    #[arg(long, default_value_t = 3.0)]
    pub invites_per_day: f64,
    /// Random seed: the same seed gives the same archive, byte for byte.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write TargetResources/InitiatedBy/AdditionalDetails as nested list/struct columns
    /// instead of JSON text.
    #[arg(long)]
    pub nested: bool,
    /// Rows per output file (a day with more rows is split into several files; Parquet).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows_per_file: usize,
    /// What to write: Parquet with the Log Analytics columns, or the JSON Lines blobs of Entra
    /// diagnostic settings or Log Analytics data export, with their real folder layouts.
    #[arg(long, value_enum, default_value_t = GenFormat::Parquet)]
    pub format: GenFormat,
    /// Gzip the JSON blobs (`*.json.gz`).
    #[arg(long)]
    pub gzip: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Archive root (path or URL), as for `run`.
    #[arg(long)]
    pub archive: String,
    /// The extraction cache the workers fill and the final run reads (path or URL); every
    /// worker must reach it.
    #[arg(long, value_name = "DIR|URL")]
    pub cache: String,
    /// Number of shards (workers): the Indexed Job's completions, the array job's size.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub shards: u32,
    /// Where to write the plan (path or URL of a JSON object).
    #[arg(long, value_name = "URL")]
    pub plan: String,
    /// Extra object_store setting, KEY=VALUE; repeat for several. Non-secret ones are kept in
    /// the plan for the workers; secrets come from each worker's environment.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = parse_option)]
    pub storage_options: Vec<(String, String)>,
    /// Plan only the date folders that can hold events from this time on.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// How far from its date folder an event may be filed (diagnostic-settings blobs fill by
    /// time received): `--since` prunes a folder only when it ends more than this before it.
    #[arg(long, default_value = "48h", value_name = "DUR")]
    pub folder_skew: String,
    /// Only these tenants: objects under another tenant's `TenantId=…` folder are left out of
    /// the plan, and the final run keeps only their rows; repeat for several.
    #[arg(long = "tenant", value_name = "ID")]
    pub tenants: Vec<String>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The plan written by `unredeemed plan` (path or URL).
    #[arg(long, value_name = "URL")]
    pub plan: String,
    /// Shard to extract. Default: $JOB_COMPLETION_INDEX (Kubernetes Indexed Job), else
    /// $AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job).
    #[arg(long, value_name = "I")]
    pub shard: Option<String>,
    /// Extra object_store setting, KEY=VALUE, on top of the plan's.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = parse_option)]
    pub storage_options: Vec<(String, String)>,
    /// Objects per cache segment: each segment is written as soon as its objects are
    /// extracted, so a preempted worker loses at most this many objects' work.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub segment_objects: u32,
    /// Object reader, as for `run`.
    #[arg(long, value_enum, default_value_t = Reader::Auto)]
    pub reader: Reader,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_option(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".to_string()),
    }
}
