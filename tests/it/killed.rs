//! A run killed with SIGKILL at any moment leaves only whole files: every report present is
//! byte for byte one a complete run writes, `summary.json` only beside a complete set, and a
//! rerun writes the full set. Locally and through Azurite.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::storage::{azure_env, azurite, cli, helper};

/// Kills per location, spread over the run (more of them late, where the writes are).
const KILLS: usize = 10;

fn run_args<'a>(archive: &'a str, out: &'a str, as_of: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--no-cache",
        "-q",
        "--as-of",
        as_of,
        "--archive",
        archive,
        "--out",
        out,
    ]
}

type Files = BTreeMap<String, Vec<u8>>;

/// The files of an output folder by name, staging files aside: the local store writes each
/// file under `<name>#<n>` and renames it, and such names are never read as reports.
fn files(dir: &Path) -> Files {
    if !dir.exists() {
        return BTreeMap::new();
    }
    tree(dir)
        .into_iter()
        .filter(|(name, _)| {
            !name
                .rsplit_once('#')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// Every file in `got` is whole: byte for byte one of the `versions` (complete sets of
/// reports) holds under that name; and `summary.json` only beside the whole set it belongs to.
fn assert_whole(got: &Files, versions: &[&Files], what: &str) {
    let same = |name: &str, a: &[u8], b: &[u8]| {
        if name.ends_with("summary.json") {
            strip(a) == strip(b)
        } else {
            a == b
        }
    };
    for (name, bytes) in got {
        assert!(
            versions
                .iter()
                .any(|v| v.get(name).is_some_and(|w| same(name, bytes, w))),
            "{what}: `{name}` is not whole ({} bytes)",
            bytes.len()
        );
    }
    if let Some(summary) = got.get("summary.json") {
        let complete = versions.iter().any(|v| {
            v.get("summary.json")
                .is_some_and(|s| same("summary.json", summary, s))
                && v.iter()
                    .all(|(k, w)| got.get(k).is_some_and(|g| same(k, g, w)))
        });
        assert!(complete, "{what}: summary.json beside an incomplete set");
    }
}

/// `summary.json` without what differs between two runs.
fn strip(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).expect("summary.json parses");
    for k in ["timings", "archive", "bytes_read"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

/// Starts the run and kills it after `after`; true when it was still running.
fn kill_after(env: &[(&str, String)], args: &[&str], after: Duration) -> bool {
    let mut cmd = bin();
    cmd.args(args)
        .current_dir(crate::storage::root())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(after);
    let running = child.try_wait().unwrap().is_none();
    // SIGKILL: no handler, no cleanup.
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

/// How long a whole run takes here: the quicker of two (the first may warm a server up).
fn timed(env: &[(&str, String)], args: &[&str]) -> Duration {
    (0..2)
        .map(|_| {
            let started = Instant::now();
            succeeded(cli(env, args));
            started.elapsed()
        })
        .min()
        .unwrap()
}

/// Kills spread over the run: fractions of its duration, denser towards its end.
fn moments(whole: Duration) -> Vec<Duration> {
    (0..KILLS)
        .map(|i| whole.mul_f64(0.15 + 0.8 * ((i as f64 + 0.5) / KILLS as f64).sqrt()))
        .collect()
}

#[test]
fn killed_local_runs_leave_only_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let flags = gen_flags(12, 60, 300, 6, 21);
    let mut gen = vec!["generate", "--out", archive.to_str().unwrap()];
    gen.extend(flags.iter().map(String::as_str));
    succeeded(cli(&[], &gen));
    let archive = archive.to_str().unwrap();
    let full = dir.path().join("full");
    let whole = timed(
        &[],
        &run_args(archive, full.to_str().unwrap(), "2026-03-01"),
    );
    let complete = files(&full);
    assert!(complete.len() > 30, "{}", complete.len());
    let mut interrupted = 0;
    for (i, after) in moments(whole).into_iter().enumerate() {
        let out = dir.path().join(format!("out-{i}"));
        let out = out.to_str().unwrap();
        // Half of them over a previous complete run, of another as-of time.
        let previous = if i % 2 == 1 {
            succeeded(cli(&[], &run_args(archive, out, "2026-02-20")));
            files(Path::new(out))
        } else {
            Files::new()
        };
        let run = run_args(archive, out, "2026-03-01");
        interrupted += usize::from(kill_after(&[], &run, after));
        let what = format!("killed after {after:?}");
        assert_whole(&files(Path::new(out)), &[&complete, &previous], &what);
        succeeded(cli(&[], &run));
        let again = files(Path::new(out));
        assert_whole(&again, &[&complete], "rerun");
        assert!(again.keys().eq(complete.keys()), "rerun");
    }
    // The moments lie within the quicker of two whole runs: at least one kill lands.
    assert!(interrupted > 0, "no run was still running when killed");
}

#[test]
fn killed_runs_writing_to_azurite_leave_only_whole_blobs() {
    let server = azurite();
    let env = azure_env(&server);
    let dir = tempfile::tempdir().unwrap();
    helper("azure", &server, &["create", "logs"]);
    let flags = gen_flags(12, 60, 300, 6, 21);
    let mut gen = vec!["generate", "--out", "az://logs/audit"];
    gen.extend(flags.iter().map(String::as_str));
    succeeded(cli(&env, &gen));
    let whole = timed(
        &env,
        &run_args("az://logs/audit", "az://logs/full", "2026-03-01"),
    );
    let fetch = |prefix: &str, to: &str| {
        let to = dir.path().join(to);
        helper(
            "azure",
            &server,
            &["get", "logs", prefix, to.to_str().unwrap()],
        );
        files(&to)
    };
    let complete = fetch("full", "full");
    assert!(complete.len() > 30, "{}", complete.len());
    let mut interrupted = 0;
    for (i, after) in moments(whole).into_iter().enumerate() {
        let out = format!("az://logs/out-{i}");
        let run = run_args("az://logs/audit", &out, "2026-03-01");
        interrupted += usize::from(kill_after(&env, &run, after));
        let got = fetch(&format!("out-{i}"), &format!("killed-{i}"));
        assert_whole(&got, &[&complete], &format!("killed after {after:?}"));
    }
    // The moments lie within the quicker of two whole runs: at least one kill lands.
    assert!(interrupted > 0, "no run was still running when killed");
    succeeded(cli(
        &env,
        &run_args("az://logs/audit", "az://logs/out-0", "2026-03-01"),
    ));
    let again = fetch("out-0", "rerun");
    assert_whole(&again, &[&complete], "rerun");
    assert!(again.keys().eq(complete.keys()), "rerun");
}
