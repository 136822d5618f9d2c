//! Time-to-redeem over the whole scanned history up to T, always with the intended rules:
//! each invite is paired with the earliest successful redeem of the same guest
//! (TenantId, lower-cased UPN) at or after the invite and at or before T.

use polars::prelude::*;

use super::columns::out;
use super::model::{finding_order, pair};
use crate::error::Result;

/// `baseline/time_to_redeem.parquet` rows (times still i64 ns).
pub fn time_to_redeem(events: &DataFrame, as_of: i64) -> Result<DataFrame> {
    Ok(pair(events.clone().lazy(), as_of)
        .select(out::TIME_TO_REDEEM.map(col))
        .sort_by_exprs(
            finding_order(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
}

/// A one-column frame of `tenants`: the left side of per-tenant joins that must give every
/// tenant a row.
pub(crate) fn tenant_frame(tenants: &[String]) -> Result<LazyFrame> {
    Ok(
        DataFrame::new_infer_height(vec![Column::new(out::TENANT.into(), tenants.to_vec())])?
            .lazy(),
    )
}

/// Per-tenant summary of `time_to_redeem`: counts and linear-interpolated percentiles of
/// TimeToRedeemSeconds over redeemed invites (null when none is redeemed). Every tenant in
/// `tenants` gets a row, with zero counts when it had no invite.
pub fn by_tenant(ttr: &DataFrame, tenants: &[String]) -> Result<DataFrame> {
    let q = |p: f64, name: &str| {
        col(out::TIME_TO_REDEEM_SECONDS)
            .quantile(lit(p), QuantileMethod::Linear)
            .alias(name)
    };
    let stats = ttr.clone().lazy().group_by([col(out::TENANT)]).agg([
        len().cast(DataType::Int64).alias(out::INVITES),
        col(out::REDEEM_TIME)
            .count()
            .cast(DataType::Int64)
            .alias(out::REDEEMED),
        q(0.50, out::P50_SECONDS),
        q(0.90, out::P90_SECONDS),
        q(0.95, out::P95_SECONDS),
        q(0.99, out::P99_SECONDS),
        col(out::TIME_TO_REDEEM_SECONDS)
            .max()
            .alias(out::MAX_SECONDS),
    ]);
    Ok(tenant_frame(tenants)?
        .join(
            stats,
            [col(out::TENANT)],
            [col(out::TENANT)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col(out::INVITES).fill_null(lit(0i64)),
            col(out::REDEEMED).fill_null(lit(0i64)),
        ])
        .with_column((col(out::INVITES) - col(out::REDEEMED)).alias(out::PENDING))
        .select([
            col(out::TENANT),
            col(out::INVITES),
            col(out::REDEEMED),
            col(out::PENDING),
            col(out::P50_SECONDS),
            col(out::P90_SECONDS),
            col(out::P95_SECONDS),
            col(out::P99_SECONDS),
            col(out::MAX_SECONDS),
        ])
        .sort([out::TENANT], SortMultipleOptions::default())
        .collect()?)
}
