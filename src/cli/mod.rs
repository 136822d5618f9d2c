//! Command-line flags (`args`), and their resolution into validated jobs before any work
//! starts (`resolve`): storage locations, times, durations, the config and the rule file.

mod args;
mod resolve;

use clap::{Parser, Subcommand};

pub use args::{ExtractArgs, GenerateArgs, JobArgs, PlanArgs, ReplayArgs, RunArgs, SweepArgs};

macro_rules! storage_help {
    () => {
        "\
Storage:
  --archive, --out, --cache and --plan take a path, file://, az://container/prefix,
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
  4  a report could not be written
  5  internal error (a bug, the machine ran out of a resource), or a store did not answer
     (timeouts, connection failures, throttling, 5xx): worth a retry
A store refusing the credentials (401/403) is exit 2 wherever it happens."
    };
}

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
    /// Freeze the archive's objects and split them into shards balanced by bytes, for
    /// `extract` workers (a Kubernetes Indexed Job, an AWS Batch array job); writes the plan
    /// and prints the shard table.
    #[command(after_help = concat!(
        "Example:\n  unredeemed plan --archive az://logs/audit --cache az://logs/cache --shards 32 --plan az://logs/plan.json\n\n",
        storage_help!(), "\n\n", exit_codes!()
    ))]
    Plan(PlanArgs),
    /// Extract one shard of a plan into its cache (objects already cached are skipped). The
    /// shard is --shard, else $JOB_COMPLETION_INDEX, else $AWS_BATCH_JOB_ARRAY_INDEX.
    #[command(after_help = concat!(
        "Example:\n  JOB_COMPLETION_INDEX=3 unredeemed extract --plan az://logs/plan.json\n\n",
        storage_help!(), "\n\n", exit_codes!()
    ))]
    Extract(ExtractArgs),
    /// Write a deterministic synthetic AuditLogs archive (Parquet) for tests, samples and benches.
    Generate(GenerateArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    #[test]
    fn help_lists_every_exit_code() {
        for code in [
            exit::OK,
            exit::FINDINGS,
            exit::USAGE,
            exit::UNREADABLE,
            exit::WRITE,
            exit::INTERNAL,
        ] {
            assert!(HELP_FOOTER.contains(&format!("\n  {code}  ")), "{code}");
        }
    }
}
