//! Time-to-redeem pairing and the per-tenant percentiles.

use crate::common::*;
use polars::prelude::*;

const A: &str = "tenant-a";
const ADMIN: &str = "admin@contoso.com";

fn guest(n: u32) -> String {
    format!("guest{n}_partner.example#EXT#@contoso.onmicrosoft.com")
}

#[test]
fn pairs_each_invite_with_its_earliest_later_redeem() {
    let rows = [
        // 1 h, 2 h and 1 d to redeem.
        invite(A, "i1", &at("-10d"), &guest(1), ADMIN),
        redeem(A, "r1", &at("-860400s"), &guest(1)), // -10d + 1h
        invite(A, "i2", &at("-9d"), &guest(2), ADMIN),
        redeem(A, "r2a", &at("-770400s"), &guest(2)), // -9d + 2h (earliest)
        redeem(A, "r2b", &at("-8d"), &guest(2)),
        invite(A, "i3", &at("-4d"), &guest(3), ADMIN),
        redeem(A, "r3", &at("-3d"), &guest(3)),
        // Pending: never redeemed, and redeemed only after T.
        invite(A, "i4", &at("-8d"), &guest(4), ADMIN),
        invite(A, "i5", &at("-2d"), &guest(5), ADMIN),
        redeem(A, "r5", &at("+1h"), &guest(5)),
        // Not in the baseline: app-initiated, no UPN, after T.
        app_invite(A, "app", &at("-5d"), &guest(6)),
        invite(A, "noupn", &at("-5d"), "", ADMIN),
        invite(A, "future", &at("+1h"), &guest(7), ADMIN),
    ];
    let (_d, out) = run_rows(&rows, &Opts::default());
    assert_pairs(&read_parquet(&out.join("baseline/time_to_redeem.parquet")));
    assert_percentiles(&read_parquet(&out.join("baseline/by_tenant.parquet")));
}

/// The pairs of [`pairs_each_invite_with_its_earliest_later_redeem`].
fn assert_pairs(ttr: &DataFrame) {
    let names: Vec<&str> = ttr.get_column_names().iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "TenantId",
            "AADTenantId",
            "Id",
            "TargetUPN",
            "InviteTime",
            "InviteInitiator",
            "IPAddress",
            "RedeemTime",
            "TimeToRedeemSeconds"
        ]
    );
    let got: Vec<(String, Option<f64>)> = ttr
        .column("Id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(
            ttr.column("TimeToRedeemSeconds")
                .unwrap()
                .f64()
                .unwrap()
                .iter(),
        )
        .map(|(id, s)| (id.unwrap().to_string(), s))
        .collect();
    let mut got = got;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("i1".into(), Some(3600.0)),
            ("i2".into(), Some(7200.0)),
            ("i3".into(), Some(86400.0)),
            ("i4".into(), None),
            ("i5".into(), None),
        ]
    );
    let rt = ttr.column("RedeemTime").unwrap().dtype().to_string();
    assert_eq!(rt, "datetime[μs, UTC]");
    let i1 = ttr
        .clone()
        .lazy()
        .filter(col("Id").eq(lit("i1")))
        .select([col("RedeemTime").dt().timestamp(TimeUnit::Microseconds)])
        .collect()
        .unwrap();
    assert_eq!(
        i1.column("RedeemTime").unwrap().i64().unwrap().get(0),
        Some(ts(&at("-860400s")) / 1_000)
    );
}

/// The per-tenant line of [`pairs_each_invite_with_its_earliest_later_redeem`].
fn assert_percentiles(by: &DataFrame) {
    let f = |c: &str| by.column(c).unwrap().f64().unwrap().get(0);
    let i = |c: &str| by.column(c).unwrap().i64().unwrap().get(0);
    assert_eq!(
        (i("Invites"), i("Redeemed"), i("Pending")),
        (Some(5), Some(3), Some(2))
    );
    // Linear interpolation over [3600, 7200, 86400].
    let close = |c: &str, want: f64| {
        let got = f(c).unwrap();
        assert!((got - want).abs() < 1e-6, "{c}: {got} != {want}");
    };
    close("P50Seconds", 7200.0);
    close("P90Seconds", 7200.0 + 0.8 * (86400.0 - 7200.0));
    close("P95Seconds", 7200.0 + 0.9 * (86400.0 - 7200.0));
    close("P99Seconds", 7200.0 + 0.98 * (86400.0 - 7200.0));
    close("MaxSeconds", 86400.0);
}

#[test]
fn baseline_ignores_the_semantics_flag_and_lists_quiet_tenants() {
    let rows = [
        invite(A, "i1", &at("-10d"), &guest(1), ADMIN),
        redeem(A, "r1", &at("-9d"), &guest(1).to_uppercase()),
        // A tenant with rows but no invite still gets a baseline row.
        redeem("tenant-z", "rz", &at("-1d"), &guest(9)),
    ];
    let mut outs = vec![];
    let mut dirs = vec![];
    for semantics in [
        unredeemed::Semantics::Intended,
        unredeemed::Semantics::Sentinel,
    ] {
        let (d, out) = run_rows(
            &rows,
            &Opts {
                semantics,
                ..Opts::default()
            },
        );
        outs.push(read_parquet(&out.join("baseline/by_tenant.parquet")));
        dirs.push(d);
    }
    assert!(outs[0].equals_missing(&outs[1]));
    let by = &outs[0];
    assert_eq!(by.height(), 2);
    let z = by
        .clone()
        .lazy()
        .filter(col("TenantId").eq(lit("tenant-z")))
        .collect()
        .unwrap();
    assert_eq!(z.column("Invites").unwrap().i64().unwrap().get(0), Some(0));
    assert_eq!(z.column("P50Seconds").unwrap().f64().unwrap().get(0), None);
    let a = by
        .clone()
        .lazy()
        .filter(col("TenantId").eq(lit(A)))
        .collect()
        .unwrap();
    assert_eq!(a.column("Redeemed").unwrap().i64().unwrap().get(0), Some(1));
}
