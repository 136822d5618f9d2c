//! Every semantic rule of both readings, each on literal AuditLogs rows written as real
//! Parquet and run through the whole job. T = 2026-03-01T00:00:00Z, lookback 14d, threshold 5d.

use crate::common::*;
use unredeemed::Semantics;

const A: &str = "tenant-a";
const B: &str = "tenant-b";
const G: &str = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
const G2: &str = "omar_adatum.org#EXT#@contoso.onmicrosoft.com";
const G3: &str = "li_litware.net#EXT#@contoso.onmicrosoft.com";
const ADMIN: &str = "admin@contoso.com";

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn intended_flags_old_unredeemed_invites_only() {
    let rows = [
        invite(A, "old-pending", &at("-7d"), G, ADMIN),
        invite(A, "old-redeemed", &at("-8d"), G2, ADMIN),
        redeem(A, "r", &at("-6d"), G2),
        invite(A, "too-new", &at("-1d"), G3, ADMIN),
    ];
    assert_eq!(intended(&rows), ids(&["old-pending"]));
}

#[test]
fn sentinel_keeps_invites_newer_than_the_threshold() {
    let rows = [
        invite(A, "old", &at("-7d"), G, ADMIN),
        invite(A, "new", &at("-1d"), G2, ADMIN),
    ];
    assert_eq!(sentinel(&rows), ids(&["new"]));
}

#[test]
fn case_drift_in_category_operation_and_result_is_ignored() {
    let mut i1 = invite(A, "i1", &at("-7d"), G, ADMIN);
    i1.category = "usermanagement".into();
    i1.operation = "INVITE external USER".into();
    let i2 = invite(A, "i2", &at("-8d"), G2, ADMIN);
    let mut r2 = redeem(A, "r2", &at("-6d"), G2);
    r2.category = "USERMANAGEMENT".into();
    r2.operation = "redeem EXTERNAL user invite".into();
    r2.result = "SUCCESS".into();
    assert_eq!(intended(&[i1, i2, r2]), ids(&["i1"]));

    let mut n1 = invite(A, "n1", &at("-1d"), G, ADMIN);
    n1.operation = "Invite External User".into();
    let n2 = invite(A, "n2", &at("-1d"), G2, ADMIN);
    let mut r = redeem_text_in_upn(A, "r", &at("-12h"), G2);
    r.result = "Success".into();
    assert_eq!(sentinel(&[n1, n2, r]), ids(&["n1"]));
}

#[test]
fn upn_case_drift_matches_in_intended_but_not_in_sentinel() {
    let upper = G.to_uppercase();
    let rows = [
        invite(A, "i1", &at("-7d"), G, ADMIN),
        redeem(A, "r1", &at("-6d"), &upper),
    ];
    assert_eq!(intended(&rows), ids(&[]));

    let rows = [
        invite(A, "i1", &at("-1d"), G, ADMIN),
        redeem_text_in_upn(A, "r1", &at("-12h"), &upper),
    ];
    assert_eq!(sentinel(&rows), ids(&["i1"]));
    let rows = [
        invite(A, "i1", &at("-1d"), G, ADMIN),
        redeem_text_in_upn(A, "r1", &at("-12h"), G),
    ];
    assert_eq!(sentinel(&rows), ids(&[]));
}

#[test]
fn redeem_before_the_invite_counts_only_in_sentinel() {
    let rows = [
        redeem(A, "r1", &at("-9d"), G),
        invite(A, "i1", &at("-7d"), G, ADMIN),
    ];
    assert_eq!(intended(&rows), ids(&["i1"]));
    let rows = [
        redeem_text_in_upn(A, "r1", &at("-2d"), G),
        invite(A, "i1", &at("-1d"), G, ADMIN),
    ];
    assert_eq!(sentinel(&rows), ids(&[]));
}

#[test]
fn failed_redeem_does_not_count() {
    let mut r = redeem(A, "r1", &at("-6d"), G);
    r.result = "failure".into();
    assert_eq!(
        intended(&[invite(A, "i1", &at("-7d"), G, ADMIN), r]),
        ids(&["i1"])
    );
    let mut r = redeem_text_in_upn(A, "r1", &at("-12h"), G);
    r.result = "failure".into();
    assert_eq!(
        sentinel(&[invite(A, "i1", &at("-1d"), G, ADMIN), r]),
        ids(&["i1"])
    );
}

#[test]
fn each_reinvite_is_judged_on_its_own() {
    // Redeemed first invite, then a re-invite after the redeem that stays pending.
    let rows = [
        invite(A, "i1", &at("-13d"), G, ADMIN),
        redeem(A, "r1", &at("-12d"), G),
        invite(A, "i2", &at("-7d"), G, ADMIN),
    ];
    assert_eq!(intended(&rows), ids(&["i2"]));
    // Two pending invites of one guest: two findings, one per invite event.
    let rows = [
        invite(A, "i1", &at("-10d"), G, ADMIN),
        invite(A, "i2", &at("-8d"), G, ADMIN),
    ];
    assert_eq!(intended(&rows), ids(&["i1", "i2"]));
    // A redeem after both clears both.
    let rows = [
        invite(A, "i1", &at("-10d"), G, ADMIN),
        invite(A, "i2", &at("-6d"), G, ADMIN),
        redeem(A, "r", &at("-5d"), G),
    ];
    assert_eq!(intended(&rows), ids(&[]));
    // Sentinel: one row per invite event as well.
    let rows = [
        invite(A, "i1", &at("-2d"), G, ADMIN),
        invite(A, "i2", &at("-1d"), G, ADMIN),
    ];
    assert_eq!(sentinel(&rows), ids(&["i1", "i2"]));
}

#[test]
fn app_initiated_and_initiator_less_invites_are_dropped() {
    let mut blank = invite(A, "blank", &at("-7d"), G2, ADMIN);
    blank.initiated = r#"{"user":{"userPrincipalName":"","ipAddress":"203.0.113.7"}}"#.into();
    let rows = [app_invite(A, "app", &at("-7d"), G), blank];
    let (_d, out) = run_rows(&rows, &Opts::default());
    assert_eq!(finding_ids(&out), ids(&[]));
    let s = summary(&out);
    assert_eq!(s["app_initiated_invites"], 2);
    assert_eq!(s["invites"], 0);
    assert_eq!(sentinel(&[app_invite(A, "app", &at("-1d"), G)]), ids(&[]));
}

#[test]
fn empty_or_missing_target_upn() {
    let mut missing = invite(A, "missing", &at("-7d"), G, ADMIN);
    missing.targets = r#"[{"id":"g1","type":"User"}]"#.into();
    let empty = invite(A, "empty", &at("-7d"), "", ADMIN);
    let (_d, out) = run_rows(&[missing.clone(), empty.clone()], &Opts::default());
    assert_eq!(finding_ids(&out), ids(&[]));
    assert_eq!(summary(&out)["invites_without_upn"], 2);

    // Sentinel: `""` is a key like any other; a redeem whose key extracts to `""` removes it.
    let mut m = missing.clone();
    m.time = at("-1d");
    let mut e = empty.clone();
    e.time = at("-1d");
    assert_eq!(
        sentinel(&[m.clone(), e.clone()]),
        ids(&["empty", "missing"])
    );
    let bare = redeem(A, "r", &at("-2d"), G3); // bare UPN: the literal regex finds nothing
    assert_eq!(sentinel(&[m, e, bare]), ids(&[]));
}

#[test]
fn redeem_text_in_display_name_or_user_principal_name() {
    let inv = || invite(A, "i1", &at("-7d"), G, ADMIN);
    assert_eq!(intended(&[inv(), redeem(A, "r", &at("-6d"), G)]), ids(&[]));
    assert_eq!(
        intended(&[inv(), redeem_text_in_upn(A, "r", &at("-6d"), G)]),
        ids(&[])
    );
    // No text anywhere: the bare userPrincipalName is the UPN.
    assert_eq!(
        intended(&[inv(), redeem_raw(A, "r", &at("-6d"), "Guest", G)]),
        ids(&[])
    );
    // No text and whitespace in userPrincipalName: no UPN; ignored and counted.
    let (_d, out) = run_rows(
        &[
            inv(),
            redeem_raw(A, "r", &at("-6d"), "Guest", "Guest Person"),
        ],
        &Opts::default(),
    );
    assert_eq!(finding_ids(&out), ids(&["i1"]));
    assert_eq!(summary(&out)["redeems_without_upn"], 1);

    // Sentinel reads userPrincipalName only (defect 2).
    let inv = || invite(A, "i1", &at("-1d"), G, ADMIN);
    assert_eq!(
        sentinel(&[inv(), redeem(A, "r", &at("-12h"), G)]),
        ids(&["i1"])
    );
    assert_eq!(
        sentinel(&[inv(), redeem_text_in_upn(A, "r", &at("-12h"), G)]),
        ids(&[])
    );
}

#[test]
fn greedy_capture_runs_to_the_last_email() {
    // `(.+)` is greedy: the capture ends at the last ", Email".
    let text = format!("UPN: {G}, Email: a@b.example, Email: c@d.example");
    let inv = invite(
        A,
        "i1",
        &at("-1d"),
        &format!("{G}, Email: a@b.example"),
        ADMIN,
    );
    assert_eq!(
        sentinel(&[inv, redeem_raw(A, "r", &at("-12h"), "x", &text)]),
        ids(&[])
    );
}

#[test]
fn intended_window_boundaries() {
    let rows = [
        invite(A, "at-lookback", &at("-1209600s"), G, ADMIN),
        invite(A, "inside-lookback", &at("-1209599s"), G, ADMIN),
        invite(A, "at-threshold", &at("-432000s"), G2, ADMIN),
        invite(A, "inside-threshold", &at("-431999s"), G2, ADMIN),
    ];
    assert_eq!(intended(&rows), ids(&["at-threshold", "inside-lookback"]));

    let rows = [
        invite(A, "redeemed-at-t", &at("-7d"), G, ADMIN),
        redeem(A, "r1", &at("+0s"), G),
        invite(A, "redeemed-after-t", &at("-7d"), G2, ADMIN),
        redeem(A, "r2", &at("+1s"), G2),
        invite(A, "redeemed-same-instant", &at("-7d"), G3, ADMIN),
        redeem(A, "r3", &at("-7d"), G3),
    ];
    assert_eq!(intended(&rows), ids(&["redeemed-after-t"]));
}

#[test]
fn sentinel_window_boundaries() {
    let rows = [
        invite(A, "at-threshold", &at("-432000s"), G, ADMIN),
        invite(A, "inside-threshold", &at("-431999s"), G, ADMIN),
        invite(A, "at-t", &at("+0s"), G, ADMIN),
        invite(A, "after-t", &at("+1s"), G, ADMIN),
    ];
    assert_eq!(sentinel(&rows), ids(&["at-t", "inside-threshold"]));
    let inv = || invite(A, "i1", &at("-1d"), G, ADMIN);
    assert_eq!(
        sentinel(&[inv(), redeem_text_in_upn(A, "r", &at("-1209600s"), G)]),
        ids(&["i1"])
    );
    assert_eq!(
        sentinel(&[inv(), redeem_text_in_upn(A, "r", &at("-1209599s"), G)]),
        ids(&[])
    );
}

#[test]
fn duplicate_deliveries_count_once() {
    let i = invite(A, "i1", &at("-7d"), G, ADMIN);
    let (_d, out) = run_rows(&[i.clone(), i.clone(), i], &Opts::default());
    assert_eq!(finding_ids(&out), ids(&["i1"]));
    assert_eq!(summary(&out)["duplicates_dropped"], 2);
    let i = invite(A, "i1", &at("-1d"), G, ADMIN);
    assert_eq!(sentinel(&[i.clone(), i]), ids(&["i1"]));
    // The same Id in two tenants is two events.
    assert_eq!(
        intended(&[
            invite(A, "i1", &at("-7d"), G, ADMIN),
            invite(B, "i1", &at("-7d"), G, ADMIN)
        ])
        .len(),
        2
    );
}

#[test]
fn same_upn_in_two_tenants_is_kept_apart() {
    let rows = [
        invite(A, "ia", &at("-7d"), G, ADMIN),
        invite(B, "ib", &at("-7d"), G, ADMIN),
        redeem(A, "r", &at("-6d"), G),
    ];
    assert_eq!(intended(&rows), ids(&["ib"]));
    let rows = [
        invite(A, "ia", &at("-1d"), G, ADMIN),
        invite(B, "ib", &at("-1d"), G, ADMIN),
        redeem_text_in_upn(A, "r", &at("-12h"), G),
    ];
    assert_eq!(sentinel(&rows), ids(&["ib"]));
}

#[test]
fn near_miss_operations_and_categories_are_not_invites() {
    let mut reset = invite(A, "reset", &at("-7d"), G, ADMIN);
    reset.operation = "Invite external user with reset invitation status".into();
    let mut other_cat = invite(A, "other", &at("-7d"), G, ADMIN);
    other_cat.category = "GroupManagement".into();
    let mut padded = invite(A, "padded", &at("-7d"), G, ADMIN);
    padded.operation = "Invite external user ".into();
    assert_eq!(
        intended(&[reset.clone(), other_cat.clone(), padded.clone()]),
        ids(&[])
    );
    for r in [&mut reset, &mut other_cat, &mut padded] {
        r.time = at("-1d");
    }
    assert_eq!(sentinel(&[reset, other_cat, padded]), ids(&[]));
    // A near-miss redeem does not clear a real invite.
    let mut r = redeem(A, "r", &at("-6d"), G);
    r.operation = "Redeem external user invite (retry)".into();
    assert_eq!(
        intended(&[invite(A, "i1", &at("-7d"), G, ADMIN), r]),
        ids(&["i1"])
    );
}

#[test]
fn since_bounds_the_history() {
    let rows = [
        invite(A, "i1", &at("-10d"), G, ADMIN),
        invite(A, "i2", &at("-8d"), G2, ADMIN),
    ];
    let (_d, out) = run_rows(
        &rows,
        &Opts {
            since: Some("2026-02-20T00:00:00Z"),
            ..Opts::default()
        },
    );
    assert_eq!(finding_ids(&out), ids(&["i2"]));
}

#[test]
fn as_of_defaults_to_the_latest_time_in_the_archive() {
    let rows = [
        invite(A, "i1", &at("-7d"), G, ADMIN),
        invite(A, "i2", &at("-3d"), G2, ADMIN),
    ];
    let (_d, out) = run_rows(
        &rows,
        &Opts {
            as_of: None,
            ..Opts::default()
        },
    );
    // T = the last row (-3d): i1 is 4 days old, under the 5d threshold.
    assert_eq!(finding_ids(&out), ids(&[]));
    assert_eq!(summary(&out)["as_of"], at("-3d"));
}

#[test]
fn unparseable_json_is_counted_not_fatal() {
    let mut bad = invite(A, "bad", &at("-7d"), G, ADMIN);
    bad.targets = r#"[{"id":"g1","userPrincipalName":"#.into();
    let (_d, out) = run_rows(
        &[bad, invite(A, "i1", &at("-7d"), G2, ADMIN)],
        &Opts::default(),
    );
    assert_eq!(finding_ids(&out), ids(&["i1"]));
    let s = summary(&out);
    assert_eq!(s["unparseable_json"], 1);
    assert_eq!(s["invites_without_upn"], 1);
}

#[test]
fn only_an_invites_initiator_is_read() {
    // A broken InitiatedBy counts on an invite (whose initiator the rule reads) and not on a
    // redeem (whose initiator no rule reads); the redeem still pairs with its invite.
    let mut bad_invite = invite(A, "i1", &at("-7d"), G, ADMIN);
    bad_invite.initiated = r#"{"user":"#.into();
    let mut bad_redeem = redeem(A, "r2", &at("-6d"), G2);
    bad_redeem.initiated = r#"{"user":"#.into();
    let (_d, out) = run_rows(
        &[
            bad_invite,
            invite(A, "i2", &at("-7d"), G2, ADMIN),
            bad_redeem,
        ],
        &Opts::default(),
    );
    // i1 has no readable initiator: not a user-initiated invite, so never a finding.
    assert_eq!(finding_ids(&out), ids(&[]));
    let s = summary(&out);
    assert_eq!(s["unparseable_json"], 1);
    assert_eq!(s["redeems"], 1);
}

#[test]
fn findings_carry_the_entity_columns() {
    let (_d, out) = run_rows(&[invite(A, "i1", &at("-7d"), G, ADMIN)], &Opts::default());
    let df = read_parquet(&out.join("tenant=tenant-a/findings.parquet"));
    let names: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
    assert_eq!(names, FINDING_COLUMNS);
    assert_eq!(
        df.column("InviteInitiator").unwrap().str().unwrap().get(0),
        Some(ADMIN)
    );
    assert_eq!(
        df.column("IPAddress").unwrap().str().unwrap().get(0),
        Some("203.0.113.7")
    );
    assert_eq!(
        df.column("PendingSeconds").unwrap().f64().unwrap().get(0),
        Some(7.0 * 86_400.0)
    );
    assert_eq!(
        df.column("InviteTime").unwrap().dtype().to_string(),
        "datetime[μs, UTC]"
    );
    let micros = df
        .column("InviteTime")
        .unwrap()
        .as_materialized_series()
        .to_physical_repr()
        .i64()
        .unwrap()
        .get(0);
    assert_eq!(micros, Some(ts(&at("-7d")) / 1_000));
    let csv = std::fs::read_to_string(out.join("tenant=tenant-a/findings.csv")).unwrap();
    assert!(csv.contains("2026-02-22T00:00:00.000000Z"), "{csv}");
    let md = std::fs::read_to_string(out.join("tenant=tenant-a/report.md")).unwrap();
    for needle in [
        "Medium",
        "InitialAccess",
        "T1078.004",
        G,
        ADMIN,
        "203.0.113.7",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle}:\n{md}");
    }
}

#[test]
fn a_tenant_without_findings_gets_empty_reports() {
    let rows = [
        invite(A, "i1", &at("-7d"), G, ADMIN),
        invite(B, "i2", &at("-1d"), G, ADMIN),
    ];
    let (_d, out) = run_rows(&rows, &Opts::default());
    let b = read_parquet(&out.join("tenant=tenant-b/findings.parquet"));
    assert_eq!(b.height(), 0);
    assert_eq!(b.width(), FINDING_COLUMNS.len());
    assert!(out.join("tenant=tenant-b/findings.csv").exists());
    assert!(out.join("tenant=tenant-b/report.md").exists());
}

#[test]
fn semantics_flag_changes_the_reading() {
    let rows = [invite(A, "new", &at("-1d"), G, ADMIN)];
    let (_d, out) = run_rows(
        &rows,
        &Opts {
            semantics: Semantics::Sentinel,
            ..Opts::default()
        },
    );
    assert_eq!(summary(&out)["semantics"], "sentinel");
    assert_eq!(finding_ids(&out), ids(&["new"]));
}
