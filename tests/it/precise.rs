//! Every rule of the `precise` reading, on literal AuditLogs rows written as real Parquet and
//! run through the whole job with both object readers (and as both JSON shapes). T =
//! 2026-03-01T00:00:00Z, lookback 14d, threshold 5d: invites at -7d are in the window.

use std::path::Path;

use polars::prelude::*;

use crate::common::*;
use crate::json::write_json;
use unredeemed::{Semantics, DELETED_RULE};

const A: &str = "tenant-a";
const G: &str = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
const G2: &str = "omar_adatum.org#EXT#@contoso.onmicrosoft.com";
const G3: &str = "li_litware.net#EXT#@contoso.onmicrosoft.com";
const G4: &str = "ana_tailspin.example#EXT#@contoso.onmicrosoft.com";
const ADMIN: &str = "admin@contoso.com";

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// An invite of `upn` to the object `object_id`, with its invitation and email.
fn keyed_invite(id: &str, time: &str, upn: &str, object: &str, inv: &str, email: &str) -> Audit {
    with_invitation(
        on_object(invite(A, id, time, upn, ADMIN), object),
        inv,
        email,
    )
}

/// A successful redeem of the object `object_id` whose text names `upn`, `email` and `inv`
/// (`userPrincipalName` holds the bare UPN).
fn keyed_redeem(id: &str, time: &str, upn: &str, object: &str, inv: &str, email: &str) -> Audit {
    let text = format!("UPN: {upn}, Email: {email}, InvitationId: {inv}, Source: OTP");
    on_object(redeem_raw(A, id, time, &text, upn), object)
}

/// An invite and the redeem that matches it by its invitation only (in another case).
fn by_invitation() -> [Audit; 2] {
    [
        keyed_invite(
            "by-invitation",
            &at("-7d"),
            G2,
            "o2",
            "ABC-2",
            "omar@adatum.org",
        ),
        keyed_redeem("r2", &at("-6d"), "other2#EXT#@c", "o9", "abc-2", "x2@x"),
    ]
}

/// An invite and the redeem that matches it by email only (in another case).
fn by_email() -> [Audit; 2] {
    [
        keyed_invite(
            "by-email",
            &at("-7d"),
            G4,
            "o4",
            "inv-4",
            "Ana@Tailspin.example",
        ),
        keyed_redeem(
            "r4",
            &at("-6d"),
            "other4#EXT#@c",
            "o7",
            "x4",
            "ana@tailspin.EXAMPLE",
        ),
    ]
}

fn opts() -> Opts {
    Opts {
        semantics: Semantics::Precise,
        ..Opts::default()
    }
}

/// `(Id, MatchedBy)` pairs.
type Pairs = Vec<(String, String)>;

/// `(Id, MatchedBy)` of every paired invite of the baseline, by Id.
fn matched_by(out: &Path) -> Pairs {
    let df = read_parquet(&out.join("baseline/time_to_redeem.parquet"));
    let ids = col_str(&df, "Id");
    let by: Vec<Option<String>> = df
        .column("MatchedBy")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(String::from))
        .collect();
    let mut v: Vec<(String, String)> = ids
        .into_iter()
        .zip(by)
        .filter_map(|(i, b)| Some((i, b?)))
        .collect();
    v.sort();
    v
}

#[test]
fn each_key_alone_pairs_an_invite_with_its_redemption() {
    let rows = [
        // The guest's UPN changed before it redeemed: only the object id is the same.
        keyed_invite(
            "by-object",
            &at("-7d"),
            G,
            "o1",
            "inv-1",
            "jane@fabrikam.com",
        ),
        keyed_redeem("r1", &at("-6d"), "jane_new#EXT#@c", "o1", "x1", "x1@x"),
        // Only the invitation, in another case.
        by_invitation()[0].clone(),
        by_invitation()[1].clone(),
        // Only the UPN (case drift), as `intended` pairs it.
        keyed_invite("by-upn", &at("-7d"), G3, "o3", "inv-3", "li@litware.net"),
        keyed_redeem("r3", &at("-6d"), &G3.to_uppercase(), "o8", "x3", "x3@x"),
        // Only the email, in another case.
        by_email()[0].clone(),
        by_email()[1].clone(),
    ];
    assert_eq!(precise(&rows), ids(&[]));
    assert_eq!(
        intended(&rows),
        ids(&["by-email", "by-invitation", "by-object"])
    );
    let (_d, out) = run_rows(&rows, &opts());
    assert_eq!(
        matched_by(&out),
        [
            ("by-email", "email"),
            ("by-invitation", "invitation_id"),
            ("by-object", "object_id"),
            ("by-upn", "upn"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn empty_or_missing_keys_never_match() {
    let rows = [
        // No object id, invitation or email on either side; different UPNs.
        keyed_invite("i1", &at("-7d"), G, "", "", ""),
        keyed_redeem("r1", &at("-6d"), "other#EXT#@c", "", "", ""),
        // The redeem's text has no parts at all.
        on_object(invite(A, "i2", &at("-7d"), G2, ADMIN), ""),
        on_object(redeem_raw(A, "r2", &at("-6d"), "Guest", ""), ""),
    ];
    assert_eq!(precise(&rows), ids(&["i1", "i2"]));
}

#[test]
fn the_strongest_key_of_the_earliest_redemption_names_the_match() {
    let rows = [
        // Object id and UPN both match: the object id names it.
        keyed_invite("both", &at("-7d"), G, "o1", "inv-1", "jane@fabrikam.com"),
        keyed_redeem("r1", &at("-6d"), G, "o1", "x", "x@x"),
        // An accepting update first, a redeem by email later: the earlier one counts.
        keyed_invite(
            "update-first",
            &at("-7d"),
            G2,
            "o2",
            "inv-2",
            "omar@adatum.org",
        ),
        update_user(
            A,
            "u2",
            &at("-6d"),
            "o2",
            "UserState",
            (r#"["PendingAcceptance"]"#, r#"["Accepted"]"#),
        ),
        keyed_redeem("r2", &at("-5d"), "x#EXT#@c", "o9", "x", "omar@adatum.org"),
        // Both in the same second: the redeem's email outranks the user state.
        keyed_invite(
            "same-second",
            &at("-7d"),
            G3,
            "o3",
            "inv-3",
            "li@litware.net",
        ),
        update_user(
            A,
            "u3",
            &at("-6d"),
            "o3",
            "UserState",
            (r#"["PendingAcceptance"]"#, r#"["Accepted"]"#),
        ),
        keyed_redeem("r3", &at("-6d"), "y#EXT#@c", "o8", "y", "li@litware.net"),
    ];
    let (_d, out) = run_rows(&rows, &opts());
    assert_eq!(
        matched_by(&out),
        [
            ("both", "object_id"),
            ("same-second", "email"),
            ("update-first", "user_state"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let ttr = read_parquet(&out.join("baseline/time_to_redeem.parquet"))
        .lazy()
        .filter(col("Id").eq(lit("update-first")))
        .select([col("RedeemTime").dt().timestamp(TimeUnit::Nanoseconds)])
        .collect()
        .unwrap();
    assert_eq!(col_i64(&ttr, "RedeemTime"), [ts(&at("-6d"))]);
}

#[test]
fn a_lost_redeem_is_found_by_the_update_that_accepts_the_invitation() {
    let accepted = (r#"["PendingAcceptance"]"#, r#"["Accepted"]"#);
    let mut failed = update_user(A, "u-failed", &at("-6d"), "o5", "UserState", accepted);
    failed.result = "failure".into();
    let rows = [
        on_object(invite(A, "accepted", &at("-7d"), G, ADMIN), "o1"),
        update_user(A, "u1", &at("-6d"), "o1", "UserState", accepted),
        // Another property changed: no redemption.
        on_object(invite(A, "other-property", &at("-7d"), G2, ADMIN), "o2"),
        update_user(
            A,
            "u2",
            &at("-6d"),
            "o2",
            "AccountEnabled",
            ("[false]", "[true]"),
        ),
        // Accepted already before: no change.
        on_object(invite(A, "no-change", &at("-7d"), G3, ADMIN), "o3"),
        update_user(
            A,
            "u3",
            &at("-6d"),
            "o3",
            "UserState",
            (r#"["Accepted"]"#, r#"["Accepted"]"#),
        ),
        // Another guest accepted.
        on_object(invite(A, "other-object", &at("-7d"), G4, ADMIN), "o4"),
        update_user(A, "u4", &at("-6d"), "o9", "UserState", accepted),
        // The update failed.
        on_object(invite(A, "failed", &at("-7d"), "f#EXT#@c", ADMIN), "o5"),
        failed,
        // Accepted before this invite.
        on_object(invite(A, "before", &at("-7d"), "b#EXT#@c", ADMIN), "o6"),
        update_user(A, "u6", &at("-8d"), "o6", "UserState", accepted),
    ];
    assert_eq!(
        precise(&rows),
        ids(&[
            "before",
            "failed",
            "no-change",
            "other-object",
            "other-property"
        ])
    );
    let (_d, out) = run_rows(&rows, &opts());
    assert_eq!(
        matched_by(&out),
        vec![("accepted".to_string(), "user_state".to_string())]
    );
}

#[test]
fn an_invite_to_a_deleted_guest_is_suppressed_with_its_deletion() {
    let mut failed = directory_op(A, "d-failed", &at("-6d"), "Delete user", "o4");
    failed.result = "failure".into();
    let rows = [
        on_object(invite(A, "deleted", &at("-7d"), G, ADMIN), "o1"),
        directory_op(A, "d1", &at("-6d"), "Delete user", "o1"),
        on_object(invite(A, "hard-deleted", &at("-7d"), G2, ADMIN), "o2"),
        directory_op(A, "d2", &at("-5d"), "HARD DELETE USER", "o2"),
        on_object(invite(A, "external-deleted", &at("-7d"), G3, ADMIN), "o3"),
        directory_op(A, "d3", &at("-7d"), "Delete external user", "o3"),
        // A failed deletion, a deletion before the invite, after T, of another object.
        on_object(invite(A, "delete-failed", &at("-7d"), G4, ADMIN), "o4"),
        failed,
        on_object(
            invite(A, "deleted-before", &at("-7d"), "b#EXT#@c", ADMIN),
            "o5",
        ),
        directory_op(A, "d5", &at("-8d"), "Delete user", "o5"),
        on_object(
            invite(A, "deleted-after-t", &at("-7d"), "t#EXT#@c", ADMIN),
            "o6",
        ),
        directory_op(A, "d6", &at("+1d"), "Delete user", "o6"),
        on_object(
            invite(A, "other-deleted", &at("-7d"), "o#EXT#@c", ADMIN),
            "o7",
        ),
        directory_op(A, "d7", &at("-6d"), "Delete user", "o99"),
    ];
    let (_d, out) = run_rows(&rows, &opts());
    assert_eq!(
        finding_ids(&out),
        ids(&[
            "delete-failed",
            "deleted-after-t",
            "deleted-before",
            "other-deleted"
        ])
    );
    let gone = read_parquet(&out.join("tenant=tenant-a/suppressed.parquet"));
    assert_eq!(
        col_str(&gone, "Id"),
        ["deleted", "external-deleted", "hard-deleted"]
    );
    assert!(col_str(&gone, "Rule").iter().all(|r| r == DELETED_RULE));
    assert_eq!(
        col_str(&gone, "Reason")[0],
        "guest object deleted at 2026-02-23T00:00:00.000Z"
    );
    // Deletions are no redemption: the baseline keeps these invites pending.
    assert_eq!(matched_by(&out), vec![]);
    // `intended` knows nothing of deletions.
    assert_eq!(intended(&rows).len(), 7);
}

#[test]
fn a_reset_re_invite_must_be_redeemed_again() {
    let rows = [
        // Redeemed, then reset and never redeemed again: the re-invite is a finding.
        on_object(invite(A, "first", &at("-13d"), G, ADMIN), "o1"),
        on_object(redeem(A, "r1", &at("-12d"), G), "o1"),
        on_object(reset_invite(A, "reset-pending", &at("-7d"), G, ADMIN), "o1"),
        // Reset and redeemed again.
        on_object(invite(A, "first2", &at("-13d"), G2, ADMIN), "o2"),
        on_object(redeem(A, "r2", &at("-12d"), G2), "o2"),
        on_object(
            reset_invite(A, "reset-redeemed", &at("-8d"), G2, ADMIN),
            "o2",
        ),
        on_object(redeem(A, "r3", &at("-6d"), G2), "o2"),
    ];
    assert_eq!(precise(&rows), ids(&["reset-pending"]));
    // `intended` reads no reset re-invites at all.
    assert_eq!(intended(&rows), ids(&[]));
}

#[test]
fn failed_early_and_late_redeems_do_not_count() {
    let mut failed = on_object(redeem(A, "r1", &at("-6d"), G), "o1");
    failed.result = "failure".into();
    let rows = [
        on_object(invite(A, "failed", &at("-7d"), G, ADMIN), "o1"),
        failed,
        on_object(invite(A, "early", &at("-7d"), G2, ADMIN), "o2"),
        on_object(redeem(A, "r2", &at("-8d"), G2), "o2"),
        on_object(invite(A, "late", &at("-7d"), G3, ADMIN), "o3"),
        on_object(redeem(A, "r3", &at("+1h"), G3), "o3"),
        // At the invite's own instant it counts.
        on_object(invite(A, "same-instant", &at("-7d"), G4, ADMIN), "o4"),
        on_object(redeem(A, "r4", &at("-7d"), "x#EXT#@c"), "o4"),
    ];
    assert_eq!(precise(&rows), ids(&["early", "failed", "late"]));
}

#[test]
fn app_initiated_invites_and_other_tenants_stay_out() {
    let rows = [
        on_object(app_invite(A, "app", &at("-7d"), G), "o1"),
        on_object(invite(A, "cross-tenant", &at("-7d"), G2, ADMIN), "o2"),
        on_object(redeem("tenant-b", "r2", &at("-6d"), G2), "o2"),
    ];
    assert_eq!(precise(&rows), ids(&["cross-tenant"]));
}

/// `got` and `want` hold the same files, equal but for those describing the scan itself.
fn assert_same_results(got: &Path, want: &Path, what: &str) {
    let (got, want) = (tree(got), tree(want));
    assert_eq!(got.len(), want.len(), "{what}");
    for ((name, a), (_, b)) in got.iter().zip(&want) {
        if !name.ends_with("summary.json")
            && !name.ends_with("report.md")
            && !name.ends_with(".html")
        {
            assert!(a == b, "{what}: {name} differs");
        }
    }
}

/// Rows of every kind the tests above plant, each tenant its own Entra tenant.
fn life_cycle() -> Vec<Audit> {
    let accepted = (r#"["PendingAcceptance"]"#, r#"["Accepted"]"#);
    [
        by_invitation()[0].clone(),
        by_invitation()[1].clone(),
        by_email()[0].clone(),
        by_email()[1].clone(),
        on_object(invite(A, "accepted", &at("-7d"), G, ADMIN), "o1"),
        update_user(A, "u1", &at("-6d"), "o1", "UserState", accepted),
        on_object(invite(A, "deleted", &at("-8d"), G3, ADMIN), "o3"),
        directory_op(A, "d1", &at("-6d"), "Delete user", "o3"),
        on_object(
            reset_invite(A, "reset", &at("-7d"), "r#EXT#@c", ADMIN),
            "o5",
        ),
        on_object(invite(A, "pending", &at("-9d"), "p#EXT#@c", ADMIN), "o6"),
    ]
    .into_iter()
    .map(|a| Audit {
        aad_tenant: Some(a.tenant.clone()),
        ..a
    })
    .collect()
}

/// The lifecycle rows, written as diagnostic records and as data export, give what Parquet
/// gives, in every command.
#[test]
fn json_archives_give_what_parquet_gives() {
    let rows = life_cycle();
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("parquet");
    write_parquet(&frame(&rows), &parquet.join("y=2026/m=02/part-0.parquet"));
    for format in ["diag", "export"] {
        let archive = dir.path().join(format);
        write_json(&rows, &archive, format);
        for command in ["run", "replay", "sweep"] {
            let extra: &[&str] = match command {
                "replay" => &["--from", "2026-02-20", "--every", "1d"],
                "sweep" => &["--thresholds", "1d,3d,5d"],
                _ => &[],
            };
            let flags = [&["--no-cache", "--semantics", "precise"][..], extra].concat();
            let want = dir.path().join(format!("want-{format}-{command}"));
            crate::json::run_at(command, T0, &parquet, &want, &flags);
            let got = dir.path().join(format!("got-{format}-{command}"));
            crate::json::run_at(command, T0, &archive, &got, &flags);
            assert_same_results(&got, &want, &format!("{format} {command}"));
            if command == "run" {
                assert_eq!(finding_ids(&got), ids(&["pending", "reset"]));
            }
        }
    }
}

/// `df` with its dynamic columns nested, as an inferring exporter (Spark, Fabric) writes them.
fn nested(df: DataFrame) -> DataFrame {
    let strings = |names: &[&str]| {
        DataType::Struct(
            names
                .iter()
                .map(|n| Field::new((*n).into(), DataType::String))
                .collect(),
        )
    };
    let targets = DataType::List(Box::new(DataType::Struct(vec![
        Field::new("id".into(), DataType::String),
        Field::new("displayName".into(), DataType::String),
        Field::new("userPrincipalName".into(), DataType::String),
        Field::new(
            "modifiedProperties".into(),
            DataType::List(Box::new(strings(&["displayName", "oldValue", "newValue"]))),
        ),
    ])));
    let initiated = DataType::Struct(vec![Field::new(
        "user".into(),
        strings(&["id", "userPrincipalName", "ipAddress"]),
    )]);
    let details = DataType::List(Box::new(strings(&["key", "value"])));
    df.lazy()
        .with_columns([
            col("TargetResources").str().json_decode(targets),
            col("InitiatedBy").str().json_decode(initiated),
            col("AdditionalDetails").str().json_decode(details),
        ])
        .collect()
        .unwrap()
}

#[test]
fn nested_dynamic_columns_give_what_json_text_gives() {
    let rows = life_cycle();
    let dir = tempfile::tempdir().unwrap();
    let mut outs = vec![];
    for (name, df) in [("text", frame(&rows)), ("nested", nested(frame(&rows)))] {
        let archive = dir.path().join(name);
        write_parquet(&df, &archive.join("part-0.parquet"));
        let out = dir.path().join(format!("out-{name}"));
        unredeemed::run(&job(&archive, &out, &opts())).unwrap();
        outs.push(out);
    }
    assert_same_results(&outs[1], &outs[0], "nested");
    assert_eq!(finding_ids(&outs[1]), ids(&["pending", "reset"]));
    assert_eq!(
        matched_by(&outs[1]),
        [
            ("accepted", "user_state"),
            ("by-email", "email"),
            ("by-invitation", "invitation_id"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

/// On a generated history in every layout it writes (flat and nested Parquet, both JSON
/// shapes), `precise` findings are `intended`'s, less those its stronger keys, accepting
/// updates and deletions resolve, plus reset re-invites never redeemed again; and every layout
/// gives the same findings and pairs, matched by the same keys.
#[test]
fn precise_findings_are_intended_findings_plus_unredeemed_reset_re_invites() {
    use unredeemed::{GenFormat, GenSpec};
    let mut seen: Option<(Vec<String>, Pairs)> = None;
    for (format, nested) in [
        (GenFormat::Parquet, false),
        (GenFormat::Parquet, true),
        (GenFormat::DiagJson, false),
        (GenFormat::LaExportJson, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        let spec = GenSpec {
            tenants: 2,
            days: 30,
            start: ts("2026-01-30"),
            rows_per_day: 60,
            invites_per_day: 4.0,
            seed: 24,
            nested,
            rows_per_file: 1_000_000,
            format,
            gzip: false,
        };
        generate_local(&spec, &archive);
        let found = |semantics| {
            let out = dir.path().join(format!("{semantics:?}"));
            let o = Opts {
                semantics,
                ..Opts::default()
            };
            unredeemed::run(&job(&archive, &out, &o)).unwrap();
            finding_ids(&out)
        };
        let (intended, precise) = (found(Semantics::Intended), found(Semantics::Precise));
        let resets = reset_ids(&archive);
        assert!(!resets.is_empty());
        let extra: Vec<&String> = precise.iter().filter(|i| !intended.contains(i)).collect();
        assert!(
            extra.iter().all(|i| resets.contains(i)),
            "{format:?}: {extra:?}"
        );
        assert!(
            !extra.is_empty(),
            "{format:?}: some reset re-invite is found"
        );
        let pairs = matched_by(&dir.path().join("Precise"));
        match &seen {
            None => seen = Some((precise, pairs)),
            Some(first) => assert!(first == &(precise, pairs), "{format:?} nested {nested}"),
        }
    }
}

/// The `Id`s of the reset re-invites of a generated archive, whatever its format.
fn reset_ids(archive: &Path) -> Vec<String> {
    let text = tree(archive)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(_, b)| String::from_utf8(b).unwrap())
        .collect::<String>();
    let mut ids: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let p = v.get("properties").unwrap_or(&v);
            let op = p
                .get("activityDisplayName")
                .or(v.get("OperationName"))?
                .as_str()?;
            let id = p.get("id").or(v.get("Id"))?.as_str()?;
            op.eq_ignore_ascii_case("invite external user with reset invitation status")
                .then(|| id.to_string())
        })
        .collect();
    for (name, _) in tree(archive)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".parquet"))
    {
        let df = read_parquet(&archive.join(name))
            .lazy()
            .filter(
                col("OperationName")
                    .str()
                    .to_lowercase()
                    .eq(lit("invite external user with reset invitation status")),
            )
            .collect()
            .unwrap();
        ids.extend(col_str(&df, "Id"));
    }
    ids
}

#[test]
fn summary_and_report_count_pairs_by_key_lost_records_and_deleted_guests() {
    let (_d, out) = run_rows(&life_cycle(), &opts());
    let s = summary(&out);
    let want = serde_json::json!({
        "pairs_by": {"object_id": 0, "invitation_id": 1, "upn": 0, "email": 1, "user_state": 1},
        "missed_by_upn": 3,
        "lost_redeem_records": 1,
        "deleted_guests": 1,
        "set_apart": 1,
    });
    assert_eq!(s["precise"], want, "{s}");
    assert_eq!(s["tenants"][A]["precise"], want);
    // The deleted guest's invite is no exclusion's suppression.
    assert_eq!(
        (s["findings"].clone(), s["suppressed"].clone()),
        (2.into(), 0.into())
    );
    let md = std::fs::read_to_string(out.join("tenant=tenant-a/report.md")).unwrap();
    assert!(md.contains("Pairs by the strongest key matched: object id 0, invitation 1, UPN 0, email 1, accepting user update 1."), "{md}");
    assert!(md.contains("## Invites to deleted guests (1)"), "{md}");
    assert!(
        md.contains("guest object deleted at 2026-02-23T00:00:00.000Z"),
        "{md}"
    );
    // Neither block in the other readings.
    let (_d, out) = run_rows(&life_cycle(), &Opts::default());
    assert!(summary(&out).get("precise").is_none());
}

#[test]
fn deleted_guests_sit_beside_exclusions_without_counting_as_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = [
        "--config",
        "data/example-config/unredeemed.toml",
        "--semantics",
        "precise",
    ];
    let shown = on_sample("run", &args, &out);
    let s = summary(&out);
    let rules: u64 = s["exclusions"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["suppressed"].as_u64().unwrap())
        .sum();
    assert_eq!(s["suppressed"].as_u64(), Some(rules));
    let set_apart = s["precise"]["set_apart"].as_u64().unwrap();
    assert!(
        set_apart > 0,
        "the sample plants a deleted guest in the window: {s}"
    );
    let stdout = String::from_utf8(shown.stdout).unwrap();
    assert!(stdout.contains(&format!(
        "{set_apart} invite(s) to deleted guests set apart"
    )));
    let mut by_rule = std::collections::BTreeMap::<String, u64>::new();
    for (name, _) in tree(&out) {
        if name.ends_with("suppressed.parquet") {
            for r in col_str(&read_parquet(&out.join(&name)), "Rule") {
                *by_rule.entry(r).or_default() += 1;
            }
        }
    }
    assert_eq!(by_rule.remove(DELETED_RULE), Some(set_apart));
    assert_eq!(by_rule.values().sum::<u64>(), rules);
}

/// The sample archive holds every case the generator plants, as `precise` counts them.
#[test]
fn the_sample_plants_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    on_sample("run", &["--semantics", "precise"], &out);
    let p = &summary(&out)["precise"];
    for key in ["object_id", "invitation_id", "email", "user_state"] {
        assert!(p["pairs_by"][key].as_u64().unwrap() > 0, "{key}: {p}");
    }
    for count in [
        "missed_by_upn",
        "lost_redeem_records",
        "deleted_guests",
        "set_apart",
    ] {
        assert!(p[count].as_u64().unwrap() > 0, "{count}: {p}");
    }
}
