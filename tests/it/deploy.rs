//! What ships in `deploy/`: the Kubernetes manifests validated offline against the schemas of
//! several Kubernetes versions (PyPI `kubernetes-validate`, `--strict`), and what a schema
//! cannot check: shard counts equal to the README's, the retry policies' exit codes equal to
//! the crate's constants, container arguments that parse with the real CLI, no secret inline,
//! and a Dockerfile that builds with the README's command.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use serde_json::Value;
use unredeemed::cli::Cli;
use unredeemed::error::exit;

use crate::common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(path: &str) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn manifests() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    assert!(out.len() >= 2, "{out:?}");
    out
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let python = venv_python("deploy/requirements.txt");
    let newest = Command::new(&python)
        .args([
            "-c",
            "import kubernetes_validate.utils as u; print(u.latest_version())",
        ])
        .output()
        .unwrap();
    let newest = String::from_utf8_lossy(&succeeded(newest).stdout)
        .trim()
        .to_string();
    let validate = python.with_file_name("kubernetes-validate");
    for version in ["1.29.0", "1.33.0", newest.as_str()] {
        let out = Command::new(&validate)
            .args(["--strict", "--quiet", "-k", version])
            .args(manifests())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Kubernetes {version}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The validator does reject what is wrong: a manifest with an unknown field.
    let bad = tempfile::tempdir().unwrap();
    let path = bad.path().join("bad.yaml");
    let text = read("deploy/kubernetes/extract-job.yaml").replace(
        "completionMode: Indexed",
        "completionMode: Indexed\n  shards: 32",
    );
    std::fs::write(&path, text).unwrap();
    let out = Command::new(&validate)
        .args(["--strict", "--quiet", "-k", &newest])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an unknown field must fail validation"
    );
}

/// The shard count the README's cluster walk-through uses (every `--shards N` there agrees).
fn documented_shards() -> u64 {
    let readme = read("README.md");
    let section = readme
        .split("## Running on a cluster")
        .nth(1)
        .expect("README has a `Running on a cluster` section");
    let section = section.split("\n## ").next().unwrap();
    let counts: Vec<u64> = section
        .split("--shards ")
        .skip(1)
        .map(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(!counts.is_empty(), "the walk-through plans with --shards N");
    assert!(counts.iter().all(|&n| n == counts[0]), "{counts:?}");
    counts[0]
}

fn codes(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap() as u8)
        .collect()
}

/// `(action, exit codes)` of every exit-code rule of a Job's podFailurePolicy.
fn pod_rules(job: &Value, container: &str) -> Vec<(String, Vec<u8>)> {
    job["spec"]["podFailurePolicy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("onExitCodes").is_some())
        .map(|r| {
            let on = &r["onExitCodes"];
            assert_eq!(on["containerName"], container);
            assert_eq!(on["operator"], "In");
            (
                r["action"].as_str().unwrap().to_string(),
                codes(&on["values"]),
            )
        })
        .collect()
}

/// The container's arguments parse with the real CLI.
fn parses(args: &Value, what: &str) -> Vec<String> {
    let args: Vec<String> = args
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let argv = std::iter::once("unredeemed".to_string()).chain(args.iter().cloned());
    if let Err(e) = Cli::try_parse_from(argv) {
        panic!("{what}: {args:?} do not parse: {e}");
    }
    args
}

/// No literal value in an environment entry whose name says it is a secret.
fn no_inline_secret(env: Option<&Value>, what: &str) {
    for e in env.and_then(Value::as_array).into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_ascii_uppercase();
        let secret = ["KEY", "SECRET", "TOKEN", "SAS", "PASSWORD"]
            .iter()
            .any(|w| name.contains(w))
            && !name.ends_with("KEY_ID");
        assert!(
            !(secret && e.get("value").is_some()),
            "{what}: {name} is inline"
        );
    }
}

#[test]
fn kubernetes_jobs_encode_the_shards_and_the_exit_codes() {
    let shards = documented_shards();
    let extract = yaml("deploy/kubernetes/extract-job.yaml");
    let spec = &extract["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"].as_u64(), Some(shards));
    assert_eq!(spec["parallelism"].as_u64(), Some(shards));
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some());
    assert!(spec["maxFailedIndexes"].as_u64().unwrap() < shards);
    assert_eq!(
        pod_rules(&extract, "extract"),
        [
            ("FailJob".to_string(), vec![exit::USAGE]),
            ("FailIndex".to_string(), vec![exit::UNREADABLE]),
        ]
    );
    let run = yaml("deploy/kubernetes/run-job.yaml");
    assert_eq!(
        pod_rules(&run, "run"),
        [("FailJob".to_string(), vec![exit::USAGE, exit::UNREADABLE])]
    );
    for (job, command) in [(&extract, "extract"), (&run, "run")] {
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let c = &pod["containers"][0];
        let args = parses(&c["args"], command);
        assert_eq!(args[0], command);
        assert!(c["resources"]["limits"]["memory"].is_string());
        no_inline_secret(c.get("env"), command);
    }
}

#[test]
fn aws_batch_definitions_encode_the_shards_and_the_exit_codes() {
    let shards = documented_shards();
    let submit = json("deploy/aws-batch/submit-extract.json");
    assert_eq!(submit["arrayProperties"]["size"].as_u64(), Some(shards));
    assert_eq!(submit["jobDefinition"], "unredeemed-extract");
    for (file, command) in [
        ("deploy/aws-batch/extract-job-definition.json", "extract"),
        ("deploy/aws-batch/run-job-definition.json", "run"),
    ] {
        let def = json(file);
        let container = &def["containerProperties"];
        assert_eq!(parses(&container["command"], file)[0], command);
        no_inline_secret(container.get("environment"), file);
        assert_ne!(container["user"], "0", "{file}: non-root");
        let rules = def["retryStrategy"]["evaluateOnExit"].as_array().unwrap();
        let exits: Vec<u8> = rules
            .iter()
            .filter(|r| r["action"] == "EXIT")
            .map(|r| r["onExitCode"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(exits, [exit::USAGE, exit::UNREADABLE], "{file}");
        // Everything else is retried: the last rule catches any exit code.
        let last = rules.last().unwrap();
        assert_eq!(
            (&last["onExitCode"], &last["action"]),
            (&"*".into(), &"RETRY".into())
        );
        assert!(def["retryStrategy"]["attempts"].as_u64().unwrap() > 1);
    }
}

#[test]
fn the_image_builds_the_binary_as_the_readme_does() {
    let docker = read("deploy/Dockerfile");
    let stages = docker.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage");
    assert!(docker.contains("cargo build --release --locked"));
    let user = docker
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER line");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    assert!(read("README.md").contains("cargo build --release --locked"));
    assert!(Path::new(&root().join(".dockerignore")).exists());
}
