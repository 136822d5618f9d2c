//! The cluster fan-out without a cluster: `plan`, then every shard's `extract` as concurrent
//! OS processes with the engine's index variable set (in shuffled order, one killed midway
//! and rerun, one run twice at once), then `run --plan --require-cached`, against Azurite
//! holding both the archive and the cache (and S3 through moto for the cache, once). The
//! outputs must equal a plain single-process run, byte for byte.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::common::*;
use crate::storage::{azure_env, azurite, helper, moto, s3_env, Server};

const GEN: [&str; 12] = [
    "--tenants",
    "3",
    "--days",
    "24",
    "--start",
    "2026-01-01",
    "--rows-per-day",
    "40",
    "--invites-per-day",
    "4",
    "--seed",
    "5",
];

/// The archive in a store, the plain run over it, and the environment reaching the store.
struct Cluster {
    server: Server,
    kind: &'static str,
    env: Vec<(&'static str, String)>,
    dir: tempfile::TempDir,
    archive: String,
    plain: PathBuf,
}

impl Cluster {
    /// `archive_in_store`: the archive in the store (else on local disk; the cache is always
    /// in the store).
    fn new(kind: &'static str, server: Server, archive_in_store: bool) -> Self {
        let env = match kind {
            "azure" => azure_env(&server),
            _ => s3_env(&server),
        };
        helper(kind, &server, &["create", "logs"]);
        let dir = tempfile::tempdir().unwrap();
        let archive = if archive_in_store {
            format!("{}://logs/audit", scheme(kind))
        } else {
            dir.path().join("archive").display().to_string()
        };
        let c = Cluster {
            server,
            kind,
            env,
            plain: dir.path().join("plain"),
            dir,
            archive,
        };
        let mut gen = vec!["generate", "--out", &c.archive];
        gen.extend(GEN);
        succeeded(c.cmd(&gen).output().unwrap());
        let plain = c.plain.display().to_string();
        succeeded(
            c.cmd(&[
                "run",
                "--quiet",
                "--no-cache",
                "--archive",
                &c.archive,
                "--out",
                &plain,
            ])
            .output()
            .unwrap(),
        );
        c
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = bin();
        cmd.args(args)
            .env("XDG_CACHE_HOME", self.dir.path().join("default-cache"))
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("AWS_BATCH_JOB_ARRAY_INDEX");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Plans `shards` shards into a fresh cache; returns the plan's URL and its JSON.
    fn plan(&self, name: &str, shards: usize) -> (String, serde_json::Value) {
        let url = format!("{}://logs/plans/{name}.json", scheme(self.kind));
        let cache = format!("{}://logs/cache-{name}", scheme(self.kind));
        let out = succeeded(
            self.cmd(&[
                "plan",
                "--quiet",
                "--archive",
                &self.archive,
                "--cache",
                &cache,
                "--shards",
                &shards.to_string(),
                "--plan",
                &url,
            ])
            .output()
            .unwrap(),
        );
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.contains(&format!("in {shards} shard(s)")), "{table}");
        let fetched = self.dir.path().join(format!("fetched-{name}"));
        helper(
            self.kind,
            &self.server,
            &["get", "logs", "plans", fetched.to_str().unwrap()],
        );
        let json = std::fs::read(fetched.join(format!("{name}.json"))).unwrap();
        (url, serde_json::from_slice(&json).unwrap())
    }

    /// One worker: `extract` with the Kubernetes index variable set.
    fn worker(&self, plan: &str, index: usize, extra: &[&str]) -> Command {
        let mut args = vec!["extract", "--plan", plan];
        args.extend_from_slice(extra);
        let mut cmd = self.cmd(&args);
        cmd.env("JOB_COMPLETION_INDEX", index.to_string());
        cmd
    }

    /// `run --plan` into `name`.
    fn run_plan(&self, plan: &str, name: &str, require_cached: bool) -> (PathBuf, Output) {
        let out = self.dir.path().join(name);
        let o = out.display().to_string();
        let mut args = vec!["run", "--quiet", "--plan", plan, "--out", &o];
        if require_cached {
            args.push("--require-cached");
        }
        (out, self.cmd(&args).output().unwrap())
    }
}

fn scheme(kind: &str) -> &'static str {
    if kind == "azure" {
        "az"
    } else {
        "s3"
    }
}

/// Every report but the summary.json files (timings, cache counts), byte for byte.
fn assert_same_reports(plain: &Path, other: &Path) {
    let strip = |d: &Path| -> Vec<(String, Vec<u8>)> {
        tree(d)
            .into_iter()
            .filter(|(n, _)| !n.ends_with("summary.json"))
            .collect()
    };
    let (a, b) = (strip(plain), strip(other));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    assert!(
        a.iter().any(|(n, _)| n.ends_with(".parquet"))
            && a.iter().any(|(n, _)| n.ends_with(".csv"))
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs from the single-process run");
    }
    let (s, p) = (summary(other), summary(plain));
    for k in ["findings", "files", "rows_scanned", "tenants"] {
        assert_eq!(s[k], p[k], "summary.json {k}");
    }
}

/// The plan's objects: each exactly once, in a shard in range; and per-shard totals that add up.
fn check_plan(plan: &serde_json::Value, shards: usize, plain: &Path) -> Vec<Vec<String>> {
    let objects = plan["objects"].as_array().unwrap();
    let mut by_shard = vec![Vec::new(); shards];
    let mut keys = BTreeSet::new();
    for o in objects {
        let key = o["key"].as_str().unwrap().to_string();
        let shard = o["shard"].as_u64().unwrap() as usize;
        assert!(shard < shards, "{key} in shard {shard}");
        assert!(keys.insert(key.clone()), "{key} planned twice");
        by_shard[shard].push(key);
    }
    assert_eq!(
        keys.len() as u64,
        summary(plain)["files_listed"].as_u64().unwrap()
    );
    let totals = plan["shards"].as_array().unwrap();
    assert_eq!(totals.len(), shards);
    for (i, t) in totals.iter().enumerate() {
        assert_eq!(t["objects"].as_u64().unwrap() as usize, by_shard[i].len());
    }
    assert!(
        !plan.to_string().contains("Eby8vdM02xNOcq"),
        "no secret in the plan"
    );
    by_shard
}

/// Waits for a worker; returns the objects its shard held and how many were already cached
/// (from its stdout line).
fn finished(child: Child) -> (usize, usize) {
    let out = succeeded(child.wait_with_output().unwrap());
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let number = |after: &str| -> usize {
        line.split(after)
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected extract output: {line}"))
    };
    (number("): "), number("object(s), "))
}

/// Starts `index`, lets it write its first segment, and kills it (SIGKILL).
fn kill_midway(c: &Cluster, plan: &str, index: usize) {
    let mut child = c
        .worker(plan, index, &["--segment-objects", "1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    for line in BufReader::new(stderr).lines() {
        if line.unwrap().contains("segment ") {
            break;
        }
    }
    let _ = child.kill();
    child.wait().unwrap();
}

#[test]
fn shards_on_concurrent_workers_give_the_single_process_results() {
    let c = Cluster::new("azure", azurite(), true);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let total = summary(&c.plain)["files_listed"].as_u64().unwrap() as usize;
    for shards in [1, 2, 3, 7, total + 9] {
        let name = format!("n{shards}");
        let (url, plan) = c.plan(&name, shards);
        let by_shard = check_plan(&plan, shards, &c.plain);
        if shards == 3 {
            kill_midway(&c, &url, 0);
        }
        let mut order: Vec<usize> = (0..shards).collect();
        order.shuffle(&mut rng);
        if shards == 7 {
            order.push(2); // the same index twice at the same time
        }
        let children: Vec<(usize, Child)> = order
            .iter()
            .map(|&i| {
                let child = c
                    .worker(&url, i, &["--quiet"])
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                (i, child)
            })
            .collect();
        let mut seen = BTreeSet::new();
        let mut covered = 0;
        for (i, child) in children {
            let (objects, cached) = finished(child);
            assert_eq!(objects, by_shard[i].len(), "shard {i} of {shards}");
            if shards == 3 && i == 0 {
                assert!(cached >= 1, "the killed attempt's segments are kept");
                eprintln!("killed shard: {cached} of {objects} objects survived the kill");
            }
            if seen.insert(i) {
                covered += objects;
            }
        }
        assert_eq!(
            covered, total,
            "the shards cover the plan ({shards} shards)"
        );
        let (out, o) = c.run_plan(&url, &name, true);
        succeeded(o);
        assert_same_reports(&c.plain, &out);
        let s = summary(&out);
        assert_eq!(s["bytes_read"], 0, "no archive byte read ({shards} shards)");
        assert_eq!(s["cache_hits"].as_u64().unwrap() as usize, total);
        assert_eq!(s["cache_misses"], 0);
        // A rerun of a finished shard extracts nothing.
        let again = c
            .worker(&url, 0, &["--quiet"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = succeeded(again.wait_with_output().unwrap());
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(line.contains(", 0 extracted, 0 bytes fetched"), "{line}");
    }
}

#[test]
fn a_missing_shard_is_named_or_filled_by_the_driver() {
    let c = Cluster::new("azure", azurite(), true);
    let (url, plan) = c.plan("gap", 3);
    let by_shard = check_plan(&plan, 3, &c.plain);
    for i in [0, 2] {
        finished(
            c.worker(&url, i, &["--quiet"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let (_, o) = c.run_plan(&url, "strict", true);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("shard(s) 1 not extracted"), "{err}");
    assert!(
        err.contains(&format!("shard 1: {}", by_shard[1][0])),
        "{err}"
    );
    assert!(
        !err.contains("shard 0:") && !err.contains("shard 2:"),
        "{err}"
    );
    let (out, o) = c.run_plan(&url, "filled", false);
    succeeded(o);
    assert_same_reports(&c.plain, &out);
    assert_eq!(
        summary(&out)["cache_misses"].as_u64().unwrap() as usize,
        by_shard[1].len(),
        "the driver scanned the missing shard itself"
    );
}

#[test]
fn a_cache_in_s3_serves_the_fan_out_too() {
    let c = Cluster::new("s3", moto(), false);
    let (url, plan) = c.plan("s3", 2);
    check_plan(&plan, 2, &c.plain);
    for i in [1, 0] {
        let mut w = c.worker(&url, i, &["--quiet"]);
        // AWS Batch's variable this time.
        w.env_remove("JOB_COMPLETION_INDEX")
            .env("AWS_BATCH_JOB_ARRAY_INDEX", i.to_string());
        finished(w.stdout(Stdio::piped()).spawn().unwrap());
    }
    let (out, o) = c.run_plan(&url, "final", true);
    succeeded(o);
    assert_same_reports(&c.plain, &out);
    assert_eq!(summary(&out)["bytes_read"], 0);
    // sweep (like replay) takes the plan the same way.
    let d = c.dir.path();
    let (plain, planned) = (d.join("sweep-plain"), d.join("sweep-plan"));
    let (p, q) = (plain.display().to_string(), planned.display().to_string());
    succeeded(
        c.cmd(&[
            "sweep",
            "-q",
            "--no-cache",
            "--archive",
            &c.archive,
            "--out",
            &p,
        ])
        .output()
        .unwrap(),
    );
    succeeded(
        c.cmd(&[
            "sweep",
            "-q",
            "--plan",
            &url,
            "--require-cached",
            "--out",
            &q,
        ])
        .output()
        .unwrap(),
    );
    assert_same_reports(&plain, &planned);
    assert!(planned.join("sweep/sweep.parquet").exists());
}

#[test]
fn refused_credentials_fail_the_whole_job_with_exit_2() {
    let c = Cluster::new("azure", azurite(), true);
    let (url, _) = c.plan("creds", 2);
    // The right account and endpoint, the wrong key: Azurite answers 403.
    let wrong = |args: &[&str]| {
        let mut cmd = bin();
        cmd.args(args)
            .env("XDG_CACHE_HOME", c.dir.path().join("default-cache"))
            .env("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
            .env("AZURE_STORAGE_ACCOUNT_KEY", "d3Jvbmcta2V5LXdyb25nLWtleQ==")
            .env(
                "AZURE_STORAGE_ENDPOINT",
                format!("{}/devstoreaccount1", c.server.endpoint),
            )
            .env("AZURE_ALLOW_HTTP", "true");
        cmd.output().unwrap()
    };
    for args in [
        vec!["extract", "--plan", url.as_str(), "--shard", "0"],
        vec![
            "run",
            "-q",
            "--no-cache",
            "--archive",
            c.archive.as_str(),
            "--out",
            "/tmp/x",
        ],
    ] {
        let o = wrong(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("403") && !err.contains("d3Jvbmcta2V5"),
            "{err}"
        );
    }
}

/// `plan`, `extract` and `run --plan` on local disk: `unredeemed ARGS` must succeed.
fn local(dir: &Path, args: &[&str]) -> Output {
    succeeded(bin().args(args).current_dir(dir).output().unwrap())
}

fn local_archive() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut gen = vec!["generate", "--out", "archive"];
    gen.extend(GEN);
    local(dir.path(), &gen);
    dir
}

#[test]
fn a_plans_since_and_tenant_carry_over_to_the_final_run() {
    let dir = local_archive();
    let d = dir.path();
    local(
        d,
        &[
            "run",
            "-q",
            "--no-cache",
            "--archive",
            "archive",
            "--out",
            "all",
        ],
    );
    let tenant = first_tenant(&d.join("all"));
    // No folder margin: the plan's objects and the plain run's are exactly the window's.
    let cut = [
        "--since",
        "2026-01-10",
        "--folder-skew",
        "0",
        "--tenant",
        &tenant,
    ];
    let mut plain: Vec<&str> = "run -q --no-cache --archive archive --out plain"
        .split(' ')
        .collect();
    plain.extend(cut);
    local(d, &plain);
    let mut plan: Vec<&str> =
        "plan -q --archive archive --cache cache --shards 2 --plan plans/p.json"
            .split(' ')
            .collect();
    plan.extend(cut);
    local(d, &plan);
    let p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("plans/p.json")).unwrap()).unwrap();
    assert!(
        p["objects"].as_array().unwrap().len() < 24,
        "folders before --since not planned"
    );
    for i in ["0", "1"] {
        local(
            d,
            &["extract", "-q", "--plan", "plans/p.json", "--shard", i],
        );
    }
    run_planned(d, "planned", &[]);
    assert_same_reports(&d.join("plain"), &d.join("planned"));
    assert_eq!(
        summary(&d.join("planned"))["since"],
        summary(&d.join("plain"))["since"]
    );
    precise_from_the_plan(d, &cut);
}

/// `run --plan plans/p.json --require-cached` into `out`, with `extra` flags.
fn run_planned(d: &Path, out: &str, extra: &[&str]) {
    let mut args = vec!["run", "-q", "--plan", "plans/p.json", "--require-cached"];
    args.extend_from_slice(extra);
    args.extend(["--out", out]);
    local(d, &args);
}

/// The shards' entries serve the `precise` reading too.
fn precise_from_the_plan(d: &Path, cut: &[&str]) {
    let mut plain_precise: Vec<&str> =
        "run -q --no-cache --semantics precise --archive archive --out plain-precise"
            .split(' ')
            .collect();
    plain_precise.extend(cut.iter().copied());
    local(d, &plain_precise);
    run_planned(d, "planned-precise", &["--semantics", "precise"]);
    assert_same_reports(&d.join("plain-precise"), &d.join("planned-precise"));
    assert_eq!(summary(&d.join("planned-precise"))["semantics"], "precise");
}

#[test]
fn an_object_rewritten_after_the_plan_is_refused() {
    let dir = local_archive();
    let d = dir.path();
    local(
        d,
        &[
            "plan",
            "-q",
            "--archive",
            "archive",
            "--cache",
            "cache",
            "--shards",
            "1",
            "--plan",
            "p.json",
        ],
    );
    // Same bytes, rewritten: a new ETag.
    let obj = d.join("archive/y=2026/m=01/d=05/part-00000.parquet");
    let bytes = std::fs::read(&obj).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::remove_file(&obj).unwrap();
    std::fs::write(&obj, bytes).unwrap();
    let o = bin()
        .args(["extract", "-q", "--plan", "p.json", "--shard", "0"])
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("y=2026/m=01/d=05/part-00000.parquet")
            && err.contains("changed since it was listed"),
        "{err}"
    );
    // And an index out of the plan's range is a usage error naming its source.
    let o = bin()
        .args(["extract", "-q", "--plan", "p.json"])
        .env("JOB_COMPLETION_INDEX", "1")
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("JOB_COMPLETION_INDEX is 1, but the plan has 1 shard(s)"));
}

/// `local` with the arguments as one line, split on spaces.
fn line(dir: &Path, args: &str) -> Output {
    local(dir, &args.split(' ').collect::<Vec<_>>())
}

#[test]
fn odd_keys_plan_and_an_earlier_since_is_refused() {
    let dir = local_archive();
    let d = dir.path();
    // Keys with characters a store path encodes: the plan must name the same objects.
    let day = d.join("archive/y=2026/m=01/d=12");
    std::fs::rename(
        day.join("part-00000.parquet"),
        day.join("part~1%3A[x] #.parquet"),
    )
    .unwrap();
    let plan =
        "plan -q --archive archive --cache cache --shards 2 --since 2026-01-05 --folder-skew 0 \
         --plan p.json";
    line(d, plan);
    for i in ["0", "1"] {
        line(d, &format!("extract -q --plan p.json --shard {i}"));
    }
    line(d, "run -q --plan p.json --since 2026-01-05 --out a");
    line(
        d,
        "run -q --no-cache --since 2026-01-05 --folder-skew 0 --archive archive --out b",
    );
    assert_same_reports(&d.join("b"), &d.join("a"));
    assert_eq!(summary(&d.join("a"))["cache_misses"], 0);
    let o = bin()
        .args(["run", "-q", "--plan", "p.json", "--since", "2026-01-02"])
        .args(["--out", "c"])
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("earlier than the plan's --since"), "{err}");
}

#[test]
fn a_store_that_does_not_answer_is_exit_5_so_engines_retry() {
    // A loopback port nothing listens on: every request is refused, after object_store's
    // own retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args([
            "run",
            "-q",
            "--no-cache",
            "--archive",
            "az://logs/a",
            "--out",
        ])
        .arg(dir.path())
        .env("AZURE_STORAGE_USE_EMULATOR", "true")
        .env(
            "AZURITE_BLOB_STORAGE_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("az://logs/a"), "{err}");
}
