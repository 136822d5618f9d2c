//! How far the scan fetches ahead of its decoders from a store (a local folder's decoders
//! read their objects themselves). Not a fixed count: the objects in flight follow Little's
//! law, the time a fetch takes over the time the decoders take per object, so a store 100 ms
//! away gets the requests in flight that hide its latency and a near one the few that keep
//! the decoders busy. The store's throttling (503, 429, counted before
//! object_store retries them) halves a ceiling that then grows back slowly, and a budget of
//! bytes held (fetched, not yet decoded) bounds memory whatever the window says.

use std::time::Duration;

/// Fewest objects fetched ahead: what kept the decoders busy on a local disk when it was
/// fetched from like a store (measured, the fixed count of the scan before).
pub(super) const MIN_WINDOW: usize = 8;

/// Most objects fetched ahead: a connection each, and Azure and S3 both serve hundreds per
/// client before they throttle.
pub(super) const MAX_WINDOW: usize = 256;

/// Bytes the scan holds in fetched objects at most (a JSON blob whole, a Parquet object's
/// needed ranges), in KiB: the semaphore's unit.
pub(super) const BUDGET_KIB: usize = 256 * 1024;

/// The budget an object takes: its size, but never more than an eighth of the budget, so
/// [`MIN_WINDOW`] objects always fit (the Parquet ranges read are most often a small part of
/// a large object, and a larger one is still read, alone).
pub(super) fn charge(size: u64) -> u32 {
    let kib = size.div_ceil(1024).max(1);
    let cap = (BUDGET_KIB / MIN_WINDOW) as u64;
    u32::try_from(kib.min(cap)).unwrap_or(u32::MAX)
}

/// A moving average that takes its first sample whole; `up` and `down` weigh a new sample
/// above or below it.
#[derive(Debug, Default, Clone, Copy)]
struct Average(Option<f64>);

impl Average {
    fn add(&mut self, x: f64, up: f64, down: f64) {
        self.0 = Some(match self.0 {
            Some(a) if x > a => a + up * (x - a),
            Some(a) => a + down * (x - a),
            None => x,
        });
    }
}

/// The measurements the window is sized from.
#[derive(Debug)]
pub(super) struct Pace {
    decoders: usize,
    /// Seconds from a fetch's start to its last byte, the quick ones: a fetch that queued
    /// behind others (at the store, in the blocking pool) says how busy it is, not how far;
    /// sized by it, the window would grow itself.
    fetch: Average,
    /// Seconds a decoder spends on a fetched object.
    decode: Average,
    /// What throttling leaves of [`MAX_WINDOW`].
    ceiling: f64,
    /// The store's count of throttled requests when last seen.
    throttled: u64,
    /// The widest window so far.
    pub(super) widest: usize,
}

impl Pace {
    /// The pace of a scan with `decoders`.
    pub(super) fn new(decoders: usize, throttled: u64) -> Self {
        Pace {
            decoders,
            fetch: Average::default(),
            decode: Average::default(),
            ceiling: MAX_WINDOW as f64,
            throttled,
            widest: MIN_WINDOW,
        }
    }

    pub(super) fn fetched(&mut self, took: Duration) {
        self.fetch.add(took.as_secs_f64(), 0.02, 0.5);
        // Additive increase: about four more objects per window's worth of fetches.
        self.ceiling = (self.ceiling + 4.0 / self.ceiling.max(1.0)).min(MAX_WINDOW as f64);
    }

    pub(super) fn decoded(&mut self, took: Duration) {
        // About the last ten objects.
        self.decode.add(took.as_secs_f64(), 0.1, 0.1);
    }

    /// Objects to keep in flight, given the store's count of throttled requests so far: each
    /// rise of it halves the ceiling (multiplicative decrease).
    pub(super) fn window(&mut self, throttled: u64) -> usize {
        if throttled > self.throttled {
            self.throttled = throttled;
            self.ceiling = (self.ceiling / 2.0).max(2.0);
        }
        let wanted = match (self.fetch.0, self.decode.0) {
            // Objects the decoders get through while one fetch runs, twice over for the
            // spread of fetch times.
            (Some(fetch), Some(decode)) => 2.0 * self.decoders as f64 * fetch / decode.max(50e-6),
            // Nothing decoded yet: slow start, whatever the store.
            _ => MIN_WINDOW as f64,
        };
        let w = (wanted.ceil() as usize).clamp(MIN_WINDOW, MAX_WINDOW);
        // Throttling may take it below the minimum: the store said so.
        let w = w.min(self.ceiling as usize).max(1);
        self.widest = self.widest.max(w);
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paced(fetch_ms: u64, decode_ms: u64) -> Pace {
        let mut p = Pace::new(4, 0);
        for _ in 0..50 {
            p.fetched(Duration::from_millis(fetch_ms));
            p.decoded(Duration::from_millis(decode_ms));
        }
        p
    }

    #[test]
    fn the_window_follows_latency_over_decode_time() {
        // A near store: fetches far quicker than decoding, the minimum.
        assert_eq!(paced(0, 5).window(0), MIN_WINDOW);
        // 25 ms a request, two requests an object, 5 ms to decode: 4 decoders need 80.
        assert_eq!(paced(50, 5).window(0), 80);
        // 100 ms: more than the maximum would be wanted.
        assert_eq!(paced(200, 5).window(0), MAX_WINDOW);
        // Nothing measured yet: the minimum.
        assert_eq!(Pace::new(4, 0).window(0), MIN_WINDOW);
    }

    #[test]
    fn fetches_that_queued_barely_move_the_latency() {
        let mut p = paced(50, 5);
        for _ in 0..5 {
            p.fetched(Duration::from_millis(200));
        }
        assert!(p.window(0) < 120, "{}", p.window(0));
        // A store that moved further away is followed, slowly.
        for _ in 0..200 {
            p.fetched(Duration::from_millis(100));
        }
        assert!(p.window(0) > 150, "{}", p.window(0));
    }

    #[test]
    fn throttling_halves_the_window_which_then_grows_back() {
        let mut p = paced(200, 5);
        assert_eq!(p.window(0), MAX_WINDOW);
        assert_eq!(p.window(7), MAX_WINDOW / 2, "a rise of the count halves it");
        assert_eq!(p.window(7), MAX_WINDOW / 2, "the same count does not");
        assert_eq!(p.window(8), MAX_WINDOW / 4);
        for n in 9..20 {
            p.window(n);
        }
        assert_eq!(p.window(19), 2, "never below two");
        for _ in 0..2_000 {
            p.fetched(Duration::from_millis(200));
        }
        assert!(p.window(19) > 100, "{}", p.window(19));
        assert_eq!(p.widest, MAX_WINDOW);
    }

    #[test]
    fn the_budget_always_fits_the_minimum_window() {
        assert_eq!(charge(0), 1);
        assert_eq!(charge(1025), 2);
        let most = charge(u64::MAX) as usize;
        assert!(most * MIN_WINDOW <= BUDGET_KIB);
    }
}
