//! The scan's pipeline, and the job's concurrency model in one place:
//!
//! - **I/O** runs on the tokio runtime (`archive::runtime`): a feeder task keeps up to
//!   [`IN_FLIGHT`] object fetches running ahead, in key order, and hands each fetched object
//!   (or cache hit) over a bounded channel.
//! - **Decoding** runs on the scan's decoder threads, twice the cores: each takes the next
//!   object from the channel as soon as it is free (no batch barriers), so a slow object never
//!   holds up the others. They wait on the channel, never on a future.
//! - **Data-parallel work** (polars inside a decoder, the one extraction pass, cache reads and
//!   writes, building the reports) runs on polars' own rayon pool, which the job shares rather
//!   than adding one of its own.
//!
//! Results go to the caller tagged with the object's index as they come; the caller makes its
//! result independent of their order, so the first bad object reported is the first in key
//! order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use futures::future::{AbortHandle, Abortable};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use super::cache::Entry;
use crate::archive::{block_on, ArchiveObject, Got};
use crate::error::{Error, Result};

/// Objects fetched ahead of the decoders; bounds memory to this many (sparse) objects.
pub(super) const IN_FLIGHT: usize = 8;

/// Decoder threads: twice the cores, because a decoder often waits (for its object's fetch,
/// or inside polars for its own workers) and the cores should not. Measured: 2 threads
/// 3.8–4.3 s, 4–8 threads 3.3–3.5 s on the 10 M-row benchmark (BENCHMARKS.md).
fn decoders() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// What a decoder is handed: a cache hit, or the object's fetch as it ended.
pub(super) enum Step {
    Hit(Entry),
    Fetched(Result<Got>),
}

/// Runs `decode` on every object of `todo` (`hits` holds the cache entries by index;
/// the others are fetched with `fetch`). `decode` returns its outcome and whether it is fatal:
/// after a fatal outcome no further object is handed out. Each outcome goes to `absorb` with
/// its index as soon as it is decoded, in no particular order: none is kept here, so memory
/// does not grow with the number of objects.
pub(super) fn run<T, F, Fut>(
    todo: &[&ArchiveObject],
    hits: BTreeMap<usize, Entry>,
    fetch: F,
    decode: impl Fn(usize, Step) -> (T, bool) + Sync,
    absorb: impl FnMut(usize, T) + Send,
) -> Result<()>
where
    T: Send,
    F: Fn(ArchiveObject) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<Got>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<(usize, Step)>(1);
    // A fatal outcome stops the feeder at once, so no decoder waits for one more fetch.
    let (stop, stopped) = AbortHandle::new_pair();
    let rx = Mutex::new(rx);
    // The index of the first fatal outcome (`usize::MAX`: none yet).
    let fatal_at = AtomicUsize::new(usize::MAX);
    let absorb = Mutex::new(absorb);
    let worker = || loop {
        if fatal_at.load(Ordering::Relaxed) != usize::MAX {
            break;
        }
        let next = rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        // Checked again: the wait may have outlasted a fatal outcome elsewhere. An object
        // before it in key order is still decoded: it may be the first fatal one, which is
        // the one to report.
        let Some((i, step)) = next.filter(|(i, _)| *i < fatal_at.load(Ordering::Relaxed)) else {
            break;
        };
        let (out, fatal) = decode(i, step);
        if fatal {
            fatal_at.fetch_min(i, Ordering::Relaxed);
            stop.abort();
        }
        (absorb.lock().unwrap_or_else(PoisonError::into_inner))(i, out);
    };
    let fed = std::thread::scope(|s| -> Result<()> {
        // The feeder runs on a thread of its own, so it can borrow `todo`: an object is
        // copied only when its fetch starts, not the whole listing up front.
        let feeding = std::thread::Builder::new()
            .name("unredeemed-feed".into())
            .spawn_scoped(s, move || {
                block_on(Abortable::new(feed(todo, hits, fetch, tx), stopped))
            })
            .map_err(Error::Runtime)?;
        let mut decoding = (0..decoders())
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("unredeemed-decode-{i}"))
                    .spawn_scoped(s, worker)
            })
            .collect::<std::io::Result<Vec<_>>>();
        let panicked = match &mut decoding {
            Ok(handles) => handles.drain(..).find_map(|h| h.join().err()),
            Err(_) => None,
        };
        // Done, or stopped: the feeder has nothing more to do either way.
        stop.abort();
        if let Some(p) = panicked {
            std::panic::resume_unwind(p);
        }
        decoding.map_err(Error::Runtime)?;
        // Aborted or not, the feeder is done; only its runtime can have failed.
        match feeding.join() {
            Ok(fed) => fed.map(|_| ()),
            Err(p) => std::panic::resume_unwind(p),
        }
    });
    fed
}

/// The feeder: hits and fetches in key order, at most [`IN_FLIGHT`] ahead of the decoders.
async fn feed<F, Fut>(
    todo: &[&ArchiveObject],
    hits: BTreeMap<usize, Entry>,
    fetch: F,
    tx: mpsc::Sender<(usize, Step)>,
) where
    F: Fn(ArchiveObject) -> Fut,
    Fut: std::future::Future<Output = Result<Got>> + Send + 'static,
{
    // Each object is copied as the stream reaches it: a few ahead of the decoders.
    let objects = todo.iter().copied().cloned();
    let mut hits = hits;
    let steps = futures::stream::iter(objects.enumerate())
        .map(move |(i, obj)| match hits.remove(&i) {
            Some(entry) => futures::future::ready((i, Step::Hit(entry))).left_future(),
            None => {
                // Its own task: fetches proceed in parallel, also while this one waits.
                let key = obj.key.clone();
                let handle = tokio::spawn(fetch(obj));
                async move {
                    // A panic in the fetch (parsing the footer) is the object's failure.
                    let fetched = handle.await.unwrap_or_else(|e| {
                        Err(match e.try_into_panic() {
                            Ok(p) => Error::panicked(&key, p.as_ref()),
                            Err(e) => Error::Internal(format!("fetch of `{key}` ended: {e}")),
                        })
                    });
                    (i, Step::Fetched(fetched))
                }
                .right_future()
            }
        })
        // With the one waiting in the channel: IN_FLIGHT objects not yet handed out.
        .buffered(IN_FLIGHT - 1);
    futures::pin_mut!(steps);
    // Room in the channel first, so that no object is held outside both.
    while let Ok(permit) = tx.reserve().await {
        match steps.next().await {
            Some(step) => permit.send(step),
            None => break,
        }
    }
    // Err: the decoders stopped (a fatal outcome), nothing more is wanted.
}
