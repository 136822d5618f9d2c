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
use crate::extract::ev;
use crate::timefmt::{format_duration, parse_duration, NANOS_PER_SECOND};
use crate::RunJob;

pub const DEFAULT_THRESHOLDS: &str = "1h,6h,1d,2d,3d,5d,7d,14d,30d";

/// Suggested thresholds are rounded up to a whole hour, and are at least one hour.
const SUGGESTION_STEP: i64 = 3_600 * NANOS_PER_SECOND;

/// A validated `sweep`.
#[derive(Debug, Clone)]
pub struct SweepJob {
    pub run: RunJob,
    /// Candidate thresholds (ns), ascending and distinct.
    pub thresholds: Vec<i64>,
    /// Quantile of time-to-redeem the suggested threshold covers, in (0, 1].
    pub target_quantile: f64,
}

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

pub fn check_quantile(q: f64) -> Result<f64> {
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
    /// Suggested threshold per tenant (`None`: nothing redeemed).
    pub suggested: std::collections::BTreeMap<String, Option<String>>,
}

impl Sweep {
    pub fn summary(&self) -> Result<SweepSummary> {
        let tenants = self.suggested.column(ev::TENANT)?.str()?;
        let text = self.suggested.column("SuggestedThreshold")?.str()?;
        let suggested = tenants
            .iter()
            .zip(text.iter())
            .map(|(t, x)| (t.unwrap_or("").to_string(), x.map(String::from)))
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
    let raised = when(col("_grace").gt(x.clone()))
        .then(col("_grace"))
        .otherwise(x.clone());
    let kept = col("_excluded").not();
    let redeemed = col("RedeemTime").is_not_null().and(kept.clone());
    let took = col("RedeemTime") - col("InviteTime");
    let age = lit(as_of) - col("InviteTime");
    let count = |e: Expr, name: &str| {
        e.fill_null(lit(false))
            .sum()
            .cast(DataType::Int64)
            .alias(name)
    };
    ttr.group_by([col(ev::TENANT)])
        .agg([
            count(kept.clone(), "Invites"),
            count(
                kept.clone().and(took.clone().gt(raised.clone())),
                "FlaggedLaterRedeemed",
            ),
            count(
                kept.clone()
                    .and(col("RedeemTime").is_null())
                    .and(age.gt_eq(raised)),
                "FlaggedStillPending",
            ),
            count(redeemed.clone().and(took.lt_eq(x)), "_within"),
            count(redeemed, "_redeemed"),
            count(col("_excluded"), "Excluded"),
            count(kept.and(col("_grace").is_not_null()), "Graced"),
        ])
        .with_columns([
            (col("FlaggedLaterRedeemed") + col("FlaggedStillPending")).alias("Flagged"),
            when(col("_redeemed").gt(lit(0i64)))
                .then(
                    col("_within").cast(DataType::Float64)
                        / col("_redeemed").cast(DataType::Float64),
                )
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("RedeemedWithin"),
        ])
}

fn tenant_frame(tenants: &[String]) -> Result<LazyFrame> {
    Ok(DataFrame::new_infer_height(vec![Column::new(ev::TENANT.into(), tenants.to_vec())])?.lazy())
}

/// Sweeps `job.thresholds` over `ttr` (the baseline at `as_of`, times as i64 ns).
pub fn sweep(ttr: &DataFrame, tenants: &[String], job: &SweepJob, as_of: i64) -> Result<Sweep> {
    // Exclusions: invites a full exclusion matches are left out; grace periods raise thresholds.
    let base = match &job.run.exclusions {
        Some(ex) => ex.horizon(ttr)?.lazy(),
        None => ttr.clone().lazy().with_columns([
            lit(false).alias("_excluded"),
            lit(NULL).cast(DataType::Int64).alias("_grace"),
        ]),
    };
    let base = base.select([
        col(ev::TENANT),
        col("InviteTime"),
        col("RedeemTime"),
        col("TimeToRedeemSeconds"),
        col("_grace"),
        col("_excluded"),
    ]);
    let mut parts = Vec::with_capacity(job.thresholds.len());
    for &x in &job.thresholds {
        // Every tenant gets a row per threshold, zero when it had no invite.
        let part = tenant_frame(tenants)?
            .join(
                counts_at(base.clone(), as_of, lit(x)),
                [col(ev::TENANT)],
                [col(ev::TENANT)],
                JoinArgs::new(JoinType::Left),
            )
            .select([
                col(ev::TENANT),
                lit(x / NANOS_PER_SECOND)
                    .cast(DataType::Int64)
                    .alias("ThresholdSeconds"),
                col("Invites").fill_null(lit(0i64)),
                col("Flagged").fill_null(lit(0i64)),
                col("FlaggedLaterRedeemed").fill_null(lit(0i64)),
                col("FlaggedStillPending").fill_null(lit(0i64)),
                col("RedeemedWithin"),
                col("Excluded").fill_null(lit(0i64)),
                col("Graced").fill_null(lit(0i64)),
            ]);
        parts.push(part);
    }
    let table = concat(parts, UnionArgs::default())?
        .sort(
            [ev::TENANT, "ThresholdSeconds"],
            SortMultipleOptions::default(),
        )
        .collect()?;

    // The quantile per tenant, then the suggestion rounded up to a whole hour.
    let q = job.target_quantile;
    let quant = tenant_frame(tenants)?
        .join(
            base.clone()
                .filter(col("_excluded").not())
                .group_by([col(ev::TENANT)])
                .agg([
                    col("RedeemTime")
                        .count()
                        .cast(DataType::Int64)
                        .alias("Redeemed"),
                    col("TimeToRedeemSeconds")
                        .quantile(lit(q), QuantileMethod::Linear)
                        .alias("QuantileSeconds"),
                ]),
            [col(ev::TENANT)],
            [col(ev::TENANT)],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("Redeemed").fill_null(lit(0i64)))
        .sort([ev::TENANT], SortMultipleOptions::default())
        .collect()?;
    let suggestion: Vec<Option<i64>> = quant
        .column("QuantileSeconds")?
        .f64()?
        .iter()
        .map(|v| {
            v.map(|s| {
                let ns = (s * 1e9).ceil() as i64;
                let steps = (ns + SUGGESTION_STEP - 1).div_euclid(SUGGESTION_STEP);
                steps.max(1) * SUGGESTION_STEP
            })
        })
        .collect();
    let text: Vec<Option<String>> = suggestion.iter().map(|v| v.map(format_duration)).collect();
    let mut quant = quant;
    quant.with_column(Column::new("_x".into(), suggestion.clone()))?;
    let at_suggested = base
        .clone()
        .join(
            quant.clone().lazy().select([col(ev::TENANT), col("_x")]),
            [col(ev::TENANT)],
            [col(ev::TENANT)],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("_x").is_not_null());
    let at_suggested = counts_at(at_suggested, as_of, col("_x"))
        .select([col(ev::TENANT), col("Flagged").alias("FlaggedAtSuggested")]);
    let at_current = counts_at(base, as_of, lit(job.run.threshold))
        .select([col(ev::TENANT), col("Flagged").alias("FlaggedAtCurrent")]);
    let left = |a: LazyFrame, b: LazyFrame| {
        a.join(
            b,
            [col(ev::TENANT)],
            [col(ev::TENANT)],
            JoinArgs::new(JoinType::Left),
        )
    };
    quant.with_column(Column::new("SuggestedThreshold".into(), text))?;
    let suggested = left(left(quant.lazy(), at_suggested), at_current)
        .select([
            col(ev::TENANT),
            lit(q).cast(DataType::Float64).alias("TargetQuantile"),
            col("Redeemed"),
            col("QuantileSeconds"),
            (col("_x") / lit(NANOS_PER_SECOND))
                .cast(DataType::Int64)
                .alias("SuggestedThresholdSeconds"),
            col("SuggestedThreshold"),
            col("FlaggedAtSuggested"),
            lit(job.run.threshold / NANOS_PER_SECOND)
                .cast(DataType::Int64)
                .alias("CurrentThresholdSeconds"),
            col("FlaggedAtCurrent").fill_null(lit(0i64)),
        ])
        .sort([ev::TENANT], SortMultipleOptions::default())
        .collect()?;
    Ok(Sweep {
        as_of,
        thresholds: job.thresholds.clone(),
        target_quantile: q,
        current_threshold: job.run.threshold,
        exclusions: job.run.exclusions.is_some(),
        table,
        suggested,
    })
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
