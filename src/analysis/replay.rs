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

use crate::error::{Error, Result};
use crate::job::{ReplayJob, RunJob};
use crate::rule::columns::{ev, out};
use crate::rule::{
    exclusion_counts, finding_order, invites, pair, pair_precise, redeems, sentinel_redeem_key,
    split_suppressed, tenant_key, Semantics, TenantKey, DELETED_TIME,
};
use crate::time::{format_instant, NANOS_PER_SECOND};

/// More ticks than this is almost surely a wrong `--every`.
pub const MAX_TICKS: i64 = 100_000;

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
    pub(crate) fn summary(&self, replay_seconds: f64) -> ReplaySummary {
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
pub(crate) fn tick_count(from: i64, to: i64, every: i64) -> Result<i64> {
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

/// Each alert: the row of its invite in the invites frame, and its tick index.
type Hits = Vec<(IdxSize, i64)>;

/// The ticks `from + k·every`, `k` in `0..n`.
#[derive(Clone, Copy)]
struct Ticks {
    from: i64,
    every: i64,
    n: i64,
}

impl Ticks {
    fn within(&self, start: i128, end: i128) -> std::ops::Range<i64> {
        ticks_in(start, end, self.from, self.every, self.n)
    }

    fn at(&self, k: i64) -> i64 {
        self.from + k * self.every
    }
}

/// Evaluates the rule at every tick up to `to` over deduplicated `events`.
pub fn replay_ticks(
    events: &DataFrame,
    keys: &[TenantKey],
    job: &ReplayJob,
    to: i64,
) -> Result<Replay> {
    let ticks = Ticks {
        from: job.from,
        every: job.every,
        n: tick_count(job.from, to, job.every)?,
    };
    let cut = events.clone().lazy().filter(col(ev::TIME).lt_eq(lit(to)));
    let (inv, hits) = match job.run.semantics {
        Semantics::Intended => intended_hits(cut, to, &job.run, ticks, false)?,
        Semantics::Precise => intended_hits(cut, to, &job.run, ticks, true)?,
        Semantics::Sentinel => sentinel_hits(cut, &job.run, ticks)?,
    };
    let picked = alerts_of(&inv, &hits, ticks)?;
    let (alerts, suppressed, alerting_invites) = apply_exclusions(picked, &hits, &job.run)?;
    let by_tick = by_tick(&alerts, keys, ticks)?;
    Ok(Replay {
        from: ticks.from,
        to,
        every: ticks.every,
        ticks: ticks.n as usize,
        semantics: job.run.semantics,
        alerts,
        by_tick,
        alerting_invites,
        suppressed_by_rule: match (&job.run.exclusions, &suppressed) {
            (Some(ex), Some(gone)) => exclusion_counts(ex, gone)?,
            _ => Vec::new(),
        },
        suppressed,
    })
}

/// Intended: an invite at `t`, first redeemed at `r`, alerts on `[t + threshold,
/// min(t + lookback, r))`; `precise` (its pairing) also stops at the deletion of the guest.
/// Returns the invites (the baseline pairing) and the alerts, grouped by invite with ticks
/// ascending.
fn intended_hits(
    cut: LazyFrame,
    to: i64,
    run: &RunJob,
    ticks: Ticks,
    precise: bool,
) -> Result<(DataFrame, Hits)> {
    let (lookback, threshold) = (run.lookback as i128, run.threshold as i128);
    let inv = match precise {
        true => pair_precise(cut, to)?.collect()?,
        false => pair(cut, to)
            .with_column(lit(NULL).cast(DataType::Int64).alias(DELETED_TIME))
            .collect()?,
    };
    let t = inv.column(out::INVITE_TIME)?.i64()?;
    let r = inv.column(out::REDEEM_TIME)?.i64()?;
    let d = inv.column(DELETED_TIME)?.i64()?;
    let mut hits = Vec::new();
    for (i, ((t, r), d)) in t.iter().zip(r.iter()).zip(d.iter()).enumerate() {
        let Some(t) = t else { continue };
        let t = t as i128;
        let stop = r.into_iter().chain(d).min().map_or(i128::MAX, i128::from);
        let end = (t + lookback).min(stop);
        for k in ticks.within(t + threshold, end) {
            hits.push((i as IdxSize, k));
        }
    }
    Ok((inv, hits))
}

/// A tenant key and a literal redeem key.
type Keyed<'a> = (&'a str, &'a str, &'a str);

/// Redeem times per literal (TenantId, AADTenantId, key), sorted.
fn redeem_times_by_key(keys: &DataFrame) -> Result<HashMap<Keyed<'_>, Vec<i64>>> {
    let mut by_key: HashMap<Keyed, Vec<i64>> = HashMap::new();
    let (kt, ka, kk, kr) = (
        keys.column(ev::TENANT)?.str()?,
        keys.column(ev::AAD_TENANT)?.str()?,
        keys.column(KEY)?.str()?,
        keys.column(out::REDEEM_TIME)?.i64()?,
    );
    for (((t, a), k), r) in kt.iter().zip(ka.iter()).zip(kk.iter()).zip(kr.iter()) {
        if let (Some(t), Some(a), Some(k), Some(r)) = (t, a, k, r) {
            by_key.entry((t, a, k)).or_default().push(r);
        }
    }
    by_key.values_mut().for_each(|v| v.sort_unstable());
    Ok(by_key)
}

/// A redeem's literal key, in the sentinel reading.
const KEY: &str = "Key";

/// Sentinel: an invite alerts on `[t, t + min(lookback, threshold))`, less the ticks at which a
/// redeem with its literal key is in the window (`T - lookback < r <= T`).
fn sentinel_hits(cut: LazyFrame, run: &RunJob, ticks: Ticks) -> Result<(DataFrame, Hits)> {
    let (lookback, threshold) = (run.lookback as i128, run.threshold as i128);
    let inv = invites(cut.clone()).collect()?;
    let keys = redeems(cut)
        .select([
            col(ev::TENANT),
            col(ev::AAD_TENANT),
            sentinel_redeem_key().alias(KEY),
            col(out::REDEEM_TIME),
        ])
        .collect()?;
    let by_key = redeem_times_by_key(&keys)?;
    let (it, ia, iu, itime) = (
        inv.column(ev::TENANT)?.str()?,
        inv.column(ev::AAD_TENANT)?.str()?,
        inv.column(out::TARGET_UPN)?.str()?,
        inv.column(out::INVITE_TIME)?.i64()?,
    );
    let span = lookback.min(threshold);
    let mut hits = Vec::new();
    for i in 0..inv.height() {
        let Some(t) = itime.get(i) else { continue };
        let redeems = match (it.get(i), ia.get(i), iu.get(i)) {
            (Some(tenant), Some(aad), Some(upn)) => by_key.get(&(tenant, aad, upn)),
            _ => None,
        };
        for k in ticks.within(t as i128, t as i128 + span) {
            let tick = ticks.at(k) as i128;
            let cancelled = redeems.is_some_and(|rs| {
                let p = rs.partition_point(|&r| r as i128 <= tick);
                p > 0 && rs[p - 1] as i128 > tick - lookback
            });
            if !cancelled {
                hits.push((i as IdxSize, k));
            }
        }
    }
    Ok((inv, hits))
}

/// One row per alert: its tick, then the invite's finding columns.
fn alerts_of(inv: &DataFrame, hits: &Hits, ticks: Ticks) -> Result<DataFrame> {
    let idx = IdxCa::from_vec("idx".into(), hits.iter().map(|h| h.0).collect());
    let at: Vec<i64> = hits.iter().map(|h| ticks.at(h.1)).collect();
    let mut picked = inv
        .select([
            ev::TENANT,
            ev::AAD_TENANT,
            out::TARGET_UPN,
            out::INVITE_TIME,
            ev::ID,
            out::INVITE_INITIATOR,
            out::IP_ADDRESS,
        ])?
        .take(&idx)?;
    picked.insert_column(0, Column::new(out::EVALUATED_AT.into(), at))?;
    Ok(picked)
}

/// The alert order: by tick, then as findings are.
fn alert_order(df: DataFrame) -> Result<DataFrame> {
    Ok(df
        .lazy()
        .sort_by_exprs(
            [vec![col(out::EVALUATED_AT)], finding_order()].concat(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
}

/// Exclusions at each alert's own tick (grace periods depend on it): the alerts kept, with
/// `FirstAlert`; those suppressed; and how many invites alert at all.
fn apply_exclusions(
    mut picked: DataFrame,
    hits: &Hits,
    run: &RunJob,
) -> Result<(DataFrame, Option<DataFrame>, usize)> {
    let (kept, suppressed) = match &run.exclusions {
        Some(ex) => {
            let c = ex.classify(&picked, col(out::EVALUATED_AT))?;
            let mask: Vec<bool> = c
                .column(out::RULE)?
                .str()?
                .iter()
                .map(|r| r.is_none())
                .collect();
            let (_, gone) = split_suppressed(&c)?;
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
    picked.with_column(Column::new(out::FIRST_ALERT.into(), first))?;
    let alerts = alert_order(picked.filter(&BooleanChunked::from_slice("keep".into(), &kept))?)?;
    let suppressed = suppressed.map(alert_order).transpose()?;
    Ok((alerts, suppressed, alerting_invites))
}

/// Every tick × tenant, so a quiet tick shows as zero rather than missing.
fn by_tick(alerts: &DataFrame, keys: &[TenantKey], ticks: Ticks) -> Result<DataFrame> {
    let nt = keys.len();
    let grid_ticks: Vec<i64> = (0..ticks.n)
        .flat_map(|k| std::iter::repeat_n(ticks.at(k), nt))
        .collect();
    let grid_keys = |f: fn(&TenantKey) -> &str| -> Vec<&str> {
        (0..ticks.n).flat_map(|_| keys.iter().map(f)).collect()
    };
    let grid = df!(
        out::EVALUATED_AT => grid_ticks,
        ev::TENANT => grid_keys(|k| &k.tenant),
        ev::AAD_TENANT => grid_keys(|k| &k.aad_tenant),
    )?;
    let on = || [vec![col(out::EVALUATED_AT)], tenant_key()].concat();
    let counts = alerts.clone().lazy().group_by(on()).agg([
        len().cast(DataType::Int64).alias(out::ALERTS),
        col(out::FIRST_ALERT)
            .sum()
            .cast(DataType::Int64)
            .alias(out::NEW_ALERTS),
    ]);
    Ok(grid
        .lazy()
        .join(counts, on(), on(), JoinArgs::new(JoinType::Left))
        .with_columns([
            col(out::ALERTS).fill_null(lit(0i64)),
            col(out::NEW_ALERTS).fill_null(lit(0i64)),
        ])
        .sort(
            [out::EVALUATED_AT, ev::TENANT, ev::AAD_TENANT],
            SortMultipleOptions::default(),
        )
        .collect()?)
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
