//! Time-to-redeem over the whole scanned history up to T, always with the intended rules:
//! each invite is paired with the earliest successful redeem of the same guest
//! (TenantId, lower-cased UPN) at or after the invite and at or before T.

use polars::prelude::*;

use crate::detect::{intended_redeem_upn, invites, redeems, seconds_between};
use crate::error::Result;
use crate::extract::ev;

/// Every invite with a non-empty UPN and a user initiator, with `RedeemTime` (i64 ns, null
/// while pending) and `TimeToRedeemSeconds`. `events` must already be cut at T.
pub fn pair(events: LazyFrame, as_of: i64) -> LazyFrame {
    let events = events.filter(col(ev::TIME).lt_eq(lit(as_of)));
    let inv = invites(events.clone())
        .filter(col("TargetUPN").neq(lit("")))
        .with_row_index("_row", None)
        .with_column(col("TargetUPN").str().to_lowercase().alias("_key"));
    let red = redeems(events)
        .select([
            col(ev::TENANT),
            intended_redeem_upn().str().to_lowercase().alias("_key"),
            col("RedeemTime"),
        ])
        .filter(col("_key").is_not_null());
    let first = inv
        .clone()
        .select([col("_row"), col(ev::TENANT), col("_key"), col("InviteTime")])
        .join(
            red,
            [col(ev::TENANT), col("_key")],
            [col(ev::TENANT), col("_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("RedeemTime").gt_eq(col("InviteTime")))
        .group_by([col("_row")])
        .agg([col("RedeemTime").min()]);
    inv.join(
        first,
        [col("_row")],
        [col("_row")],
        JoinArgs::new(JoinType::Left),
    )
    .sort(["_row"], SortMultipleOptions::default())
    .with_column(seconds_between(col("RedeemTime"), col("InviteTime")).alias("TimeToRedeemSeconds"))
    .drop(cols(["_row", "_key"]))
}

/// `baseline/time_to_redeem.parquet` rows (times still i64 ns).
pub fn time_to_redeem(events: &DataFrame, as_of: i64) -> Result<DataFrame> {
    Ok(pair(events.clone().lazy(), as_of)
        .select([
            col(ev::TENANT),
            col(ev::ID),
            col("TargetUPN"),
            col("InviteTime"),
            col("InviteInitiator"),
            col("IPAddress"),
            col("RedeemTime"),
            col("TimeToRedeemSeconds"),
        ])
        .sort_by_exprs(
            crate::detect::finding_order(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
}

/// Per-tenant summary of `time_to_redeem`: counts and linear-interpolated percentiles of
/// TimeToRedeemSeconds over redeemed invites (null when none is redeemed). Every tenant in
/// `tenants` gets a row, with zero counts when it had no invite.
pub fn by_tenant(ttr: &DataFrame, tenants: &[String]) -> Result<DataFrame> {
    let q = |p: f64, name: &str| {
        col("TimeToRedeemSeconds")
            .quantile(lit(p), QuantileMethod::Linear)
            .alias(name)
    };
    let stats = ttr.clone().lazy().group_by([col(ev::TENANT)]).agg([
        len().cast(DataType::Int64).alias("Invites"),
        col("RedeemTime")
            .count()
            .cast(DataType::Int64)
            .alias("Redeemed"),
        q(0.50, "P50Seconds"),
        q(0.90, "P90Seconds"),
        q(0.95, "P95Seconds"),
        q(0.99, "P99Seconds"),
        col("TimeToRedeemSeconds").max().alias("MaxSeconds"),
    ]);
    let all =
        DataFrame::new_infer_height(vec![Column::new(ev::TENANT.into(), tenants.to_vec())])?.lazy();
    Ok(all
        .join(
            stats,
            [col(ev::TENANT)],
            [col(ev::TENANT)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("Invites").fill_null(lit(0i64)),
            col("Redeemed").fill_null(lit(0i64)),
        ])
        .with_column((col("Invites") - col("Redeemed")).alias("Pending"))
        .select([
            col(ev::TENANT),
            col("Invites"),
            col("Redeemed"),
            col("Pending"),
            col("P50Seconds"),
            col("P90Seconds"),
            col("P95Seconds"),
            col("P99Seconds"),
            col("MaxSeconds"),
        ])
        .sort([ev::TENANT], SortMultipleOptions::default())
        .collect()?)
}
