//! The rule, in its three readings.
//!
//! `sentinel` reproduces the hunting query literally, defects included (README, "Semantics in
//! plain words"): redeem keys come from `userPrincipalName`, the join is case-sensitive with
//! `""` joining `""`, and the threshold keeps invites *newer* than it. `intended` does what the
//! rule means: an invite older than the threshold with no later successful redeem of the same
//! guest. `precise` pairs each invite (reset re-invites included) with its own redemption by
//! any key both records carry, or the user update that accepts it, and sets apart invites to
//! guests deleted since (`precise.rs`).

use polars::prelude::*;

use super::columns::{ev, out};
use super::model::{
    all_invites, finding_order, intended_redeem_upn, invites, pair, redeems, seconds_between,
    sentinel_redeem_key, tenant_key,
};
use super::precise::{pair_precise, DELETED_TIME};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    /// What the rule means: invites older than the threshold and never redeemed.
    Intended,
    /// The Sentinel query read literally, for parity with what a SOC already runs.
    Sentinel,
    /// Each invite paired with its own redemption by the guest's object id, the invitation,
    /// the UPN or the email, or by the update that accepts it; deleted guests set apart.
    Precise,
}

impl Semantics {
    pub fn as_str(self) -> &'static str {
        match self {
            Semantics::Intended => "intended",
            Semantics::Sentinel => "sentinel",
            Semantics::Precise => "precise",
        }
    }
}

/// Parameters of one evaluation of the rule.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// T, ns since the epoch.
    pub as_of: i64,
    pub lookback: i64,
    pub threshold: i64,
}

/// Findings at T, one row per invite event, with the output columns (InviteTime still i64).
pub fn findings(events: &DataFrame, w: Window, semantics: Semantics) -> Result<DataFrame> {
    let events = events
        .clone()
        .lazy()
        .filter(col(ev::TIME).lt_eq(lit(w.as_of)));
    let lo = w.as_of - w.lookback;
    let raw = match semantics {
        Semantics::Sentinel => {
            let inv = invites(events.clone()).filter(col(out::INVITE_TIME).gt(lit(lo)));
            let keys = redeems(events)
                .filter(col(out::REDEEM_TIME).gt(lit(lo)))
                .select([
                    col(ev::TENANT),
                    col(ev::AAD_TENANT),
                    sentinel_redeem_key().alias(out::TARGET_UPN),
                ]);
            let on = || [tenant_key(), vec![col(out::TARGET_UPN)]].concat();
            inv.join(keys, on(), on(), JoinArgs::new(JoinType::Anti))
                .filter(col(out::INVITE_TIME).gt(lit(w.as_of - w.threshold)))
        }
        Semantics::Intended => return intended_findings(&pair(events, w.as_of).collect()?, w),
        Semantics::Precise => {
            return precise_findings(&pair_precise(events, w.as_of)?.collect()?, w)
        }
    };
    in_finding_order(raw.select(finding_exprs(w)))
}

/// `intended` findings from its pairing at T (`model::pair`).
pub(crate) fn intended_findings(pairs: &DataFrame, w: Window) -> Result<DataFrame> {
    in_finding_order(
        pairs
            .clone()
            .lazy()
            .filter(pending_in(w))
            .select(finding_exprs(w)),
    )
}

/// `precise` findings from its pairing at T (`precise::pair_precise`).
pub(crate) fn precise_findings(pairs: &DataFrame, w: Window) -> Result<DataFrame> {
    let pending = pending_in(w).and(col(DELETED_TIME).is_null());
    in_finding_order(
        pairs
            .clone()
            .lazy()
            .filter(pending)
            .select(finding_exprs(w)),
    )
}

fn in_finding_order(found: LazyFrame) -> Result<DataFrame> {
    Ok(found
        .sort_by_exprs(
            finding_order(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
}

/// Pending at T and inside the window: `T − lookback < InviteTime ≤ T − threshold`.
fn pending_in(w: Window) -> Expr {
    col(out::REDEEM_TIME)
        .is_null()
        .and(col(out::INVITE_TIME).gt(lit(w.as_of - w.lookback)))
        .and(col(out::INVITE_TIME).lt_eq(lit(w.as_of - w.threshold)))
}

/// The name [`deleted_guests`] gives in the suppressions' `Rule` column.
pub const DELETED_RULE: &str = "deleted guest";

/// `precise`: the invites that would be findings but for the deletion of their guest object
/// since, with the finding columns and `Rule` ([`DELETED_RULE`]) and `Reason` (the deletion
/// and its time), in finding order; `pairs` is its pairing at T.
pub(crate) fn deleted_guests(pairs: &DataFrame, w: Window) -> Result<DataFrame> {
    let reason = lit("guest object deleted at ")
        + col(DELETED_TIME)
            .cast(DataType::Datetime(
                TimeUnit::Nanoseconds,
                Some(TimeZone::UTC),
            ))
            .dt()
            .to_string("%Y-%m-%dT%H:%M:%S%.3fZ");
    let mut exprs = finding_exprs(w);
    exprs.extend([
        lit(DELETED_RULE).alias(out::RULE),
        reason.alias(out::REASON),
    ]);
    in_finding_order(
        pairs
            .clone()
            .lazy()
            .filter(pending_in(w).and(col(DELETED_TIME).is_not_null()))
            .select(exprs),
    )
}

/// The findings' columns (InviteTime still i64).
fn finding_exprs(w: Window) -> Vec<Expr> {
    vec![
        col(out::TENANT),
        col(out::AAD_TENANT),
        col(out::TARGET_UPN),
        col(out::INVITE_TIME),
        col(out::INVITE_INITIATOR),
        col(out::IP_ADDRESS),
        col(out::ID),
        seconds_between(lit(w.as_of), col(out::INVITE_TIME)).alias(out::PENDING_SECONDS),
    ]
}

/// Names of the per-tenant counts [`event_counts`] returns.
pub(crate) mod counts {
    pub(crate) const INVITES: &str = "invites";
    pub(crate) const APP_INITIATED_INVITES: &str = "app_initiated_invites";
    pub(crate) const INVITES_WITHOUT_UPN: &str = "invites_without_upn";
    pub(crate) const REDEEMS: &str = "redeems";
    pub(crate) const REDEEMS_WITHOUT_UPN: &str = "redeems_without_upn";
}

/// Data-quality and volume counts per tenant (events up to T).
pub(crate) fn event_counts(events: &DataFrame, as_of: i64) -> Result<DataFrame> {
    let events = events
        .clone()
        .lazy()
        .filter(col(ev::TIME).lt_eq(lit(as_of)));
    let initiator = || col(out::INVITE_INITIATOR);
    let inv = all_invites(events.clone()).group_by(tenant_key()).agg([
        initiator().neq(lit("")).sum().alias(counts::INVITES),
        initiator()
            .eq(lit(""))
            .sum()
            .alias(counts::APP_INITIATED_INVITES),
        initiator()
            .neq(lit(""))
            .and(col(out::TARGET_UPN).eq(lit("")))
            .sum()
            .alias(counts::INVITES_WITHOUT_UPN),
    ]);
    let red = redeems(events).group_by(tenant_key()).agg([
        len().alias(counts::REDEEMS),
        intended_redeem_upn()
            .is_null()
            .sum()
            .alias(counts::REDEEMS_WITHOUT_UPN),
    ]);
    let counted = inv
        .join(
            red,
            tenant_key(),
            tenant_key(),
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .collect()?;
    Ok(counted)
}
