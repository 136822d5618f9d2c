//! Time-to-redeem over the whole scanned history up to T: each invite paired with the earliest
//! successful redeem of the same guest (tenant key, lower-cased UPN) at or after the invite and
//! at or before T, as `intended` pairs them; under `precise`, as it pairs them (with
//! `MatchedBy`).

use polars::prelude::*;

use super::columns::{ev, out, TENANT_KEY};
use super::detect::Semantics;
use super::model::{finding_order, pair, tenant_key};
use super::precise::pair_precise;
use crate::error::Result;

/// `baseline/time_to_redeem.parquet` rows (times still i64 ns): the intended pairing for
/// `sentinel` and `intended`, the precise one (and `MatchedBy`) for `precise`.
pub fn time_to_redeem(events: &DataFrame, as_of: i64, semantics: Semantics) -> Result<DataFrame> {
    let events = events.clone().lazy();
    match semantics {
        Semantics::Precise => precise_time_to_redeem(&pair_precise(events, as_of)?.collect()?),
        _ => intended_time_to_redeem(&pair(events, as_of).collect()?),
    }
}

/// [`time_to_redeem`] under `intended` and `sentinel`, from their pairing at T (`model::pair`).
pub(crate) fn intended_time_to_redeem(pairs: &DataFrame) -> Result<DataFrame> {
    baseline_rows(pairs.clone().lazy(), vec![])
}

/// [`time_to_redeem`] under `precise`, from its pairing at T (`precise::pair_precise`).
pub(crate) fn precise_time_to_redeem(pairs: &DataFrame) -> Result<DataFrame> {
    baseline_rows(pairs.clone().lazy(), vec![col(out::MATCHED_BY)])
}

/// The baseline's columns of `pairs`, and `extra`, in finding order.
fn baseline_rows(pairs: LazyFrame, extra: Vec<Expr>) -> Result<DataFrame> {
    let mut columns: Vec<Expr> = out::TIME_TO_REDEEM.map(col).to_vec();
    columns.extend(extra);
    Ok(pairs
        .select(columns)
        .sort_by_exprs(
            finding_order(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
}

/// One reported tenant: a `TenantId` and an Entra tenant in it (`""`: not in the input).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantKey {
    pub tenant: String,
    pub aad_tenant: String,
}

/// The reported tenants: every (TenantId, AADTenantId) among `events` of the `tenants`, and
/// `(t, "")` for a tenant of `tenants` without events; sorted.
pub fn tenant_keys(events: &DataFrame, tenants: &[String]) -> Result<Vec<TenantKey>> {
    let pairs = events
        .clone()
        .lazy()
        .select(tenant_key())
        .unique(None, UniqueKeepStrategy::Any)
        .collect()?;
    let (t, a) = (
        pairs.column(ev::TENANT)?.str()?,
        pairs.column(ev::AAD_TENANT)?.str()?,
    );
    let mut keys: Vec<TenantKey> = t
        .iter()
        .zip(a.iter())
        .map(|(t, a)| TenantKey {
            tenant: t.unwrap_or("").to_string(),
            aad_tenant: a.unwrap_or("").to_string(),
        })
        .filter(|k| tenants.contains(&k.tenant))
        .collect();
    for t in tenants {
        if !keys.iter().any(|k| &k.tenant == t) {
            keys.push(TenantKey {
                tenant: t.clone(),
                aad_tenant: String::new(),
            });
        }
    }
    keys.sort();
    Ok(keys)
}

/// A name per row of `df` (which has the [`TENANT_KEY`] columns): its `TenantId`, or
/// `TenantId/AADTenantId` where that `TenantId` has rows of several Entra tenants.
pub(crate) fn key_labels(df: &DataFrame) -> Result<Vec<String>> {
    let (t, a) = (
        df.column(out::TENANT)?.str()?,
        df.column(out::AAD_TENANT)?.str()?,
    );
    let mut entra: std::collections::HashMap<&str, std::collections::BTreeSet<&str>> =
        std::collections::HashMap::new();
    for (t, a) in t.iter().zip(a.iter()) {
        entra
            .entry(t.unwrap_or(""))
            .or_default()
            .insert(a.unwrap_or(""));
    }
    Ok(t.iter()
        .zip(a.iter())
        .map(|(t, a)| {
            let (t, a) = (t.unwrap_or(""), a.unwrap_or(""));
            match entra.get(t).map_or(0, |s| s.len()) {
                0 | 1 => t.to_string(),
                _ => format!("{t}/{a}"),
            }
        })
        .collect())
}

/// A frame of the tenant keys: the left side of per-tenant joins that must give every
/// reported tenant a row.
pub(crate) fn tenant_frame(keys: &[TenantKey]) -> Result<LazyFrame> {
    let col_of = |name: &str, f: fn(&TenantKey) -> &str| {
        Column::new(name.into(), keys.iter().map(f).collect::<Vec<&str>>())
    };
    Ok(DataFrame::new_infer_height(vec![
        col_of(out::TENANT, |k| &k.tenant),
        col_of(out::AAD_TENANT, |k| &k.aad_tenant),
    ])?
    .lazy())
}

/// Per-tenant summary of `time_to_redeem`: counts and linear-interpolated percentiles of
/// TimeToRedeemSeconds over redeemed invites (null when none is redeemed). Every tenant in
/// key of `keys` gets a row, with zero counts when it had no invite.
pub fn by_tenant(ttr: &DataFrame, keys: &[TenantKey]) -> Result<DataFrame> {
    let q = |p: f64, name: &str| {
        col(out::TIME_TO_REDEEM_SECONDS)
            .quantile(lit(p), QuantileMethod::Linear)
            .alias(name)
    };
    let stats = ttr.clone().lazy().group_by(tenant_key()).agg([
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
    Ok(tenant_frame(keys)?
        .join(
            stats,
            tenant_key(),
            tenant_key(),
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col(out::INVITES).fill_null(lit(0i64)),
            col(out::REDEEMED).fill_null(lit(0i64)),
        ])
        .with_column((col(out::INVITES) - col(out::REDEEMED)).alias(out::PENDING))
        .select([
            col(out::TENANT),
            col(out::AAD_TENANT),
            col(out::INVITES),
            col(out::REDEEMED),
            col(out::PENDING),
            col(out::P50_SECONDS),
            col(out::P90_SECONDS),
            col(out::P95_SECONDS),
            col(out::P99_SECONDS),
            col(out::MAX_SECONDS),
        ])
        .sort(TENANT_KEY, SortMultipleOptions::default())
        .collect()?)
}

/// `by_tenant` with the `precise` counts (`precise::precise_counts`) of each tenant key, zero
/// where it has none.
pub(crate) fn with_precise_counts(by_tenant: DataFrame, counts: DataFrame) -> Result<DataFrame> {
    let names: Vec<&str> = out::PAIRS_BY
        .into_iter()
        .chain([
            out::MISSED_BY_UPN,
            out::LOST_REDEEM_RECORDS,
            out::DELETED_GUESTS,
        ])
        .collect();
    Ok(by_tenant
        .lazy()
        .join(
            counts.lazy(),
            tenant_key(),
            tenant_key(),
            JoinArgs::new(JoinType::Left),
        )
        .sort(TENANT_KEY, SortMultipleOptions::default())
        .with_columns(
            names
                .iter()
                .map(|n| col(*n).cast(DataType::Int64).fill_null(lit(0i64)))
                .collect::<Vec<_>>(),
        )
        .collect()?)
}
