//! `summary.json`: what was evaluated, over what, and what came out, per tenant too.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use super::frames::{counts, strings};
use crate::analysis::{ReplaySummary, SweepSummary};
use crate::error::Result;
use crate::job::RunJob;
use crate::read::{Extracted, ScanMetrics};
use crate::rule::columns::out;
use crate::rule::{
    counts as event, exclusion_counts, Exclusions, Rule, Semantics, Window, DELETED_RULE,
    MATCHED_BY,
};
use crate::time::{format_instant, millis, NANOS_PER_SECOND};

/// Per-tenant counts in `summary.json` and on stdout.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TenantCounts {
    /// The Entra tenants (`AADTenantId`) of this `TenantId`'s events; empty where the input
    /// has none. Every count below is the sum over them.
    pub entra_tenants: Vec<String>,
    pub rows: u64,
    pub invites: u64,
    pub redeems: u64,
    pub findings: u64,
    /// Findings suppressed by exclusion rules (not in `findings`).
    pub suppressed: u64,
    pub baseline_redeemed: u64,
    pub baseline_pending: u64,
    pub app_initiated_invites: u64,
    pub invites_without_upn: u64,
    pub redeems_without_upn: u64,
    /// `precise` only: how the baseline's pairs were made, and the deleted guests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precise: Option<PreciseCounts>,
}

/// What the `precise` reading saw over the baseline (every invite up to T).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PreciseCounts {
    /// Redeemed invites by the key that named the pair (`MatchedBy`), zeros included.
    pub pairs_by: BTreeMap<String, u64>,
    /// Redeemed invites no redeem matched by UPN text: UPN pairing alone leaves them pending.
    pub missed_by_upn: u64,
    /// Redeemed invites with no redeem record at all, only an update accepting them.
    pub lost_redeem_records: u64,
    /// Pending invites whose guest object was deleted since (never findings).
    pub deleted_guests: u64,
    /// Of those, the ones in the window, which would be findings: set apart with the
    /// suppressed invites (rule `deleted guest`).
    pub set_apart: u64,
}

impl PreciseCounts {
    fn add(&mut self, other: &PreciseCounts) {
        for (k, v) in &other.pairs_by {
            *self.pairs_by.entry(k.clone()).or_default() += v;
        }
        self.missed_by_upn += other.missed_by_upn;
        self.lost_redeem_records += other.lost_redeem_records;
        self.deleted_guests += other.deleted_guests;
        self.set_apart += other.set_apart;
    }

    /// Row `i` of a `baseline/by_tenant` frame, when it has the `precise` columns.
    pub(crate) fn of_row(by_tenant: &DataFrame, i: usize) -> Result<Option<PreciseCounts>> {
        if by_tenant.column(out::MISSED_BY_UPN).is_err() {
            return Ok(None);
        }
        let at =
            |c: &str| -> Result<u64> { Ok(counts(by_tenant, c)?.get(i).copied().unwrap_or(0)) };
        let mut pairs_by = BTreeMap::new();
        for (name, c) in MATCHED_BY.iter().zip(out::PAIRS_BY) {
            pairs_by.insert(name.to_string(), at(c)?);
        }
        Ok(Some(PreciseCounts {
            pairs_by,
            missed_by_upn: at(out::MISSED_BY_UPN)?,
            lost_redeem_records: at(out::LOST_REDEEM_RECORDS)?,
            deleted_guests: at(out::DELETED_GUESTS)?,
            set_apart: 0,
        }))
    }
}

/// Wall time of each stage (listing, scan, join, baseline, write), and how the scan met the store:
/// what differs between two runs of the same job. Within the scan: `decode_seconds` is the decoder
/// threads' time on the objects (summed over threads, so it can exceed `scan_seconds`),
/// `extract_seconds` the wall time of the one pass that turns the candidate rows into events
/// (objects read by polars' reader are extracted while decoded). `objects_in_flight` is the most
/// objects fetched ahead of the decoders at once (it follows the store's latency; from a local
/// folder, one per decoder), `requests_throttled` the requests the store answered 503 or 429 (each
/// retried, and the fetches slowed down).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub list_seconds: f64,
    pub scan_seconds: f64,
    pub decode_seconds: f64,
    pub extract_seconds: f64,
    pub join_seconds: f64,
    pub baseline_seconds: f64,
    pub write_seconds: f64,
    pub objects_in_flight: usize,
    pub requests_throttled: u64,
}

/// `summary.json`: what was evaluated, over what, and what came out.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub as_of: String,
    pub lookback_seconds: i64,
    pub threshold_seconds: i64,
    pub semantics: Semantics,
    pub since: Option<String>,
    pub rule: Rule,
    pub archive: String,
    /// What the scan touched: objects, bytes, rows, pruning, bad files, cache hits.
    #[serde(flatten)]
    pub scan: ScanMetrics,
    pub invites: u64,
    pub redeems: u64,
    pub findings: u64,
    pub suppressed: u64,
    /// Present when exclusion rules were applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusions: Option<ExclusionSummary>,
    pub duplicates_dropped: u64,
    pub app_initiated_invites: u64,
    pub invites_without_upn: u64,
    pub redeems_without_upn: u64,
    pub unparseable_json: u64,
    /// `precise` only: the tenants' counts added up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precise: Option<PreciseCounts>,
    pub tenants: BTreeMap<String, TenantCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplaySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSummary>,
    pub timings: Timings,
}

/// The `exclusions` block of `summary.json`: suppressions per rule, zeros included.
#[derive(Debug, Clone, Serialize)]
pub struct ExclusionSummary {
    pub config: String,
    pub rules: Vec<RuleCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    pub name: String,
    pub reason: String,
    pub grace_seconds: Option<i64>,
    pub suppressed: u64,
}

impl ExclusionSummary {
    fn new(ex: &Exclusions, suppressed: &DataFrame) -> Result<Self> {
        let counts = exclusion_counts(ex, suppressed)?;
        Ok(ExclusionSummary {
            config: ex.source.clone(),
            rules: ex
                .rules
                .iter()
                .zip(counts)
                .map(|(r, (_, n))| RuleCount {
                    name: r.name.clone(),
                    reason: r.reason.clone(),
                    grace_seconds: r.grace.map(|g| g / NANOS_PER_SECOND),
                    suppressed: n,
                })
                .collect(),
        })
    }
}

/// The frames one evaluation at T produced, which the summary counts.
pub(crate) struct Evaluated<'a> {
    pub(crate) window: Window,
    pub(crate) findings: &'a DataFrame,
    pub(crate) suppressed: Option<&'a DataFrame>,
    pub(crate) by_tenant: &'a DataFrame,
    /// `rule::event_counts` at T.
    pub(crate) event_counts: &'a DataFrame,
}

impl Summary {
    /// The summary of `job` evaluated at T over the scan `x` of `archive`, for `tenants`.
    pub(crate) fn new(
        job: &RunJob,
        archive: &str,
        x: &Extracted,
        tenants: &[String],
        e: &Evaluated,
        timings: Timings,
    ) -> Result<Summary> {
        let per_tenant = per_tenant(x, tenants, e)?;
        let exclusions = match (&job.exclusions, e.suppressed) {
            (Some(ex), Some(gone)) => Some(ExclusionSummary::new(ex, gone)?),
            _ => None,
        };
        let sum = |f: fn(&TenantCounts) -> u64| per_tenant.values().map(f).sum::<u64>();
        Ok(Summary {
            timings: Timings {
                decode_seconds: millis(x.decode_time),
                extract_seconds: millis(x.extract_time),
                objects_in_flight: x.paced.widest_window,
                requests_throttled: x.paced.throttled,
                ..timings
            },
            as_of: format_instant(e.window.as_of),
            lookback_seconds: job.lookback / NANOS_PER_SECOND,
            threshold_seconds: job.threshold / NANOS_PER_SECOND,
            semantics: job.semantics,
            since: job.since.map(format_instant),
            rule: job.rule.clone(),
            archive: archive.to_string(),
            scan: x.metrics.clone(),
            invites: sum(|c| c.invites),
            redeems: sum(|c| c.redeems),
            findings: sum(|c| c.findings),
            duplicates_dropped: x.duplicates_dropped,
            app_initiated_invites: sum(|c| c.app_initiated_invites),
            invites_without_upn: sum(|c| c.invites_without_upn),
            redeems_without_upn: sum(|c| c.redeems_without_upn),
            unparseable_json: x.unparseable_json,
            suppressed: sum(|c| c.suppressed),
            exclusions,
            precise: per_tenant.values().filter_map(|c| c.precise.as_ref()).fold(
                None,
                |acc: Option<PreciseCounts>, c| {
                    let mut acc = acc.unwrap_or_default();
                    acc.add(c);
                    Some(acc)
                },
            ),
            tenants: per_tenant,
            replay: None,
            sweep: None,
        })
    }
}

/// Every reported tenant's counts, from the frames of one evaluation.
fn per_tenant(
    x: &Extracted,
    tenants: &[String],
    e: &Evaluated,
) -> Result<BTreeMap<String, TenantCounts>> {
    let mut per: BTreeMap<String, TenantCounts> = tenants
        .iter()
        .map(|t| {
            let c = TenantCounts {
                rows: x.tenant_rows.get(t).copied().unwrap_or(0),
                ..Default::default()
            };
            (t.clone(), c)
        })
        .collect();
    let c = e.event_counts;
    let (inv, app, inv0, red, red0) = (
        counts(c, event::INVITES)?,
        counts(c, event::APP_INITIATED_INVITES)?,
        counts(c, event::INVITES_WITHOUT_UPN)?,
        counts(c, event::REDEEMS)?,
        counts(c, event::REDEEMS_WITHOUT_UPN)?,
    );
    // Rows per (TenantId, AADTenantId): a workspace's Entra tenants add up.
    for (i, t) in strings(c, out::TENANT)?.iter().enumerate() {
        if let Some(c) = per.get_mut(t) {
            c.invites += inv[i];
            c.app_initiated_invites += app[i];
            c.invites_without_upn += inv0[i];
            c.redeems += red[i];
            c.redeems_without_upn += red0[i];
        }
    }
    let b = e.by_tenant;
    let (red, pen) = (counts(b, out::REDEEMED)?, counts(b, out::PENDING)?);
    let entra = strings(b, out::AAD_TENANT)?;
    for (i, t) in strings(b, out::TENANT)?.iter().enumerate() {
        if let Some(c) = per.get_mut(t) {
            c.baseline_redeemed += red[i];
            c.baseline_pending += pen[i];
            if let Some(p) = PreciseCounts::of_row(b, i)? {
                c.precise.get_or_insert_with(Default::default).add(&p);
            }
            if !entra[i].is_empty() {
                c.entra_tenants.push(entra[i].clone());
            }
        }
    }
    for t in strings(e.findings, out::TENANT)? {
        if let Some(c) = per.get_mut(&t) {
            c.findings += 1;
        }
    }
    if let Some(gone) = e.suppressed {
        // Invites to deleted guests are set apart by `precise`, not by an exclusion.
        let rules = strings(gone, out::RULE)?;
        for (t, r) in strings(gone, out::TENANT)?.iter().zip(rules) {
            match per.get_mut(t) {
                Some(c) if r == DELETED_RULE => {
                    c.precise.get_or_insert_with(Default::default).set_apart += 1;
                }
                Some(c) => c.suppressed += 1,
                None => {}
            }
        }
    }
    Ok(per)
}
