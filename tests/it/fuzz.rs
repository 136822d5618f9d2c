//! A deterministic mutation fuzzer over whole CLI runs: objects from several writers and
//! settings, damaged the ways storage and half-finished uploads damage them. Every mutant must
//! end as documented (exit 0, or 3 naming the object; with `--skip-bad-files` always 0), never
//! panic, hang or allocate what a damaged header claims; when both readers read it, they must
//! agree. Each input that ever failed is kept in `tests/fixtures/fuzz/` and rerun here.
//!
//! `UNREDEEMED_FUZZ_MUTANTS` (default [`MUTANTS`]) and `UNREDEEMED_FUZZ_SEED` set the count and
//! the seed; README gives the soak command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use unredeemed::time::parse_instant;
use unredeemed::GenSpec;

use crate::common::*;

/// Mutants per CI run, spread over the seed objects.
const MUTANTS: usize = 240;
/// The default seed: every CI run tries the same mutants.
const SEED: u64 = 13;
/// A run that takes longer has hung.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Address space per run, in KiB: a damaged header that claims a huge page must not get it.
/// Threads (decoders, I/O, polars) and their allocator arenas grow with the cores, so does the
/// limit: 1.5 GiB on 2 cores.
fn memory_kib() -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    (1408 + 64 * cores) * 1024
}
/// How a run reports a panic caught at an object's failure boundary.
const PANIC_CAUGHT: &str = "a decoder failed on its bytes";
/// The object's key in every mutant's archive.
const KEY: &str = "part-0.parquet";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// A generated day of one tenant, flat or nested, as written by the job's generator.
fn generated(dir: &Path, nested: bool) -> PathBuf {
    let spec = GenSpec {
        tenants: 1,
        days: 1,
        start: parse_instant("2026-01-01").unwrap(),
        rows_per_day: 1_500,
        invites_per_day: 40.0,
        seed: 7,
        nested,
        rows_per_file: 100_000,
        format: unredeemed::GenFormat::Parquet,
        gzip: false,
    };
    let at = dir.join(if nested { "gen-nested" } else { "gen" });
    generate_local(&spec, &at);
    walk(&at)
        .into_iter()
        .next()
        .expect("the generator wrote one object")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The seed objects: the generator's (flat and nested JSON columns), polars' writer with three
/// codecs and small or default pages, and DuckDB's (dictionary and plain, v1 and v2 pages).
fn seeds(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let flat = generated(dir, false);
    let nested = generated(dir, true);
    let mut out = vec![
        ("generator".to_string(), std::fs::read(&flat).unwrap()),
        (
            "generator-nested".to_string(),
            std::fs::read(&nested).unwrap(),
        ),
    ];
    let df = read_parquet(&flat);
    for (name, codec, page) in [
        (
            "polars-zstd-small-pages",
            ParquetCompression::Zstd(None),
            Some(4096),
        ),
        ("polars-snappy", ParquetCompression::Snappy, None),
        (
            "polars-uncompressed-small-pages",
            ParquetCompression::Uncompressed,
            Some(2048),
        ),
    ] {
        let mut buf = vec![];
        ParquetWriter::new(&mut buf)
            .with_compression(codec)
            .with_data_page_size(page)
            .with_row_group_size(Some(500))
            .finish(&mut df.clone())
            .unwrap();
        out.push((name.to_string(), buf));
    }
    let python = venv_python("tests/requirements.txt");
    for (name, opts) in [
        ("duckdb-zstd", "COMPRESSION zstd, ROW_GROUP_SIZE 500"),
        ("duckdb-snappy-v2", "COMPRESSION snappy, PARQUET_VERSION V2"),
        (
            "duckdb-plain-uncompressed",
            "COMPRESSION uncompressed, DICTIONARY_SIZE_LIMIT 1",
        ),
    ] {
        let to = dir.join(format!("{name}.parquet"));
        let script = format!(
            "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_parquet('{}')) TO '{}' \
             (FORMAT parquet, {opts})\")",
            flat.display(),
            to.display()
        );
        let status = Command::new(&python)
            .args(["-c", &script])
            .status()
            .unwrap();
        assert!(status.success(), "duckdb could not write {name}");
        out.push((name.to_string(), std::fs::read(&to).unwrap()));
    }
    out
}

/// Where each column chunk starts (its first page header) and where the footer starts.
fn regions(bytes: &[u8]) -> (Vec<usize>, usize) {
    let meta =
        polars_parquet::parquet::read::read_metadata(&mut std::io::Cursor::new(bytes)).unwrap();
    let mut starts = vec![];
    for rg in &meta.row_groups {
        for c in rg.parquet_columns() {
            let at = c
                .dictionary_page_offset()
                .unwrap_or_else(|| c.data_page_offset());
            starts.push(at as usize);
        }
    }
    let n = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    (starts, n - 8 - footer_len)
}

/// One mutant of `seed`, and what was done to it.
fn mutate(seed: &[u8], rng: &mut ChaCha8Rng) -> (Vec<u8>, String) {
    let (starts, footer) = regions(seed);
    let mut b = seed.to_vec();
    let n = b.len();
    let what = match rng.gen_range(0..9) {
        0 => {
            let k = rng.gen_range(1..=8);
            for _ in 0..k {
                let at = rng.gen_range(0..n);
                b[at] ^= 1 << rng.gen_range(0..8);
            }
            format!("{k} bit flip(s)")
        }
        1 => {
            let len = rng.gen_range(1..=64);
            let at = rng.gen_range(0..n - len);
            rng.fill(&mut b[at..at + len]);
            format!("{len} random bytes at {at}")
        }
        2 => {
            let len = rng.gen_range(16..=4096).min(n / 2);
            let at = rng.gen_range(0..n - len);
            b[at..at + len].fill(0);
            format!("{len} zeroed bytes at {at}")
        }
        3 => {
            let at = match rng.gen_range(0..3) {
                0 => rng.gen_range(0..footer),
                1 => rng.gen_range(footer..n - 8),
                _ => rng.gen_range(n - 8..n),
            };
            b.truncate(at);
            format!("truncated at {at} of {n}")
        }
        4 => {
            let len: u32 = match rng.gen_range(0..3) {
                0 => rng.gen(),
                1 => (n - 8 - footer) as u32 + rng.gen_range(1..64),
                _ => ((n - 8 - footer) as u32).saturating_sub(rng.gen_range(1..64)),
            };
            b[n - 8..n - 4].copy_from_slice(&len.to_le_bytes());
            format!("footer length set to {len}")
        }
        5 => {
            let k = rng.gen_range(1..=4);
            for _ in 0..k {
                let at = rng.gen_range(footer..n - 8);
                b[at] = rng.gen();
            }
            format!("{k} footer byte(s) changed")
        }
        6 => {
            // A page header field: its sizes, counts or type, as a varint that claims much.
            let at = starts[rng.gen_range(0..starts.len())] + rng.gen_range(0..12);
            let huge = [0xfe, 0xff, 0xff, 0xff, 0x07];
            let len = huge.len().min(n - at);
            if rng.gen_bool(0.5) {
                b[at..at + len].copy_from_slice(&huge[..len]);
            } else {
                b[at] = rng.gen();
            }
            format!("page header at {at} changed")
        }
        7 => return damaged_statistics(seed, rng),
        _ => {
            // Bytes inside a page, past its header.
            let at = starts[rng.gen_range(0..starts.len())] + rng.gen_range(16..256);
            let at = at.min(n - 9);
            b[at] ^= 0xff;
            format!("page byte at {at} inverted")
        }
    };
    (b, what)
}

/// A mutant whose footer claims other statistics for one column chunk: a bit flipped in its
/// minimum or maximum, or more nulls than values. Pruning must never believe the impossible
/// ones (see [`impossible_statistics`]).
fn damaged_statistics(seed: &[u8], rng: &mut ChaCha8Rng) -> (Vec<u8>, String) {
    let mut what = String::new();
    let b = rewrite_footer(seed, |meta| {
        let rg = rng.gen_range(0..meta.row_groups.len());
        let columns = &mut meta.row_groups[rg].columns;
        // The time column half the time: its statistics are the ones that prune.
        let time = columns.iter().position(|c| {
            c.meta_data
                .as_ref()
                .is_some_and(|m| m.path_in_schema == ["TimeGenerated"])
        });
        let i = match time {
            Some(t) if rng.gen_bool(0.5) => t,
            _ => rng.gen_range(0..columns.len()),
        };
        let m = columns[i].meta_data.as_mut().unwrap();
        let values = m.num_values;
        let s = m.statistics.get_or_insert_with(no_statistics);
        let bound = match rng.gen_range(0..3) {
            0 => s.min_value.as_mut(),
            1 => s.max_value.as_mut(),
            _ => {
                s.null_count = Some(values + rng.gen_range(1..100));
                None
            }
        };
        what = match bound {
            Some(v) if !v.is_empty() => {
                // A time's high bits half the time: years away, on either side.
                let at = match v.len() {
                    8 if rng.gen_bool(0.5) => rng.gen_range(37..64),
                    n => rng.gen_range(0..n * 8),
                };
                v[at / 8] ^= 1 << (at % 8);
                format!("bit {at} of a bound")
            }
            Some(_) => "nothing (an empty bound)".into(),
            None => "the null count".into(),
        };
        what = format!(
            "statistics of `{}`, row group {rg}: {what}",
            m.path_in_schema.join(".")
        );
    });
    (b, what)
}

/// Whether some needed column's statistics cannot be true (min above max, more nulls than
/// values), read from the footer independently of the job.
fn impossible_statistics(bytes: &[u8]) -> bool {
    use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
    let n = bytes.len();
    let Some(len) = bytes
        .get(n.saturating_sub(8)..n.saturating_sub(4))
        .map(|l| u32::from_le_bytes(l.try_into().unwrap()) as usize)
    else {
        return false;
    };
    let Some(mut footer) = (n - 8).checked_sub(len).and_then(|s| bytes.get(s..n - 8)) else {
        return false;
    };
    let Ok(meta) = polars_parquet_format::FileMetaData::read_from_in_protocol(
        &mut TCompactInputProtocol::new(&mut footer, 1 << 30),
    ) else {
        return false;
    };
    let needed = [
        "TenantId",
        "Id",
        "TimeGenerated",
        "Category",
        "OperationName",
        "Result",
        "TargetResources",
        "InitiatedBy",
    ];
    // polars' writer claims a dictionary chunk's nulls once per page: its counts are not read.
    let polars = meta
        .created_by
        .as_deref()
        .is_some_and(|w| w.starts_with("Polars"));
    meta.row_groups.iter().flat_map(|g| &g.columns).any(|c| {
        let Some(m) = &c.meta_data else { return false };
        let Some(s) = &m.statistics else { return false };
        if !m
            .path_in_schema
            .first()
            .is_some_and(|p| needed.contains(&p.as_str()))
        {
            return false;
        }
        let nulls = !polars && s.null_count.is_some_and(|k| k < 0 || k > m.num_values);
        let order = match (&s.min_value, &s.max_value) {
            (Some(lo), Some(hi)) if m.type_ == polars_parquet_format::Type::INT64 => {
                let int = |v: &Vec<u8>| v.as_slice().try_into().map(i64::from_le_bytes);
                matches!((int(lo), int(hi)), (Ok(lo), Ok(hi)) if lo > hi)
            }
            (Some(lo), Some(hi)) if m.type_ == polars_parquet_format::Type::BYTE_ARRAY => lo > hi,
            _ => false,
        };
        nulls || order
    })
}

/// Whether a run pruned anything on statistics.
fn pruned_on_statistics(out: &Path) -> bool {
    let s = summary(out);
    s["row_groups_pruned"].as_u64() != Some(0) || s["files_pruned"].as_u64() != Some(0)
}

/// How one CLI run over a mutant ended.
struct Ended {
    code: Option<i32>,
    stderr: String,
    out: PathBuf,
}

/// `unredeemed run` on the archive holding only `KEY`, bounded in time and address space.
fn run(archive: &Path, out: &Path, reader: &str, skip: bool) -> Ended {
    let bin = env!("CARGO_BIN_EXE_unredeemed");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", memory_kib()))
        .arg(bin)
        // A fixed time: the run has one when every row was refused, too.
        .args(["run", "--no-cache", "-q", "--as-of", "2026-01-02"])
        .args(["--reader", reader, "--archive"])
        .arg(archive)
        .arg("--out")
        .arg(out);
    if skip {
        cmd.arg("--skip-bad-files");
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > RUN_LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            break Some(-1);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    Ended {
        code,
        stderr,
        out: out.to_path_buf(),
    }
}

/// What the fuzzer saw of one mutant.
#[derive(Default, Debug)]
struct Tally {
    tried: usize,
    read_by_both: usize,
    refused_by_both: usize,
    read_by_one: usize,
    /// Refusals that came from a panic caught at the object's failure boundary.
    caught_panics: usize,
    /// Mutants whose statistics cannot be true: none may be pruned on them.
    impossible_statistics: usize,
}

fn bad_files(out: &Path) -> usize {
    summary(out)["bad_files"].as_array().unwrap().len()
}

/// Findings and baseline of a run: what the two readers must agree on.
fn results(out: &Path) -> Vec<(String, Vec<u8>)> {
    tree(out)
        .into_iter()
        .filter(|(name, _)| !name.ends_with("summary.json"))
        .collect()
}

/// Runs the three checks on one object; `Err` says what broke.
fn check(bytes: &[u8], dir: &Path, tally: &mut Tally) -> Result<(), String> {
    let archive = dir.join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::write(archive.join(KEY), bytes).unwrap();
    let ended = |e: &Ended, allowed: &[i32]| -> Result<(), String> {
        match e.code {
            Some(c) if allowed.contains(&c) => Ok(()),
            Some(-1) => Err("hung (killed after the time limit)".into()),
            c => Err(format!(
                "exit {c:?} (allowed {allowed:?}): {}",
                e.stderr.trim()
            )),
        }
    };
    let late = run(&archive, &dir.join("late"), "late", true);
    ended(&late, &[0]).map_err(|e| format!("--reader late --skip-bad-files: {e}"))?;
    let polars = run(&archive, &dir.join("polars"), "polars", true);
    ended(&polars, &[0]).map_err(|e| format!("--reader polars --skip-bad-files: {e}"))?;
    let auto = run(&archive, &dir.join("auto"), "auto", false);
    ended(&auto, &[0, 3]).map_err(|e| format!("--reader auto: {e}"))?;
    if auto.code == Some(3) && !auto.stderr.contains(KEY) {
        return Err(format!("exit 3 without naming the object: {}", auto.stderr));
    }
    if impossible_statistics(bytes) {
        tally.impossible_statistics += 1;
        for (e, reader) in [(&late, "late"), (&polars, "polars"), (&auto, "auto")] {
            if e.code == Some(0) && pruned_on_statistics(&e.out) {
                return Err(format!(
                    "{reader}: pruned on statistics that cannot be true"
                ));
            }
        }
    }
    tally.tried += 1;
    tally.caught_panics += [&late, &polars, &auto]
        .iter()
        .filter(|e| e.stderr.contains(PANIC_CAUGHT))
        .count();
    if std::env::var_os("UNREDEEMED_FUZZ_SHOW").is_some() {
        for e in [&late, &polars, &auto] {
            if e.stderr.contains(PANIC_CAUGHT) {
                eprintln!("{}", e.stderr.trim());
            }
        }
    }
    match (bad_files(&late.out), bad_files(&polars.out)) {
        (0, 0) => {
            tally.read_by_both += 1;
            if results(&late.out) != results(&polars.out) {
                return Err("both readers read it, with different findings".into());
            }
        }
        (0, _) | (_, 0) => tally.read_by_one += 1,
        _ => tally.refused_by_both += 1,
    }
    Ok(())
}

/// A mutant that broke a rule, kept for the regression fixtures.
fn keep_failure(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let at = dir.join(format!("{name}.parquet"));
    std::fs::write(&at, bytes).unwrap();
    at
}

#[test]
fn mutants_end_as_documented() {
    let count = env_or("UNREDEEMED_FUZZ_MUTANTS", MUTANTS);
    let seed = env_or("UNREDEEMED_FUZZ_SEED", SEED);
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let mut failures = vec![];
    let started = Instant::now();
    for i in 0..count {
        let (name, original) = &seeds[i % seeds.len()];
        let (mutant, what) = mutate(original, &mut rng);
        let work = tempfile::tempdir().unwrap();
        let panics = tally.caught_panics;
        let checked = check(&mutant, work.path(), &mut tally);
        if tally.caught_panics > panics {
            // Read as documented, but only thanks to the failure boundary: worth keeping too.
            keep_failure(&format!("caught-{name}-seed{seed}-{i}"), &mutant);
        }
        if let Err(e) = checked {
            let kept = keep_failure(&format!("{name}-seed{seed}-{i}"), &mutant);
            failures.push(format!("{name} ({what}): {e}\n  kept: {}", kept.display()));
        }
    }
    eprintln!(
        "fuzz: seed {seed}, {count} mutants of {} objects in {:.0?}: {tally:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} mutant(s) broke a rule (copy the kept files to tests/fixtures/fuzz/):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(tally.tried, count);
    // The mutations must reach both outcomes, or they test nothing.
    assert!(
        tally.read_by_both > 0 && tally.refused_by_both > 0 && tally.impossible_statistics > 0,
        "{tally:?}"
    );
}

/// Every input that ever broke a rule, with the same checks.
#[test]
fn kept_failures_end_as_documented() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let kept = walk(&dir);
    assert!(!kept.is_empty(), "{} holds no fixture", dir.display());
    let mut tally = Tally::default();
    for at in &kept {
        let work = tempfile::tempdir().unwrap();
        check(&std::fs::read(at).unwrap(), work.path(), &mut tally)
            .unwrap_or_else(|e| panic!("{}: {e}", at.display()));
    }
    assert_eq!(tally.tried, kept.len());
}
