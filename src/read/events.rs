//! AuditLogs rows → guest invite and redeem events.
//!
//! Archives mix column orders, extra columns, timestamp units and JSON-text vs nested layouts
//! of the dynamic columns, so every object's schema is checked and normalised ([`Columns`]) to
//! one event schema (`rule::columns::ev`) before the objects are combined. The JSON fields are
//! parsed only for the candidate rows (well under 1% of an archive).

use polars::prelude::*;

use super::dynamic::{
    null_string, parse_texts, Dynamic, Field, DETAIL_FIELDS, INITIATOR_FIELDS, STATE_NEW,
    STATE_OLD, TARGET_FIELDS,
};
#[cfg(doc)]
use super::raw::Tagged;
use super::scope::Scope;
use crate::error::{Error, Result};
use crate::rule::columns::ev::kind;
use crate::rule::columns::{ev, input};
use crate::rule::{
    category_pattern, DELETE_OPS, INVITE_OP, REDEEM_OP, RESET_INVITE_OP, UPDATE_USER_OP, USER_STATE,
};

/// The rows that are invite or redeem candidates, within the scope.
pub(super) fn predicate(cols: &Columns, scope: &Scope) -> Expr {
    // KQL `=~` as anchored case-insensitive regexes: lower-casing every row would build a new
    // string per row; the regex engine scans the originals.
    let candidate = cols
        .category
        .clone()
        .str()
        .contains(lit(category_pattern()), true)
        .and(
            cols.operation
                .clone()
                .str()
                .contains(lit(scope.operation_pattern()), true),
        );
    // An "Update user" that does not mention `UserState` accepts nothing: left out before its
    // JSON is read.
    let candidate = match (scope.lifecycle, &cols.targets) {
        (true, Dynamic::Json(targets)) => candidate.and(
            cols.operation
                .clone()
                .str()
                .to_lowercase()
                .neq(lit(UPDATE_USER_OP))
                .or(targets.clone().str().contains_literal(lit(USER_STATE)))
                .fill_null(lit(false)),
        ),
        _ => candidate,
    };
    match scope.rows(&cols.tenant, &cols.time) {
        Some(rows) => candidate.and(rows),
        None => candidate,
    }
}

/// A dynamic column's part of the select: the column, its fields, where its text goes before
/// it is parsed, and its count of texts that are not JSON.
struct Part<'a> {
    column: &'a Dynamic,
    fields: &'static [Field],
    text: &'static str,
    bad: &'static str,
    /// Read for invites only: no rule looks at an initiator or details on other events, and
    /// the late reader then never decompresses pages without invites.
    invites_only: bool,
}

/// Whether a candidate row is an invite (of either kind).
const IS_INVITE: &str = "_is_invite";
/// The candidate row's operation, lower-cased.
const OP: &str = "_op";

/// The events of the candidate rows `raw` (already cut by [`predicate`] or a superset of it:
/// the predicate is applied again), JSON parsed only for those rows; `keep` is a column of
/// `raw` carried along.
pub(super) fn candidate_events(
    raw: LazyFrame,
    cols: &Columns,
    scope: &Scope,
    keep: Option<&str>,
) -> PolarsResult<DataFrame> {
    let op = cols.operation.clone().str().to_lowercase();
    let is_invite = op
        .clone()
        .eq(lit(INVITE_OP))
        .or(op.clone().eq(lit(RESET_INVITE_OP)));
    let parts = cols.parts();
    let mut exprs = vec![
        cols.tenant.clone().alias(ev::TENANT),
        cols.aad_tenant.clone().alias(ev::AAD_TENANT),
        cols.id.clone().alias(ev::ID),
        cols.time.clone().alias(ev::TIME),
        op.alias(OP),
        is_invite.alias(IS_INVITE),
        cols.result
            .clone()
            .str()
            .to_lowercase()
            .eq(lit("success"))
            .fill_null(lit(false))
            .alias(ev::RESULT_OK),
    ];
    for p in &parts {
        exprs.extend(p.column.select(p.fields, p.text, p.bad));
    }
    exprs.extend(keep.map(col));
    // A few thousand rows: the streaming engine's set-up would cost more than the work.
    let rows = raw
        .filter(predicate(cols, scope))
        .select(exprs)
        .collect_with_engine(Engine::InMemory)?
        .unwrap_single();
    let rows = parse_json(rows, &parts)?;
    let invite_only = |e: Expr, none: Expr| when(col(IS_INVITE)).then(e).otherwise(none);
    let mut out = vec![
        col(ev::TENANT),
        col(ev::AAD_TENANT),
        col(ev::ID),
        col(ev::TIME),
        event_kind().alias(ev::KIND),
        col(ev::RESULT_OK),
        col(ev::TR_UPN),
        col(ev::TR_DISPLAY),
        col(ev::TR_ID),
    ];
    out.extend(
        [
            ev::INVITATION_ID,
            ev::INVITED_EMAIL,
            ev::INIT_UPN,
            ev::INIT_IP,
        ]
        .map(|c| invite_only(col(c), null_string()).alias(c)),
    );
    let [targets, initiated, details] = parts.map(|p| col(p.bad));
    out.push(
        (targets + invite_only(initiated + details, lit(0u32)))
            .cast(DataType::UInt32)
            .alias(ev::BAD_JSON),
    );
    out.extend(keep.map(col));
    rows.lazy()
        .select(out)
        // An "Update user" that does not accept an invitation is no event.
        .filter(col(ev::KIND).is_not_null())
        .collect_with_engine(Engine::InMemory)
        .map(|r| r.unwrap_single())
}

/// The selected rows with each JSON text replaced by its fields, parsed once per text.
fn parse_json(mut rows: DataFrame, parts: &[Part]) -> PolarsResult<DataFrame> {
    for p in parts.iter().filter(|p| p.column.is_json()) {
        let only = match p.invites_only {
            true => Some(rows.column(IS_INVITE)?.bool()?.clone()),
            false => None,
        };
        let (fields, bad) = parse_texts(rows.column(p.text)?.str()?, p.fields, only.as_ref());
        for f in fields {
            rows.with_column(f.into_column())?;
        }
        rows.with_column(bad.with_name(p.bad.into()).into_column())?;
        rows.drop_in_place(p.text)?;
    }
    Ok(rows)
}

/// [`ev::KIND`] of a selected candidate row; null for an "Update user" that does not change
/// `UserState` to `Accepted`.
fn event_kind() -> Expr {
    let is = |name: &str| col(OP).eq(lit(name));
    let state = |c: &str| {
        // `["Accepted"]` as Entra writes it, or the bare or quoted string.
        col(c)
            .str()
            .strip_chars(lit("[]\" "))
            .str()
            .to_lowercase()
            .eq(lit("accepted"))
            .fill_null(lit(false))
    };
    let accepted = state(STATE_NEW).and(state(STATE_OLD).not());
    when(is(INVITE_OP))
        .then(lit(kind::INVITE).cast(DataType::UInt32))
        .when(is(REDEEM_OP))
        .then(lit(kind::REDEEM).cast(DataType::UInt32))
        .when(is(RESET_INVITE_OP))
        .then(lit(kind::RESET_INVITE).cast(DataType::UInt32))
        .when(DELETE_OPS.iter().fold(lit(false), |any, d| any.or(is(d))))
        .then(lit(kind::DELETE).cast(DataType::UInt32))
        .when(is(UPDATE_USER_OP).and(accepted))
        .then(lit(kind::ACCEPTED).cast(DataType::UInt32))
        .otherwise(lit(NULL).cast(DataType::UInt32))
}

/// Column carrying each event's object (its index in the listing) from [`extract_raws`] to
/// the combine, which puts the events back in key order by it.
pub(super) const OBJECT: &str = "_object";

/// The events of the late-read objects' candidate rows (`all`, [`Tagged::frame`] with the
/// objects in [`OBJECT`]), extracted in one pass over all of them: per object, the fixed cost
/// of an expression plan would outweigh its few dozen rows. One frame, each row still tagged
/// with its object; `None`: no events at all.
pub(super) fn extract_raws(all: &DataFrame, scope: &Scope) -> Result<Option<DataFrame>> {
    if all.height() == 0 {
        return Ok(None);
    }
    let cols = Columns::resolve("(candidate rows)", all.schema(), scope.lifecycle)?;
    let events = compact(candidate_events(
        all.clone().lazy(),
        &cols,
        scope,
        Some(OBJECT),
    )?)?;
    Ok((events.height() > 0).then_some(events))
}

/// A frame tagged in [`OBJECT`] cut per object (each object's rows are one run, and keep
/// their order through the extraction).
pub(super) fn by_object(tagged: &DataFrame) -> Result<Vec<(u32, DataFrame)>> {
    let tags: Vec<u32> = tagged.column(OBJECT)?.u32()?.into_no_null_iter().collect();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(&tag) = tags.get(start) {
        let len = tags.iter().skip(start).take_while(|&&t| t == tag).count();
        out.push((tag, tagged.slice(start as i64, len)));
        start += len;
    }
    Ok(out)
}

/// Copies the string columns into buffers of their own. Decoded strings are views into the
/// object's decompressed pages, so a filtered frame of a few rows would otherwise keep those
/// megabytes alive until the end of the scan: memory would grow with the archive.
pub(super) fn compact(df: DataFrame) -> Result<DataFrame> {
    let columns = df
        .columns()
        .iter()
        .map(|c| -> Result<Column> {
            Ok(match c.dtype() {
                DataType::String => {
                    let fresh: StringChunked = c.str()?.iter().collect();
                    fresh.with_name(c.name().clone()).into_column()
                }
                _ => c.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DataFrame::new(df.height(), columns)?)
}

/// An event whose input names no Entra tenant (`""`) takes its `TenantId`'s when the events
/// name exactly one for it: an export without the `AADTenantId` column beside one with it must
/// pair and deduplicate as one tenant. Where a workspace holds several Entra tenants such an
/// event keeps `""` (which one it belongs to is unknown). Row order is kept. One pass over the
/// events: polars' group-by and join cost milliseconds even on a warm rerun's few thousand.
pub(super) fn infer_entra(mut events: DataFrame) -> Result<DataFrame> {
    let tenant = events.column(ev::TENANT)?.str()?;
    let aad = events.column(ev::AAD_TENANT)?.str()?;
    // Each TenantId's one Entra tenant; `None` once it names a second.
    let mut only: std::collections::HashMap<&str, Option<&str>> = Default::default();
    for (t, a) in tenant.iter().zip(aad.iter()) {
        let (Some(t), Some(a)) = (t, a) else {
            continue;
        };
        if a.is_empty() {
            continue;
        }
        let one = only.entry(t).or_insert(Some(a));
        if *one != Some(a) {
            *one = None;
        }
    }
    let inferred: StringChunked = tenant
        .iter()
        .zip(aad.iter())
        .map(|(t, a)| match a {
            Some("") => Some(t.and_then(|t| only.get(t).copied().flatten()).unwrap_or("")),
            a => a,
        })
        .collect();
    let inferred = inferred.with_name(ev::AAD_TENANT.into()).into_column();
    events.with_column(inferred)?;
    Ok(events)
}

/// Deliveries repeat in archives: one event per (TenantId, AADTenantId, Id), the earliest
/// delivery kept. Events without an `Id` cannot be matched to a twin and are all kept.
pub(super) fn dedup(events: DataFrame) -> Result<DataFrame> {
    let sorted = events
        .lazy()
        .sort_by_exprs(
            [
                col(ev::TIME),
                col(ev::TENANT),
                col(ev::AAD_TENANT),
                col(ev::ID),
            ],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?;
    let mut kept = sorted.filter(&first_deliveries(&sorted)?)?;
    kept.vstack_mut_owned(sorted.filter(&sorted.column(ev::ID)?.is_null())?)?;
    Ok(kept)
}

/// Whether each event is the first with its (TenantId, AADTenantId, Id), its `Id` not null.
/// A set of the keys seen: polars' `unique` partitions even a few thousand rows over the
/// thread pool, and was a tenth of a warm rerun.
fn first_deliveries(events: &DataFrame) -> Result<BooleanChunked> {
    let [tenant, aad, id] = [ev::TENANT, ev::AAD_TENANT, ev::ID].map(|c| events.column(c));
    let (tenant, aad, id) = (tenant?.str()?, aad?.str()?, id?.str()?);
    let mut seen = std::collections::HashSet::with_capacity(events.height());
    Ok(tenant
        .iter()
        .zip(aad.iter())
        .zip(id.iter())
        .map(|((t, a), id)| id.is_some_and(|id| seen.insert((t, a, id))))
        .collect())
}

/// The needed columns of one object, checked and normalised to expressions.
pub(super) struct Columns {
    pub(super) tenant: Expr,
    aad_tenant: Expr,
    id: Expr,
    pub(super) time: Expr,
    category: Expr,
    operation: Expr,
    result: Expr,
    targets: Dynamic,
    initiated: Dynamic,
    details: Dynamic,
}

impl Columns {
    /// The dynamic columns' parts of a candidate row's select.
    fn parts(&self) -> [Part<'_>; 3] {
        [
            Part {
                column: &self.targets,
                fields: &TARGET_FIELDS,
                text: "_targets_text",
                bad: "_targets_bad",
                invites_only: false,
            },
            Part {
                column: &self.initiated,
                fields: &INITIATOR_FIELDS,
                text: "_initiated_text",
                bad: "_initiated_bad",
                invites_only: true,
            },
            Part {
                column: &self.details,
                fields: &DETAIL_FIELDS,
                text: "_details_text",
                bad: "_details_bad",
                invites_only: true,
            },
        ]
    }

    /// `AdditionalDetails` is read only with the life cycle (`lifecycle`).
    pub(super) fn resolve(object: &str, schema: &Schema, lifecycle: bool) -> Result<Self> {
        let get = |name: &str| -> Result<&DataType> {
            schema.get(name).ok_or_else(|| Error::MissingColumn {
                object: object.to_string(),
                column: name.to_string(),
                needed: input::NEEDED.join(", "),
            })
        };
        let wrong = |name: &str, found: &DataType, expected: &str| Error::WrongType {
            object: object.to_string(),
            column: name.to_string(),
            found: found.to_string(),
            expected: expected.to_string(),
        };
        let string = |name: &str| -> Result<Expr> {
            match get(name)? {
                DataType::String => Ok(col(name)),
                DataType::Null => Ok(null_string()),
                d if d.is_categorical() || d.is_enum() => Ok(col(name).cast(DataType::String)),
                d => Err(wrong(name, d, "string")),
            }
        };
        let dynamic = |name: &str, nested_ok: fn(&DataType) -> bool| -> Result<Dynamic> {
            match get(name)? {
                DataType::String => Ok(Dynamic::Json(col(name))),
                DataType::Null => Ok(Dynamic::Absent),
                d if nested_ok(d) => Ok(Dynamic::Nested(col(name), d.clone())),
                d => Err(wrong(name, d, "JSON string or nested list/struct")),
            }
        };
        let time = match get(input::TIME_GENERATED)? {
            // The physical value of a zoned datetime is already UTC; a naive one is taken as UTC.
            DataType::Datetime(_, _) => col(input::TIME_GENERATED)
                .dt()
                .timestamp(TimeUnit::Nanoseconds),
            d => return Err(wrong(input::TIME_GENERATED, d, "timestamp")),
        };
        Ok(Columns {
            tenant: string(input::TENANT)?.fill_null(lit("")),
            aad_tenant: match schema.get(input::AAD_TENANT) {
                None => lit(""),
                Some(_) => string(input::AAD_TENANT)?.fill_null(lit("")),
            },
            id: string(input::ID)?,
            time,
            category: string(input::CATEGORY)?,
            operation: string(input::OPERATION_NAME)?,
            result: string(input::RESULT)?,
            targets: dynamic(input::TARGET_RESOURCES, |d| matches!(d, DataType::List(_)))?,
            initiated: dynamic(input::INITIATED_BY, |d| matches!(d, DataType::Struct(_)))?,
            details: match schema.get(input::ADDITIONAL_DETAILS) {
                Some(_) if lifecycle => dynamic(input::ADDITIONAL_DETAILS, |d| {
                    matches!(d, DataType::List(_))
                })?,
                _ => Dynamic::Absent,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::columns::empty_events;

    #[test]
    fn dedup_keeps_the_earliest_delivery_per_tenant_and_id() {
        let mut df = empty_events();
        let rows = df!(
            ev::TENANT => ["a", "a", "b", "a", "a", "a"],
            ev::AAD_TENANT => ["", "", "", "", "", "e2"],
            ev::ID => [Some("x"), Some("x"), Some("x"), None, None, Some("x")],
            ev::TIME => [20i64, 10, 30, 5, 5, 40],
            ev::KIND => [ev::kind::INVITE; 6],
            ev::RESULT_OK => [true; 6],
            ev::TR_UPN => ["late", "early", "other", "n1", "n2", "entra"],
            ev::TR_DISPLAY => [None::<&str>; 6],
            ev::TR_ID => [None::<&str>; 6],
            ev::INVITATION_ID => [None::<&str>; 6],
            ev::INVITED_EMAIL => [None::<&str>; 6],
            ev::INIT_UPN => ["i"; 6],
            ev::INIT_IP => ["ip"; 6],
            ev::BAD_JSON => [0u32; 6],
        )
        .unwrap();
        df.vstack_mut(&rows).unwrap();
        let out = dedup(df).unwrap();
        let mut upns: Vec<&str> = out
            .column(ev::TR_UPN)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect();
        upns.sort();
        // Same Id in another tenant (workspace or Entra) is another event; events without an
        // Id are all kept.
        assert_eq!(upns, ["early", "entra", "n1", "n2", "other"]);
    }
}
