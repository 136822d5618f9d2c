//! The I/O runtime: every storage call (listing, ranged reads, puts) runs on one small tokio
//! runtime. Synchronous code enters it only from threads of its own (the main thread, the
//! scan's feeder in `read::schedule`), never from a rayon worker.

use std::sync::OnceLock;

use crate::error::{Error, Result};

fn rt() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    // Two workers: the work is waiting on the network, not computing.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    Ok(RT.get_or_init(|| rt))
}

/// Runs async storage calls from the synchronous pipeline.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    Ok(rt()?.block_on(f))
}
