//! Retrospective replay: the rule evaluated at every tick `T = from, from + every, … <= to`,
//! in one pass over the extracted events instead of one `run` per tick.
//!
//! Each invite alerts on a set of ticks with a closed form:
//! - intended: `[t + threshold, min(t + lookback, r))`, where `r` is the invite's first
//!   successful redeem (the baseline pairing) or never;
//! - sentinel: `[t, t + min(lookback, threshold))` minus, for every redeem with the invite's
//!   literal key at `r`, the ticks `[r, r + lookback)` in which that redeem is in the window.
//!
//! The alerts at a tick are exactly the findings of `run --as-of` that tick (property-tested).

use std::collections::HashMap;

use polars::prelude::*;
use serde::Serialize;

use crate::baseline;
use crate::detect::{self, Semantics};
use crate::error::{Error, Result};
use crate::exclude;
use crate::extract::ev;
use crate::timefmt::{format_instant, NANOS_PER_SECOND};
use crate::RunJob;

/// More ticks than this is almost surely a wrong `--every`.
pub const MAX_TICKS: i64 = 100_000;

/// A validated `replay`: `run.as_of` is the last tick bound (`--to`).
#[derive(Debug, Clone)]
pub struct ReplayJob {
    pub run: RunJob,
    pub from: i64,
    pub every: i64,
}

/// What `replay` computed; times are i64 ns.
pub struct Replay {
    pub from: i64,
    pub to: i64,
    pub every: i64,
    pub ticks: usize,
    pub semantics: Semantics,
    /// EvaluatedAt, TenantId, TargetUPN, InviteTime, Id, InviteInitiator, IPAddress, FirstAlert.
    pub alerts: DataFrame,
    /// EvaluatedAt, TenantId, Alerts, NewAlerts: every tick × tenant, zeros included.
    pub by_tick: DataFrame,
    pub alerting_invites: usize,
    /// Alerts suppressed by exclusions (`Rule`, `Reason` added); `None` without exclusions.
    pub suppressed: Option<DataFrame>,
    /// Suppressed alerts per exclusion rule, in rule order.
    pub suppressed_by_rule: Vec<(String, u64)>,
}

/// The `replay` block of `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    pub from: String,
    pub to: String,
    pub every_seconds: i64,
    pub ticks: usize,
    pub alerts: usize,
    pub alerting_invites: usize,
    /// Alerts suppressed by exclusion rules (not in `alerts`).
    pub suppressed: usize,
    /// The same, per rule (present with exclusions).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub suppressed_by_rule: std::collections::BTreeMap<String, u64>,
    pub replay_seconds: f64,
}

impl Replay {
    pub fn summary(&self, replay_seconds: f64) -> ReplaySummary {
        ReplaySummary {
            from: format_instant(self.from),
            to: format_instant(self.to),
            every_seconds: self.every / NANOS_PER_SECOND,
            ticks: self.ticks,
            alerts: self.alerts.height(),
            alerting_invites: self.alerting_invites,
            suppressed: self.suppressed.as_ref().map_or(0, DataFrame::height),
            suppressed_by_rule: self.suppressed_by_rule.iter().cloned().collect(),
            replay_seconds,
        }
    }

    /// The tick instants, oldest first.
    pub fn tick_times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.ticks as i64).map(move |k| self.from + k * self.every)
    }
}

/// Number of ticks `from, from + every, … <= to`, validated.
pub fn tick_count(from: i64, to: i64, every: i64) -> Result<i64> {
    if every <= 0 {
        return Err(Error::Usage("--every must be greater than zero".into()));
    }
    if to < from {
        return Err(Error::Usage(format!(
            "--to ({}) is before --from ({})",
            format_instant(to),
            format_instant(from)
        )));
    }
    let n = (to as i128 - from as i128) / every as i128 + 1;
    if n > MAX_TICKS as i128 {
        return Err(Error::Usage(format!(
            "{n} ticks from {} to {} every {}s; at most {MAX_TICKS} (use a longer --every)",
            format_instant(from),
            format_instant(to),
            every / NANOS_PER_SECOND
        )));
    }
    Ok(n as i64)
}

/// Tick indices `k` in `0..n` with `from + k·every` in `[start, end)`.
fn ticks_in(start: i128, end: i128, from: i64, every: i64, n: i64) -> std::ops::Range<i64> {
    let ceil = |a: i128| -> i128 {
        let e = every as i128;
        a.div_euclid(e) + i128::from(a.rem_euclid(e) != 0)
    };
    let lo = ceil(start - from as i128).clamp(0, n as i128) as i64;
    let hi = ceil(end - from as i128).clamp(0, n as i128) as i64;
    lo..hi.max(lo)
}

/// Evaluates the rule at every tick up to `to` over deduplicated `events`.
pub fn replay(events: &DataFrame, tenants: &[String], job: &ReplayJob, to: i64) -> Result<Replay> {
    let (from, every) = (job.from, job.every);
    let n = tick_count(from, to, every)?;
    let (lookback, threshold) = (job.run.lookback as i128, job.run.threshold as i128);
    let cut = events.clone().lazy().filter(col(ev::TIME).lt_eq(lit(to)));

    // Per invite (row of `inv`), its alerting tick indices, ascending.
    let mut hits: Vec<(IdxSize, i64)> = Vec::new();
    let inv = match job.run.semantics {
        Semantics::Intended => {
            let inv = baseline::pair(cut, to).collect()?;
            let t = inv.column("InviteTime")?.i64()?;
            let r = inv.column("RedeemTime")?.i64()?;
            for (i, (t, r)) in t.iter().zip(r.iter()).enumerate() {
                let Some(t) = t else { continue };
                let t = t as i128;
                let end = (t + lookback).min(r.map_or(i128::MAX, |r| r as i128));
                for k in ticks_in(t + threshold, end, from, every, n) {
                    hits.push((i as IdxSize, k));
                }
            }
            inv
        }
        Semantics::Sentinel => {
            let inv = detect::invites(cut.clone()).collect()?;
            let keys = detect::redeems(cut)
                .select([
                    col(ev::TENANT),
                    detect::sentinel_redeem_key().alias("Key"),
                    col("RedeemTime"),
                ])
                .collect()?;
            // Redeem times per literal (TenantId, key), sorted: a redeem at r is in the window
            // of tick T when T - lookback < r <= T.
            let mut by_key: HashMap<(&str, &str), Vec<i64>> = HashMap::new();
            let (kt, kk, kr) = (
                keys.column(ev::TENANT)?.str()?,
                keys.column("Key")?.str()?,
                keys.column("RedeemTime")?.i64()?,
            );
            for ((t, k), r) in kt.iter().zip(kk.iter()).zip(kr.iter()) {
                if let (Some(t), Some(k), Some(r)) = (t, k, r) {
                    by_key.entry((t, k)).or_default().push(r);
                }
            }
            by_key.values_mut().for_each(|v| v.sort_unstable());
            let (it, iu, itime) = (
                inv.column(ev::TENANT)?.str()?,
                inv.column("TargetUPN")?.str()?,
                inv.column("InviteTime")?.i64()?,
            );
            let span = lookback.min(threshold);
            for i in 0..inv.height() {
                let Some(t) = itime.get(i) else { continue };
                let redeems = match (it.get(i), iu.get(i)) {
                    (Some(tenant), Some(upn)) => by_key.get(&(tenant, upn)),
                    _ => None,
                };
                for k in ticks_in(t as i128, t as i128 + span, from, every, n) {
                    let tick = from as i128 + k as i128 * every as i128;
                    let cancelled = redeems.is_some_and(|rs| {
                        let p = rs.partition_point(|&r| r as i128 <= tick);
                        p > 0 && rs[p - 1] as i128 > tick - lookback
                    });
                    if !cancelled {
                        hits.push((i as IdxSize, k));
                    }
                }
            }
            inv
        }
    };

    let idx = IdxCa::from_vec("idx".into(), hits.iter().map(|h| h.0).collect());
    let ticks: Vec<i64> = hits.iter().map(|h| from + h.1 * every).collect();
    let mut picked = inv
        .select([
            ev::TENANT,
            "TargetUPN",
            "InviteTime",
            ev::ID,
            "InviteInitiator",
            "IPAddress",
        ])?
        .take(&idx)?;
    picked.insert_column(0, Column::new("EvaluatedAt".into(), ticks))?;

    // Exclusions at each alert's own tick (grace periods depend on it).
    let (kept, suppressed) = match &job.run.exclusions {
        Some(ex) => {
            let c = ex.classify(&picked, col("EvaluatedAt"))?;
            let mask: Vec<bool> = c
                .column("Rule")?
                .str()?
                .iter()
                .map(|r| r.is_none())
                .collect();
            let (_, gone) = exclude::split(&c)?;
            (mask, Some(gone))
        }
        None => (vec![true; hits.len()], None),
    };
    // `hits` is grouped by invite with ticks ascending: the first kept one is FirstAlert.
    let mut first = Vec::with_capacity(hits.len());
    let mut prev: Option<IdxSize> = None;
    let mut alerting_invites = 0;
    for (&(i, _), &keep) in hits.iter().zip(&kept) {
        let new = keep && prev != Some(i);
        first.push(new);
        alerting_invites += usize::from(new);
        if keep {
            prev = Some(i);
        }
    }
    picked.with_column(Column::new("FirstAlert".into(), first))?;
    let order = || {
        (
            [vec![col("EvaluatedAt")], detect::finding_order()].concat(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
    };
    let (by, opts) = order();
    let alerts = picked
        .filter(&BooleanChunked::from_slice("keep".into(), &kept))?
        .lazy()
        .sort_by_exprs(by, opts)
        .collect()?;
    let suppressed = match suppressed {
        Some(gone) => {
            let (by, opts) = order();
            Some(gone.lazy().sort_by_exprs(by, opts).collect()?)
        }
        None => None,
    };

    // Every tick × tenant, so a quiet tick shows as zero rather than missing.
    let nt = tenants.len();
    let grid_ticks: Vec<i64> = (0..n)
        .flat_map(|k| std::iter::repeat_n(from + k * every, nt))
        .collect();
    let grid_tenants: Vec<&str> = (0..n)
        .flat_map(|_| tenants.iter().map(String::as_str))
        .collect();
    let grid = df!("EvaluatedAt" => grid_ticks, ev::TENANT => grid_tenants)?;
    let counts = alerts
        .clone()
        .lazy()
        .group_by([col("EvaluatedAt"), col(ev::TENANT)])
        .agg([
            len().cast(DataType::Int64).alias("Alerts"),
            col("FirstAlert")
                .sum()
                .cast(DataType::Int64)
                .alias("NewAlerts"),
        ]);
    let by_tick = grid
        .lazy()
        .join(
            counts,
            [col("EvaluatedAt"), col(ev::TENANT)],
            [col("EvaluatedAt"), col(ev::TENANT)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("Alerts").fill_null(lit(0i64)),
            col("NewAlerts").fill_null(lit(0i64)),
        ])
        .sort(["EvaluatedAt", ev::TENANT], SortMultipleOptions::default())
        .collect()?;
    Ok(Replay {
        from,
        to,
        every,
        ticks: n as usize,
        semantics: job.run.semantics,
        alerts,
        by_tick,
        alerting_invites,
        suppressed_by_rule: match (&job.run.exclusions, &suppressed) {
            (Some(ex), Some(gone)) => exclude::counts(ex, gone)?,
            _ => Vec::new(),
        },
        suppressed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_in_is_half_open_and_clamped() {
        // ticks at 10, 20, …, 100 (n = 10)
        assert_eq!(ticks_in(20, 40, 10, 10, 10), 1..3);
        assert_eq!(ticks_in(21, 40, 10, 10, 10), 2..3);
        assert_eq!(ticks_in(21, 41, 10, 10, 10), 2..4);
        assert_eq!(ticks_in(-50, 15, 10, 10, 10), 0..1);
        assert_eq!(ticks_in(95, i128::MAX, 10, 10, 10), 9..10);
        assert_eq!(ticks_in(40, 40, 10, 10, 10), 3..3);
        assert_eq!(ticks_in(200, 300, 10, 10, 10), 10..10);
    }

    #[test]
    fn tick_count_includes_both_ends_and_rejects_bad_ranges() {
        assert_eq!(tick_count(0, 100, 10).unwrap(), 11);
        assert_eq!(tick_count(0, 99, 10).unwrap(), 10);
        assert_eq!(tick_count(5, 5, 10).unwrap(), 1);
        assert!(tick_count(10, 0, 10).is_err());
        assert!(tick_count(0, 10, 0).is_err());
        assert!(tick_count(0, MAX_TICKS * 10, 1).is_err());
    }
}
