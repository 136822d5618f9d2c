//! Helpers shared by the integration tests: literal AuditLogs rows written as real Parquet,
//! a run of the library over them, and readers for what it wrote.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use unredeemed::job::{AsOf, RunJob};
use unredeemed::run;
use unredeemed::time::{parse_duration, parse_instant};
use unredeemed::Reader;
use unredeemed::Semantics;

pub const T0: &str = "2026-03-01T00:00:00Z";

/// The columns of `findings.parquet`, in order.
pub const FINDING_COLUMNS: [&str; 8] = [
    "TenantId",
    "AADTenantId",
    "TargetUPN",
    "InviteTime",
    "InviteInitiator",
    "IPAddress",
    "Id",
    "PendingSeconds",
];

/// One AuditLogs row, dynamic columns as JSON text.
#[derive(Clone, Debug)]
pub struct Audit {
    pub tenant: String,
    /// `AADTenantId`; the column is written only when some row has one.
    pub aad_tenant: Option<String>,
    pub id: String,
    pub time: String,
    pub category: String,
    pub operation: String,
    pub result: String,
    pub targets: String,
    pub initiated: String,
    /// `AdditionalDetails` (JSON text); the column is written only when some row has one.
    pub details: Option<String>,
}

pub fn ts(text: &str) -> i64 {
    parse_instant(text).unwrap()
}

/// T0 shifted by a KQL duration (`-3d`, `+90m`).
pub fn at(offset: &str) -> String {
    let (sign, d) = offset.split_at(1);
    let ns = parse_duration(d).unwrap() * if sign == "-" { -1 } else { 1 };
    unredeemed::time::format_instant(ts(T0) + ns)
}

pub fn invite(tenant: &str, id: &str, time: &str, guest_upn: &str, by: &str) -> Audit {
    Audit {
        tenant: tenant.into(),
        aad_tenant: None,
        id: id.into(),
        time: time.into(),
        category: "UserManagement".into(),
        operation: "Invite external user".into(),
        result: "success".into(),
        targets: format!(
            r#"[{{"id":"g1","displayName":null,"type":"User","userPrincipalName":"{guest_upn}","modifiedProperties":[]}}]"#
        ),
        initiated: format!(
            r#"{{"user":{{"id":"u1","userPrincipalName":"{by}","ipAddress":"203.0.113.7","roles":[]}}}}"#
        ),
        details: None,
    }
}

pub fn app_invite(tenant: &str, id: &str, time: &str, guest_upn: &str) -> Audit {
    Audit {
        initiated: r#"{"app":{"appId":"a1","displayName":"Microsoft.Azure.SyncFabric"}}"#.into(),
        ..invite(tenant, id, time, guest_upn, "")
    }
}

/// A redeem as public samples show it: text in displayName, bare UPN in userPrincipalName.
pub fn redeem(tenant: &str, id: &str, time: &str, guest_upn: &str) -> Audit {
    redeem_raw(
        tenant,
        id,
        time,
        &format!("UPN: {guest_upn}, Email: guest@partner.example, InvitationId: 1, Source: OTP"),
        guest_upn,
    )
}

/// A redeem as some archives have it: the `UPN: …` text in userPrincipalName.
pub fn redeem_text_in_upn(tenant: &str, id: &str, time: &str, guest_upn: &str) -> Audit {
    redeem_raw(
        tenant,
        id,
        time,
        "Guest Person",
        &format!("UPN: {guest_upn}, Email: guest@partner.example, InvitationId: 1, Source: OTP"),
    )
}

pub fn redeem_raw(tenant: &str, id: &str, time: &str, display: &str, upn: &str) -> Audit {
    Audit {
        tenant: tenant.into(),
        aad_tenant: None,
        id: id.into(),
        time: time.into(),
        category: "UserManagement".into(),
        operation: "Redeem external user invite".into(),
        result: "success".into(),
        targets: serde_json::json!([{"id": "g1", "displayName": display, "type": "User", "userPrincipalName": upn}])
            .to_string(),
        initiated: r#"{"user":{"id":"g1","userPrincipalName":"guest@partner.example","ipAddress":"198.51.100.9"}}"#.into(),
        details: None,
    }
}

/// `a` about the guest object `object_id` (`TargetResources[0].id`).
pub fn on_object(a: Audit, object_id: &str) -> Audit {
    let mut t: serde_json::Value = serde_json::from_str(&a.targets).unwrap();
    t[0]["id"] = object_id.into();
    Audit {
        targets: t.to_string(),
        ..a
    }
}

/// An invite carrying its `InvitationId` and `invitedUserEmailAddress` in `AdditionalDetails`,
/// as real ones do (empty: left out).
pub fn with_invitation(a: Audit, invitation_id: &str, email: &str) -> Audit {
    let mut d = vec![serde_json::json!({"key": "oid", "value": "u1"})];
    if !invitation_id.is_empty() {
        d.push(serde_json::json!({"key": "InvitationId", "value": invitation_id}));
    }
    if !email.is_empty() {
        d.push(serde_json::json!({"key": "invitedUserEmailAddress", "value": email}));
    }
    Audit {
        details: Some(serde_json::Value::from(d).to_string()),
        ..a
    }
}

/// An admin resetting a guest's redemption: the same object, a new invitation.
pub fn reset_invite(tenant: &str, id: &str, time: &str, guest_upn: &str, by: &str) -> Audit {
    Audit {
        operation: "Invite external user with reset invitation status".into(),
        ..invite(tenant, id, time, guest_upn, by)
    }
}

/// A user-management operation (`Delete user`, `Update user`…) on the object `object_id`.
pub fn directory_op(tenant: &str, id: &str, time: &str, op: &str, object_id: &str) -> Audit {
    Audit {
        operation: op.into(),
        targets: serde_json::json!([{"id": object_id, "type": "User", "modifiedProperties": []}])
            .to_string(),
        initiated: r#"{"user":{"id":"u1","userPrincipalName":"admin@contoso.com"}}"#.into(),
        ..invite(tenant, id, time, "", "")
    }
}

/// An "Update user" of `object_id` changing `property` from `old` to `new` (values as Entra
/// writes them: JSON-array text such as `["Accepted"]`).
pub fn update_user(
    tenant: &str,
    id: &str,
    time: &str,
    object_id: &str,
    property: &str,
    (old, new): (&str, &str),
) -> Audit {
    let a = directory_op(tenant, id, time, "Update user", object_id);
    Audit {
        targets: serde_json::json!([{"id": object_id, "type": "User", "modifiedProperties": [
            {"displayName": property, "oldValue": old, "newValue": new},
            {"displayName": "Included Updated Properties", "oldValue": null,
             "newValue": format!("\"{property}\"")}
        ]}])
        .to_string(),
        ..a
    }
}

pub fn frame(rows: &[Audit]) -> DataFrame {
    let s = |name: &str, f: fn(&Audit) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>())
    };
    let times: Vec<i64> = rows.iter().map(|r| ts(&r.time) / 1_000).collect();
    let df = DataFrame::new_infer_height(vec![
        s("TenantId", |r| r.tenant.clone()),
        s("Id", |r| r.id.clone()),
        Column::new("TimeGenerated".into(), times)
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap(),
        s("Category", |r| r.category.clone()),
        s("OperationName", |r| r.operation.clone()),
        s("Result", |r| r.result.clone()),
        s("TargetResources", |r| r.targets.clone()),
        s("InitiatedBy", |r| r.initiated.clone()),
        s("LoggedByService", |_| "Core Directory".into()),
    ])
    .unwrap();
    let mut df = df;
    if rows.iter().any(|r| r.aad_tenant.is_some()) {
        let aad: Vec<Option<&str>> = rows.iter().map(|r| r.aad_tenant.as_deref()).collect();
        df = df
            .hstack(&[Column::new("AADTenantId".into(), aad)])
            .unwrap();
    }
    if rows.iter().any(|r| r.details.is_some()) {
        let d: Vec<Option<&str>> = rows.iter().map(|r| r.details.as_deref()).collect();
        df = df
            .hstack(&[Column::new("AdditionalDetails".into(), d)])
            .unwrap();
    }
    df
}

/// `rows`, each in the Entra tenant `aad` (a Log Analytics row's `AADTenantId`).
pub fn in_entra(aad: &str, rows: Vec<Audit>) -> Vec<Audit> {
    rows.into_iter()
        .map(|a| Audit {
            aad_tenant: Some(aad.to_string()),
            ..a
        })
        .collect()
}

pub fn write_parquet(df: &DataFrame, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    ParquetWriter::new(&mut f).finish(&mut df.clone()).unwrap();
}

pub fn read_parquet(path: &Path) -> DataFrame {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(f).finish().unwrap()
}

pub struct Opts {
    pub semantics: Semantics,
    pub as_of: Option<&'static str>,
    pub lookback: &'static str,
    pub threshold: &'static str,
    pub since: Option<&'static str>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            semantics: Semantics::Intended,
            as_of: Some(T0),
            lookback: "14d",
            threshold: "5d",
            since: None,
        }
    }
}

pub fn job(archive: &Path, out: &Path, o: &Opts) -> RunJob {
    RunJob {
        archive: archive.to_string_lossy().into_owned(),
        out: out.to_string_lossy().into_owned(),
        storage_options: vec![],
        skip_bad_files: false,
        cache: None,
        plan: None,
        require_cached: false,
        as_of: o.as_of.map(|t| AsOf::At(ts(t))).unwrap_or(AsOf::Latest),
        lookback: parse_duration(o.lookback).unwrap(),
        threshold: parse_duration(o.threshold).unwrap(),
        semantics: o.semantics,
        since: o.since.map(ts),
        folder_skew: parse_duration("48h").unwrap(),
        tenants: vec![],
        quiet: true,
        rule: unredeemed::Rule::builtin(),
        exclusions: None,
        reader: unredeemed::Reader::Auto,
    }
}

/// Writes `rows` as one Parquet object, runs the job, returns (temp dir, out dir).
pub fn run_rows(rows: &[Audit], o: &Opts) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_parquet(
        &frame(rows),
        &archive.join("y=2026/m=03/d=01/part-0.parquet"),
    );
    let out = dir.path().join("out");
    // Every literal-row test runs through both object readers, which must agree byte for byte.
    let mut j = job(&archive, &out, o);
    j.reader = Reader::Late;
    run(&j).unwrap();
    let polars_out = dir.path().join("out-polars");
    j.out = polars_out.to_string_lossy().into_owned();
    j.reader = Reader::Polars;
    run(&j).unwrap();
    assert_same_outputs(&out, &polars_out);
    (dir, out)
}

/// `summary.json` without its stage timings and fetch figures, which differ between any two
/// runs (and between a cached and an uncached one).
pub fn summary_without_timings(out: &Path) -> serde_json::Value {
    let mut s = summary(out);
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| {
                    k != "timings"
                        && (!k.ends_with("_seconds")
                            || k == "lookback_seconds"
                            || k == "threshold_seconds")
                });
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut s);
    s
}

/// Two output folders hold the same files with the same bytes (timings aside).
pub fn assert_same_outputs(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb));
    for ((name, x), (_, y)) in ta.iter().zip(&tb) {
        if name.ends_with("summary.json") {
            let (p, q) = (a.join(name), b.join(name));
            let (p, q) = (p.parent().unwrap(), q.parent().unwrap());
            assert_eq!(
                summary_without_timings(p),
                summary_without_timings(q),
                "{name}"
            );
        } else {
            assert!(
                x == y,
                "{name} differs between {} and {}",
                a.display(),
                b.display()
            );
        }
    }
}

/// Sorted `Id`s of all findings under `out`.
pub fn finding_ids(out: &Path) -> Vec<String> {
    let mut ids = vec![];
    for entry in std::fs::read_dir(out).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tenant=")
        {
            let df = read_parquet(&p.join("findings.parquet"));
            ids.extend(
                df.column("Id")
                    .unwrap()
                    .str()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap().to_string()),
            );
        }
    }
    ids.sort();
    ids
}

pub fn intended(rows: &[Audit]) -> Vec<String> {
    let (_d, out) = run_rows(rows, &Opts::default());
    finding_ids(&out)
}

pub fn precise(rows: &[Audit]) -> Vec<String> {
    let (_d, out) = run_rows(
        rows,
        &Opts {
            semantics: Semantics::Precise,
            ..Opts::default()
        },
    );
    finding_ids(&out)
}

pub fn sentinel(rows: &[Audit]) -> Vec<String> {
    let (_d, out) = run_rows(
        rows,
        &Opts {
            semantics: Semantics::Sentinel,
            ..Opts::default()
        },
    );
    finding_ids(&out)
}

pub fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

/// Writes a generated archive to a local folder.
pub fn generate_local(spec: &unredeemed::GenSpec, dir: &Path) -> unredeemed::GenStats {
    unredeemed::generate(spec, dir.to_str().unwrap(), &[]).unwrap()
}

/// Every file under `dir`, as (path relative to `dir`, bytes), sorted by path.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                v.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    v.sort();
    v
}

/// A string column as owned values (null as `""`).
pub fn col_str(df: &DataFrame, c: &str) -> Vec<String> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect()
}

/// An i64 column with no nulls.
pub fn col_i64(df: &DataFrame, c: &str) -> Vec<i64> {
    df.column(c)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|v| v.expect("no nulls"))
        .collect()
}

/// A boolean column with no nulls.
pub fn col_bool(df: &DataFrame, c: &str) -> Vec<bool> {
    df.column(c)
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(|v| v.expect("no nulls"))
        .collect()
}

/// The binary under test.
pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_unredeemed"))
}

/// The checkout's `.venv` Python, which `scripts/test` sets up with `requirements` installed;
/// a loud failure with the command to run when it is missing.
pub fn venv_python(requirements: &str) -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test (it creates .venv and installs {requirements}), \
         or: python3 -m venv .venv && .venv/bin/pip install -r {requirements}",
        python.display()
    );
    python
}

/// A CLI run that must have exited 0; its stderr is the failure message.
pub fn succeeded(out: std::process::Output) -> std::process::Output {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `unredeemed COMMAND --archive data/sample --no-cache -q EXTRA.. --out OUT`, which must
/// succeed.
pub fn on_sample(command: &str, extra: &[&str], out: &Path) -> std::process::Output {
    succeeded(
        bin()
            .args([command, "--archive", "data/sample", "--no-cache", "-q"])
            .args(extra)
            .arg("--out")
            .arg(out)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap(),
    )
}

/// The `tenant=` folders under `out`, sorted.
pub fn tenant_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("tenant=")
        })
        .collect();
    dirs.sort();
    dirs
}

/// `generate`'s flags for an archive from 2026-01-01.
pub fn gen_flags(
    tenants: u32,
    days: u32,
    rows_per_day: u32,
    invites: u32,
    seed: u64,
) -> Vec<String> {
    [
        ("--tenants", tenants.to_string()),
        ("--days", days.to_string()),
        ("--start", "2026-01-01".to_string()),
        ("--rows-per-day", rows_per_day.to_string()),
        ("--invites-per-day", invites.to_string()),
        ("--seed", seed.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// The first `tenant=` folder under `out`.
pub fn first_tenant_dir(out: &Path) -> PathBuf {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("tenant=")
        })
        .expect("a tenant folder")
}

/// A Parquet object with its footer rewritten by `edit` (the data pages are left as they
/// are): damaged statistics, as a flipped bit or a writer's bug leaves them.
pub fn rewrite_footer(
    bytes: &[u8],
    edit: impl FnOnce(&mut polars_parquet_format::FileMetaData),
) -> Vec<u8> {
    use polars_parquet_format::thrift::protocol::{TCompactInputProtocol, TCompactOutputProtocol};
    let n = bytes.len();
    let len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let start = n - 8 - len;
    let mut footer = &bytes[start..n - 8];
    let mut meta = polars_parquet_format::FileMetaData::read_from_in_protocol(
        &mut TCompactInputProtocol::new(&mut footer, 1 << 30),
    )
    .unwrap();
    edit(&mut meta);
    let mut written = vec![];
    meta.write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut written))
        .unwrap();
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&written);
    out.extend_from_slice(&(written.len() as u32).to_le_bytes());
    out.extend_from_slice(b"PAR1");
    out
}

/// Statistics with no field set.
pub fn no_statistics() -> polars_parquet_format::Statistics {
    polars_parquet_format::Statistics {
        max: None,
        min: None,
        null_count: None,
        distinct_count: None,
        max_value: None,
        min_value: None,
        is_max_value_exact: None,
        is_min_value_exact: None,
    }
}

/// The first tenant (by id) a run's summary names.
pub fn first_tenant(out: &Path) -> String {
    summary(out)["tenants"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone()
}
