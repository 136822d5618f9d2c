//! `sweep` counts on literal rows, with redeems and ages exactly at the thresholds.

use crate::common::*;
use polars::prelude::*;
use unredeemed::job::SweepJob;
use unredeemed::parse_thresholds;

fn sweep_rows(
    rows: &[Audit],
    thresholds: &str,
    q: f64,
) -> (tempfile::TempDir, DataFrame, DataFrame) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_parquet(&frame(rows), &archive.join("part-0.parquet"));
    let out = dir.path().join("out");
    let job = SweepJob {
        run: job(&archive, &out, &Opts::default()),
        thresholds: parse_thresholds(thresholds).unwrap(),
        target_quantile: q,
    };
    unredeemed::sweep(&job).unwrap();
    let table = read_parquet(&out.join("sweep/sweep.parquet"));
    let suggested = read_parquet(&out.join("sweep/suggested.parquet"));
    (dir, table, suggested)
}

fn scenario() -> Vec<Audit> {
    let g = |n: u32| format!("guest{n}_partner.example#EXT#@t1.onmicrosoft.com");
    vec![
        // Redeemed exactly 2d after the invite, and 2d + 1ms after.
        invite("t1", "i1", &at("-10d"), &g(1), "admin@t1"),
        redeem("t1", "r1", &at("-8d"), &g(1)),
        invite("t1", "i2", &at("-10d"), &g(2), "admin@t1"),
        redeem(
            "t1",
            "r2",
            &unredeemed::time::format_instant(ts(&at("-8d")) + 1_000_000),
            &g(2),
        ),
        // Pending, exactly 2d old and 1ms younger.
        invite("t1", "i3", &at("-2d"), &g(3), "admin@t1"),
        invite(
            "t1",
            "i4",
            &unredeemed::time::format_instant(ts(&at("-2d")) + 1_000_000),
            &g(4),
            "admin@t1",
        ),
        // Redeemed 12h later under a case-drifted UPN.
        invite("t1", "i5", &at("-20d"), &g(5), "admin@t1"),
        redeem("t1", "r5", &at("-468h"), &g(5).to_uppercase()),
        // Redeemed only after T: pending at T, 6d old.
        invite("t1", "i6", &at("-6d"), &g(6), "admin@t1"),
        redeem("t1", "r6", &at("+1h"), &g(6)),
        // Not invites of the baseline: an app initiator, an empty UPN.
        app_invite("t1", "a1", &at("-30d"), &g(7)),
        invite("t1", "e1", &at("-30d"), "", "admin@t1"),
        // A tenant with rows but no user invite.
        app_invite("t2", "a2", &at("-3d"), &g(8)),
    ]
}

fn row(table: &DataFrame, tenant: &str, secs: i64) -> (i64, i64, i64, i64, Option<f64>) {
    let r = table
        .clone()
        .lazy()
        .filter(
            col("TenantId")
                .eq(lit(tenant))
                .and(col("ThresholdSeconds").eq(lit(secs))),
        )
        .collect()
        .unwrap();
    assert_eq!(r.height(), 1, "{tenant} {secs}");
    let i = |c: &str| r.column(c).unwrap().i64().unwrap().get(0).unwrap();
    (
        i("Invites"),
        i("Flagged"),
        i("FlaggedLaterRedeemed"),
        i("FlaggedStillPending"),
        r.column("RedeemedWithin").unwrap().f64().unwrap().get(0),
    )
}

const D: i64 = 86_400;

#[test]
fn sweep_counts_are_exact_at_the_boundaries() {
    let (_d, table, _) = sweep_rows(&scenario(), "6d,1d,2d,5d,2d", 0.99);
    assert_eq!(table.height(), 2 * 4, "tenants × distinct thresholds");
    // Redeemed after exactly X is within X; pending for exactly X is flagged.
    assert_eq!(row(&table, "t1", D), (6, 5, 2, 3, Some(1.0 / 3.0)));
    assert_eq!(row(&table, "t1", 2 * D), (6, 3, 1, 2, Some(2.0 / 3.0)));
    assert_eq!(row(&table, "t1", 5 * D), (6, 1, 0, 1, Some(1.0)));
    assert_eq!(row(&table, "t1", 6 * D), (6, 1, 0, 1, Some(1.0)));
    assert_eq!(row(&table, "t2", D), (0, 0, 0, 0, None));
    let order = col_i64(&table, "ThresholdSeconds");
    assert_eq!(order, [D, 2 * D, 5 * D, 6 * D, D, 2 * D, 5 * D, 6 * D]);
}

#[test]
fn suggested_threshold_is_the_quantile_rounded_up_to_an_hour() {
    let get = |s: &DataFrame, tenant: &str| {
        let r = s
            .clone()
            .lazy()
            .filter(col("TenantId").eq(lit(tenant)))
            .collect()
            .unwrap();
        let i = |c: &str| r.column(c).unwrap().i64().unwrap().get(0);
        (
            i("Redeemed"),
            r.column("QuantileSeconds").unwrap().f64().unwrap().get(0),
            i("SuggestedThresholdSeconds"),
            r.column("SuggestedThreshold")
                .unwrap()
                .str()
                .unwrap()
                .get(0)
                .map(String::from),
            i("FlaggedAtSuggested"),
            i("CurrentThresholdSeconds"),
            i("FlaggedAtCurrent"),
        )
    };
    // Median of 12h, 2d, 2d+1ms is exactly 2d: no rounding.
    let (_d, _, s) = sweep_rows(&scenario(), "1d", 0.5);
    assert_eq!(
        get(&s, "t1"),
        (
            Some(3),
            Some(2.0 * D as f64),
            Some(2 * D),
            Some("2d".into()),
            Some(3),
            Some(5 * D),
            Some(1)
        )
    );
    // The 0.99 quantile is a fraction of a millisecond above 2d: rounded up to 49h.
    let (_d, _, s) = sweep_rows(&scenario(), "1d", 0.99);
    let got = get(&s, "t1");
    assert!(got.1.unwrap() > 2.0 * D as f64 && got.1.unwrap() < 2.0 * D as f64 + 0.001);
    // At 49h only the 6-day-old pending invite is flagged (the 2d one is younger than 49h).
    assert_eq!(
        (got.2, got.3.as_deref(), got.4),
        (Some(49 * 3_600), Some("49h"), Some(1))
    );
    // Nothing redeemed: no suggestion, never a made-up one.
    assert_eq!(
        get(&s, "t2"),
        (Some(0), None, None, None, None, Some(5 * D), Some(0))
    );
}
