//! The `precise` reading: each invite paired with its own redemption by the keys Entra
//! records carry (the guest's object id, the invitation, the UPN, the email), or by the user
//! update that records the guest's acceptance; invites to guests deleted before T set apart.

use polars::prelude::*;

use super::columns::ev::kind;
use super::columns::{ev, out};
use super::model::{intended_redeem_upn, invite_exprs, seconds_between, tenant_key};

/// `MatchedBy` values, strongest first: a redemption's strongest key that matched its invite.
pub const MATCHED_BY: [&str; 5] = ["object_id", "invitation_id", "upn", "email", "user_state"];

/// When the invite's guest object was deleted (first deletion at or after the invite, at or
/// before T; null: not deleted).
pub(crate) const DELETED_TIME: &str = "DeletedTime";

/// `Email: <email>` and `InvitationId: <guid>` in a redeem's text.
const EMAIL_PATTERN: &str = r"Email:\s*([^,\s]+)";
const INVITATION_PATTERN: &str = r"InvitationId:\s*([^,\s]+)";

const ROW: &str = "_row";
/// Which key a row of a long key table holds: an index into [`MATCHED_BY`] (object id for
/// accepting updates: they are joined on it).
const WHICH: &str = "_which";
const KEY: &str = "_key";
/// The index into [`MATCHED_BY`] a match counts as.
const STRENGTH: &str = "_strength";
/// Some redeem record matched the invite (not only an accepting update).
const REDEEM_RECORD: &str = "_redeem_record";
/// Some redeem matched it by UPN (as `intended` would have).
const UPN_MATCH: &str = "_upn_match";

/// A part of a redeem's `UPN: …, Email: …, InvitationId: …` text: from `displayName`, else
/// from `userPrincipalName` (where some archives put the text).
fn text_part(pattern: &str) -> Expr {
    col(ev::TR_DISPLAY)
        .str()
        .extract(lit(pattern), 1)
        .fill_null(col(ev::TR_UPN).str().extract(lit(pattern), 1))
}

/// One row per (row, key) of `frame` with a non-empty key: `keys` are (which, value).
fn long(frame: LazyFrame, id: &str, time: &str, keys: Vec<(u32, Expr)>) -> PolarsResult<LazyFrame> {
    let parts: Vec<LazyFrame> = keys
        .into_iter()
        .map(|(which, value)| {
            frame
                .clone()
                .select([
                    col(id),
                    col(ev::TENANT),
                    col(ev::AAD_TENANT),
                    lit(which).cast(DataType::UInt32).alias(WHICH),
                    value.alias(KEY),
                    col(time),
                ])
                .filter(col(KEY).is_not_null().and(col(KEY).neq(lit(""))))
        })
        .collect();
    concat(parts, UnionArgs::default())
}

fn lower(e: Expr) -> Expr {
    e.str().to_lowercase()
}

/// Invites of both kinds (the first and reset re-invites), initiated by a user, with a UPN;
/// their columns as `intended`'s plus the keys, and [`ROW`].
fn precise_invites(events: LazyFrame) -> LazyFrame {
    let kinds = col(ev::KIND)
        .eq(lit(kind::INVITE).cast(DataType::UInt32))
        .or(col(ev::KIND).eq(lit(kind::RESET_INVITE).cast(DataType::UInt32)));
    let mut exprs = invite_exprs();
    exprs.extend([
        col(ev::TR_ID),
        col(ev::INVITATION_ID),
        col(ev::INVITED_EMAIL),
    ]);
    events
        .filter(kinds)
        .select(exprs)
        .filter(
            col(out::INVITE_INITIATOR)
                .neq(lit(""))
                .and(col(out::TARGET_UPN).neq(lit(""))),
        )
        .with_row_index(ROW, None)
}

/// Successful redeems (every key) and accepting user updates (the object id), long.
fn redemptions(events: LazyFrame) -> PolarsResult<LazyFrame> {
    let ok = |k: u32| col(ev::KIND).eq(lit(k)).and(col(ev::RESULT_OK));
    let redeems = events
        .clone()
        .filter(ok(kind::REDEEM))
        .with_column(col(ev::TIME).alias(out::REDEEM_TIME));
    let by_key = long(
        redeems,
        ev::ID,
        out::REDEEM_TIME,
        vec![
            (0, col(ev::TR_ID)),
            (1, lower(text_part(INVITATION_PATTERN))),
            (2, lower(intended_redeem_upn())),
            (3, lower(text_part(EMAIL_PATTERN))),
        ],
    )?
    .with_column(col(WHICH).alias(STRENGTH));
    let accepted = events
        .filter(ok(kind::ACCEPTED))
        .with_column(col(ev::TIME).alias(out::REDEEM_TIME));
    let by_state = long(
        accepted,
        ev::ID,
        out::REDEEM_TIME,
        vec![(0, col(ev::TR_ID))],
    )?
    .with_column(lit(4u32).cast(DataType::UInt32).alias(STRENGTH));
    concat([by_key, by_state], UnionArgs::default())
}

/// Per invite row: the earliest redemption at or after it, and how it matched (the strongest
/// key among the redemptions at that time).
fn first_redemptions(inv: LazyFrame, events: LazyFrame) -> PolarsResult<LazyFrame> {
    let keys = long(
        inv,
        ROW,
        out::INVITE_TIME,
        vec![
            (0, col(ev::TR_ID)),
            (1, lower(col(ev::INVITATION_ID))),
            (2, lower(col(out::TARGET_UPN))),
            (3, lower(col(ev::INVITED_EMAIL))),
        ],
    )?;
    let on = || [tenant_key(), vec![col(WHICH), col(KEY)]].concat();
    Ok(keys
        .join(
            redemptions(events)?,
            on(),
            on(),
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col(out::REDEEM_TIME).gt_eq(col(out::INVITE_TIME)))
        .group_by([col(ROW)])
        .agg([
            col(STRENGTH).lt(lit(4u32)).any(true).alias(REDEEM_RECORD),
            col(STRENGTH).eq(lit(2u32)).any(true).alias(UPN_MATCH),
            col(out::REDEEM_TIME).min(),
            col(STRENGTH)
                .sort_by(
                    [col(out::REDEEM_TIME), col(STRENGTH)],
                    SortMultipleOptions::default(),
                )
                .first(),
        ]))
}

/// Per invite row: the first successful deletion of its guest object at or after it.
fn first_deletions(inv: LazyFrame, events: LazyFrame) -> LazyFrame {
    let deleted = events
        .filter(
            col(ev::KIND)
                .eq(lit(kind::DELETE).cast(DataType::UInt32))
                .and(col(ev::RESULT_OK))
                .and(col(ev::TR_ID).neq(lit(""))),
        )
        .select([
            col(ev::TENANT),
            col(ev::AAD_TENANT),
            col(ev::TR_ID),
            col(ev::TIME).alias(DELETED_TIME),
        ]);
    let on = || [tenant_key(), vec![col(ev::TR_ID)]].concat();
    inv.select([
        col(ROW),
        col(ev::TENANT),
        col(ev::AAD_TENANT),
        col(ev::TR_ID),
        col(out::INVITE_TIME),
    ])
    .join(deleted, on(), on(), JoinArgs::new(JoinType::Inner))
    .filter(col(DELETED_TIME).gt_eq(col(out::INVITE_TIME)))
    .group_by([col(ROW)])
    .agg([col(DELETED_TIME).min()])
}

/// The precise pairing at T: every invite (both kinds) with a user initiator and a UPN, with
/// its earliest redemption at or after it and at or before T (`RedeemTime`, null while
/// pending), `TimeToRedeemSeconds`, `MatchedBy`, and [`DELETED_TIME`] (and two flags for
/// [`precise_counts`]).
pub(crate) fn pair_precise(events: LazyFrame, as_of: i64) -> PolarsResult<LazyFrame> {
    let events = events.filter(col(ev::TIME).lt_eq(lit(as_of)));
    let inv = precise_invites(events.clone());
    let first = first_redemptions(inv.clone(), events.clone())?;
    let deleted = first_deletions(inv.clone(), events);
    let matched_by =
        MATCHED_BY
            .iter()
            .enumerate()
            .fold(lit(NULL).cast(DataType::String), |acc, (i, name)| {
                when(col(STRENGTH).eq(lit(i as u32).cast(DataType::UInt32)))
                    .then(lit(*name))
                    .otherwise(acc)
            });
    Ok(inv
        .join(first, [col(ROW)], [col(ROW)], JoinArgs::new(JoinType::Left))
        .join(
            deleted,
            [col(ROW)],
            [col(ROW)],
            JoinArgs::new(JoinType::Left),
        )
        .sort([ROW], SortMultipleOptions::default())
        .with_columns([
            seconds_between(col(out::REDEEM_TIME), col(out::INVITE_TIME))
                .alias(out::TIME_TO_REDEEM_SECONDS),
            matched_by.alias(out::MATCHED_BY),
            col(REDEEM_RECORD).fill_null(lit(false)),
            col(UPN_MATCH).fill_null(lit(false)),
        ])
        .drop(cols([
            ROW,
            STRENGTH,
            ev::TR_ID,
            ev::INVITATION_ID,
            ev::INVITED_EMAIL,
        ])))
}

/// Per tenant key, the `precise` counts of `baseline/by_tenant.parquet` (`out::PAIRS_BY`…):
/// how each pair was made, what UPN text alone would have missed, the redemptions the archive
/// holds no redeem record of, and the pending invites to deleted guests; `pairs` is
/// [`pair_precise`] at T.
pub(crate) fn precise_counts(pairs: &DataFrame) -> PolarsResult<DataFrame> {
    let redeemed = || col(out::REDEEM_TIME).is_not_null();
    let count = |e: Expr, name: &str| e.cast(DataType::UInt64).sum().alias(name);
    let mut aggs: Vec<Expr> = MATCHED_BY
        .iter()
        .zip(out::PAIRS_BY)
        .map(|(by, name)| {
            count(
                col(out::MATCHED_BY).eq(lit(*by)).fill_null(lit(false)),
                name,
            )
        })
        .collect();
    aggs.extend([
        count(redeemed().and(col(UPN_MATCH).not()), out::MISSED_BY_UPN),
        count(
            redeemed().and(col(REDEEM_RECORD).not()),
            out::LOST_REDEEM_RECORDS,
        ),
        count(
            redeemed().not().and(col(DELETED_TIME).is_not_null()),
            out::DELETED_GUESTS,
        ),
    ]);
    pairs
        .clone()
        .lazy()
        .group_by(tenant_key())
        .agg(aggs)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(display: &[Option<&str>], upn: &[Option<&str>], pattern: &str) -> Vec<Option<String>> {
        let df = df!(ev::TR_DISPLAY => display, ev::TR_UPN => upn).unwrap();
        let out = df
            .lazy()
            .select([text_part(pattern).alias("p")])
            .collect()
            .unwrap();
        let p = out.column("p").unwrap().str().unwrap();
        p.iter().map(|v| v.map(String::from)).collect()
    }

    #[test]
    fn a_redeems_text_gives_its_email_and_invitation_wherever_it_is() {
        // The shape of the public sample (tests/fixtures/json/README.md): the text in
        // displayName; some archives have it in userPrincipalName; parts may be missing.
        let real = "UPN: jane_fabrikam.com#EXT#@contoso.onmicrosoft.com, Email: jane@fabrikam.com, InvitationId: 4c93fc70-169a-411f-8cf7-aff732f8c7b9, Source: One Time Passcode";
        let display = [
            Some(real),
            Some("Jane"),
            Some("UPN: x, Email: , InvitationId: , Source: y"),
            None,
        ];
        let upn = [
            Some("jane#EXT#@c"),
            Some(real),
            None,
            Some("InvitationId: AB-1"),
        ];
        assert_eq!(
            parts(&display, &upn, EMAIL_PATTERN),
            [
                Some("jane@fabrikam.com".to_string()),
                Some("jane@fabrikam.com".to_string()),
                None,
                None
            ]
        );
        assert_eq!(
            parts(&display, &upn, INVITATION_PATTERN),
            [
                Some("4c93fc70-169a-411f-8cf7-aff732f8c7b9".to_string()),
                Some("4c93fc70-169a-411f-8cf7-aff732f8c7b9".to_string()),
                None,
                Some("AB-1".to_string())
            ]
        );
    }
}
