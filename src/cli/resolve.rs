//! Flags → validated jobs: everything is parsed and checked here, before any work starts.

use super::args::{ExtractArgs, GenerateArgs, JobArgs, PlanArgs, ReplayArgs, RunArgs, SweepArgs};
use crate::analysis::{check_quantile, parse_thresholds, tick_count};
use crate::cluster::shard_index;
use crate::error::{Error, Result};
use crate::generate::GenSpec;
use crate::job::{AsOf, ExtractJob, PlanJob, ReplayJob, RunJob, SweepJob};
use crate::read::Cache;
use crate::rule::{load_rule, Config, Params, Rule, Semantics};
use crate::time::{now, parse_duration, parse_instant, NANOS_PER_SECOND};

fn parse_as_of(text: Option<&str>) -> Result<AsOf> {
    Ok(match text {
        None => AsOf::Latest,
        Some("now") => AsOf::At(now()),
        Some(t) => AsOf::At(parse_instant(t)?),
    })
}

/// `--folder-skew`: a duration, zero allowed.
fn parse_skew(text: &str) -> Result<i64> {
    match text.trim() {
        "0" => Ok(0),
        t => parse_duration(t),
    }
}

impl JobArgs {
    pub fn resolve(&self, as_of: AsOf) -> Result<RunJob> {
        // Precedence: flags, then the config, then the rule file, then the built-in defaults.
        let (rule, from_rule) = match &self.rule {
            Some(path) => load_rule(path)?,
            None => (Rule::builtin(), Params::default()),
        };
        let config = self.config.as_deref().map(Config::load).transpose()?;
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
        let folder_skew = parse_skew(&self.folder_skew)?;
        let exclusions = match config {
            Some(c) if !self.no_exclusions => Some(c.exclusions),
            _ => None,
        };
        Ok(RunJob {
            archive: self.archive.clone(),
            out: self.out.clone(),
            storage_options: self.storage_options.clone(),
            skip_bad_files: self.skip_bad_files,
            cache: if self.no_cache || self.plan.is_some() {
                None
            } else {
                self.cache.clone().or_else(Cache::default_dir)
            },
            plan: self.plan.clone(),
            require_cached: self.require_cached,
            as_of,
            lookback,
            threshold,
            semantics,
            since,
            folder_skew,
            tenants: self.tenants.clone(),
            quiet: self.quiet,
            rule,
            exclusions,
            reader: self.reader,
        })
    }
}

const DEFAULT_LOOKBACK: i64 = 14 * 86_400 * NANOS_PER_SECOND;
const DEFAULT_THRESHOLD: i64 = 5 * 86_400 * NANOS_PER_SECOND;

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
            tick_count(from, to, every)?;
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
            thresholds: parse_thresholds(&self.thresholds)?,
            target_quantile: check_quantile(self.target_quantile)?,
        })
    }
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
        if self.gzip && self.format == crate::generate::GenFormat::Parquet {
            return Err(Error::Usage(
                "--gzip applies to the JSON formats (--format diag-json or la-export-json)".into(),
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
            format: self.format,
            gzip: self.gzip,
        })
    }
}

impl PlanArgs {
    pub fn resolve(&self) -> Result<PlanJob> {
        Ok(PlanJob {
            archive: self.archive.clone(),
            cache: self.cache.clone(),
            shards: self.shards as usize,
            plan: self.plan.clone(),
            storage_options: self.storage_options.clone(),
            since: self.since.as_deref().map(parse_instant).transpose()?,
            folder_skew: parse_skew(&self.folder_skew)?,
            tenants: self.tenants.clone(),
            quiet: self.quiet,
        })
    }
}

impl ExtractArgs {
    pub fn resolve(&self) -> Result<ExtractJob> {
        Ok(ExtractJob {
            plan: self.plan.clone(),
            shard: shard_index(self.shard.as_deref(), |k| std::env::var(k).ok())?,
            segment_objects: self.segment_objects as usize,
            storage_options: self.storage_options.clone(),
            reader: self.reader,
            quiet: self.quiet,
        })
    }
}
