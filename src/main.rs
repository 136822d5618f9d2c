//! The binary: parse flags, run, map the outcome to the documented exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use unredeemed::cli::{Cli, Command};
use unredeemed::{generate, report, run, source, Error};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc options, read at start-up (`_RJEM_MALLOC_CONF` still overrides them). Each object
/// is decoded through buffers of several MB allocated and freed all scan long; backing them
/// with transparent huge pages cuts the kernel's page-fault work (about 10% of wall time on the
/// 10 M-row benchmark, for about 100 MB more peak RSS; BENCHMARKS.md).
#[allow(non_upper_case_globals, unsafe_code)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"thp:always\0";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line, secrets masked.
            let msg = source::redact(&e.to_string());
            let msg: Vec<&str> = msg.split_whitespace().collect();
            eprintln!("unredeemed: error: {}", msg.join(" "));
            ExitCode::from(e.exit_code())
        }
    }
}

fn dispatch(command: Command) -> Result<u8, Error> {
    match command {
        Command::Run(args) => {
            let job = args.resolve()?;
            let outcome = run(&job)?;
            let table = report::stdout_table(&outcome.summary);
            let _ = std::io::stdout().write_all(table.as_bytes());
            Ok(if args.fail_on_findings && outcome.summary.findings > 0 {
                1
            } else {
                0
            })
        }
        Command::Replay(args) => {
            let job = args.resolve()?;
            let outcome = unredeemed::replay(&job)?;
            let _ = std::io::stdout().write_all(report::stdout_table(&outcome.summary).as_bytes());
            Ok(0)
        }
        Command::Sweep(args) => {
            let job = args.resolve()?;
            let outcome = unredeemed::sweep(&job)?;
            let _ = std::io::stdout().write_all(report::stdout_table(&outcome.summary).as_bytes());
            Ok(0)
        }
        Command::Generate(args) => {
            let spec = args.resolve()?;
            let out = source::resolve(&args.out, &args.storage_options, true)?;
            let stats = generate::generate(&spec, &out)?;
            println!(
                "wrote {} rows ({} invites) in {} files, {} bytes, under {}",
                stats.rows, stats.invites, stats.files, stats.bytes, out.display
            );
            Ok(0)
        }
    }
}
