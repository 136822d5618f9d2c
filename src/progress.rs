//! Progress on stderr while listing and scanning: objects, bytes, rows, rate and ETA. Hidden
//! when stderr is not a terminal or with `--quiet`; warnings print above the bar.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    quiet: bool,
    objects: AtomicUsize,
    total: AtomicUsize,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Progress {
            bar: ProgressBar::with_draw_target(None, target),
            quiet,
            objects: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        }
    }

    /// A line on stderr (never when quiet).
    pub fn log(&self, msg: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("unredeemed: {msg}"));
        }
    }

    /// Warnings print even when quiet: they say something was left out.
    pub fn warn(&self, msg: &str) {
        self.bar.suspend(|| eprintln!("unredeemed: warning: {msg}"));
    }

    pub fn start(&self, objects: usize, bytes: u64) {
        self.bar.set_length(bytes);
        self.bar.set_position(0);
        let style = ProgressStyle::with_template(
            "{spinner} scanning [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_message(format!("0/{objects} objects"));
        self.objects.store(0, Ordering::Relaxed);
        self.total.store(objects, Ordering::Relaxed);
    }

    pub fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
        self.objects.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rows(&self, rows: u64) {
        self.bar.set_message(format!(
            "{}/{} objects, {rows} rows",
            self.objects.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed)
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
