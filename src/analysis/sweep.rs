//! Threshold tuning: for each tenant and candidate threshold X, how many invites of the whole
//! history up to T the intended rule would flag, split into those later redeemed (alerts a SOC
//! closes as benign-late) and those still pending, and a threshold suggested from a quantile
//! of time-to-redeem.
//!
//! Over the baseline pairing (`baseline::time_to_redeem`), with exact integer comparisons:
//! flagged when redeemed with `RedeemTime − InviteTime > X`, or pending with
//! `T − InviteTime >= X`; `RedeemedWithin` is the share of redeemed invites with
//! `RedeemTime − InviteTime <= X`.

use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::job::SweepJob;
use crate::rule::columns::out;
use crate::rule::columns::TENANT_KEY;
use crate::rule::{key_labels, tenant_frame, tenant_key, TenantKey, EXCLUDED, GRACE};
use crate::time::{format_duration, parse_duration, NANOS_PER_SECOND};

pub const DEFAULT_THRESHOLDS: &str = "1h,6h,1d,2d,3d,5d,7d,14d,30d";

/// Suggested thresholds are rounded up to a whole hour, and are at least one hour.
const SUGGESTION_STEP: i64 = 3_600 * NANOS_PER_SECOND;

/// Parses `1h,6h,1d`: sorted, duplicates removed.
pub fn parse_thresholds(text: &str) -> Result<Vec<i64>> {
    let mut v = text
        .split(',')
        .map(|p| parse_duration(p.trim()))
        .collect::<Result<Vec<_>>>()?;
    if v.is_empty() {
        return Err(Error::Usage(
            "--thresholds needs at least one duration".into(),
        ));
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

pub(crate) fn check_quantile(q: f64) -> Result<f64> {
    if q > 0.0 && q <= 1.0 {
        Ok(q)
    } else {
        Err(Error::Usage(format!(
            "--target-quantile must be in (0, 1], got {q}"
        )))
    }
}

pub struct Sweep {
    pub as_of: i64,
    pub thresholds: Vec<i64>,
    pub target_quantile: f64,
    pub current_threshold: i64,
    /// Exclusion rules were applied.
    pub exclusions: bool,
    /// TenantId, ThresholdSeconds, Invites, Flagged, FlaggedLaterRedeemed,
    /// FlaggedStillPending, RedeemedWithin, Excluded (left out by a full exclusion), Graced
    /// (among Invites, those with a grace period).
    pub table: DataFrame,
    /// TenantId, TargetQuantile, Redeemed, QuantileSeconds, SuggestedThresholdSeconds,
    /// SuggestedThreshold, FlaggedAtSuggested, CurrentThresholdSeconds, FlaggedAtCurrent.
    pub suggested: DataFrame,
}

/// The `sweep` block of `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepSummary {
    pub thresholds_seconds: Vec<i64>,
    pub target_quantile: f64,
    /// Suggested threshold per tenant (`None`: nothing redeemed), keyed by `TenantId`, or by
    /// `TenantId/AADTenantId` where a workspace holds several Entra tenants.
    pub suggested: std::collections::BTreeMap<String, Option<String>>,
}

impl Sweep {
    pub(crate) fn summary(&self) -> Result<SweepSummary> {
        let text = self.suggested.column(out::SUGGESTED_THRESHOLD)?.str()?;
        let suggested = key_labels(&self.suggested)?
            .into_iter()
            .zip(text.iter())
            .map(|(t, x)| (t, x.map(String::from)))
            .collect();
        Ok(SweepSummary {
            suggested,
            thresholds_seconds: self
                .thresholds
                .iter()
                .map(|t| t / NANOS_PER_SECOND)
                .collect(),
            target_quantile: self.target_quantile,
        })
    }
}

/// Per-tenant counts at threshold `x` (ns; an expression so it may differ per row). Rows a full
/// exclusion matches (`_excluded`) are only counted as `Excluded`; a row's `_grace` (from a
/// grace-period exclusion) raises its threshold for `Flagged*` to at least the grace, while
/// `RedeemedWithin` stays against X itself.
fn counts_at(ttr: LazyFrame, as_of: i64, x: Expr) -> LazyFrame {
    const WITHIN: &str = "_within";
    const REDEEMED: &str = "_redeemed";
    let raised = when(col(GRACE).gt(x.clone()))
        .then(col(GRACE))
        .otherwise(x.clone());
    let kept = col(EXCLUDED).not();
    let redeemed = col(out::REDEEM_TIME).is_not_null().and(kept.clone());
    let took = col(out::REDEEM_TIME) - col(out::INVITE_TIME);
    let age = lit(as_of) - col(out::INVITE_TIME);
    let count = |e: Expr, name: &str| {
        e.fill_null(lit(false))
            .sum()
            .cast(DataType::Int64)
            .alias(name)
    };
    ttr.group_by(tenant_key())
        .agg([
            count(kept.clone(), out::INVITES),
            count(
                kept.clone().and(took.clone().gt(raised.clone())),
                out::FLAGGED_LATER_REDEEMED,
            ),
            count(
                kept.clone()
                    .and(col(out::REDEEM_TIME).is_null())
                    .and(age.gt_eq(raised)),
                out::FLAGGED_STILL_PENDING,
            ),
            count(redeemed.clone().and(took.lt_eq(x)), WITHIN),
            count(redeemed, REDEEMED),
            count(col(EXCLUDED), out::EXCLUDED),
            count(kept.and(col(GRACE).is_not_null()), out::GRACED),
        ])
        .with_columns([
            (col(out::FLAGGED_LATER_REDEEMED) + col(out::FLAGGED_STILL_PENDING))
                .alias(out::FLAGGED),
            when(col(REDEEMED).gt(lit(0i64)))
                .then(col(WITHIN).cast(DataType::Float64) / col(REDEEMED).cast(DataType::Float64))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias(out::REDEEMED_WITHIN),
        ])
}

/// Per tenant, `left` joined with `right` (every tenant of `left` kept).
fn left(a: LazyFrame, b: LazyFrame) -> LazyFrame {
    a.join(b, tenant_key(), tenant_key(), JoinArgs::new(JoinType::Left))
}

/// Sweeps `job.thresholds` over `ttr` (the baseline at `as_of`, times as i64 ns).
pub(crate) fn sweep(
    ttr: &DataFrame,
    keys: &[TenantKey],
    job: &SweepJob,
    as_of: i64,
) -> Result<Sweep> {
    // Exclusions: invites a full exclusion matches are left out; grace periods raise thresholds.
    let base = match &job.run.exclusions {
        Some(ex) => ex.horizon(ttr)?.lazy(),
        None => ttr.clone().lazy().with_columns([
            lit(false).alias(EXCLUDED),
            lit(NULL).cast(DataType::Int64).alias(GRACE),
        ]),
    };
    let base = base.select([
        col(out::TENANT),
        col(out::AAD_TENANT),
        col(out::INVITE_TIME),
        col(out::REDEEM_TIME),
        col(out::TIME_TO_REDEEM_SECONDS),
        col(GRACE),
        col(EXCLUDED),
    ]);
    Ok(Sweep {
        as_of,
        thresholds: job.thresholds.clone(),
        target_quantile: job.target_quantile,
        current_threshold: job.run.threshold,
        exclusions: job.run.exclusions.is_some(),
        table: table(base.clone(), keys, &job.thresholds, as_of)?,
        suggested: suggested(base, keys, job, as_of)?,
    })
}

/// `sweep/sweep.parquet`: every tenant gets a row per threshold, zero when it had no invite.
fn table(base: LazyFrame, keys: &[TenantKey], thresholds: &[i64], as_of: i64) -> Result<DataFrame> {
    let mut parts = Vec::with_capacity(thresholds.len());
    for &x in thresholds {
        let part = left(tenant_frame(keys)?, counts_at(base.clone(), as_of, lit(x))).select([
            col(out::TENANT),
            col(out::AAD_TENANT),
            lit(x / NANOS_PER_SECOND)
                .cast(DataType::Int64)
                .alias(out::THRESHOLD_SECONDS),
            col(out::INVITES).fill_null(lit(0i64)),
            col(out::FLAGGED).fill_null(lit(0i64)),
            col(out::FLAGGED_LATER_REDEEMED).fill_null(lit(0i64)),
            col(out::FLAGGED_STILL_PENDING).fill_null(lit(0i64)),
            col(out::REDEEMED_WITHIN),
            col(out::EXCLUDED).fill_null(lit(0i64)),
            col(out::GRACED).fill_null(lit(0i64)),
        ]);
        parts.push(part);
    }
    Ok(concat(parts, UnionArgs::default())?
        .sort(
            [out::TENANT, out::AAD_TENANT, out::THRESHOLD_SECONDS],
            SortMultipleOptions::default(),
        )
        .collect()?)
}

/// A quantile of time-to-redeem (seconds) as a threshold: rounded up to a whole hour, at least
/// one hour.
fn suggestion(seconds: f64) -> i64 {
    let ns = (seconds * 1e9).ceil() as i64;
    let steps = (ns + SUGGESTION_STEP - 1).div_euclid(SUGGESTION_STEP);
    steps.max(1) * SUGGESTION_STEP
}

/// `sweep/suggested.parquet`: per tenant, the quantile, the suggestion rounded up to a whole
/// hour, and what it and the current threshold would flag.
fn suggested(base: LazyFrame, keys: &[TenantKey], job: &SweepJob, as_of: i64) -> Result<DataFrame> {
    const X: &str = "_x";
    let q = job.target_quantile;
    let mut quant = left(
        tenant_frame(keys)?,
        base.clone()
            .filter(col(EXCLUDED).not())
            .group_by(tenant_key())
            .agg([
                col(out::REDEEM_TIME)
                    .count()
                    .cast(DataType::Int64)
                    .alias(out::REDEEMED),
                col(out::TIME_TO_REDEEM_SECONDS)
                    .quantile(lit(q), QuantileMethod::Linear)
                    .alias(out::QUANTILE_SECONDS),
            ]),
    )
    .with_column(col(out::REDEEMED).fill_null(lit(0i64)))
    .sort(TENANT_KEY, SortMultipleOptions::default())
    .collect()?;
    let x: Vec<Option<i64>> = quant
        .column(out::QUANTILE_SECONDS)?
        .f64()?
        .iter()
        .map(|v| v.map(suggestion))
        .collect();
    let text: Vec<Option<String>> = x.iter().map(|v| v.map(format_duration)).collect();
    quant.with_column(Column::new(X.into(), x))?;
    let at_suggested = base
        .clone()
        .join(
            quant
                .clone()
                .lazy()
                .select([col(out::TENANT), col(out::AAD_TENANT), col(X)]),
            tenant_key(),
            tenant_key(),
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col(X).is_not_null());
    let at_suggested = counts_at(at_suggested, as_of, col(X)).select([
        col(out::TENANT),
        col(out::AAD_TENANT),
        col(out::FLAGGED).alias(out::FLAGGED_AT_SUGGESTED),
    ]);
    let at_current = counts_at(base, as_of, lit(job.run.threshold)).select([
        col(out::TENANT),
        col(out::AAD_TENANT),
        col(out::FLAGGED).alias(out::FLAGGED_AT_CURRENT),
    ]);
    quant.with_column(Column::new(out::SUGGESTED_THRESHOLD.into(), text))?;
    Ok(left(left(quant.lazy(), at_suggested), at_current)
        .select([
            col(out::TENANT),
            col(out::AAD_TENANT),
            lit(q).cast(DataType::Float64).alias(out::TARGET_QUANTILE),
            col(out::REDEEMED),
            col(out::QUANTILE_SECONDS),
            (col(X) / lit(NANOS_PER_SECOND))
                .cast(DataType::Int64)
                .alias(out::SUGGESTED_THRESHOLD_SECONDS),
            col(out::SUGGESTED_THRESHOLD),
            col(out::FLAGGED_AT_SUGGESTED),
            lit(job.run.threshold / NANOS_PER_SECOND)
                .cast(DataType::Int64)
                .alias(out::CURRENT_THRESHOLD_SECONDS),
            col(out::FLAGGED_AT_CURRENT).fill_null(lit(0i64)),
        ])
        .sort(TENANT_KEY, SortMultipleOptions::default())
        .collect()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_sorted_and_distinct() {
        let h = 3_600 * NANOS_PER_SECOND;
        assert_eq!(
            parse_thresholds("1d, 1h,24h,6h").unwrap(),
            [h, 6 * h, 24 * h]
        );
        assert!(parse_thresholds("1h,,2h").is_err());
        assert!(parse_thresholds("1x").is_err());
        assert!(check_quantile(0.0).is_err());
        assert!(check_quantile(1.5).is_err());
        assert_eq!(check_quantile(0.99).unwrap(), 0.99);
    }
}
