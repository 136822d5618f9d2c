//! The Entra tenant (`AADTenantId`) beside the Log Analytics workspace (`TenantId`): a
//! workspace may hold several Entra tenants' logs, and an invite in one is never cleared by a
//! redeem in another, under either reading, in every table and through every reader.

use std::path::Path;

use crate::common::*;
use unredeemed::Semantics;

const WS: &str = "ws-0001";
const E1: &str = "11111111-0000-0000-0000-000000000001";
const E2: &str = "22222222-0000-0000-0000-000000000002";
const G: &str = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
const ADMIN: &str = "admin@contoso.com";

fn sentinel_opts() -> Opts {
    Opts {
        semantics: Semantics::Sentinel,
        ..Opts::default()
    }
}

/// One guest invited in E1, redeemed in `redeemed_in`: old enough for `intended` (-7d), new
/// enough for `sentinel` (-1d), each with its redeem after it (the `UPN: …` text in
/// `userPrincipalName`, which both readings take).
fn workspace(redeemed_in: &str) -> Vec<Audit> {
    [
        in_entra(
            E1,
            vec![
                invite(WS, "old", &at("-7d"), G, ADMIN),
                invite(WS, "new", &at("-1d"), G, ADMIN),
            ],
        ),
        in_entra(
            redeemed_in,
            vec![
                redeem_text_in_upn(WS, "r-old", &at("-6d"), G),
                redeem_text_in_upn(WS, "r-new", &at("-12h"), G),
            ],
        ),
    ]
    .concat()
}

#[test]
fn a_redeem_in_another_entra_tenant_never_clears_an_invite() {
    // Same Entra tenant: both readings clear the invite (the test can fail).
    assert_eq!(intended(&workspace(E1)), Vec::<String>::new());
    // sentinel keeps `new` only when no redeem key equals its UPN.
    assert_eq!(sentinel(&workspace(E1)), Vec::<String>::new());
    // Another Entra tenant of the same workspace: nothing is cleared.
    assert_eq!(intended(&workspace(E2)), ["old"]);
    assert_eq!(sentinel(&workspace(E2)), ["new"]);
}

#[test]
fn findings_and_the_baseline_name_the_entra_tenant() {
    let (_d, out) = run_rows(&workspace(E2), &Opts::default());
    let f = read_parquet(&out.join(format!("tenant={WS}/findings.parquet")));
    assert_eq!(col_str(&f, "TenantId"), [WS]);
    assert_eq!(col_str(&f, "AADTenantId"), [E1]);
    let b = read_parquet(&out.join("baseline/by_tenant.parquet"));
    assert_eq!(col_str(&b, "TenantId"), [WS, WS]);
    assert_eq!(col_str(&b, "AADTenantId"), [E1, E2]);
    assert_eq!(col_i64(&b, "Invites"), [2, 0]);
    assert_eq!(col_i64(&b, "Redeemed"), [0, 0]);
    let ttr = read_parquet(&out.join("baseline/time_to_redeem.parquet"));
    assert_eq!(col_str(&ttr, "AADTenantId"), [E1, E1]);
    let s = summary(&out);
    let t = &s["tenants"][WS];
    assert_eq!(t["entra_tenants"], serde_json::json!([E1, E2]), "{s}");
    assert_eq!(
        (t["invites"].as_u64(), t["redeems"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(t["baseline_pending"], 2);
    // One folder per workspace, a report section per Entra tenant.
    let md = std::fs::read_to_string(out.join(format!("tenant={WS}/report.md"))).unwrap();
    assert_eq!(md.matches("| Entra tenant |").count(), 2, "{md}");
    assert!(md.contains(&format!("| Entra tenant | `{E2}` |")), "{md}");
}

#[test]
fn sweep_and_replay_keep_entra_tenants_apart() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_parquet(&frame(&workspace(E2)), &archive.join("part-0.parquet"));
    let out = dir.path().join("out");
    let no_cache = |extra: &[&'static str]| [&["--no-cache"][..], extra].concat();
    let run = |command, extra: &[&'static str]| {
        crate::json::run_at(command, T0, &archive, &out, &no_cache(extra));
    };
    run("sweep", &["--thresholds", "1d,5d"]);
    run("replay", &["--from", "2026-02-20", "--every", "1d"]);
    let table = read_parquet(&out.join("sweep/sweep.parquet"));
    assert_eq!(table.height(), 4, "2 Entra tenants × 2 thresholds");
    assert_eq!(col_str(&table, "AADTenantId"), [E1, E1, E2, E2]);
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep/summary.json")).unwrap()).unwrap();
    let keys: Vec<&String> = s["sweep"]["suggested"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, [&format!("{WS}/{E1}"), &format!("{WS}/{E2}")]);
    let alerts = read_parquet(&out.join("replay/alerts.parquet"));
    // `old` alerts from its threshold (-2d) on: ticks 2026-02-27, -28, 03-01.
    assert_eq!(col_str(&alerts, "Id"), ["old", "old", "old"]);
    assert_eq!(col_str(&alerts, "AADTenantId"), [E1, E1, E1]);
    let by_tick = read_parquet(&out.join("replay/by_tick.parquet"));
    assert_eq!(
        by_tick.height(),
        2 * 10,
        "every tick × (workspace, Entra tenant)"
    );
}

#[test]
fn one_entra_tenant_per_workspace_changes_no_result() {
    // The rule's scenarios in two workspaces, without `AADTenantId` and with one per
    // workspace: the same findings, baseline and counts, only the new column filled.
    let rows = [
        workspace(E1),
        vec![
            invite("ws-2", "b-old", &at("-8d"), G, ADMIN),
            invite("ws-2", "b-new", &at("-1d"), G, ADMIN),
            invite("ws-2", "b-app", &at("-8d"), G, ""),
            redeem("ws-2", "b-r", &at("-1d"), "someone-else#EXT#@x"),
        ],
    ]
    .concat();
    let bare: Vec<Audit> = rows
        .iter()
        .cloned()
        .map(|a| Audit {
            aad_tenant: None,
            ..a
        })
        .collect();
    let named: Vec<Audit> = rows
        .iter()
        .cloned()
        .map(|a| Audit {
            aad_tenant: Some(format!("entra-of-{}", a.tenant)),
            ..a
        })
        .collect();
    for o in [Opts::default(), sentinel_opts()] {
        let (_a, without) = run_rows(&bare, &o);
        let (_b, with) = run_rows(&named, &o);
        assert_eq!(finding_ids(&without), finding_ids(&with));
        assert!(!finding_ids(&with).is_empty());
        let drop_aad = |p: &Path| read_parquet(p).drop("AADTenantId").unwrap();
        for file in [
            "baseline/by_tenant.parquet",
            "baseline/time_to_redeem.parquet",
        ] {
            assert_eq!(
                drop_aad(&without.join(file)),
                drop_aad(&with.join(file)),
                "{file}"
            );
        }
        let f = read_parquet(&without.join("tenant=ws-2/findings.parquet"));
        assert_eq!(f.column("AADTenantId").unwrap().null_count(), f.height());
        let f = read_parquet(&with.join("tenant=ws-2/findings.parquet"));
        assert_eq!(col_str(&f, "AADTenantId"), ["entra-of-ws-2"]);
        // The counts; what the scan read differs (one more column).
        let counts = |out: &Path| {
            let mut s = summary(out);
            for t in s["tenants"].as_object_mut().unwrap().values_mut() {
                t.as_object_mut().unwrap().remove("entra_tenants");
            }
            let keys = [
                "tenants",
                "invites",
                "redeems",
                "findings",
                "duplicates_dropped",
            ];
            keys.map(|k| s[k].clone())
        };
        assert_eq!(counts(&without), counts(&with));
    }
}

#[test]
fn data_export_records_pair_per_entra_tenant_too() {
    let dir = tempfile::tempdir().unwrap();
    for (redeemed_in, want) in [(E1, vec![]), (E2, vec!["old".to_string()])] {
        let archive = dir.path().join(format!("export-{redeemed_in}"));
        crate::json::write_json(&workspace(redeemed_in), &archive, "export");
        let out = dir.path().join(format!("out-{redeemed_in}"));
        let mut j = job(&archive, &out, &Opts::default());
        j.folder_skew = 0;
        unredeemed::run(&j).unwrap();
        assert_eq!(finding_ids(&out), want);
    }
}

/// `old` (no `AADTenantId` column) and `new` (with it) as two objects of one archive, run at T0.
fn two_exports(old: &[Audit], new: &[Audit]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_parquet(&frame(old), &archive.join("y=2026/m=02/old.parquet"));
    write_parquet(&frame(new), &archive.join("y=2026/m=03/new.parquet"));
    let out = dir.path().join("out");
    unredeemed::run(&job(&archive, &out, &Opts::default())).unwrap();
    (dir, out)
}

#[test]
fn an_export_without_the_column_joins_its_workspace_single_entra_tenant() {
    // The invite is in an export from before the column; its redeem, and a second delivery
    // of the invite, in one with it.
    let old = invite(WS, "old", &at("-7d"), G, ADMIN);
    let later = in_entra(
        E1,
        vec![old.clone(), redeem_text_in_upn(WS, "r", &at("-6d"), G)],
    );
    let (_d, out) = two_exports(std::slice::from_ref(&old), &later);
    assert_eq!(finding_ids(&out), Vec::<String>::new());
    let s = summary(&out);
    assert_eq!(s["duplicates_dropped"], 1, "{s}");
    assert_eq!(s["tenants"][WS]["entra_tenants"], serde_json::json!([E1]));
    // Two Entra tenants known in the workspace: which one the old invite belongs to is
    // unknown, so it stays apart (its own key, `AADTenantId` null) and is not cleared.
    let both = [
        later.clone(),
        in_entra(E2, vec![invite(WS, "x", &at("-9d"), G, ADMIN)]),
    ]
    .concat();
    let (_e, out) = two_exports(&[old], &both);
    let f = read_parquet(&out.join(format!("tenant={WS}/findings.parquet")));
    assert_eq!(col_str(&f, "Id"), ["old", "x"]);
    let aad: Vec<Option<&str>> = f
        .column("AADTenantId")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(aad, [None, Some(E2)]);
}
