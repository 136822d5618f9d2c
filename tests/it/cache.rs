//! The extraction cache: identical results with and without it, changed, added and deleted
//! objects detected, corrupt entries rebuilt.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

fn cli(args: &[&str]) -> Output {
    succeeded(
        bin()
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap(),
    )
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        cli(&[
            "generate",
            "--out",
            archive.to_str().unwrap(),
            "--tenants",
            "3",
            "--days",
            "30",
            "--start",
            "2026-01-01",
            "--rows-per-day",
            "40",
            "--invites-per-day",
            "5",
            "--seed",
            "3",
        ]);
        Fixture { dir }
    }

    fn archive(&self) -> PathBuf {
        self.dir.path().join("archive")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Runs into a fresh output folder; `cache: false` means `--no-cache`.
    fn run(&self, name: &str, cache: bool, extra: &[&str]) -> PathBuf {
        let out = self.dir.path().join(name);
        let (a, o, c) = (self.archive(), out.clone(), self.cache());
        let mut args = vec![
            "run",
            "--quiet",
            "--archive",
            a.to_str().unwrap(),
            "--out",
            o.to_str().unwrap(),
        ];
        if cache {
            args.extend(["--cache", c.to_str().unwrap()]);
        } else {
            args.push("--no-cache");
        }
        args.extend_from_slice(extra);
        cli(&args);
        out
    }
}

impl Fixture {
    /// Runs with the cache and progress on; returns the output folder and what the run said.
    fn run_logged(&self, name: &str, extra: &[&str]) -> (PathBuf, String) {
        let out = self.dir.path().join(name);
        let (a, o, c) = (self.archive(), out.clone(), self.cache());
        let mut args = vec!["run", "--archive", a.to_str().unwrap()];
        args.extend(["--out", o.to_str().unwrap(), "--cache", c.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let said = String::from_utf8(cli(&args).stderr).unwrap();
        (out, said)
    }

    /// The cache's view of a reading (`pairs` or `lifecycle`), where it would be.
    fn view(&self, reading: &str) -> Option<PathBuf> {
        let name = format!("{reading}.view");
        tree(&self.cache())
            .into_iter()
            .find(|(p, _)| p.ends_with(&name))
            .map(|(p, _)| self.cache().join(p))
    }
}

/// What a run that took its events from the cache's view says.
const FROM_VIEW: &str = "read from the view of the last run";

/// Every report file under `out` except summary.json (timings and cache counts differ).
fn reports(out: &Path) -> Vec<(String, Vec<u8>)> {
    tree(out)
        .into_iter()
        .filter(|(name, _)| name != "summary.json")
        .collect()
}

fn counts(out: &Path) -> (u64, u64) {
    let s = summary(out);
    (
        s["cache_hits"].as_u64().unwrap(),
        s["cache_misses"].as_u64().unwrap(),
    )
}

#[test]
fn cached_runs_equal_uncached_ones() {
    let f = Fixture::new();
    let plain = f.run("plain", false, &[]);
    let first = f.run("first", true, &[]);
    let second = f.run("second", true, &[]);
    assert_eq!(counts(&first), (0, 30));
    assert_eq!(counts(&second), (30, 0));
    assert_eq!(summary(&plain)["cache_hits"], 0);
    assert_eq!(reports(&plain), reports(&first));
    assert_eq!(reports(&plain), reports(&second));
    assert!(summary(&second)["findings"].as_u64().unwrap() > 0);
    assert_eq!(
        summary(&second)["bytes_read"],
        0,
        "nothing fetched on a full hit"
    );

    // Entries hold whole objects: a filtered run reuses them and still cuts correctly.
    let tenant = first_tenant(&plain);
    let extra = [
        "--since",
        "2026-01-15",
        "--tenant",
        tenant.as_str(),
        "--semantics",
        "sentinel",
    ];
    let cut_plain = f.run("cut-plain", false, &extra);
    let cut_cached = f.run("cut-cached", true, &extra);
    assert_eq!(counts(&cut_cached).1, 0);
    assert_eq!(reports(&cut_plain), reports(&cut_cached));
}

/// Entries hold the guest's whole life cycle whichever reading made them: a `precise` run over
/// entries an `intended` run wrote (and the other way round) equals the same run uncached.
#[test]
fn every_reading_shares_the_entries() {
    let f = Fixture::new();
    let precise = ["--semantics", "precise"];
    let plain_precise = f.run("plain-precise", false, &precise);
    let plain_intended = f.run("plain-intended", false, &[]);
    let intended = f.run("intended", true, &[]);
    assert_eq!(counts(&intended), (0, 30));
    let warm_precise = f.run("warm-precise", true, &precise);
    assert_eq!(counts(&warm_precise), (30, 0));
    assert_eq!(reports(&plain_precise), reports(&warm_precise));
    assert_eq!(reports(&plain_intended), reports(&intended));
    let warm_intended = f.run("warm-intended", true, &[]);
    assert_eq!(reports(&plain_intended), reports(&warm_intended));
    // The readings differ on this archive, or the test proves nothing.
    assert_ne!(finding_ids(&plain_precise), finding_ids(&plain_intended));
}

#[test]
fn changed_added_and_deleted_objects_are_detected() {
    let f = Fixture::new();
    f.run("warm", true, &[]);
    let day = |d: u32| {
        f.archive()
            .join(format!("y=2026/m=01/d={d:02}/part-00000.parquet"))
    };
    // Change one object: replace it with another day's content (new size and time).
    std::fs::copy(day(2), day(1)).unwrap();
    // Delete one, add one.
    std::fs::remove_file(day(3)).unwrap();
    let extra = f.archive().join("y=2026/m=02/d=15/part-00000.parquet");
    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
    write_parquet(
        &frame(&[invite(
            "t-new",
            "new-1",
            "2026-01-20T00:00:00Z",
            "g#EXT#@c",
            "a@c",
        )]),
        &extra,
    );

    let cached = f.run("after", true, &[]);
    assert_eq!(
        counts(&cached),
        (28, 2),
        "the changed and the added object are re-read"
    );
    let plain = f.run("after-plain", false, &[]);
    assert_eq!(reports(&plain), reports(&cached));
    assert!(cached.join("tenant=t-new").is_dir());
}

/// The segments of the cache, by path (one folder per archive).
fn segments(cache: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = tree(cache)
        .into_iter()
        .map(|(name, _)| cache.join(name))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    out.sort();
    out
}

fn segments_read(out: &Path) -> u64 {
    summary(out)["cache_segments"].as_u64().unwrap()
}

#[test]
fn a_damaged_segment_is_rebuilt_not_trusted() {
    let f = Fixture::new();
    let warm = f.run("warm", true, &[]);
    let segs = segments(&f.cache());
    assert_eq!(segs.len(), 1, "one run writes one segment: {segs:?}");
    let bytes = std::fs::read(&segs[0]).unwrap();
    // Cut in half: the footer (with the index) is gone.
    std::fs::write(&segs[0], &bytes[..bytes.len() / 2]).unwrap();
    let again = f.run("again", true, &[]);
    assert_eq!(counts(&again), (0, 30));
    assert_eq!(reports(&warm), reports(&again));
    assert_eq!(counts(&f.run("third", true, &[])), (30, 0), "rebuilt");
}

#[test]
fn entries_of_another_archive_are_not_trusted() {
    let f = Fixture::new();
    let warm = f.run("warm", true, &[]);
    let mine = segments(&f.cache());
    // The same objects under another archive root: its entries carry that root.
    let other = f.dir.path().join("other");
    std::fs::rename(f.archive(), &other).unwrap();
    let o = f.dir.path().join("other-out");
    let c = f.cache();
    cli(&[
        "run",
        "--quiet",
        "--archive",
        other.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
        "--cache",
        c.to_str().unwrap(),
    ]);
    std::fs::rename(&other, f.archive()).unwrap();
    let theirs: Vec<PathBuf> = segments(&c)
        .into_iter()
        .filter(|p| !mine.contains(p))
        .collect();
    assert_eq!((mine.len(), theirs.len()), (1, 1), "one folder per archive");
    assert_ne!(mine[0].parent(), theirs[0].parent());
    // The other archive's segment in place of this archive's: whole, but not its objects.
    std::fs::copy(&theirs[0], &mine[0]).unwrap();
    let after = f.run("after", true, &[]);
    assert_eq!(counts(&after), (0, 30), "foreign identities are misses");
    assert_eq!(reports(&warm), reports(&after));
}

#[test]
fn many_segments_are_compacted_into_one() {
    let f = Fixture::new();
    let held = f.dir.path().join("held");
    std::fs::create_dir_all(&held).unwrap();
    // Hold back ten days, then add one per run: each run writes a segment of its new day.
    let day = |d: u32| {
        f.archive()
            .join(format!("y=2026/m=01/d={d:02}/part-00000.parquet"))
    };
    for d in 21..=30 {
        std::fs::rename(day(d), held.join(format!("{d}.parquet"))).unwrap();
    }
    f.run("base", true, &[]);
    // The additions run with --since: the listing skips the early folders, whose entries must
    // survive every compaction all the same.
    let since = ["--since", "2026-01-15"];
    let mut read = Vec::new();
    for d in 21..=30 {
        std::fs::rename(held.join(format!("{d}.parquet")), day(d)).unwrap();
        let out = f.run(&format!("add-{d}"), true, &since);
        assert_eq!(counts(&out).1, 1, "day {d}: only the new object is read");
        read.push(segments_read(&out));
    }
    assert!(read.iter().all(|&n| n <= 9), "a handful at most: {read:?}");
    assert!(read.contains(&9), "compaction past 8 segments: {read:?}");
    for i in 0..3 {
        let again = f.run(&format!("again-{i}"), true, &since);
        assert!(
            segments_read(&again) <= 2,
            "no growth: {}",
            segments_read(&again)
        );
    }
    assert!(
        segments(&f.cache()).len() <= 2,
        "{:?}",
        segments(&f.cache())
    );
    let warm = f.run("warm", true, &[]);
    assert_eq!(
        counts(&warm),
        (30, 0),
        "pruned-out entries were carried over"
    );
    let plain = f.run("plain", false, &[]);
    assert_eq!(reports(&plain), reports(&warm));
    // A full listing drops what the archive no longer holds: delete nine objects, then
    // rewrite one object a run until a run compacts.
    for d in 1..=9 {
        std::fs::remove_file(day(d)).unwrap();
    }
    let mut compacted = false;
    for d in 10..=30 {
        let p = day(d);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, bytes).unwrap();
        let out = f.run(&format!("shrink-{d}"), true, &[]);
        if segments_read(&out) > 8 {
            compacted = true;
            break;
        }
    }
    assert!(compacted);
    let segs = segments(&f.cache());
    assert_eq!(segs.len(), 1, "{segs:?}");
    // It holds exactly what a new cache of the same archive holds.
    let other = f.dir.path().join("other-cache");
    let o = f.dir.path().join("other-out");
    cli(&[
        "run",
        "--quiet",
        "--archive",
        f.archive().to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
        "--cache",
        other.to_str().unwrap(),
    ]);
    let new = segments(&other);
    assert_eq!(new.len(), 1);
    assert_eq!(
        read_parquet(&segs[0]).height(),
        read_parquet(&new[0]).height()
    );
}

/// Compaction during a `--tenant` run keeps the other tenants' entries: the listing dropped
/// their `TenantId=` folders, which does not make their objects gone.
#[test]
fn compaction_under_tenant_keeps_other_tenants_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, cache) = (dir.path().join("archive"), dir.path().join("cache"));
    for tenant in ["aaa", "bbb"] {
        let to = archive.join(format!("TenantId={tenant}"));
        cli(&[
            "generate",
            "--out",
            to.to_str().unwrap(),
            "--tenants",
            "1",
            "--days",
            "10",
            "--start",
            "2026-01-01",
            "--rows-per-day",
            "30",
            "--invites-per-day",
            "3",
        ]);
    }
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec!["run", "--quiet", "--archive", archive.to_str().unwrap()];
        args.extend([
            "--cache",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        args.extend_from_slice(extra);
        cli(&args);
        out
    };
    assert_eq!(counts(&run("full", &[])), (0, 20));
    let mut compacted = false;
    for d in 1..=10 {
        // Rewritten: a new identity, so each run writes a segment, until one compacts.
        let p = archive.join(format!(
            "TenantId=aaa/y=2026/m=01/d={d:02}/part-00000.parquet"
        ));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, bytes).unwrap();
        let out = run(&format!("aaa-{d}"), &["--tenant", "aaa"]);
        assert_eq!(counts(&out).1, 1, "day {d}");
        if segments_read(&out) > 8 {
            compacted = true;
            break;
        }
    }
    assert!(compacted);
    assert_eq!(
        counts(&run("again", &[])),
        (20, 0),
        "bbb's entries were kept"
    );
}

/// A run whose every object is a hit leaves a view of its events; the next run over the same
/// objects reads it instead of the segments, and writes exactly what they give.
#[test]
fn a_warm_rerun_reads_the_view_and_writes_what_the_segments_give() {
    let f = Fixture::new();
    let plain = f.run("plain", false, &[]);
    let (_, cold) = f.run_logged("cold", &[]);
    assert!(
        f.view("pairs").is_none(),
        "a run with misses leaves no view"
    );
    let (second, said) = f.run_logged("second", &[]);
    assert!(!said.contains(FROM_VIEW), "{said}");
    assert!(f.view("pairs").is_some(), "an all-hit run leaves one");
    let (third, said) = f.run_logged("third", &[]);
    assert!(said.contains(FROM_VIEW), "{said}");
    assert!(!cold.contains(FROM_VIEW));
    assert_eq!(reports(&plain), reports(&third));
    assert_eq!(
        summary_without_timings(&second),
        summary_without_timings(&third)
    );
    assert!(summary(&third)["findings"].as_u64().unwrap() > 0);
}

/// A view serves only the scope and the objects it was made of: another tenant and window,
/// another reading, an added or a changed object each read the segments, and give what an
/// uncached run gives.
#[test]
fn a_view_serves_only_its_own_scope_and_objects() {
    let f = Fixture::new();
    f.run("cold", true, &[]);
    f.run("warm", true, &[]);
    let tenant = first_tenant(&f.run("plain", false, &[]));
    let check = |name: &str, extra: &[&str], from_view: bool| {
        let (out, said) = f.run_logged(name, extra);
        assert_eq!(said.contains(FROM_VIEW), from_view, "{name}: {said}");
        let plain = f.run(&format!("{name}-plain"), false, extra);
        assert_eq!(reports(&plain), reports(&out), "{name}");
    };
    // The same objects listed, another cut.
    check("tenant", &["--tenant", tenant.as_str()], false);
    let cut = ["--tenant", tenant.as_str(), "--since", "2026-01-15"];
    check("cut", &cut, false);
    check("cut-again", &cut, true);
    check("whole", &[], false);
    check("whole-again", &[], true);
    let precise = ["--semantics", "precise"];
    check("precise", &precise, false);
    check("precise-again", &precise, true);
    check("whole-after-precise", &[], true);

    let extra = f.archive().join("y=2026/m=02/d=15/part-00000.parquet");
    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
    let new = invite("t-new", "new-1", "2026-01-20T00:00:00Z", "g#EXT#@c", "a@c");
    write_parquet(&frame(&[new]), &extra);
    // The run that reads the new object leaves no view; the next (every object a hit) does.
    check("added", &[], false);
    check("added-again", &[], false);
    check("added-third", &[], true);
    let day = |d: u32| {
        f.archive()
            .join(format!("y=2026/m=01/d={d:02}/part-00000.parquet"))
    };
    std::fs::copy(day(2), day(1)).unwrap();
    check("changed", &[], false);
    check("changed-again", &[], false);
    check("changed-third", &[], true);
}

/// A view that does not read back whole is ignored, and replaced by the next all-hit run.
#[test]
fn a_damaged_view_is_ignored_and_replaced() {
    let f = Fixture::new();
    f.run("cold", true, &[]);
    let warm = f.run("warm", true, &[]);
    let view = f.view("pairs").unwrap();
    let bytes = std::fs::read(&view).unwrap();
    std::fs::write(&view, &bytes[..bytes.len() / 2]).unwrap();
    let (damaged, said) = f.run_logged("damaged", &[]);
    assert!(!said.contains(FROM_VIEW), "{said}");
    assert_eq!(reports(&warm), reports(&damaged));
    let (again, said) = f.run_logged("again", &[]);
    assert!(said.contains(FROM_VIEW), "{said}");
    assert_eq!(reports(&warm), reports(&again));
}
