//! The late-materialized reader against polars' own: the same events, row counts and latest
//! time for every page layout, encoding, codec, null pattern and row-group cut, and a clean
//! fallback for layouts it does not read.

use std::path::Path;

use crate::common::*;
use polars::prelude::*;
use unredeemed::columns::ev;
use unredeemed::progress::Progress;
use unredeemed::time::parse_instant;
use unredeemed::GenSpec;
use unredeemed::Reader;
use unredeemed::Scanned;

fn scan(archive: &Path, reader: Reader, since: Option<&str>, tenants: &[&str]) -> Scanned {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(archive, &dir.path().join("out"), &Opts::default());
    j.reader = reader;
    j.since = since.map(ts);
    j.tenants = tenants.iter().map(|t| t.to_string()).collect();
    unredeemed::scan(&j, None, &Progress::new(true))
        .unwrap_or_else(|e| panic!("{reader:?} on {}: {e}", archive.display()))
}

/// `spec`'s archive in a temporary folder: (folder, archive).
fn generated(spec: &GenSpec) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    generate_local(spec, &archive);
    (dir, archive)
}

/// A Parquet archive's spec from 2026-01-01, an object per day.
fn spec(
    tenants: u32,
    days: u32,
    rows_per_day: u32,
    invites_per_day: f64,
    seed: u64,
    nested: bool,
) -> GenSpec {
    GenSpec {
        tenants,
        days,
        start: parse_instant("2026-01-01").unwrap(),
        rows_per_day,
        invites_per_day,
        seed,
        nested,
        rows_per_file: 100_000,
        format: unredeemed::GenFormat::Parquet,
        gzip: false,
    }
}

/// Events in a canonical order, for comparison.
fn sorted(events: &DataFrame) -> DataFrame {
    events
        .sort(
            [ev::TENANT, ev::ID, ev::TIME, ev::TR_UPN, ev::INIT_UPN],
            SortMultipleOptions::default().with_nulls_last(true),
        )
        .unwrap()
}

/// Both readers give the same events and statistics; returns how many events.
fn assert_readers_agree(archive: &Path, since: Option<&str>, tenants: &[&str]) -> usize {
    let late = scan(archive, Reader::Late, since, tenants);
    let polars = scan(archive, Reader::Polars, since, tenants);
    let (a, b) = (sorted(&late.x.events), sorted(&polars.x.events));
    assert!(
        a.equals_missing(&b),
        "events differ on {}:\nlate {a}\npolars {b}",
        archive.display()
    );
    assert_eq!(late.x.max_time, polars.x.max_time);
    assert_eq!(late.x.tenant_rows, polars.x.tenant_rows);
    assert_eq!(late.x.metrics.rows_scanned, polars.x.metrics.rows_scanned);
    assert_eq!(late.x.duplicates_dropped, polars.x.duplicates_dropped);
    assert_eq!(late.x.unparseable_json, polars.x.unparseable_json);
    assert_eq!(late.tenants, polars.tenants);
    a.height()
}

#[test]
fn readers_agree_on_generated_archives() {
    for (seed, tenants, days) in [(1, 3, 20), (2, 1, 8)] {
        let (_dir, archive) = generated(&spec(tenants, days, 3_000, 6.0, seed, false));
        let n = assert_readers_agree(&archive, None, &[]);
        assert!(n > 50, "{n} events");
        // The tenant and time cut are applied in the late reader too.
        let first = scan(&archive, Reader::Polars, None, &[]).tenants[0].clone();
        let cut = assert_readers_agree(&archive, Some("2026-01-05T12:00:00Z"), &[&first]);
        assert!(cut > 0 && cut < n, "{cut} of {n}");
    }
}

const ROWS: usize = 12_000;

/// One column of `ROWS` values; `None` where `nulls` says so.
fn strings(name: &str, f: impl Fn(usize) -> Option<String>) -> Column {
    Column::new(
        name.into(),
        (0..ROWS).map(f).collect::<Vec<Option<String>>>(),
    )
}

/// Candidates: the first and last rows, runs at multiples of 97 (pages of a few KiB hold a few
/// dozen rows), and a dense block.
fn is_candidate(i: usize) -> bool {
    i == 0 || i == ROWS - 1 || i % 97 < 2 || (5000..5040).contains(&i)
}

/// A filler row's value: all distinct (`plain`), or repeating.
fn filler(plain: bool, i: usize, what: &str) -> String {
    if plain {
        format!("{what}-{i}")
    } else {
        format!("{what}-{}", i % 3)
    }
}

/// Row `i`'s `TargetResources`: nulls, JSON that does not parse, empty lists, guests.
fn targets(i: usize, plain_filler: bool) -> Option<String> {
    if i % 17 == 9 {
        return None;
    }
    Some(if is_candidate(i) {
        match i % 23 {
            0 => "not json [".to_string(),
            1 => "[]".to_string(),
            _ => format!(
                r#"[{{"userPrincipalName":"guest{}_ext.com#EXT#@t.onmicrosoft.com","displayName":"Guest {i}"}}]"#,
                i % 50
            ),
        }
    } else {
        format!(
            r#"[{{"id":"{}","type":"User"}}]"#,
            filler(plain_filler, i, "obj")
        )
    })
}

/// Row `i`'s `InitiatedBy`: nulls, apps, users.
fn initiated(i: usize) -> Option<String> {
    if i % 19 == 7 {
        return None;
    }
    Some(if i.is_multiple_of(8) {
        r#"{"app":{"displayName":"Sync"}}"#.to_string()
    } else {
        format!(
            r#"{{"user":{{"userPrincipalName":"admin{}@t.com","ipAddress":"10.0.0.{}"}}}}"#,
            i % 4,
            i % 200
        )
    })
}

/// An object of `ROWS` rows, times ascending, with candidates at the edges of the object and
/// of many pages, spelled in every case and with every kind of null. `plain_filler`: the
/// filler rows' values are all distinct, so the writer falls back from dictionary to PLAIN
/// pages even for the narrow columns; otherwise the wide columns repeat and are
/// dictionary-encoded.
fn tricky_frame(plain_filler: bool) -> DataFrame {
    let filler = |i: usize, what: &str| filler(plain_filler, i, what);
    let t0 = ts("2026-02-01T00:00:00Z") / 1_000;
    let times: Vec<Option<i64>> = (0..ROWS)
        .map(|i| (i % 1013 != 5).then_some(t0 + i as i64 * 60_000_000))
        .collect();
    DataFrame::new_infer_height(vec![
        strings("TenantId", |i| match i % 7 {
            0 if i % 5 == 0 => None,
            0 => Some(String::new()),
            1 | 2 => Some("tenant-b".into()),
            _ => Some("tenant-a".into()),
        }),
        strings("Id", |i| (i % 11 != 3).then(|| format!("id-{}", i % 9000))),
        Column::new("TimeGenerated".into(), times)
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap(),
        strings("Category", |i| {
            Some(if is_candidate(i) {
                [
                    "UserManagement",
                    "usermanagement",
                    "USERMANAGEMENT",
                    "Uſermanagement",
                ][i % 4]
                    .to_string()
            } else if i % 13 == 0 {
                "UserManagement".to_string()
            } else {
                filler(i, "Policy")
            })
        }),
        strings("OperationName", |i| {
            if i % 29 == 4 {
                return None;
            }
            Some(if is_candidate(i) {
                [
                    "Invite external user",
                    "Redeem external user invite",
                    "INVITE EXTERNAL USER",
                    "redeem External User invite",
                    "Invite external user ",
                ][i % 5]
                    .to_string()
            } else {
                filler(i, "Update user")
            })
        }),
        strings("Result", |i| match i % 6 {
            0 => None,
            1 => Some("failure".into()),
            2 => Some("SUCCESS".into()),
            _ => Some("success".into()),
        }),
        strings("TargetResources", |i| targets(i, plain_filler)),
        strings("InitiatedBy", initiated),
    ])
    .unwrap()
}

fn write_with(
    df: &DataFrame,
    path: &Path,
    codec: ParquetCompression,
    page: Option<usize>,
    group: Option<usize>,
) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    ParquetWriter::new(&mut f)
        .with_compression(codec)
        .with_data_page_size(page)
        .with_row_group_size(group)
        .finish(&mut df.clone())
        .unwrap();
}

#[test]
fn readers_agree_on_every_page_layout_encoding_and_codec() {
    let codecs = [
        ParquetCompression::Zstd(None),
        ParquetCompression::Snappy,
        ParquetCompression::Uncompressed,
        ParquetCompression::Gzip(None),
        ParquetCompression::Lz4Raw,
        ParquetCompression::Brotli(None),
    ];
    let mut cases = vec![];
    for plain_filler in [false, true] {
        for codec in codecs {
            cases.push((plain_filler, codec, Some(2048), Some(2_500)));
        }
        cases.push((plain_filler, ParquetCompression::Zstd(None), None, None));
        cases.push((
            plain_filler,
            ParquetCompression::Zstd(None),
            Some(64 * 1024),
            Some(5_000),
        ));
    }
    let mut pruned_somewhere = false;
    for (plain_filler, codec, page, group) in cases {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        write_with(
            &tricky_frame(plain_filler),
            // No date folders: the window must be cut by row-group statistics alone.
            &archive.join("part-0.parquet"),
            codec,
            page,
            group,
        );
        let what = format!("{codec:?} page {page:?} group {group:?} plain {plain_filler}");
        // The layouts the case is meant to produce: dictionary or PLAIN pages.
        let meta = polars_parquet::parquet::read::read_metadata(
            &mut std::fs::File::open(archive.join("part-0.parquet")).unwrap(),
        )
        .unwrap();
        let has_dict = |name: &str| {
            meta.row_groups.iter().all(|rg| {
                rg.columns_under_root_iter(name)
                    .unwrap()
                    .all(|c| c.dictionary_page_offset().is_some())
            })
        };
        for name in ["Category", "OperationName", "TargetResources"] {
            assert_eq!(has_dict(name), !plain_filler, "{what}: {name}");
        }
        let n = assert_readers_agree(&archive, None, &[]);
        assert!(n > 200, "{what}: {n} events");
        // A window that prunes the first row groups by their statistics, and a tenant cut
        // that keeps the empty and null TenantId.
        let since = Some("2026-02-05T00:00:00Z");
        let cut = assert_readers_agree(&archive, since, &["", "tenant-b"]);
        assert!(cut > 0 && cut < n, "{what}: {cut} of {n}");
        if meta.row_groups.len() >= 3 {
            pruned_somewhere = true;
            let pruned = scan(&archive, Reader::Late, since, &[])
                .x
                .metrics
                .row_groups_pruned;
            assert!(pruned > 0, "{what}");
        }
    }
    assert!(pruned_somewhere);
}

/// The floor benchmark's measure (`examples/floor.rs`): all of `OperationName`, of the other
/// columns only the pages holding a candidate (zstd ones up to the last). It reads every row,
/// never more than the late reader decompresses, and less where that reader reads a narrow
/// column whole.
#[test]
fn the_decompression_floor_is_below_what_the_late_reader_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (true, ParquetCompression::Zstd(None), true),
        (false, ParquetCompression::Zstd(None), true),
        // Decoded up to the last wanted value, as zstd.
        (true, ParquetCompression::Snappy, true),
        // Whole pages either way: the floor is less only by the pages without a candidate.
        (true, ParquetCompression::Gzip(None), false),
    ];
    for (i, (plain_filler, codec, fewer_bytes)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.parquet"));
        write_with(
            &tricky_frame(plain_filler),
            &path,
            codec,
            Some(2048),
            Some(2_500),
        );
        let bytes = bytes::Bytes::from(std::fs::read(&path).unwrap());
        let f = unredeemed::decompression_floor(&bytes).unwrap();
        let what = format!("{codec:?} plain {plain_filler}: {f:?}");
        assert_eq!(f.rows, ROWS as u64, "{what}");
        let candidates = (0..ROWS).filter(|&i| is_candidate(i)).count() as u64;
        assert!(f.candidates > 0 && f.candidates <= candidates, "{what}");
        assert!(f.floor.pages <= f.reader.pages, "{what}");
        assert!(
            f.floor.bytes > 0 && f.floor.time > std::time::Duration::ZERO,
            "{what}"
        );
        match fewer_bytes {
            true => assert!(f.floor.bytes < f.reader.bytes, "{what}"),
            false => assert!(f.floor.bytes <= f.reader.bytes, "{what}"),
        }
    }
    let broken = bytes::Bytes::from_static(b"PAR1 not a footer PAR1");
    assert!(unredeemed::decompression_floor(&broken).is_err());
}

/// The same archive rewritten by DuckDB (another writer: `PLAIN_DICTIONARY` pages, `UTF8`
/// converted types, its own page and row-group sizes), zstd and snappy: the late reader reads
/// it, and both readers agree with each other and with the original.
#[test]
fn duckdb_written_objects_read_the_same() {
    let python = venv_python("tests/requirements.txt");
    let (dir, archive) = generated(&spec(2, 10, 2_000, 8.0, 11, false));
    let original = assert_readers_agree(&archive, None, &[]);
    for (codec, group) in [("zstd", 3_000), ("snappy", 100_000)] {
        let out = dir.path().join(format!("duckdb-{codec}"));
        std::fs::create_dir_all(&out).unwrap();
        let script = format!(
            "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_parquet('{}/**/*.parquet') \
             ORDER BY TimeGenerated) TO '{}/all.parquet' (FORMAT parquet, COMPRESSION {codec}, \
             ROW_GROUP_SIZE {group})\")",
            archive.display(),
            out.display()
        );
        let status = std::process::Command::new(&python)
            .args(["-c", &script])
            .status()
            .unwrap();
        assert!(status.success(), "duckdb could not write {codec}");
        let n = assert_readers_agree(&out, None, &[]);
        assert_eq!(n, original, "{codec}");
        let late = scan(&out, Reader::Late, None, &[]);
        let first = scan(&archive, Reader::Late, None, &[]);
        assert!(
            sorted(&late.x.events).equals_missing(&sorted(&first.x.events)),
            "{codec}"
        );
    }
}

#[test]
fn nested_layouts_fall_back_to_polars() {
    let (dir, archive) = generated(&spec(2, 6, 500, 5.0, 3, true));
    let out = dir.path().join("out");
    let mut j = job(&archive, &out, &Opts::default());
    j.reader = Reader::Late;
    let err = unredeemed::scan(&j, None, &Progress::new(true))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("late reader") && err.contains("TargetResources"),
        "{err}"
    );
    let auto = scan(&archive, Reader::Auto, None, &[]);
    let polars = scan(&archive, Reader::Polars, None, &[]);
    assert!(sorted(&auto.x.events).equals_missing(&sorted(&polars.x.events)));
    assert!(auto.x.events.height() > 10);
}

/// The same rows as objects large enough to be read ahead (one decoder per core, the kernel
/// reading each object ahead while the ones before it are decoded) and as small objects (twice
/// as many decoders, nothing read ahead): the same events, and every object read once.
#[test]
fn objects_read_ahead_give_what_small_objects_give() {
    let dir = tempfile::tempdir().unwrap();
    let archive = |rows_per_file: usize, name: &str| {
        let archive = dir.path().join(name);
        let spec = GenSpec {
            rows_per_file,
            ..spec(2, 8, 3_000, 3.0, 11, false)
        };
        let stats = generate_local(&spec, &archive);
        (archive, stats.files, stats.bytes / stats.files as u64)
    };
    let (large, large_files, large_mean) = archive(100_000, "large");
    let (small, small_files, small_mean) = archive(300, "small");
    // Read ahead from 256 KiB on (`archive::ahead`): one archive on each side.
    assert!(large_mean >= 256 << 10, "{large_mean} bytes per object");
    assert!(small_mean < 256 << 10, "{small_mean} bytes per object");
    let (a, b) = (
        scan(&large, Reader::Auto, None, &[]),
        scan(&small, Reader::Auto, None, &[]),
    );
    let (ea, eb) = (sorted(&a.x.events), sorted(&b.x.events));
    assert!(ea.height() > 20, "{} events", ea.height());
    assert!(ea.equals_missing(&eb), "large {ea}\nsmall {eb}");
    assert_eq!(a.x.max_time, b.x.max_time);
    assert_eq!(a.x.tenant_rows, b.x.tenant_rows);
    assert_eq!(a.x.metrics.rows_scanned, b.x.metrics.rows_scanned);
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    for (archive, files, decoders) in [
        (&large, large_files, cores),
        (&small, small_files, 2 * cores),
    ] {
        let out = dir.path().join("out");
        unredeemed::run(&job(archive, &out, &Opts::default())).unwrap();
        let s = summary(&out);
        assert_eq!(s["files"], files as u64, "{s}");
        assert_eq!(
            s["timings"]["objects_in_flight"],
            decoders.min(files as u64),
            "{s}"
        );
    }
}
