//! JSON Lines archives as Azure writes them (Entra diagnostic settings, Log Analytics data
//! export; plain and gzip) read like Parquet: the same history gives the same findings and
//! baseline in every format and both semantics; bad lines are counted per object and never
//! cached; a growing blob is read again, alone.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;

const A: &str = "4d3bac44-0230-4732-9e70-cc00736f0a97";
const B: &str = "fc69e276-e9e8-4af9-9002-1e410d77244e";
const ADMIN: &str = "admin@contoso.com";

fn guest(n: u32) -> String {
    format!("guest{n}_fabrikam.com#EXT#@contoso.onmicrosoft.com")
}

/// Two tenants' invites, redeems (the UPN text in either field), re-invites, an app invite,
/// a failed redeem, case drift and a duplicate delivery, over the three weeks before T0.
fn history() -> Vec<Audit> {
    let mut rows = vec![
        invite(A, "i1", &at("-7d"), &guest(1), ADMIN),
        invite(A, "i2", &at("-8d"), &guest(2), ADMIN),
        redeem(A, "r2", &at("-6d"), &guest(2)),
        invite(A, "i3", &at("-9d"), &guest(3), ADMIN),
        redeem_text_in_upn(A, "r3", &at("-2d"), &guest(3)),
        app_invite(A, "i4", &at("-10d"), &guest(4)),
        invite(B, "i5", &at("-12d"), &guest(5), ADMIN),
        invite(B, "i6", &at("-6d"), &guest(5), ADMIN),
        invite(B, "i7", &at("-20d"), &guest(7), ADMIN),
        invite(B, "i8", &at("-1d"), &guest(8), ADMIN),
    ];
    let mut failed = redeem(B, "r7", &at("-19d"), &guest(7));
    failed.result = "failure".into();
    rows.push(failed);
    let mut drift = redeem(B, "r5", &at("-3d"), &guest(5));
    drift.operation = "REDEEM EXTERNAL USER INVITE".into();
    drift.category = "usermanagement".into();
    rows.push(drift.clone());
    rows.push(drift);
    rows
}

fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// A diagnostic-settings record (camelCase envelope), the tenant only in `resourceId` for
/// every other record, as older envelopes have it.
fn diagnostic(a: &Audit, i: usize) -> String {
    let mut r = json!({
        "time": a.time,
        "resourceId": format!("/tenants/{}/providers/Microsoft.aadiam", a.tenant),
        "operationName": a.operation,
        "category": "AuditLogs",
        "properties": {
            "id": a.id,
            "category": a.category,
            "result": a.result,
            "activityDisplayName": a.operation,
            "activityDateTime": a.time.replace('Z', "+00:00"),
            "initiatedBy": value(&a.initiated),
            "targetResources": value(&a.targets),
        },
    });
    if i.is_multiple_of(2) {
        r["tenantId"] = a.tenant.clone().into();
    }
    if let Some(d) = &a.details {
        r["properties"]["additionalDetails"] = value(d);
    }
    r.to_string()
}

/// A data-export record (PascalCase columns); dynamic columns as JSON values and as JSON text
/// in turn, mixed in one file.
fn exported(a: &Audit, i: usize) -> String {
    let dynamic = |t: &str| {
        if i.is_multiple_of(2) {
            value(t)
        } else {
            Value::from(t)
        }
    };
    let mut r = json!({
        "TenantId": a.tenant,
        "AADTenantId": a.aad_tenant,
        "TimeGenerated": a.time,
        "Id": a.id,
        "Category": a.category,
        "OperationName": a.operation,
        "Result": a.result,
        "TargetResources": dynamic(&a.targets),
        "InitiatedBy": dynamic(&a.initiated),
        "Type": "AuditLogs",
    });
    if let Some(d) = &a.details {
        r["AdditionalDetails"] = dynamic(d);
    }
    r.to_string()
}

/// The folders of an hour, as Azure Monitor names them.
fn hour_folder(time: &str) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(time).unwrap();
    t.format("y=%Y/m=%m/d=%d/h=%H/m=00").to_string()
}

fn gzip(text: &str) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(text.as_bytes()).unwrap();
    g.finish().unwrap()
}

/// `rows` written as `format` under `root`, one blob per tenant and hour.
pub(crate) fn write_json(rows: &[Audit], root: &Path, format: &str) {
    let mut blobs: std::collections::BTreeMap<PathBuf, String> = Default::default();
    for (i, a) in rows.iter().enumerate() {
        let (path, line) = match format {
            "diag" => (
                root.join(format!("tenantId={}", a.tenant))
                    .join(hour_folder(&a.time))
                    .join("PT1H.json"),
                diagnostic(a, i),
            ),
            _ => (
                root.join(format!(
                    "WorkspaceResourceId=/subscriptions/s1/resourcegroups/rg/providers/\
                     microsoft.operationalinsights/workspaces/ws-{}",
                    &a.tenant[..4]
                ))
                .join(hour_folder(&a.time))
                .join("PT05M.json.gz"),
                exported(a, i),
            ),
        };
        let blob = blobs.entry(path).or_default();
        blob.push_str(&line);
        blob.push('\n');
    }
    for (path, text) in blobs {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = match path.extension().is_some_and(|e| e == "gz") {
            true => gzip(&text),
            false => text.into_bytes(),
        };
        std::fs::write(path, bytes).unwrap();
    }
}

/// `unredeemed COMMAND` at T0 (`replay`: up to T0) over `archive` into `out`, which must
/// succeed.
fn run_on(command: &str, archive: &Path, out: &Path, extra: &[&str]) {
    run_at(command, T0, archive, out, extra);
}

/// `unredeemed COMMAND` at `time`, as [`run_on`].
pub(crate) fn run_at(command: &str, time: &str, archive: &Path, out: &Path, extra: &[&str]) {
    let at = if command == "replay" {
        "--to"
    } else {
        "--as-of"
    };
    succeeded(
        bin()
            .args([command, "-q", at, time, "--archive"])
            .arg(archive)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap(),
    );
}

/// Every output but those that describe the scan itself.
fn results(out: &Path) -> Vec<(String, Vec<u8>)> {
    tree(out)
        .into_iter()
        // The pages show what report.md and summary.json show.
        .filter(|(name, _)| {
            !name.ends_with("summary.json")
                && !name.ends_with("report.md")
                && !name.ends_with(".html")
        })
        .collect()
}

#[test]
fn the_same_history_gives_the_same_results_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    // A diagnostic record's Entra tenant is its tenant; the other two formats say so too.
    let rows: Vec<Audit> = history()
        .into_iter()
        .map(|a| Audit {
            aad_tenant: Some(a.tenant.clone()),
            ..a
        })
        .collect();
    let parquet = dir.path().join("parquet");
    write_parquet(&frame(&rows), &parquet.join("y=2026/m=02/part-0.parquet"));
    for format in ["diag", "export"] {
        let archive = dir.path().join(format);
        write_json(&rows, &archive, format);
        for semantics in ["intended", "sentinel"] {
            for command in ["run", "replay", "sweep"] {
                let extra: &[&str] = match command {
                    "replay" => &["--from", "2026-02-20", "--every", "1d"],
                    "sweep" => &["--thresholds", "1d,3d,5d"],
                    _ => &[],
                };
                let flags = [&["--no-cache", "--semantics", semantics][..], extra].concat();
                let want = dir
                    .path()
                    .join(format!("want-{format}-{semantics}-{command}"));
                run_on(command, &parquet, &want, &flags);
                let got = dir
                    .path()
                    .join(format!("got-{format}-{semantics}-{command}"));
                run_on(command, &archive, &got, &flags);
                assert!(!finding_ids(&want).is_empty() || command != "run");
                assert_eq!(
                    results(&got),
                    results(&want),
                    "{format} {semantics} {command}"
                );
                let s = summary(&got);
                assert_eq!(s["bad_lines"].as_array().unwrap().len(), 0, "{s}");
                assert_eq!(s["duplicates_dropped"], 1, "{s}");
            }
        }
    }
}

#[test]
fn bad_lines_are_counted_per_object_and_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_json(&history(), &archive, "diag");
    let hour = archive
        .join(format!("tenantId={A}"))
        .join(hour_folder(&at("-7d")));
    let blob = hour.join("PT1H.json");
    let mut text = std::fs::read_to_string(&blob).unwrap();
    text.push_str("not json\n{\"time\": \"2026-02-22T00:00:00Z\", \"operationName\": \"Invite ex");
    std::fs::write(&blob, text).unwrap();
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    let with_cache = ["--cache", cache.to_str().unwrap()];
    run_on("run", &archive, &out, &with_cache);
    let s = summary(&out);
    let bad = s["bad_lines"].as_array().unwrap();
    assert_eq!(bad.len(), 1, "{s}");
    let key = bad[0]["key"].as_str().unwrap();
    assert!(blob.ends_with(key), "{key}");
    assert_eq!(bad[0]["unparseable_lines"], 1);
    assert_eq!(bad[0]["truncated_last_line"], true);
    // Its invite is read all the same.
    assert!(finding_ids(&out).contains(&"i1".to_string()));
    // A rerun reads that object again (and reports it again), the others from the cache.
    run_on("run", &archive, &out, &with_cache);
    let s = summary(&out);
    assert_eq!(s["cache_misses"], 1, "{s}");
    assert_eq!(s["bad_lines"].as_array().unwrap().len(), 1, "{s}");
}

#[test]
fn a_growing_blob_is_read_again_alone() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let rows = history();
    write_json(&rows[..rows.len() - 1], &archive, "diag");
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    let with_cache = ["--cache", cache.to_str().unwrap()];
    run_on("run", &archive, &out, &with_cache);
    let before = summary(&out);
    // The last record (the duplicate delivery) appended to its hour's blob.
    let last = rows.last().unwrap();
    let blob = archive
        .join(format!("tenantId={}", last.tenant))
        .join(hour_folder(&last.time))
        .join("PT1H.json");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&blob)
        .unwrap();
    writeln!(f, "{}", diagnostic(last, 0)).unwrap();
    drop(f);
    run_on("run", &archive, &out, &with_cache);
    let after = summary(&out);
    assert_eq!(after["cache_misses"], 1, "{after}");
    assert_eq!(
        after["cache_hits"],
        before["cache_misses"].as_u64().unwrap() - 1
    );
    assert_eq!(after["duplicates_dropped"], 1);
}

#[test]
fn an_object_that_is_not_json_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_json(&history(), &archive, "export");
    let bad = archive.join("y=2026/m=02/d=01/PT05M.json");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, b"PAR1 not json").unwrap();
    let out = dir.path().join("out");
    let ended = bin()
        .args(["run", "-q", "--no-cache", "--as-of", T0, "--archive"])
        .arg(&archive)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&ended.stderr);
    assert_eq!(ended.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("y=2026/m=02/d=01/PT05M.json"), "{stderr}");
    run_on("run", &archive, &out, &["--no-cache", "--skip-bad-files"]);
    assert_eq!(
        summary(&out)["bad_files"][0]["key"],
        "y=2026/m=02/d=01/PT05M.json"
    );
}

#[test]
fn events_filed_up_to_48h_from_their_folder_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    // A blob fills by time received: `after` is filed in the hour 47 h before it, `before` in
    // the hour 47 h after it.
    let after = invite(A, "after", &at("-7d"), &guest(1), ADMIN);
    let before = invite(A, "before", &at("-9d"), &guest(2), ADMIN);
    for (a, filed) in [(&after, at("-215h")), (&before, at("-169h"))] {
        let blob = archive
            .join(format!("tenantId={A}"))
            .join(hour_folder(&filed))
            .join("PT1H.json");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, format!("{}\n", diagnostic(a, 0))).unwrap();
    }
    let found = |since: &str, skew: Option<&str>| {
        let out = dir.path().join(format!("out-{since}-{skew:?}"));
        let mut flags = vec!["--no-cache", "--since", since];
        flags.extend(skew.iter().flat_map(|s| ["--folder-skew", s]));
        run_on("run", &archive, &out, &flags);
        finding_ids(&out)
    };
    // `after`'s folder ends 45 h before --since: kept by the default 48 h margin only.
    let since = at("-169h");
    assert_eq!(found(&since, None), ["after"]);
    assert_eq!(
        found(&since, Some("0")),
        Vec::<String>::new(),
        "the test can fail"
    );
    // An event filed after its time needs no margin.
    let since = at("-9d");
    assert_eq!(found(&since, Some("0")), ["after", "before"]);
}

#[test]
fn an_append_blob_on_azurite_is_read_again_alone_when_it_grows() {
    use crate::storage::{azure_env, azurite, cli, helper};
    let server = azurite();
    let env = azure_env(&server);
    let dir = tempfile::tempdir().unwrap();
    helper("azure", &server, &["create", "insights-logs-auditlogs"]);
    // Each hour's records appended to its blob, as diagnostic settings write them.
    let rows = history();
    let local = dir.path().join("local");
    write_json(&rows[..rows.len() - 1], &local, "diag");
    let mut blobs = vec![];
    for (key, _) in tree(&local) {
        let file = local.join(&key);
        let args = [
            "append",
            "insights-logs-auditlogs",
            &key,
            file.to_str().unwrap(),
        ];
        helper("azure", &server, &args);
        blobs.push(key);
    }
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let run = || {
        let args = [
            "run",
            "-q",
            "--as-of",
            T0,
            "--archive",
            "az://insights-logs-auditlogs",
            "--cache",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        succeeded(cli(&env, &args));
        summary(&out)
    };
    let first = run();
    assert_eq!(first["cache_misses"].as_u64(), Some(blobs.len() as u64));
    assert_eq!(first["duplicates_dropped"], 0);
    // The last record (a second delivery) appended to its hour's blob.
    let last = rows.last().unwrap();
    let key = format!(
        "tenantId={}/{}/PT1H.json",
        last.tenant,
        hour_folder(&last.time)
    );
    assert!(blobs.contains(&key), "{key} is one of the blobs");
    let more = dir.path().join("more.json");
    std::fs::write(&more, format!("{}\n", diagnostic(last, 0))).unwrap();
    helper(
        "azure",
        &server,
        &[
            "append",
            "insights-logs-auditlogs",
            &key,
            more.to_str().unwrap(),
        ],
    );
    let second = run();
    assert_eq!(second["cache_misses"], 1, "{second}");
    assert_eq!(second["cache_hits"].as_u64(), Some(blobs.len() as u64 - 1));
    assert_eq!(second["duplicates_dropped"], 1);
}

#[test]
fn generated_archives_give_the_same_results_in_all_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |format: &str, gzip: bool| {
        let out = dir.path().join(format);
        let mut args = gen_flags(2, 20, 100, 3, 5);
        args.extend(["--format".into(), format.into(), "--out".into()]);
        args.push(out.to_str().unwrap().into());
        if gzip {
            args.push("--gzip".into());
        }
        succeeded(bin().arg("generate").args(&args).output().unwrap());
        out
    };
    let parquet = generate("parquet", false);
    for (format, gzip) in [("diag-json", false), ("la-export-json", true)] {
        let archive = generate(format, gzip);
        let blob = walk_files(&archive).into_iter().next().unwrap();
        assert!(
            blob.ends_with(if gzip { ".json.gz" } else { ".json" }),
            "{blob}"
        );
        for semantics in ["intended", "sentinel"] {
            let config = format!(
                "{}/data/example-config/unredeemed.toml",
                env!("CARGO_MANIFEST_DIR")
            );
            for (command, extra) in [
                ("run", &[][..]),
                ("run", &["--config", config.as_str()][..]),
                ("replay", &["--from", "2026-01-12", "--every", "2d"][..]),
                ("sweep", &["--thresholds", "6h,1d,3d,5d"][..]),
            ] {
                let flags = [&["--no-cache", "--semantics", semantics][..], extra].concat();
                let name = format!("{format}-{semantics}-{command}-{}", extra.len());
                let (want, got) = (dir.path().join(format!("p-{name}")), dir.path().join(&name));
                run_at(command, "2026-01-20", &parquet, &want, &flags);
                run_at(command, "2026-01-20", &archive, &got, &flags);
                assert_eq!(results(&got), results(&want), "{name}");
                if command == "run" {
                    assert!(!finding_ids(&got).is_empty(), "{name}: not vacuous");
                }
            }
        }
    }
}

/// `generate FLAGS --format FORMAT` run in `dir` (`format`: the format and what follows it).
fn generate_in(dir: &Path, flags: Vec<String>, format: &str) {
    let format = std::iter::once("--format").chain(format.split(' '));
    succeeded(
        bin()
            .arg("generate")
            .args(flags)
            .args(format)
            .current_dir(dir)
            .output()
            .unwrap(),
    );
}

/// Every file under `dir`, relative, sorted.
fn walk_files(dir: &Path) -> Vec<String> {
    tree(dir).into_iter().map(|(name, _)| name).collect()
}

#[test]
fn a_json_archive_fans_out_like_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate_in(
        d,
        gen_flags(2, 10, 100, 3, 9),
        "diag-json --gzip --out archive",
    );
    let line = |text: &str| {
        let args: Vec<&str> = text.split(' ').collect();
        succeeded(bin().args(&args).current_dir(d).output().unwrap())
    };
    line("plan -q --archive archive --cache cache --shards 3 --plan p.json");
    for shard in 0..3 {
        line(&format!("extract -q --plan p.json --shard {shard}"));
    }
    let to = "--as-of 2026-01-10";
    line(&format!(
        "run -q {to} --plan p.json --require-cached --out planned"
    ));
    line(&format!(
        "run -q {to} --no-cache --archive archive --out plain"
    ));
    assert_eq!(results(&d.join("planned")), results(&d.join("plain")));
    assert!(!finding_ids(&d.join("plain")).is_empty());
}

/// The late-read objects' candidate rows are extracted in batches as the scan goes (so the
/// raw rows held stay bounded): every object extracted alone gives the same outputs and the
/// same cache entries as one batch of all, in Parquet and JSON.
#[test]
fn extraction_in_batches_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for format in ["parquet", "diag-json"] {
        generate_in(
            d,
            gen_flags(2, 12, 100, 3, 11),
            &format!("{format} --out {format}"),
        );
        let run = |name: &str, batch: Option<&str>, cache: &str| {
            let mut cmd = bin();
            cmd.args([
                "run",
                "-q",
                "--as-of",
                "2026-01-12",
                "--semantics",
                "precise",
            ])
            .args(["--archive", format, "--out", name])
            .args(cache.split(' '))
            .current_dir(d);
            if let Some(b) = batch {
                cmd.env("UNREDEEMED_EXTRACT_BATCH", b);
            }
            succeeded(cmd.output().unwrap());
            d.join(name)
        };
        let whole = run(&format!("{format}-whole"), None, "--no-cache");
        assert!(!finding_ids(&whole).is_empty(), "{format}: not vacuous");
        let alone = run(&format!("{format}-alone"), Some("1"), "--no-cache");
        assert_same_outputs(&whole, &alone);
        // Entries written from batches serve a warm run with the same outputs.
        let cache = format!("--cache {format}-cache");
        let cold = run(&format!("{format}-cold"), Some("1"), &cache);
        let warm = run(&format!("{format}-warm"), None, &cache);
        assert_eq!(results(&cold), results(&whole), "{format}: cold");
        assert_eq!(results(&warm), results(&whole), "{format}: warm");
        assert_eq!(
            summary(&warm)["cache_misses"],
            0,
            "{format}: all from the cache"
        );
        assert!(
            summary(&warm)["cache_hits"].as_u64().unwrap() > 1,
            "{format}"
        );
    }
}
