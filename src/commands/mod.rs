//! The commands: each resolves nothing itself (`cli` did) and only orchestrates the stages:
//! scan (`read`), evaluate (`rule`, `analysis`), write (`report`).

mod extract;
mod generate;
mod pipeline;
mod plan;
mod replay;
mod run;
mod sweep;

use std::io::Write;

pub use extract::{extract, ExtractOutcome};
pub use generate::generate;
pub use pipeline::{assess, scan, Assessed, Scanned};
pub use plan::{plan, PlanOutcome};
pub use replay::replay;
pub use run::{run, RunOutcome};
pub use sweep::sweep;

use crate::archive::display_url;
use crate::cli::Command;
use crate::error::{exit, Result};
use crate::report::stdout_table;

/// Runs one parsed command; returns its exit status (errors carry their own).
pub fn execute(command: Command) -> Result<u8> {
    let table = |o: &RunOutcome| {
        // stdout is for data; a closed pipe is not an error of the run.
        let _ = std::io::stdout().write_all(stdout_table(&o.summary).as_bytes());
    };
    match command {
        Command::Run(args) => {
            let outcome = run(&args.resolve()?)?;
            table(&outcome);
            Ok(if args.fail_on_findings && outcome.summary.findings > 0 {
                exit::FINDINGS
            } else {
                exit::OK
            })
        }
        Command::Replay(args) => {
            table(&replay(&args.resolve()?)?);
            Ok(exit::OK)
        }
        Command::Sweep(args) => {
            table(&sweep(&args.resolve()?)?);
            Ok(exit::OK)
        }
        Command::Plan(args) => {
            let outcome = plan(&args.resolve()?)?;
            let _ = std::io::stdout().write_all(outcome.table.as_bytes());
            Ok(exit::OK)
        }
        Command::Extract(args) => {
            let o = extract(&args.resolve()?)?;
            println!(
                "shard {} of {} (plan {}): {} object(s), {} already cached, {} extracted, {} bytes fetched, {} segment(s) written",
                o.shard, o.shards, o.plan, o.objects, o.already_cached, o.extracted, o.bytes_read, o.segments_written
            );
            Ok(exit::OK)
        }
        Command::Generate(args) => {
            let stats = generate(&args.resolve()?, &args.out, &args.storage_options)?;
            println!(
                "wrote {} rows ({} invites) in {} files, {} bytes, under {}",
                stats.rows,
                stats.invites,
                stats.files,
                stats.bytes,
                display_url(&args.out)
            );
            Ok(exit::OK)
        }
    }
}
