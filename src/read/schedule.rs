//! The scan's pipeline, and the job's concurrency model in one place:
//!
//! - **I/O** from a store runs on the tokio runtime (`archive::runtime`): a feeder task keeps
//!   object fetches running ahead, in key order, as many as [`Pace`] says (the store's latency
//!   over the decoders' pace, within a budget of bytes held), and hands each fetched object over
//!   a bounded channel. Cache hits never come here: the caller folds them as they are.
//! - **Decoding** runs on the scan's decoder threads, twice the cores: each takes the next
//!   object from the channel as soon as it is free (no batch barriers), so a slow object never
//!   holds up the others. They wait on the channel, never on a future.
//! - **Data-parallel work** (polars inside a decoder, the one extraction pass, cache reads and
//!   writes, building the reports) runs on polars' own rayon pool, which the job shares rather
//!   than adding one of its own.
//!
//! A local folder has no feeder: each of one decoder per core reads its next object itself,
//! while the kernel reads a later one ahead ([`run_local`]).
//!
//! Results go to the caller tagged with the object's index as they come; the caller makes its
//! result independent of their order, so the first bad object reported is the first in key
//! order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::{AbortHandle, Abortable};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::pace::{charge, Pace, BUDGET_KIB};
use crate::archive::{block_on, throttled, ArchiveObject, Got, ReadAhead, AHEAD_AT_LEAST};
use crate::error::{guarded, Error, Result};

/// Decoder threads: twice the cores, because a decoder often waits (for its object's fetch,
/// or inside polars for its own workers) and the cores should not. Measured: 2 threads
/// 3.8–4.3 s, 4–8 threads 3.3–3.5 s on the 10 M-row benchmark (BENCHMARKS.md).
fn decoders() -> usize {
    2 * cores()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A fetch as it ended, on its way to a decoder, with its share of the byte budget (released
/// once decoded).
struct Handed {
    i: usize,
    got: Result<Got>,
    held: OwnedSemaphorePermit,
}

/// How the fetches were paced, for `summary.json`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Paced {
    /// The most objects fetched ahead at once.
    pub(crate) widest_window: usize,
    /// Requests the store throttled (503, 429), each retried.
    pub(crate) throttled: u64,
}

/// Runs `decode` on every object of `todo` (index and object) as `fetch` fetched it, paced by the
/// store's latency when it is `remote` (a local folder: [`run_local`], reading ahead with
/// `ahead`). `decode` returns its
/// outcome and whether it is fatal: after a fatal outcome no further object is handed out. Each
/// outcome goes to `absorb` with its index as soon as it is decoded, in no particular order: none
/// is kept here, so memory does not grow with the number of objects.
pub(super) fn run<T, F, Fut>(
    remote: bool,
    ahead: Option<ReadAhead>,
    todo: &[(usize, &ArchiveObject)],
    fetch: F,
    decode: impl Fn(usize, Result<Got>) -> (T, bool) + Sync,
    absorb: impl FnMut(usize, T) + Send,
) -> Result<Paced>
where
    T: Send,
    F: Fn(ArchiveObject) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<Got>> + Send + 'static,
{
    if !remote {
        return run_local(todo, ahead, fetch, decode, absorb);
    }
    let (tx, rx) = mpsc::channel::<Handed>(1);
    // A fatal outcome stops the feeder at once, so no decoder waits for one more fetch.
    let (stop, stopped) = AbortHandle::new_pair();
    let rx = Mutex::new(rx);
    let throttled_before = throttled();
    let pace = Mutex::new(Pace::new(decoders(), throttled_before));
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
        let Some(Handed { i, got, held }) = next.filter(|h| h.i < fatal_at.load(Ordering::Relaxed))
        else {
            break;
        };
        let started = Instant::now();
        let (out, fatal) = decode(i, got);
        lock(&pace).decoded(started.elapsed());
        drop(held);
        if fatal {
            fatal_at.fetch_min(i, Ordering::Relaxed);
            stop.abort();
        }
        (absorb.lock().unwrap_or_else(PoisonError::into_inner))(i, out);
    };
    std::thread::scope(|s| -> Result<()> {
        // The feeder runs on a thread of its own, so it can borrow `todo`: an object is
        // copied only when its fetch starts, not the whole listing up front.
        let pace = &pace;
        let feeding = std::thread::Builder::new()
            .name("unredeemed-feed".into())
            .spawn_scoped(s, move || {
                block_on(Abortable::new(feed(todo, fetch, tx, pace), stopped))
            })
            .map_err(Error::Runtime)?;
        let (panicked, started) = decode_on(s, decoders(), &worker);
        // Done, or stopped: the feeder has nothing more to do either way.
        stop.abort();
        if let Some(p) = panicked {
            std::panic::resume_unwind(p);
        }
        started?;
        // Aborted or not, the feeder is done; only its runtime can have failed.
        match feeding.join() {
            Ok(fed) => fed.map(|_| ()),
            Err(p) => std::panic::resume_unwind(p),
        }
    })?;
    let widest_window = lock(&pace).widest;
    Ok(Paced {
        widest_window,
        throttled: throttled() - throttled_before,
    })
}

/// [`run`] on a local store: each decoder takes the next object in key order and fetches it
/// itself, on its own thread, outside the runtime (where object_store makes its file calls
/// inline). A local fetch is a few system calls, not a wait: handing it to the runtime and
/// the result back cost more (thread wake-ups, 8,000 context switches on 720 blobs) than it
/// hid. One decoder per core, as a decoder here never waits on another thread; that it does
/// not wait on the disk either, `ahead` has the kernel read the object as many places ahead as
/// there are decoders while they decode (twice as many decoders without it cost more CPU and
/// memory from the page cache, and waited on a cold disk less). At most one object per decoder
/// is held.
fn run_local<T, F, Fut>(
    todo: &[(usize, &ArchiveObject)],
    ahead: Option<ReadAhead>,
    fetch: F,
    decode: impl Fn(usize, Result<Got>) -> (T, bool) + Sync,
    absorb: impl FnMut(usize, T) + Send,
) -> Result<Paced>
where
    T: Send,
    F: Fn(ArchiveObject) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<Got>> + Send + 'static,
{
    // Objects mostly too small to read ahead keep twice as many decoders: one waiting on the
    // disk leaves the other its core.
    let sizes: u64 = todo.iter().map(|(_, o)| o.size).sum();
    let ahead = ahead.filter(|_| sizes / todo.len().max(1) as u64 >= AHEAD_AT_LEAST);
    let n = match ahead {
        Some(_) => cores(),
        None => decoders(),
    }
    .min(todo.len());
    let next = AtomicUsize::new(0);
    let fatal_at = AtomicUsize::new(usize::MAX);
    let absorb = Mutex::new(absorb);
    let worker = || loop {
        // Taken in key order: once an object is fatal, every later one is after it.
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(&(i, obj)) = todo.get(k) else { break };
        if i >= fatal_at.load(Ordering::Relaxed) {
            break;
        }
        if let (Some(a), Some(&(_, later))) = (&ahead, todo.get(k + n)) {
            a.hint(later);
        }
        // A panic in the fetch (parsing the footer) is the object's failure.
        let got = guarded(&obj.key, || futures::executor::block_on(fetch(obj.clone())));
        let (out, fatal) = decode(i, got);
        if fatal {
            fatal_at.fetch_min(i, Ordering::Relaxed);
        }
        (absorb.lock().unwrap_or_else(PoisonError::into_inner))(i, out);
    };
    std::thread::scope(|s| {
        let (panicked, started) = decode_on(s, n, &worker);
        if let Some(p) = panicked {
            std::panic::resume_unwind(p);
        }
        started
    })?;
    Ok(Paced {
        widest_window: n,
        throttled: 0,
    })
}

/// Runs `worker` on `n` decoder threads of `s` and waits for them all: the first panic among
/// them, and whether every thread could be started.
fn decode_on<'scope, 'env: 'scope>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    n: usize,
    worker: &'env (impl Fn() + Sync),
) -> (Option<Box<dyn std::any::Any + Send>>, Result<()>) {
    let decoding = (0..n)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("unredeemed-decode-{i}"))
                .spawn_scoped(s, worker)
        })
        .collect::<std::io::Result<Vec<_>>>();
    match decoding {
        Ok(handles) => (handles.into_iter().find_map(|h| h.join().err()), Ok(())),
        Err(e) => (None, Err(Error::Runtime(e))),
    }
}

fn lock(pace: &Mutex<Pace>) -> std::sync::MutexGuard<'_, Pace> {
    pace.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One object's fetch on a task of its own (fetches proceed in parallel, also while the
/// feeder waits), timed for the pace.
fn spawn_fetch<F, Fut>(
    fetch: &F,
    obj: ArchiveObject,
) -> impl std::future::Future<Output = (Result<Got>, Duration)>
where
    F: Fn(ArchiveObject) -> Fut,
    Fut: std::future::Future<Output = Result<Got>> + Send + 'static,
{
    let key = obj.key.clone();
    let fetching = fetch(obj);
    let handle = tokio::spawn(async move {
        let started = Instant::now();
        let got = fetching.await;
        (got, started.elapsed())
    });
    async move {
        // A panic in the fetch (parsing the footer) is the object's failure.
        handle.await.unwrap_or_else(|e| {
            let e = match e.try_into_panic() {
                Ok(p) => Error::panicked(&key, p.as_ref()),
                Err(e) => Error::Internal(format!("fetch of `{key}` ended: {e}")),
            };
            (Err(e), Duration::ZERO)
        })
    }
}

/// The feeder: fetches in key order, as many ahead of the decoders as the pace says and the
/// byte budget allows.
async fn feed<F, Fut>(
    todo: &[(usize, &ArchiveObject)],
    fetch: F,
    tx: mpsc::Sender<Handed>,
    pace: &Mutex<Pace>,
) where
    F: Fn(ArchiveObject) -> Fut,
    Fut: std::future::Future<Output = Result<Got>> + Send + 'static,
{
    let budget = Arc::new(Semaphore::new(BUDGET_KIB));
    let mut next = todo.iter().peekable();
    let mut ahead = FuturesOrdered::new();
    loop {
        let window = lock(pace).window(throttled());
        while ahead.len() < window {
            let Some(&&(i, obj)) = next.peek() else {
                break;
            };
            // Within the budget; with nothing ahead, wait for the decoders to free some.
            let want = charge(obj.size);
            let held = match budget.clone().try_acquire_many_owned(want) {
                Ok(held) => held,
                Err(_) if !ahead.is_empty() => break,
                Err(_) => match budget.clone().acquire_many_owned(want).await {
                    Ok(held) => held,
                    Err(_) => return,
                },
            };
            next.next();
            // Each object is copied as its fetch starts: a few ahead of the decoders.
            let fetching = spawn_fetch(&fetch, obj.clone());
            ahead.push_back(async move {
                let (got, took) = fetching.await;
                (Handed { i, got, held }, took)
            });
        }
        let Some((handed, took)) = ahead.next().await else {
            break;
        };
        lock(pace).fetched(took);
        // Err: the decoders stopped (a fatal outcome), nothing more is wanted.
        let Ok(permit) = tx.reserve().await else {
            break;
        };
        permit.send(handed);
    }
}
