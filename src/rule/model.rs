//! The rule's model, shared by detection, the baseline and replay: which rows are candidates,
//! what an invite and a redeem are, how a redeem names its guest (both readings), and how an
//! invite is paired with its first redeem.

use polars::prelude::*;

use super::columns::ev::kind;
use super::columns::{ev, out, TENANT_KEY};
use crate::time::NANOS_PER_SECOND;

/// `Category` of both operations, lower-cased (matched with KQL's case-insensitive `=~`).
pub(crate) const CATEGORY: &str = "usermanagement";
pub(crate) const INVITE_OP: &str = "invite external user";
pub(crate) const REDEEM_OP: &str = "redeem external user invite";
/// The guest's life cycle, read by `precise` only: a re-invite after its redemption was reset,
/// the guest's deletion, and the user update that records its acceptance.
pub(crate) const RESET_INVITE_OP: &str = "invite external user with reset invitation status";
pub(crate) const DELETE_OPS: [&str; 3] =
    ["delete user", "hard delete user", "delete external user"];
pub(crate) const UPDATE_USER_OP: &str = "update user";
/// The modified property an accepting "Update user" changes: an update whose
/// `TargetResources` do not hold these bytes accepts nothing (JSON escapes aside).
pub(crate) const USER_STATE: &str = "UserState";

/// KQL `=~ "UserManagement"` as an anchored case-insensitive regex: the polars filter and the
/// late reader's per-dictionary-entry test are the same pattern.
pub(crate) fn category_pattern() -> String {
    format!("(?i)^{CATEGORY}$")
}

/// `OperationName =~` either operation.
pub(crate) fn operation_pattern() -> String {
    format!("(?i)^(?:{INVITE_OP}|{REDEEM_OP})$")
}

/// `OperationName =~` any operation of the guest's life cycle (`precise`).
pub(crate) fn lifecycle_operation_pattern() -> String {
    let [a, b, c] = DELETE_OPS;
    format!("(?i)^(?:{INVITE_OP}|{REDEEM_OP}|{RESET_INVITE_OP}|{a}|{b}|{c}|{UPDATE_USER_OP})$")
}

/// The redeem text carries the guest UPN as `UPN: <upn>, Email: <mail>, …`.
pub(crate) const UPN_PATTERN: &str = r"UPN:\s(.+),\sEmail";

/// `later − earlier` (i64 ns) in seconds as f64. Whole seconds and the remainder are split in
/// integers first: a direct cast of epoch nanoseconds to f64 would round at 2^53.
pub(crate) fn seconds_between(later: Expr, earlier: Expr) -> Expr {
    let diff = later - earlier;
    let ns = lit(NANOS_PER_SECOND);
    (diff.clone() / ns.clone()).cast(DataType::Float64)
        + (diff % ns).cast(DataType::Float64) / lit(1e9)
}

/// The columns of [`TENANT_KEY`], which every pairing joins on and every table groups by.
pub(crate) fn tenant_key() -> Vec<Expr> {
    TENANT_KEY.map(col).to_vec()
}

/// Invite events (both readings): initiated by a user, with KQL's `tostring` null → `""`.
/// Columns: TenantId, AADTenantId, Id, InviteTime (i64 ns), TargetUPN, InviteInitiator,
/// IPAddress.
pub(crate) fn invites(events: LazyFrame) -> LazyFrame {
    all_invites(events).filter(col(out::INVITE_INITIATOR).neq(lit("")))
}

/// Every invite event, app-initiated ones included (for the data-quality counts).
pub(crate) fn all_invites(events: LazyFrame) -> LazyFrame {
    events
        .filter(col(ev::KIND).eq(lit(kind::INVITE).cast(DataType::UInt32)))
        .select(invite_exprs())
}

/// An invite's columns, as every reading reports them.
pub(crate) fn invite_exprs() -> Vec<Expr> {
    vec![
        col(ev::TENANT),
        col(ev::AAD_TENANT),
        col(ev::ID),
        col(ev::TIME).alias(out::INVITE_TIME),
        col(ev::TR_UPN).fill_null(lit("")).alias(out::TARGET_UPN),
        col(ev::INIT_UPN)
            .fill_null(lit(""))
            .alias(out::INVITE_INITIATOR),
        col(ev::INIT_IP).fill_null(lit("")).alias(out::IP_ADDRESS),
    ]
}

/// Successful redeem events with a non-empty `TargetResources[0].userPrincipalName`.
/// Columns: TenantId, AADTenantId, RedeemTime, TrUpn, TrDisplay.
pub(crate) fn redeems(events: LazyFrame) -> LazyFrame {
    events
        .filter(
            col(ev::KIND)
                .eq(lit(kind::REDEEM).cast(DataType::UInt32))
                .and(col(ev::RESULT_OK))
                .and(col(ev::TR_UPN).fill_null(lit("")).neq(lit(""))),
        )
        .select([
            col(ev::TENANT),
            col(ev::AAD_TENANT),
            col(ev::TIME).alias(out::REDEEM_TIME),
            col(ev::TR_UPN),
            col(ev::TR_DISPLAY),
        ])
}

/// The literal reading of a redeem's key: `extract(UPN_PATTERN, 1, userPrincipalName)`, `""`
/// when it does not match (KQL strings are never null).
pub(crate) fn sentinel_redeem_key() -> Expr {
    col(ev::TR_UPN)
        .str()
        .extract(lit(UPN_PATTERN), 1)
        .fill_null(lit(""))
}

/// Intended reading of a redeem's guest UPN: the `UPN: …, Email` capture of displayName, else
/// of userPrincipalName, else userPrincipalName itself when it has no whitespace; else null.
pub(crate) fn intended_redeem_upn() -> Expr {
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

/// The order of findings (and of each replay tick's alerts, and of the baseline).
pub(crate) fn finding_order() -> Vec<Expr> {
    vec![
        col(ev::TENANT),
        col(ev::AAD_TENANT),
        col(out::INVITE_TIME),
        col(out::TARGET_UPN),
        col(ev::ID),
    ]
}

/// The intended pairing: every invite with a non-empty UPN and a user initiator, with the
/// earliest successful redeem of the same guest (tenant key, lower-cased UPN) at or after it and
/// at or before T as `RedeemTime` (i64 ns, null while pending), and `TimeToRedeemSeconds`.
pub(crate) fn pair(events: LazyFrame, as_of: i64) -> LazyFrame {
    const ROW: &str = "_row";
    const KEY: &str = "_key";
    let events = events.filter(col(ev::TIME).lt_eq(lit(as_of)));
    let inv = invites(events.clone())
        .filter(col(out::TARGET_UPN).neq(lit("")))
        .with_row_index(ROW, None)
        .with_column(col(out::TARGET_UPN).str().to_lowercase().alias(KEY));
    let red = redeems(events)
        .select([
            col(ev::TENANT),
            col(ev::AAD_TENANT),
            intended_redeem_upn().str().to_lowercase().alias(KEY),
            col(out::REDEEM_TIME),
        ])
        .filter(col(KEY).is_not_null());
    let first = inv
        .clone()
        .select([
            col(ROW),
            col(ev::TENANT),
            col(ev::AAD_TENANT),
            col(KEY),
            col(out::INVITE_TIME),
        ])
        .join(
            red,
            [tenant_key(), vec![col(KEY)]].concat(),
            [tenant_key(), vec![col(KEY)]].concat(),
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col(out::REDEEM_TIME).gt_eq(col(out::INVITE_TIME)))
        .group_by([col(ROW)])
        .agg([col(out::REDEEM_TIME).min()]);
    inv.join(first, [col(ROW)], [col(ROW)], JoinArgs::new(JoinType::Left))
        .sort([ROW], SortMultipleOptions::default())
        .with_column(
            seconds_between(col(out::REDEEM_TIME), col(out::INVITE_TIME))
                .alias(out::TIME_TO_REDEEM_SECONDS),
        )
        .drop(cols([ROW, KEY]))
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
