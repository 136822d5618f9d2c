//! The binary: parse flags, run, map the outcome to the documented exit codes.

use std::process::ExitCode;

use clap::Parser;
use unredeemed::cli::Cli;

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
    match unredeemed::execute(Cli::parse().command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line, with its causes, secrets masked.
            let msg = unredeemed::redact(&e.chain());
            let msg: Vec<&str> = msg.split_whitespace().collect();
            eprintln!("unredeemed: error: {}", msg.join(" "));
            ExitCode::from(e.exit_code())
        }
    }
}
