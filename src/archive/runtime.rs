//! The I/O runtime: every storage call (listing, ranged reads, puts) runs on one small tokio
//! runtime. Synchronous code enters it only from threads of its own (the main thread, the
//! thread that opens the cache while the archive is listed, the scan's feeder in
//! `read::schedule`), never from a rayon worker.

use std::sync::OnceLock;

use crate::error::{Error, Result};

fn rt() -> Result<&'static tokio::runtime::Runtime> {
    // Built once, also when two threads (the listing and the cache opener) first need it at
    // the same time.
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        // Two workers: the work is waiting on the network, not computing. The blocking pool
        // runs a local store's file calls (listing, cache segments, puts): tokio would start a
        // thread for each one waiting, and a warm rerun's 20 puts started 15, each faulting in
        // memory of its own (8: 0.84× the warm rerun's wall time, BENCHMARKS.md).
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::Runtime(std::io::Error::other(e.clone())))
}

/// Runs async storage calls from the synchronous pipeline.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    Ok(rt()?.block_on(f))
}
