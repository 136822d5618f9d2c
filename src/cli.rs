//! Command-line flags, and their resolution into validated jobs before any work starts.

use clap::{Args, Parser, Subcommand};

use crate::detect::Semantics;
use crate::error::{Error, Result};
use crate::extract::Reader;
use crate::generate::GenSpec;
use crate::replay::ReplayJob;
use crate::sweep::SweepJob;
use crate::timefmt::{now, parse_duration, parse_instant};
use crate::{AsOf, RunJob};

macro_rules! storage_help {
    () => {
        "\
Storage:
  --archive and --out take a path, file://, az://container/prefix,
  abfs[s]://container@account.dfs.core.windows.net/prefix,
  https://account.blob.core.windows.net/container/prefix, s3://bucket/prefix or gs://bucket/prefix.
  Credentials and endpoints come from object_store's environment variables:
  AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY,
  AZURE_STORAGE_USE_EMULATOR (with AZURITE_BLOB_STORAGE_URL), AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT, AWS_ALLOW_HTTP, GOOGLE_SERVICE_ACCOUNT,
  GOOGLE_SERVICE_ACCOUNT_KEY, GOOGLE_BUCKET; --storage-option KEY=VALUE sets any other builder
  key (e.g. azure_storage_account_name=acct). Secrets never appear in logs, errors or reports."
    };
}

macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0  the run completed (with or without findings)
  1  --fail-on-findings was given and there is at least one finding
  2  usage or configuration error (bad flag, duration or time)
  3  the archive could not be read (missing or corrupt object, missing or mistyped column)
  4  a report could not be written"
    };
}

pub const EXIT_CODES: &str = exit_codes!();
const HELP_FOOTER: &str = concat!(storage_help!(), "\n\n", exit_codes!());

/// Hunt Entra ID guest invites that were never redeemed, over archived AuditLogs (Parquet).
#[derive(Debug, Parser)]
#[command(name = "unredeemed", version, after_help = HELP_FOOTER)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate the rule as of a point in time and write per-tenant reports and the baseline.
    #[command(after_help = HELP_FOOTER)]
    Run(RunArgs),
    /// Replay the rule at every tick from --from to --to (a retrospective hunt): the alerts at
    /// each tick are exactly what `run --as-of` that tick finds. Writes `run`'s reports as of
    /// --to plus replay/alerts.parquet, replay/by_tick.parquet and a timeline in report.md.
    #[command(after_help = concat!(
        "Example:\n  unredeemed replay --archive data/sample --from 2026-01-15 --every 1d --out reports\n\n",
        storage_help!(), "\n\n", exit_codes!()
    ))]
    Replay(ReplayArgs),
    /// Sweep candidate thresholds over the history up to T and suggest one per tenant (a
    /// tuning study). Writes `run`'s reports plus sweep/sweep.parquet, sweep/suggested.parquet
    /// and a sweep table in report.md.
    #[command(after_help = concat!(
        "Example:\n  unredeemed sweep --archive data/sample --thresholds 1h,6h,1d,2d,5d,7d --out reports\n\n",
        storage_help!(), "\n\n", exit_codes!()
    ))]
    Sweep(SweepArgs),
    /// Write a deterministic synthetic AuditLogs archive (Parquet) for tests, samples and benches.
    Generate(GenerateArgs),
}

/// Flags shared by `run`, `replay` and `sweep`: where to read and write, and the rule.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Archive root (path or URL): searched recursively for `*.parquet` (or one object).
    #[arg(long, default_value = "data/sample")]
    pub archive: String,
    /// Folder (path or URL) the reports are written to.
    #[arg(long, default_value = "reports")]
    pub out: String,
    /// Extra object_store setting, KEY=VALUE; repeat for several.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = parse_option)]
    pub storage_options: Vec<(String, String)>,
    /// Skip unreadable or corrupt objects (listed in summary.json) instead of stopping.
    #[arg(long)]
    pub skip_bad_files: bool,
    /// Extraction cache folder: the events of each object, reused while the object is
    /// unchanged. Default: $XDG_CACHE_HOME/unredeemed/extract or ~/.cache/unredeemed/extract.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<std::path::PathBuf>,
    /// Do not read or write the extraction cache.
    #[arg(long, conflicts_with = "cache")]
    pub no_cache: bool,
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
    #[arg(long, default_value = crate::sweep::DEFAULT_THRESHOLDS, value_name = "DUR,DUR,…")]
    pub thresholds: String,
    /// Quantile of time-to-redeem the suggested threshold covers, in (0, 1].
    #[arg(long, default_value_t = 0.99, value_name = "Q")]
    pub target_quantile: f64,
}

fn parse_as_of(text: Option<&str>) -> Result<AsOf> {
    Ok(match text {
        None => AsOf::Latest,
        Some("now") => AsOf::At(now()),
        Some(t) => AsOf::At(parse_instant(t)?),
    })
}

impl JobArgs {
    pub fn resolve(&self, as_of: AsOf) -> Result<RunJob> {
        // Precedence: flags, then the config, then the rule file, then the built-in defaults.
        let (rule, from_rule) = match &self.rule {
            Some(path) => crate::config::load_rule(path)?,
            None => (
                crate::rule::Rule::builtin(),
                crate::config::Params::default(),
            ),
        };
        let config = self
            .config
            .as_deref()
            .map(crate::config::Config::load)
            .transpose()?;
        let from_config = config
            .as_ref()
            .map(|c| c.params.clone())
            .unwrap_or_default();
        let flag = |v: &Option<String>| v.as_deref().map(parse_duration).transpose();
        let lookback = flag(&self.lookback)?
            .or(from_config.lookback)
            .or(from_rule.lookback)
            .unwrap_or(DEFAULT_LOOKBACK);
        let threshold = flag(&self.threshold)?
            .or(from_config.threshold)
            .or(from_rule.threshold)
            .unwrap_or(DEFAULT_THRESHOLD);
        let semantics = self
            .semantics
            .or(from_config.semantics)
            .unwrap_or(Semantics::Intended);
        if lookback <= 0 {
            return Err(Error::Usage("--lookback must be greater than zero".into()));
        }
        let since = self.since.as_deref().map(parse_instant).transpose()?;
        let exclusions = match config {
            Some(c) if !self.no_exclusions => Some(c.exclusions),
            _ => None,
        };
        Ok(RunJob {
            archive: self.archive.clone(),
            out: self.out.clone(),
            storage_options: self.storage_options.clone(),
            skip_bad_files: self.skip_bad_files,
            cache: if self.no_cache {
                None
            } else {
                self.cache.clone().or_else(crate::cache::Cache::default_dir)
            },
            as_of,
            lookback,
            threshold,
            semantics,
            since,
            tenants: self.tenants.clone(),
            quiet: self.quiet,
            rule,
            exclusions,
            reader: self.reader,
        })
    }
}

const DEFAULT_LOOKBACK: i64 = 14 * 86_400 * crate::timefmt::NANOS_PER_SECOND;
const DEFAULT_THRESHOLD: i64 = 5 * 86_400 * crate::timefmt::NANOS_PER_SECOND;

impl RunArgs {
    pub fn resolve(&self) -> Result<RunJob> {
        self.job.resolve(parse_as_of(self.as_of.as_deref())?)
    }
}

impl ReplayArgs {
    pub fn resolve(&self) -> Result<ReplayJob> {
        let from = parse_instant(&self.from)?;
        let to = parse_as_of(self.to.as_deref())?;
        let every = parse_duration(&self.every)?;
        if let AsOf::At(to) = to {
            crate::replay::tick_count(from, to, every)?;
        } else if every <= 0 {
            return Err(Error::Usage("--every must be greater than zero".into()));
        }
        Ok(ReplayJob {
            run: self.job.resolve(to)?,
            from,
            every,
        })
    }
}

impl SweepArgs {
    pub fn resolve(&self) -> Result<SweepJob> {
        Ok(SweepJob {
            run: self.job.resolve(parse_as_of(self.as_of.as_deref())?)?,
            thresholds: crate::sweep::parse_thresholds(&self.thresholds)?,
            target_quantile: crate::sweep::check_quantile(self.target_quantile)?,
        })
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder (path or URL) to write the archive to, in hive-dated folders `y=YYYY/m=MM/d=DD`.
    #[arg(long)]
    pub out: String,
    /// Extra object_store setting, KEY=VALUE; repeat for several.
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
    /// Rows per output file (a day with more rows is split into several files).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows_per_file: usize,
}

impl GenerateArgs {
    pub fn resolve(&self) -> Result<GenSpec> {
        let start = parse_instant(&self.start)?;
        if self.tenants == 0 || self.days == 0 {
            return Err(Error::Usage(
                "--tenants and --days must be at least 1".into(),
            ));
        }
        if self.invites_per_day.is_nan() || self.invites_per_day < 0.0 {
            return Err(Error::Usage(
                "--invites-per-day must be zero or more".into(),
            ));
        }
        Ok(GenSpec {
            tenants: self.tenants,
            days: self.days,
            start,
            rows_per_day: self.rows_per_day,
            invites_per_day: self.invites_per_day,
            seed: self.seed,
            nested: self.nested,
            rows_per_file: self.rows_per_file.max(1),
        })
    }
}

fn parse_option(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".to_string()),
    }
}
