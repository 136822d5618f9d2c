//! Hot stages, on archives from the shared generator: scan + filter over a mostly-noise archive,
//! JSON field extraction over an archive of guest events only, the anti-joins of both readings,
//! and the baseline. Run with `cargo bench --bench stages`; results go to BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use unredeemed::job::{AsOf, RunJob};
use unredeemed::progress::Progress;
use unredeemed::time::{parse_duration, parse_instant};
use unredeemed::{findings, Extracted, GenSpec, Reader, Semantics, Window};

fn archive(dir: &std::path::Path, rows_per_day: u32, invites_per_day: f64) -> u64 {
    let spec = GenSpec {
        tenants: 3,
        days: 30,
        start: parse_instant("2026-01-01").unwrap(),
        rows_per_day,
        invites_per_day,
        seed: 1,
        nested: false,
        rows_per_file: 1_000_000,
        format: unredeemed::GenFormat::Parquet,
        gzip: false,
    };
    unredeemed::generate(&spec, dir.to_str().unwrap(), &[])
        .unwrap()
        .rows
}

/// Listing and the whole scan of `dir` (no cache, no cut), with `reader`.
fn scan(dir: &std::path::Path, reader: Reader) -> Extracted {
    let job = RunJob {
        archive: dir.to_string_lossy().into_owned(),
        // Not written to: `scan` only resolves it.
        out: std::env::temp_dir().to_string_lossy().into_owned(),
        storage_options: vec![],
        skip_bad_files: false,
        cache: None,
        plan: None,
        require_cached: false,
        as_of: AsOf::Latest,
        lookback: parse_duration("14d").unwrap(),
        threshold: parse_duration("5d").unwrap(),
        semantics: Semantics::Intended,
        since: None,
        folder_skew: 0,
        tenants: vec![],
        quiet: true,
        rule: unredeemed::Rule::builtin(),
        exclusions: None,
        reader,
    };
    unredeemed::scan(&job, None, &Progress::new(true))
        .unwrap()
        .x
}

fn stages(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("stages");
    g.sample_size(10);

    // Scan + filter: ~0.1% guest events among noise, like a real archive.
    let noise = dir.path().join("noise");
    let rows = archive(&noise, 5_000, 3.0);
    // Both object readers, in the same run: the late reader decompresses only the pages that
    // hold a guest event, polars' decodes every needed column whole.
    let guests = dir.path().join("guests");
    let guest_rows = archive(&guests, 0, 400.0);
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
            b.iter(|| findings(&events.events, w, semantics).unwrap())
        });
    }
    g.bench_function("baseline_events", |b| {
        b.iter(|| {
            let ttr =
                unredeemed::time_to_redeem(&events.events, as_of, Semantics::Intended).unwrap();
            let tenants: Vec<String> = events.tenant_rows.keys().cloned().collect();
            let keys = unredeemed::tenant_keys(&events.events, &tenants).unwrap();
            unredeemed::by_tenant(&ttr, &keys).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
