//! The archive where it lives: Azure Blob through Azurite and S3 through moto's server, both
//! real protocol servers started here on free loopback ports; date-partition and row-group
//! pruning; faults. `scripts/test` installs the servers (npm `azurite`, PyPI `moto[server]`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use polars::prelude::*;

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(env: &str, default: &str, install: &str) -> PathBuf {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(default));
    assert!(
        p.exists(),
        "{} not found: run the tests with ./scripts/test, or install it with `{install}` (or set {env})",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited early with {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not start within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `bin` on a free loopback port; `args` gets the port and a private folder.
fn start(bin: PathBuf, what: &str, args: impl FnOnce(u16, &Path) -> Vec<String>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(bin)
        .args(args(port, dir.path()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    wait_for(port, &mut child, what);
    Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

pub(crate) fn azurite() -> Server {
    let bin = tool(
        "UNREDEEMED_AZURITE",
        "node_modules/.bin/azurite-blob",
        "npm ci",
    );
    start(bin, "azurite", |port, dir| {
        let mut a: Vec<String> = ["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]
            .map(String::from)
            .into();
        a.extend(["--location".into(), dir.display().to_string()]);
        a.extend(
            [
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
                "--silent",
            ]
            .map(String::from),
        );
        // Every request is logged here: tests count what the job actually fetched.
        a.extend([
            "--debug".into(),
            dir.join("requests.log").display().to_string(),
        ]);
        a
    })
}

pub(crate) fn moto() -> Server {
    let bin = tool(
        "UNREDEEMED_MOTO",
        ".venv/bin/moto_server",
        "python3 -m venv .venv && .venv/bin/pip install -r tests/storage/requirements.txt",
    );
    start(bin, "moto_server", |port, _| {
        ["-H", "127.0.0.1", "-p", &port.to_string()]
            .map(String::from)
            .into()
    })
}

/// The Python helper (container/bucket creation, raw puts, downloads).
pub(crate) fn helper(kind: &str, server: &Server, args: &[&str]) {
    let py = tool(
        "UNREDEEMED_PYTHON",
        ".venv/bin/python",
        "python3 -m venv .venv && .venv/bin/pip install -r tests/storage/requirements.txt",
    );
    let out = Command::new(py)
        .arg(root().join("tests/storage/bucket.py"))
        .args([kind, &server.endpoint])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bucket.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn azure_env(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
        ("AZURITE_BLOB_STORAGE_URL", server.endpoint.clone()),
    ]
}

pub(crate) fn s3_env(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", server.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// Runs the binary with `env`, and a fresh, empty default extraction cache.
pub(crate) fn cli(env: &[(&str, String)], args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unredeemed"));
    cmd.args(args)
        .current_dir(root())
        .env("XDG_CACHE_HOME", cache.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const GEN: [&str; 12] = [
    "--tenants",
    "3",
    "--days",
    "40",
    "--start",
    "2026-01-01",
    "--rows-per-day",
    "40",
    "--invites-per-day",
    "4",
    "--seed",
    "11",
];

/// The reports of a run over the store (fetched to `fetched`) are those of the run over local
/// disk, byte for byte; `summary.json` apart from where it read and how much. Returns it.
pub(crate) fn assert_same_as_local(local: &Path, fetched: &Path, what: &str) -> serde_json::Value {
    let (a, b) = (tree(local), tree(fetched));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "{what}");
    assert!(
        a.len() >= 3 * 3 + 3,
        "per-tenant reports, baseline and summary"
    );
    let mut summary = serde_json::Value::Null;
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        if name == "summary.json" {
            let mut x: serde_json::Value = serde_json::from_slice(x).unwrap();
            let mut y: serde_json::Value = serde_json::from_slice(y).unwrap();
            for k in ["archive", "bytes_read", "timings"] {
                x.as_object_mut().unwrap().remove(k);
                y.as_object_mut().unwrap().remove(k);
            }
            assert_eq!(x, y, "summary.json ({what})");
            summary = x;
        } else {
            assert!(x == y, "{name} differs between local and {what}");
        }
    }
    summary
}

/// Runs the job on the same generated archive from local disk and from the bucket (reports
/// written to the bucket), fetches the bucket's reports and compares them byte for byte.
fn same_results_as_local(kind: &str, server: &Server, env: &[(&str, String)], scheme: &str) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("archive");
    let mut gen = vec!["generate", "--out", local.to_str().unwrap()];
    gen.extend(GEN);
    succeeded(cli(&[], &gen));

    helper(kind, server, &["create", "logs"]);
    let remote = format!("{scheme}://logs/audit");
    let mut gen = vec!["generate", "--out", &remote];
    gen.extend(GEN);
    succeeded(cli(env, &gen));

    for semantics in ["intended", "sentinel"] {
        let local_out = dir.path().join(format!("local-{semantics}"));
        succeeded(cli(
            &[],
            &[
                "run",
                "--quiet",
                "--archive",
                local.to_str().unwrap(),
                "--out",
                local_out.to_str().unwrap(),
                "--semantics",
                semantics,
            ],
        ));
        let remote_out = format!("{scheme}://logs/reports-{semantics}");
        succeeded(cli(
            env,
            &[
                "run",
                "--quiet",
                "--archive",
                &remote,
                "--out",
                &remote_out,
                "--semantics",
                semantics,
            ],
        ));
        let fetched = dir.path().join(format!("fetched-{semantics}"));
        helper(
            kind,
            server,
            &[
                "get",
                "logs",
                &format!("reports-{semantics}"),
                fetched.to_str().unwrap(),
            ],
        );
        let x = assert_same_as_local(&local_out, &fetched, &format!("{scheme}:// ({semantics})"));
        assert!(x["findings"].as_u64().unwrap() > 0);
    }
}

#[test]
fn azure_blob_through_azurite_matches_local_disk() {
    let server = azurite();
    same_results_as_local("azure", &server, &azure_env(&server), "az");
}

#[test]
fn s3_through_moto_matches_local_disk() {
    let server = moto();
    same_results_as_local("s3", &server, &s3_env(&server), "s3");
}

/// Container `logs` under prefix `a/`: one good object, one that is not Parquet, one cut in half.
fn upload_bad_archive(server: &Server, dir: &Path) {
    helper("azure", server, &["create", "logs"]);
    let good = dir.join("good.parquet");
    write_parquet(
        &frame(&[invite("t", "i1", &at("-7d"), "g#EXT#@c", "a@c")]),
        &good,
    );
    let garbage = dir.join("garbage.parquet");
    std::fs::write(&garbage, b"not parquet").unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    for (key, file) in [
        ("a/y=2026/m=02/d=01/good.parquet", &good),
        ("a/y=2026/m=02/d=02/garbage.parquet", &garbage),
        ("a/y=2026/m=02/d=03/truncated.parquet", &truncated),
    ] {
        helper(
            "azure",
            server,
            &["put", "logs", key, file.to_str().unwrap()],
        );
    }
}

#[test]
fn azure_faults_are_clear_and_skippable() {
    let server = azurite();
    let env = azure_env(&server);
    let dir = tempfile::tempdir().unwrap();
    upload_bad_archive(&server, dir.path());
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();

    let run = |extra: &[&str]| {
        let base = ["run", "--quiet", "--archive", "az://logs/a", "--out", out];
        cli(&env, &[&base[..], extra].concat())
    };
    // Without --skip-bad-files the first bad object stops the run, named by its key.
    let r = run(&["--as-of", T0]);
    assert_eq!(r.status.code(), Some(3));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("`y=2026/m=02/d=02/garbage.parquet`"), "{err}");

    // With it, the run completes and lists both bad objects.
    succeeded(run(&["--skip-bad-files", "--as-of", T0]));
    let s = summary(Path::new(out));
    let bad: Vec<&str> = s["bad_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        bad,
        [
            "y=2026/m=02/d=02/garbage.parquet",
            "y=2026/m=02/d=03/truncated.parquet"
        ]
    );
    assert_eq!(s["findings"], 1);

    // A wrong key: one clear line naming the URL, never the key; configuration, so exit 2.
    let wrong = "d3JvbmdrZXl3cm9uZ2tleXdyb25na2V5d3JvbmdrZXk=";
    let r = run(&[
        "--storage-option",
        &format!("azure_storage_account_key={wrong}"),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("az://logs/a"), "{err}");
    assert!(!err.contains(wrong), "the key leaked: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // A missing container and an absent prefix.
    for url in ["az://nosuchcontainer/a", "az://logs/nothing-here"] {
        let r = cli(&env, &["run", "--quiet", "--archive", url, "--out", out]);
        assert_eq!(r.status.code(), Some(3), "{url}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(url), "{url}: {err}");
    }
}

/// `run` on a local archive as of `as_of`, without the cache: the pruning tests are about what
/// is read when objects are not taken whole for caching.
fn run_local(archive: &Path, out: &Path, as_of: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["run", "--quiet", "--no-cache", "--as-of", as_of];
    args.extend([
        "--archive",
        archive.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    succeeded(cli(&[], &args));
    out.to_path_buf()
}

#[test]
fn date_folders_outside_the_window_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let mut gen = vec!["generate", "--out", archive.to_str().unwrap()];
    gen.extend(GEN);
    succeeded(cli(&[], &gen));
    let t = "2026-02-09T12:00:00Z";
    let run = |name: &str, extra: &[&str]| run_local(&archive, &dir.path().join(name), t, extra);
    for semantics in ["intended", "sentinel"] {
        // Findings only depend on events after T − lookback: a window starting there must give
        // the same findings as a full scan while reading only its days.
        let full = run(&format!("full-{semantics}"), &["--semantics", semantics]);
        let narrow = run(
            &format!("narrow-{semantics}"),
            // No margin: the exact day folders of the window (JSON's margin: tests/it/json.rs).
            &[
                "--semantics",
                semantics,
                "--since",
                "2026-01-26T12:00:00Z",
                "--folder-skew",
                "0",
            ],
        );
        assert_eq!(finding_ids(&full), finding_ids(&narrow));
        assert!(!finding_ids(&full).is_empty());
        let (f, n) = (summary(&full), summary(&narrow));
        assert_eq!(f["files_listed"], 40);
        // T is inside day 40 (2026-02-09): days after it are pruned in both runs.
        assert_eq!(f["files"], 40);
        // 2026-01-26 .. 2026-02-09: 15 day folders listed and read; the 25 others are not
        // even listed.
        assert_eq!(n["files"], 15);
        assert_eq!(n["files_listed"], 15);
        assert_eq!(n["folders_pruned"], 25);
        assert!(n["bytes_read"].as_u64().unwrap() < f["bytes_read"].as_u64().unwrap() / 2);
    }
}

#[test]
fn row_groups_outside_the_window_are_skipped() {
    // One object, many small row groups sorted by time: statistics prune the ones before
    // --since and after --as-of, and the findings are those of an unpruned scan.
    let g = |n: u32| format!("guest{n}_p.example#EXT#@c.onmicrosoft.com");
    let mut rows = vec![];
    for d in 1..=20u32 {
        rows.push(invite(
            "t",
            &format!("i{d}"),
            &at(&format!("-{}d", d)),
            &g(d),
            "admin@c",
        ));
        if d % 3 == 0 {
            rows.push(redeem(
                "t",
                &format!("r{d}"),
                &at(&format!("-{}h", d * 24 - 12)),
                &g(d),
            ));
        }
    }
    // 26 rows up to T, then 7 after it: with groups of 3 (polars folds a short last group into
    // the one before), the last two groups lie wholly after T.
    for d in 3..=9 {
        rows.push(invite(
            "t",
            &format!("late{d}"),
            &at(&format!("+{d}d")),
            &g(90 + d),
            "admin@c",
        ));
    }
    let mut df = frame(&rows)
        .sort(["TimeGenerated"], Default::default())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("archive/events.parquet");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    ParquetWriter::new(std::fs::File::create(&file).unwrap())
        .with_row_group_size(Some(3))
        .finish(&mut df)
        .unwrap();
    let run = |name: &str, extra: &[&str]| run_local(&file, &dir.path().join(name), T0, extra);
    let full = run("full", &[]);
    let narrow = run("narrow", &["--since", &at("-15d")]);
    assert_eq!(finding_ids(&full), finding_ids(&narrow));
    // Days 5..=13 are in the intended window; 6, 9 and 12 were redeemed.
    assert_eq!(finding_ids(&full).len(), 6, "{:?}", finding_ids(&full));
    let (f, n) = (summary(&full), summary(&narrow));
    assert_eq!(f["row_groups_pruned"], 2, "the groups after T");
    assert!(n["row_groups_pruned"].as_u64().unwrap() > f["row_groups_pruned"].as_u64().unwrap());
    assert!(n["rows_scanned"].as_u64().unwrap() < f["rows_scanned"].as_u64().unwrap());
}

/// Blob keys (under `container/`) that were read with a GET since the log was last cleared.
fn blobs_fetched(server: &Server, container: &str) -> std::collections::BTreeSet<String> {
    let log = std::fs::read_to_string(server._dir.path().join("requests.log")).unwrap();
    let marker = format!("/devstoreaccount1/{container}/");
    log.lines()
        .filter_map(|l| {
            l.split_once("RequestMethod=GET RequestURL=")?
                .1
                .split_whitespace()
                .next()
        })
        .filter_map(|url| Some(url.split_once(&marker)?.1.to_string()))
        .filter(|key| !key.contains('?'))
        .map(|key| key.replace("%3D", "="))
        .collect()
}

#[test]
fn azure_reads_only_the_date_folders_of_the_window() {
    let server = azurite();
    let env = azure_env(&server);
    helper("azure", &server, &["create", "logs"]);
    succeeded(cli(
        &env,
        &[
            "generate",
            "--out",
            "az://logs/p",
            "--tenants",
            "2",
            "--days",
            "10",
            "--start",
            "2026-01-01",
            "--rows-per-day",
            "40",
            "--invites-per-day",
            "6",
            "--seed",
            "4",
        ],
    ));
    let dir = tempfile::tempdir().unwrap();
    let window = [
        "--as-of",
        "2026-01-10T12:00:00Z",
        "--lookback",
        "2d",
        "--threshold",
        "1d",
        "--no-cache",
    ];
    for semantics in ["intended", "sentinel"] {
        let run = |name: &str, extra: &[&str]| {
            std::fs::write(server._dir.path().join("requests.log"), "").unwrap();
            let out = dir.path().join(format!("{name}-{semantics}"));
            let mut args = vec![
                "run",
                "--quiet",
                "--archive",
                "az://logs/p",
                "--out",
                out.to_str().unwrap(),
                "--semantics",
                semantics,
            ];
            args.extend_from_slice(&window);
            args.extend_from_slice(extra);
            succeeded(cli(&env, &args));
            (out, blobs_fetched(&server, "logs"))
        };
        let (full, all) = run("full", &[]);
        // T − lookback: findings cannot depend on anything earlier.
        let narrow_window = ["--since", "2026-01-08T12:00:00Z", "--folder-skew", "0"];
        let (narrow, some) = run("narrow", &narrow_window);
        assert_eq!(finding_ids(&full), finding_ids(&narrow), "{semantics}");
        assert!(
            !finding_ids(&full).is_empty(),
            "{semantics}: the comparison is not vacuous"
        );
        assert_eq!(all.len(), 10, "{all:?}");
        let days: Vec<&str> = some
            .iter()
            .map(|k| &k[..k.find("/part").unwrap()])
            .collect();
        assert_eq!(
            days,
            [
                "p/y=2026/m=01/d=08",
                "p/y=2026/m=01/d=09",
                "p/y=2026/m=01/d=10"
            ],
            "{some:?}"
        );
    }
}
