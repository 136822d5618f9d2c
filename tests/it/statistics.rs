//! Statistics are claims too: an object whose footer statistics cannot be true is a damaged
//! object (exit 3 naming the object and the column, or with `--skip-bad-files` an entry in
//! `bad_files`), for both readers and never cached; it is never pruned on them. Statistics
//! without a defined order (INT96, the deprecated `min`/`max`) never prune. `summary.json`
//! says what pruned every object that contributed nothing.
//!
//! The damaged objects are real Parquet written by polars, with only their footer rewritten
//! (`restat`): the data pages are untouched, so every event in them is still readable.

use std::path::{Path, PathBuf};
use std::process::Output;

use polars::prelude::*;
use polars_parquet_format::Statistics;

use crate::common::*;

const A: &str = "tenant-a";
const B: &str = "tenant-b";
const ADMIN: &str = "admin@contoso.com";
const KEY: &str = "y=2026/m=02/d=20/part-0.parquet";

/// Two tenants' invites (one still pending at T0, a finding) and a redeem, in the week
/// before T0.
fn rows() -> Vec<Audit> {
    rows_after(0)
}

/// `rows()` moved `days` later.
fn rows_after(days: i64) -> Vec<Audit> {
    let g = |n: &str| format!("{n}_fabrikam.com#EXT#@contoso.onmicrosoft.com");
    let day = |d: i64| match d + days {
        d if d < 0 => at(&format!("-{}d", -d)),
        d => at(&format!("+{d}d")),
    };
    vec![
        invite(A, "i1", &day(-7), &g("jane"), ADMIN),
        invite(B, "i2", &day(-8), &g("omar"), ADMIN),
        redeem(B, "r2", &day(-6), &g("omar")),
    ]
}

/// `rows()` as one Parquet object, with polars' default statistics.
fn object() -> Vec<u8> {
    let mut buf = vec![];
    ParquetWriter::new(&mut buf)
        .finish(&mut frame(&rows()))
        .unwrap();
    buf
}

/// `bytes` with the statistics of every chunk of `column` rewritten by `edit` (the data pages
/// are left as they are).
fn restat(bytes: &[u8], column: &str, edit: impl Fn(&mut Statistics)) -> Vec<u8> {
    let mut edited = 0;
    let out = rewrite_footer(bytes, |meta| {
        for rg in &mut meta.row_groups {
            for c in &mut rg.columns {
                let m = c.meta_data.as_mut().unwrap();
                if m.path_in_schema == [column] {
                    edit(m.statistics.get_or_insert_with(no_statistics));
                    edited += 1;
                }
            }
        }
    });
    assert!(edited > 0, "no column `{column}`");
    out
}

/// Min and max swapped: each is still a value of the column, but min now lies above max.
fn swapped(s: &mut Statistics) {
    let (lo, hi) = (s.min_value.take(), s.max_value.take());
    assert!(lo.is_some() && hi.is_some() && lo != hi, "{s:?}");
    (s.min_value, s.max_value) = (hi, lo);
}

/// An archive of `objects` (key, bytes) in a fresh folder.
fn archive(objects: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    for (key, bytes) in objects {
        let at = root.join(key);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, bytes).unwrap();
    }
    (dir, root)
}

/// `unredeemed run` at T0 (with `extra` flags) over `archive` into `out`.
fn run(archive: &Path, out: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["run", "-q", "--as-of", T0, "--archive"])
        .arg(archive)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Every reader refuses `bytes` naming the object and `column`, and skips it with
/// `--skip-bad-files`, listing it with the reason.
fn refused_by_every_reader(bytes: &[u8], column: &str) {
    let (dir, root) = archive(&[(KEY, bytes)]);
    for reader in ["auto", "late", "polars"] {
        for window in [&[][..], &["--since", "2026-02-01"][..]] {
            let out = dir.path().join(format!("out-{reader}-{}", window.len()));
            let mut flags = vec!["--no-cache", "--reader", reader];
            flags.extend(window);
            let ended = run(&root, &out, &flags);
            let stderr = String::from_utf8_lossy(&ended.stderr);
            assert_eq!(
                ended.status.code(),
                Some(3),
                "{reader} {window:?}: {stderr}"
            );
            assert!(
                stderr.contains(KEY) && stderr.contains(&format!("`{column}`")),
                "{reader}: the error names the object and the column: {stderr}"
            );
            assert!(stderr.contains("cannot be true"), "{stderr}");
            flags.push("--skip-bad-files");
            succeeded(run(&root, &out, &flags));
            let s = summary(&out);
            let bad = s["bad_files"].as_array().unwrap();
            assert_eq!(bad.len(), 1, "{s}");
            assert_eq!(bad[0]["key"], KEY);
            let reason = bad[0]["reason"].as_str().unwrap();
            assert!(reason.contains(&format!("`{column}`")), "{reason}");
            assert_eq!(s["files_pruned"], 0, "{s}");
            assert_eq!(s["row_groups_pruned"], 0, "{s}");
        }
        never_cached(&root, &dir.path().join(format!("cache-{reader}")), reader);
    }
}

/// A run through a cache skips the object and writes no entry for it: a run that requires
/// every entry names it.
fn never_cached(root: &Path, cache: &Path, reader: &str) {
    let out = cache.with_extension("out");
    let cache = cache.to_str().unwrap();
    let with_cache = ["--cache", cache, "--reader", reader];
    succeeded(run(
        root,
        &out,
        &[&with_cache[..], &["--skip-bad-files"]].concat(),
    ));
    assert_eq!(summary(&out)["bad_files"][0]["key"], KEY);
    let again = run(
        root,
        &out,
        &[&with_cache[..], &["--require-cached"]].concat(),
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("1 of 1 object(s) have no cache entry") && stderr.contains(KEY),
        "{reader}: {stderr}"
    );
}

#[test]
fn a_time_minimum_after_its_maximum_is_damage_not_a_prune() {
    // As reported: min years after max (here about 3 years after T0), so that T prunes the
    // row group if the statistics are believed.
    let years = 3 * 365 * 86_400 * 1_000_000i64;
    let damaged = restat(&object(), "TimeGenerated", |s| {
        let hi = s.max_value.clone().expect("polars writes time statistics");
        let hi = i64::from_le_bytes(hi.try_into().unwrap());
        s.min_value = Some((hi + years).to_le_bytes().to_vec());
    });
    refused_by_every_reader(&damaged, "TimeGenerated");
}

#[test]
fn a_tenant_minimum_after_its_maximum_is_damage() {
    refused_by_every_reader(&restat(&object(), "TenantId", swapped), "TenantId");
}

/// `bytes` as if another writer had written them (polars' null counts are not read).
fn by_another_writer(bytes: &[u8]) -> Vec<u8> {
    rewrite_footer(bytes, |meta| {
        meta.created_by = Some("parquet-cpp-arrow version 21.0.0".into());
    })
}

#[test]
fn more_nulls_than_values_is_damage() {
    let damaged = restat(&object(), "OperationName", |s| s.null_count = Some(4));
    refused_by_every_reader(&by_another_writer(&damaged), "OperationName");
    let negative = restat(&object(), "TimeGenerated", |s| s.null_count = Some(-1));
    refused_by_every_reader(&by_another_writer(&negative), "TimeGenerated");
}

#[test]
fn polars_null_counts_are_not_read() {
    // polars' writer claims a dictionary chunk's nulls once per data page: real objects, read.
    let mut all = rows();
    for i in 0..3_000 {
        let mut other = invite(A, &format!("u{i}"), &at("-3d"), "x", ADMIN);
        other.operation = "Update user".into();
        other.result = if i % 3 == 0 { "" } else { "success" }.into();
        all.push(other);
    }
    let mut df = frame(&all);
    // Some `Result`s null (the empty ones), in a chunk of many small pages.
    let result = df.column("Result").unwrap().str().unwrap().clone();
    let result: StringChunked = result.iter().map(|v| v.filter(|v| !v.is_empty())).collect();
    df.with_column(result.with_name("Result".into()).into_column())
        .unwrap();
    let mut buf = vec![];
    ParquetWriter::new(&mut buf)
        .with_data_page_size(Some(2048))
        .finish(&mut df)
        .unwrap();
    let meta =
        polars_parquet::parquet::read::read_metadata(&mut std::io::Cursor::new(&buf)).unwrap();
    let result = meta.row_groups[0]
        .columns_under_root_iter("Result")
        .unwrap()
        .next()
        .unwrap();
    let claimed = match result.statistics(&meta.footer_buf).unwrap().unwrap() {
        polars_parquet::parquet::statistics::Statistics::Binary(s) => s.null_count,
        other => panic!("{other:?}"),
    };
    assert_eq!(meta.created_by.as_deref(), Some("Polars"));
    assert!(
        claimed > Some(3),
        "polars' writer claims {claimed:?} nulls of 3 values"
    );
    for reader in ["late", "polars"] {
        assert_eq!(findings_unpruned(&buf, reader), ["i1"], "{reader}");
    }
    // The same claim from another writer is damage.
    refused_by_every_reader(&by_another_writer(&buf), "Result");
}

#[test]
fn a_time_bound_beyond_nanoseconds_is_damage() {
    // Microseconds: i64::MAX of them is far beyond what a time in ns can hold.
    let damaged = restat(&object(), "TimeGenerated", |s| {
        s.max_value = Some(i64::MAX.to_le_bytes().to_vec());
    });
    refused_by_every_reader(&damaged, "TimeGenerated");
}

#[test]
fn damaged_statistics_are_never_cached() {
    let good = object();
    let damaged = restat(&good, "TimeGenerated", swapped);
    let (dir, root) = archive(&[("a/good.parquet", &good), ("b/damaged.parquet", &damaged)]);
    let cache = dir.path().join("cache");
    let cache = cache.to_str().unwrap();
    let out = dir.path().join("out");
    let first = run(&root, &out, &["--cache", cache]);
    assert_eq!(first.status.code(), Some(3));
    succeeded(run(&root, &out, &["--cache", cache, "--skip-bad-files"]));
    assert_eq!(summary(&out)["bad_files"][0]["key"], "b/damaged.parquet");
    // Only the good object has an entry: the damaged one is read (and refused) again.
    let again = run(&root, &out, &["--cache", cache, "--require-cached"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_ne!(again.status.code(), Some(0));
    assert!(
        stderr.contains("1 of 2 object(s) have no cache entry") && stderr.contains("b/damaged"),
        "{stderr}"
    );
}

/// Findings of a run over one object, read by `reader` with `--since` (so that statistics
/// would prune if they were used), which must succeed and prune no row group.
fn findings_unpruned(bytes: &[u8], reader: &str) -> Vec<String> {
    let (dir, root) = archive(&[(KEY, bytes)]);
    let out = dir.path().join("out");
    let flags = [
        "--no-cache",
        "--reader",
        reader,
        "--since",
        "2026-02-15",
        "--tenant",
        A,
    ];
    succeeded(run(&root, &out, &flags));
    let s = summary(&out);
    assert_eq!(s["row_groups_pruned"], 0, "{s}");
    assert_eq!(s["bad_files"].as_array().unwrap().len(), 0, "{s}");
    finding_ids(&out)
}

#[test]
fn deprecated_min_max_are_never_used() {
    // What parquet-mr before 1.10 wrote: only the deprecated fields, here claiming times long
    // before --since and tenants out of order.
    let long_ago = 1_000_000i64.to_le_bytes().to_vec();
    let old_time = restat(&object(), "TimeGenerated", |s| {
        (s.min_value, s.max_value) = (None, None);
        (s.min, s.max) = (Some(long_ago.clone()), Some(long_ago.clone()));
    });
    let old_tenant = restat(&object(), "TenantId", |s| {
        (s.min_value, s.max_value) = (None, None);
        (s.min, s.max) = (Some(b"zzz".to_vec()), Some(b"\xff".to_vec()));
    });
    for reader in ["late", "polars"] {
        assert_eq!(findings_unpruned(&old_time, reader), ["i1"], "{reader}");
        assert_eq!(findings_unpruned(&old_tenant, reader), ["i1"], "{reader}");
    }
}

#[test]
fn int96_statistics_are_never_used() {
    // INT96 (nanoseconds of the day, then the Julian day) of 1970-01-01: long before --since,
    // and "minimum above maximum" in any order one might guess.
    let epoch = |nanos: i64| {
        let mut v = nanos.to_le_bytes().to_vec();
        v.extend_from_slice(&2_440_588u32.to_le_bytes());
        v
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/int96.parquet");
    let damaged = restat(&std::fs::read(fixture).unwrap(), "TimeGenerated", |s| {
        (s.min_value, s.max_value) = (Some(epoch(2)), Some(epoch(1)));
    });
    // The late reader declines INT96: polars' reader takes it under `auto`.
    assert_eq!(findings_unpruned(&damaged, "auto"), ["i1"]);
}

#[test]
fn summary_says_what_pruned_each_object() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    let all = frame(&rows());
    // A folder before --since, an object whose one row group lies after T, one with a row
    // group of each, an empty one, and another tenant's folder.
    write_parquet(&all, &root.join("y=2026/m=01/d=10/old.parquet"));
    let late = frame(&rows_after(30));
    write_parquet(&late, &root.join("y=2026/m=02/d=20/after.parquet"));
    let mut both = vec![];
    ParquetWriter::new(&mut both)
        .with_row_group_size(Some(3))
        .finish(&mut all.vstack(&late).unwrap())
        .unwrap();
    let mixed = root.join("y=2026/m=02/d=20/mixed.parquet");
    std::fs::write(&mixed, &both).unwrap();
    write_parquet(&all.clear(), &root.join("y=2026/m=02/d=20/empty.parquet"));
    write_parquet(
        &all,
        &root.join("TenantId=other/y=2026/m=02/d=20/x.parquet"),
    );
    let out = dir.path().join("out");
    let flags = [
        "--no-cache",
        "--since",
        "2026-02-01",
        "--tenant",
        A,
        "--tenant",
        B,
    ];
    succeeded(run(&root, &out, &flags));
    let s = summary(&out);
    let pruned: Vec<(String, String)> = s["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(!p["reason"].as_str().unwrap().is_empty(), "{p}");
            (
                p["key"].as_str().unwrap().into(),
                p["by"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = |k: &str, b: &str| (k.to_string(), b.to_string());
    assert_eq!(
        pruned,
        [
            expect("TenantId=other/y=2026/m=02/d=20/x.parquet", "tenant_folder"),
            // The month ends at --since: entered within the 48 h margin, its day pruned.
            expect("y=2026/m=01/d=10/", "folder"),
            expect("y=2026/m=02/d=20/after.parquet", "object_statistics"),
            expect("y=2026/m=02/d=20/empty.parquet", "no_row_groups"),
            expect("y=2026/m=02/d=20/mixed.parquet", "row_group_statistics"),
        ],
        "{s}"
    );
    assert_eq!(s["folders_pruned"], 1);
    assert_eq!(
        finding_ids(&out),
        ["i1"],
        "the in-window row group of `mixed`"
    );
}
