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
    let command = Cli::parse().command;
    // A panic inside an object's read becomes that object's error; one that escapes is a
    // bug, reported below: either way once, with where it happened.
    unredeemed::error::report_panics_as_errors();
    let outcome = std::panic::catch_unwind(|| unredeemed::execute(command));
    match outcome {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(e)) => fail(&e.chain(), e.exit_code()),
        Err(p) => {
            let at = unredeemed::error::last_panic();
            let msg = format!(
                "internal error: {} (at {}): a bug, please report it",
                unredeemed::error::panic_text(p.as_ref()),
                at.as_deref().unwrap_or("an unknown place")
            );
            fail(&msg, unredeemed::error::exit::INTERNAL)
        }
    }
}

/// One line, with its causes, secrets masked.
fn fail(msg: &str, code: u8) -> ExitCode {
    let msg = unredeemed::redact(msg);
    let msg: Vec<&str> = msg.split_whitespace().collect();
    eprintln!("unredeemed: error: {}", msg.join(" "));
    ExitCode::from(code)
}
