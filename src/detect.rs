//! The rule, in its two readings.
//!
//! `sentinel` reproduces the hunting query literally, defects included (see REFERENCE.md):
//! redeem keys come from `userPrincipalName`, the join is case-sensitive with `""` joining `""`,
//! and the threshold keeps invites *newer* than it. `intended` does what the rule means: an invite
//! older than the threshold with no later successful redeem of the same guest.

use polars::prelude::*;

use crate::baseline;
use crate::error::Result;
use crate::extract::ev;

/// The redeem text carries the guest UPN as `UPN: <upn>, Email: <mail>, …`.
pub const UPN_PATTERN: &str = r"UPN:\s(.+),\sEmail";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    /// What the rule means: invites older than the threshold and never redeemed.
    Intended,
    /// The Sentinel query read literally, for parity with what a SOC already runs.
    Sentinel,
}

impl Semantics {
    pub fn as_str(self) -> &'static str {
        match self {
            Semantics::Intended => "intended",
            Semantics::Sentinel => "sentinel",
        }
    }
}

/// `later − earlier` (i64 ns) in seconds as f64. Whole seconds and the remainder are split in
/// integers first: a direct cast of epoch nanoseconds to f64 would round at 2^53.
pub fn seconds_between(later: Expr, earlier: Expr) -> Expr {
    let diff = later - earlier;
    let ns = lit(crate::timefmt::NANOS_PER_SECOND);
    (diff.clone() / ns.clone()).cast(DataType::Float64)
        + (diff % ns).cast(DataType::Float64) / lit(1e9)
}

/// Parameters of one evaluation of the rule.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// T, ns since the epoch.
    pub as_of: i64,
    pub lookback: i64,
    pub threshold: i64,
}

/// Invite events (both readings): initiated by a user, with KQL's `tostring` null → `""`.
/// Columns: TenantId, Id, InviteTime (i64 ns), TargetUPN, InviteInitiator, IPAddress.
pub fn invites(events: LazyFrame) -> LazyFrame {
    all_invites(events).filter(col("InviteInitiator").neq(lit("")))
}

fn all_invites(events: LazyFrame) -> LazyFrame {
    events.filter(col(ev::IS_INVITE)).select([
        col(ev::TENANT),
        col(ev::ID),
        col(ev::TIME).alias("InviteTime"),
        col(ev::TR_UPN).fill_null(lit("")).alias("TargetUPN"),
        col(ev::INIT_UPN)
            .fill_null(lit(""))
            .alias("InviteInitiator"),
        col(ev::INIT_IP).fill_null(lit("")).alias("IPAddress"),
    ])
}

/// Successful redeem events with a non-empty `TargetResources[0].userPrincipalName`.
/// Columns: TenantId, RedeemTime, TrUpn, TrDisplay.
pub fn redeems(events: LazyFrame) -> LazyFrame {
    events
        .filter(
            col(ev::IS_INVITE)
                .not()
                .and(col(ev::RESULT_OK))
                .and(col(ev::TR_UPN).fill_null(lit("")).neq(lit(""))),
        )
        .select([
            col(ev::TENANT),
            col(ev::TIME).alias("RedeemTime"),
            col(ev::TR_UPN),
            col(ev::TR_DISPLAY),
        ])
}

/// The literal reading of a redeem's key: `extract(UPN_PATTERN, 1, userPrincipalName)`, `""`
/// when it does not match (KQL strings are never null).
pub fn sentinel_redeem_key() -> Expr {
    col(ev::TR_UPN)
        .str()
        .extract(lit(UPN_PATTERN), 1)
        .fill_null(lit(""))
}

/// Intended reading of a redeem's guest UPN: the `UPN: …, Email` capture of displayName, else
/// of userPrincipalName, else userPrincipalName itself when it has no whitespace; else null.
pub fn intended_redeem_upn() -> Expr {
    let upn = col(ev::TR_UPN);
    col(ev::TR_DISPLAY)
        .str()
        .extract(lit(UPN_PATTERN), 1)
        .fill_null(upn.clone().str().extract(lit(UPN_PATTERN), 1))
        .fill_null(
            when(upn.clone().str().contains(lit(r"\s"), true).not())
                .then(upn)
                .otherwise(lit(NULL).cast(DataType::String)),
        )
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
            let inv = invites(events.clone()).filter(col("InviteTime").gt(lit(lo)));
            let keys = redeems(events)
                .filter(col("RedeemTime").gt(lit(lo)))
                .select([col(ev::TENANT), sentinel_redeem_key().alias("TargetUPN")]);
            inv.join(
                keys,
                [col(ev::TENANT), col("TargetUPN")],
                [col(ev::TENANT), col("TargetUPN")],
                JoinArgs::new(JoinType::Anti),
            )
            .filter(col("InviteTime").gt(lit(w.as_of - w.threshold)))
        }
        Semantics::Intended => baseline::pair(events, w.as_of).filter(
            col("RedeemTime")
                .is_null()
                .and(col("InviteTime").gt(lit(lo)))
                .and(col("InviteTime").lt_eq(lit(w.as_of - w.threshold))),
        ),
    };
    let out = raw
        .select([
            col(ev::TENANT),
            col("TargetUPN"),
            col("InviteTime"),
            col("InviteInitiator"),
            col("IPAddress"),
            col(ev::ID),
            seconds_between(lit(w.as_of), col("InviteTime")).alias("PendingSeconds"),
        ])
        .sort_by_exprs(
            finding_order(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?;
    Ok(out)
}

/// The order of findings (and of each replay tick's alerts).
pub fn finding_order() -> Vec<Expr> {
    vec![
        col(ev::TENANT),
        col("InviteTime"),
        col("TargetUPN"),
        col(ev::ID),
    ]
}

/// Data-quality and volume counts per tenant (events up to T).
pub fn event_counts(events: &DataFrame, as_of: i64) -> Result<DataFrame> {
    let events = events
        .clone()
        .lazy()
        .filter(col(ev::TIME).lt_eq(lit(as_of)));
    let inv = all_invites(events.clone())
        .group_by([col(ev::TENANT)])
        .agg([
            col("InviteInitiator").neq(lit("")).sum().alias("invites"),
            col("InviteInitiator")
                .eq(lit(""))
                .sum()
                .alias("app_initiated_invites"),
            col("InviteInitiator")
                .neq(lit(""))
                .and(col("TargetUPN").eq(lit("")))
                .sum()
                .alias("invites_without_upn"),
        ]);
    let red = redeems(events).group_by([col(ev::TENANT)]).agg([
        len().alias("redeems"),
        intended_redeem_upn()
            .is_null()
            .sum()
            .alias("redeems_without_upn"),
    ]);
    let out = inv
        .join(
            red,
            [col(ev::TENANT)],
            [col(ev::TENANT)],
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .collect()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redeem_upns(display: &[Option<&str>], upn: &[Option<&str>]) -> Vec<Option<String>> {
        let df = df!(ev::TR_DISPLAY => display, ev::TR_UPN => upn).unwrap();
        let out = df
            .lazy()
            .select([intended_redeem_upn().alias("u")])
            .collect()
            .unwrap();
        out.column("u")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(String::from))
            .collect()
    }

    #[test]
    fn intended_redeem_upn_prefers_display_name_then_upn_text_then_bare_upn() {
        let got = redeem_upns(
            &[
                Some("UPN: a#EXT#@t, Email: a@x, InvitationId: 1"),
                Some("Jane"),
                None,
                Some("Jane"),
                Some("UPN: d#EXT#@t, Email: d@x"),
            ],
            &[
                Some("ignored#EXT#@t"),
                Some("UPN: b#EXT#@t, Email: b@x"),
                Some("c#EXT#@t"),
                Some("Guest User"),
                None,
            ],
        );
        assert_eq!(
            got,
            [
                Some("a#EXT#@t".to_string()),
                Some("b#EXT#@t".to_string()),
                Some("c#EXT#@t".to_string()),
                None,
                Some("d#EXT#@t".to_string()),
            ]
        );
    }

    #[test]
    fn seconds_between_keeps_sub_second_precision_at_epoch_scale() {
        let t = 1_772_409_548_594_000_000i64; // 2026-03-01T23:59:08.594Z
        let df = df!("a" => [t], "b" => [t - 1_133_103_616_000_000]).unwrap();
        let s = df
            .lazy()
            .select([seconds_between(col("a"), col("b")).alias("s")])
            .collect()
            .unwrap();
        assert_eq!(
            s.column("s").unwrap().f64().unwrap().get(0),
            Some(1_133_103.616)
        );
    }
}
