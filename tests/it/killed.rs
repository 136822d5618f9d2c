//! A run killed with SIGKILL at any moment leaves only whole files: every report present is
//! byte for byte one a complete run writes, `summary.json` only beside a complete set, and a
//! rerun writes the full set. Locally and through Azurite.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::storage::{azure_env, azurite, cli, helper};

/// Kills per location at least, spread over the run (more of them late, where the writes are).
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
        .filter(|(name, _)| !staging(name))
        .collect()
}

/// Whether a local file is one the store is still writing (`<name>#<n>`).
fn staging(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
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

/// When the run is killed: after a fixed time, or as soon as it has renamed a report into a
/// local folder (a timed kill alone may miss the writes when the machine is busy or idle).
enum Moment<'a> {
    After(Duration),
    FirstWrite(&'a Path),
}

/// The names and modification times of the whole files under a local folder.
fn stamps(dir: &Path) -> BTreeMap<String, std::time::SystemTime> {
    let mut v = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(p);
            } else if let Ok(at) = meta.modified() {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if !staging(&rel) {
                    v.insert(rel, at);
                }
            }
        }
    }
    v
}

/// Starts the run and kills it at `moment`.
fn kill_at(env: &[(&str, String)], args: &[&str], moment: &Moment) {
    let before = match moment {
        Moment::FirstWrite(dir) => stamps(dir),
        Moment::After(_) => BTreeMap::new(),
    };
    let mut cmd = bin();
    cmd.args(args)
        .current_dir(crate::storage::root())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    match moment {
        Moment::After(after) => std::thread::sleep(*after),
        Moment::FirstWrite(dir) => loop {
            let now = stamps(dir);
            let written = now.iter().any(|(k, at)| before.get(k) != Some(at));
            if written || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        },
    }
    // SIGKILL: no handler, no cleanup.
    child.kill().unwrap();
    child.wait().unwrap();
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

/// Where killed runs write, and how their outputs are read back.
struct Target<'a> {
    env: &'a [(&'a str, String)],
    archive: &'a str,
    /// The `--out` of attempt `i`.
    out: &'a dyn Fn(usize) -> String,
    /// The files under an `--out`, as the next reader sees them.
    read: &'a dyn Fn(&str) -> Files,
    /// Whether `--out` is a local folder, so a kill can wait for the first report written.
    local: bool,
}

/// Kills runs at moments spread over a whole run (denser towards its end, where the writes
/// are), half of them over a previous complete run of another as-of time, until at least
/// [`KILLS`] were tried and one was caught writing: some reports there, no `summary.json`.
/// Locally, the kills after the first [`KILLS`] wait for the first report written.
/// Every time, what is left must be whole, and a rerun must write the full set.
fn kill_until_caught_writing(t: &Target, complete: &Files, whole: Duration) {
    let mut caught_writing = 0;
    for i in 0..KILLS * 4 {
        if i >= KILLS && caught_writing > 0 {
            return;
        }
        let share = 0.15 + 0.8 * (((i % KILLS) as f64 + 0.5) / KILLS as f64).sqrt();
        let after = whole.mul_f64(share);
        let out = (t.out)(i);
        let previous = if i % 2 == 1 {
            succeeded(cli(t.env, &run_args(t.archive, &out, "2026-02-20")));
            (t.read)(&out)
        } else {
            Files::new()
        };
        let run = run_args(t.archive, &out, "2026-03-01");
        let moment = if t.local && i >= KILLS {
            Moment::FirstWrite(Path::new(&out))
        } else {
            Moment::After(after)
        };
        kill_at(t.env, &run, &moment);
        let left = (t.read)(&out);
        let when = match moment {
            Moment::After(after) => format!("killed after {after:?}"),
            Moment::FirstWrite(_) => "killed at its first report".to_string(),
        };
        assert_whole(&left, &[complete, &previous], &when);
        let new = left
            .iter()
            .filter(|(k, v)| complete.get(*k) == Some(*v))
            .count();
        if !left.contains_key("summary.json") && new > 0 {
            caught_writing += 1;
        }
        succeeded(cli(t.env, &run));
        let again = (t.read)(&out);
        assert_whole(&again, &[complete], "rerun");
        assert!(again.keys().eq(complete.keys()), "rerun");
    }
    panic!(
        "no run of {} was killed while writing its reports",
        KILLS * 4
    );
}

/// An archive of many small tenants: writing their reports is a good share of the run.
fn generate(env: &[(&str, String)], to: &str, tenants: u32) {
    let flags = gen_flags(tenants, 20, 30, 3, 21);
    let mut gen = vec!["generate", "--out", to];
    gen.extend(flags.iter().map(String::as_str));
    succeeded(cli(env, &gen));
}

#[test]
fn killed_local_runs_leave_only_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let archive = archive.to_str().unwrap();
    generate(&[], archive, 300);
    let full = dir.path().join("full");
    let whole = timed(
        &[],
        &run_args(archive, full.to_str().unwrap(), "2026-03-01"),
    );
    let complete = files(&full);
    assert!(complete.len() > 300, "{}", complete.len());
    let out = |i: usize| dir.path().join(format!("out-{i}")).display().to_string();
    let read = |out: &str| files(Path::new(out));
    let t = Target {
        env: &[],
        archive,
        out: &out,
        read: &read,
        local: true,
    };
    kill_until_caught_writing(&t, &complete, whole);
}

#[test]
fn killed_runs_writing_to_azurite_leave_only_whole_blobs() {
    let server = azurite();
    let env = azure_env(&server);
    let dir = tempfile::tempdir().unwrap();
    helper("azure", &server, &["create", "logs"]);
    // Fewer: each report is a request to the emulator, and each check fetches them all.
    generate(&env, "az://logs/audit", 40);
    let whole = timed(
        &env,
        &run_args("az://logs/audit", "az://logs/full", "2026-03-01"),
    );
    let fetches = std::cell::Cell::new(0);
    // Each read into a folder of its own: what the container holds now, nothing older.
    let read = |out: &str| {
        fetches.set(fetches.get() + 1);
        let prefix = out.trim_start_matches("az://logs/");
        let to = dir.path().join(format!("fetched-{}", fetches.get()));
        helper(
            "azure",
            &server,
            &["get", "logs", prefix, to.to_str().unwrap()],
        );
        files(&to)
    };
    let complete = read("az://logs/full");
    assert!(complete.len() > 120, "{}", complete.len());
    let out = |i: usize| format!("az://logs/out-{i}");
    let t = Target {
        env: &env,
        archive: "az://logs/audit",
        out: &out,
        read: &read,
        local: false,
    };
    kill_until_caught_writing(&t, &complete, whole);
}
