//! Archive shapes the reader must take in its stride: JSON text vs nested dynamic columns,
//! timestamp units and zones, column order and extra columns, hive-style folder names.

use std::path::Path;

use crate::common::*;
use polars::prelude::*;
use unredeemed::time::parse_instant;
use unredeemed::GenSpec;

const A: &str = "tenant-a";
const G: &str = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
const G2: &str = "omar_adatum.org#EXT#@contoso.onmicrosoft.com";
const ADMIN: &str = "admin@contoso.com";

fn spec(nested: bool) -> GenSpec {
    GenSpec {
        tenants: 3,
        days: 40,
        start: parse_instant("2026-01-01").unwrap(),
        rows_per_day: 60,
        invites_per_day: 4.0,
        seed: 7,
        nested,
        rows_per_file: 100_000,
        format: unredeemed::GenFormat::Parquet,
        gzip: false,
    }
}

/// Every Parquet output under `out`, keyed by relative path.
fn outputs(out: &Path) -> Vec<(String, DataFrame)> {
    tree(out)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".parquet"))
        .map(|(name, _)| {
            let df = read_parquet(&out.join(&name));
            (name, df)
        })
        .collect()
}

#[test]
fn json_text_and_nested_columns_give_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut results = vec![];
    for nested in [false, true] {
        let archive = dir.path().join(format!("archive-{nested}"));
        generate_local(&spec(nested), &archive);
        let any = std::fs::read_dir(archive.join("y=2026/m=01/d=05"))
            .unwrap()
            .next()
            .unwrap();
        let schema = read_parquet(&any.unwrap().path()).schema().clone();
        let tr = schema.get("TargetResources").unwrap();
        assert_eq!(
            matches!(tr, DataType::List(_)),
            nested,
            "layout of TargetResources: {tr}"
        );
        for semantics in [
            unredeemed::Semantics::Intended,
            unredeemed::Semantics::Sentinel,
        ] {
            let out = dir
                .path()
                .join(format!("out-{nested}-{}", semantics.as_str()));
            let o = Opts {
                semantics,
                as_of: None,
                ..Opts::default()
            };
            unredeemed::run(&job(&archive, &out, &o)).unwrap();
            let mut s = summary(&out);
            s.as_object_mut().unwrap().remove("archive");
            s.as_object_mut().unwrap().remove("bytes");
            s.as_object_mut().unwrap().remove("bytes_read");
            s.as_object_mut().unwrap().remove("timings");
            results.push((nested, semantics, outputs(&out), s));
        }
    }
    let (json, nested) = results.split_at(2);
    for (a, b) in json.iter().zip(nested) {
        assert_eq!(a.1, b.1);
        assert_eq!(a.3, b.3, "summary differs for {:?}", a.1);
        assert_eq!(a.2.len(), b.2.len());
        for ((ka, da), (kb, db)) in a.2.iter().zip(&b.2) {
            assert_eq!(ka, kb);
            assert!(da.equals_missing(db), "{ka} differs:\n{da}\n{db}");
        }
    }
    // The comparison is not vacuous: both readings find something in this archive.
    assert!(json[0].3["findings"].as_u64().unwrap() > 0);
    assert!(json[1].3["findings"].as_u64().unwrap() > 0);
    assert!(json[0].3["duplicates_dropped"].as_u64().unwrap() > 0);
}

#[test]
fn generator_is_deterministic_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(false);
    s.days = 3;
    generate_local(&s, &dir.path().join("a"));
    generate_local(&s, &dir.path().join("b"));
    s.seed += 1;
    generate_local(&s, &dir.path().join("c"));
    let f = "y=2026/m=01/d=02/part-00000.parquet";
    let read = |d: &str| std::fs::read(dir.path().join(d).join(f)).unwrap();
    assert_eq!(read("a"), read("b"));
    assert_ne!(read("a"), read("c"));
}

fn rows() -> Vec<Audit> {
    vec![
        invite(A, "i1", &at("-7d"), G, ADMIN),
        invite(A, "i2", &at("-8d"), G2, ADMIN),
        redeem(A, "r2", &at("-6d"), G2),
        invite(A, "i3", &at("-1d"), G2, ADMIN),
    ]
}

fn run_frame(df: DataFrame, rel: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_parquet(&df, &archive.join(rel));
    let out = dir.path().join("out");
    unredeemed::run(&job(&archive, &out, &Opts::default())).unwrap();
    finding_ids(&out)
}

#[test]
fn any_timestamp_unit_and_zone_reads_the_same() {
    let base = frame(&rows());
    let expected = run_frame(base.clone(), "p.parquet");
    assert_eq!(expected, ["i1"]);
    let variants = [
        DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)),
        DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
        DataType::Datetime(TimeUnit::Microseconds, None),
        DataType::Datetime(TimeUnit::Nanoseconds, None),
        DataType::Datetime(
            TimeUnit::Microseconds,
            TimeZone::opt_try_new(Some("Europe/Paris")).unwrap(),
        ),
    ];
    for dtype in variants {
        let df = base
            .clone()
            .lazy()
            .with_column(col("TimeGenerated").cast(dtype.clone()))
            .collect()
            .unwrap();
        assert_eq!(
            run_frame(df, "p.parquet"),
            expected,
            "TimeGenerated as {dtype}"
        );
    }
}

#[test]
fn int96_timestamps_read_the_same() {
    // Written by pyarrow with use_deprecated_int96_timestamps (see tests/fixtures/README.md).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/int96.parquet");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    unredeemed::run(&job(&fixture, &out, &Opts::default())).unwrap();
    assert_eq!(finding_ids(&out), ["i1"]);
}

#[test]
fn column_order_extra_columns_and_hive_folders_do_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let all = frame(&rows());
    // One object with reversed columns and extras, one plain, under folder names that look
    // like partition keys, including a misleading `TenantId=`.
    let mut first = all.slice(0, 2);
    let names: Vec<PlSmallStr> = first
        .get_column_names()
        .into_iter()
        .rev()
        .cloned()
        .collect();
    first = first.select(names).unwrap();
    first
        .with_column(Column::new("Extra".into(), vec![1i32, 2]))
        .unwrap();
    write_parquet(
        &first,
        &archive.join("TenantId=somebody-else/y=2026/m=02/d=21/a.parquet"),
    );
    write_parquet(
        &all.slice(2, 2),
        &archive.join("WorkspaceResourceId=/x/y=2026/m=02/d=23/h=00/m=00/PT05M.parquet"),
    );
    let out = dir.path().join("out");
    unredeemed::run(&job(&archive, &out, &Opts::default())).unwrap();
    assert_eq!(finding_ids(&out), ["i1"]);
    assert!(out.join("tenant=tenant-a").is_dir());
    assert!(!out.join("tenant=somebody-else").exists());
    assert_eq!(summary(&out)["files"], 2);
}
