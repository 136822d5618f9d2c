//! Hot stages, on archives from the shared generator: scan + filter over a mostly-noise archive,
//! JSON field extraction over an archive of guest events only, the anti-joins of both readings,
//! and the baseline. Run with `cargo bench --bench stages`; results go to BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use unredeemed::detect::{self, Semantics, Window};
use unredeemed::extract::{self, Reader, ScanFilter, ScanPlan};
use unredeemed::generate::{generate, GenSpec};
use unredeemed::progress::Progress;
use unredeemed::prune::TimeWindow;
use unredeemed::source;
use unredeemed::timefmt::{parse_duration, parse_instant};

fn archive(
    dir: &std::path::Path,
    rows_per_day: u32,
    invites_per_day: f64,
) -> (source::Location, u64) {
    let spec = GenSpec {
        tenants: 3,
        days: 30,
        start: parse_instant("2026-01-01").unwrap(),
        rows_per_day,
        invites_per_day,
        seed: 1,
        nested: false,
        rows_per_file: 1_000_000,
    };
    let out = source::resolve(dir.to_str().unwrap(), &[], true).unwrap();
    let stats = generate(&spec, &out).unwrap();
    (out, stats.rows)
}

fn scan(loc: &source::Location, reader: Reader) -> extract::Extracted {
    let listing = source::list_archive(loc, &TimeWindow::default()).unwrap();
    let progress = Progress::new(true);
    let filter = ScanFilter::default();
    let plan = ScanPlan {
        filter: &filter,
        cache: None,
        window: TimeWindow::default(),
        skip_bad_files: false,
        progress: &progress,
        reader,
    };
    extract::extract_archive(loc, &listing, &plan).unwrap()
}

fn stages(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("stages");
    g.sample_size(10);

    // Scan + filter: ~0.1% guest events among noise, like a real archive.
    let (noise, rows) = archive(&dir.path().join("noise"), 5_000, 3.0);
    // Both object readers, in the same run: the late reader decompresses only the pages that
    // hold a guest event, polars' decodes every needed column whole.
    let (guests, guest_rows) = archive(&dir.path().join("guests"), 0, 400.0);
    for (name, reader) in [("late", Reader::Late), ("polars", Reader::Polars)] {
        g.throughput(Throughput::Elements(rows));
        g.bench_function(format!("scan_filter_rows_{name}"), |b| {
            b.iter(|| scan(&noise, reader))
        });
        // JSON field extraction: an archive of guest events only, so every row is parsed.
        g.throughput(Throughput::Elements(guest_rows));
        g.bench_function(format!("json_extract_rows_{name}"), |b| {
            b.iter(|| scan(&guests, reader))
        });
    }

    let events = scan(&guests, Reader::Auto);
    let n = events.events.height() as u64;
    let as_of = events.max_time.unwrap();
    let w = Window {
        as_of,
        lookback: parse_duration("14d").unwrap(),
        threshold: parse_duration("5d").unwrap(),
    };
    g.throughput(Throughput::Elements(n));
    for semantics in [Semantics::Intended, Semantics::Sentinel] {
        g.bench_function(format!("anti_join_{}_events", semantics.as_str()), |b| {
            b.iter(|| detect::findings(&events.events, w, semantics).unwrap())
        });
    }
    g.bench_function("baseline_events", |b| {
        b.iter(|| {
            let ttr = unredeemed::baseline::time_to_redeem(&events.events, as_of).unwrap();
            let tenants: Vec<String> = events.tenant_rows.keys().cloned().collect();
            unredeemed::baseline::by_tenant(&ttr, &tenants).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
