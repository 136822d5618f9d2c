//! Exclusion rules: the rule's known false-positive scenarios as configuration.
//!
//! A rule matches a finding when all its conditions hold (values within one condition are
//! alternatives); text comparisons are case-insensitive. A rule without `grace` suppresses
//! every finding it matches; a rule with `grace` G suppresses a matching finding only while
//! `T − InviteTime < G` (a longer threshold for, say, a partner onboarding program). A finding
//! is suppressed by the first rule, in file order, that suppresses it; nothing is dropped
//! silently: suppressed findings are written with the rule's name and reason.
//!
//! Matching is vectorized: every condition is a left join of the findings against a table of
//! lower-cased keys (watchlists included), never a per-row lookup.

use std::collections::BTreeSet;

use polars::prelude::*;

use super::columns::out;
use crate::error::Result;

/// Work column of [`Exclusions::horizon`]: a full exclusion matches the row.
pub(crate) const EXCLUDED: &str = "_excluded";
/// Work column of [`Exclusions::horizon`]: the longest grace period matching the row (ns).
pub(crate) const GRACE: &str = "_grace";

/// A finding field a condition can look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    InviteInitiator,
    TargetUpn,
    /// The guest's e-mail, from TargetUPN (`jane_fabrikam.com#EXT#@…` → `jane@fabrikam.com`).
    GuestEmail,
    /// The domain of [`Field::GuestEmail`].
    GuestDomain,
    IpAddress,
}

impl Field {
    /// The names a config may use, for error messages.
    pub(crate) const NAMES: &'static str =
        "InviteInitiator, TargetUPN, GuestEmail, GuestDomain or IPAddress";

    pub(crate) fn parse(name: &str) -> Option<Field> {
        Some(match name.trim() {
            out::INVITE_INITIATOR => Field::InviteInitiator,
            out::TARGET_UPN => Field::TargetUpn,
            "GuestEmail" => Field::GuestEmail,
            "GuestDomain" => Field::GuestDomain,
            out::IP_ADDRESS => Field::IpAddress,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            Field::InviteInitiator => "_f_initiator",
            Field::TargetUpn => "_f_upn",
            Field::GuestEmail => "_f_email",
            Field::GuestDomain => "_f_domain",
            Field::IpAddress => "_f_ip",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Cond {
    /// The field equals one of the (lower-cased) values.
    Equals { field: Field, values: Vec<String> },
    /// IPAddress inside one of the networks.
    Cidr(Vec<ipnet::IpNet>),
    /// The initiator is a user (`true`) or an app. The rule keeps only user-initiated invites,
    /// so `app` matches no finding; it is accepted so one file can serve other rules.
    InitiatorIsUser(bool),
    /// One of `fields` is a key of the watchlist (rows already filtered, keys lower-cased).
    Watchlist {
        name: String,
        fields: Vec<Field>,
        keys: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct ExclusionRule {
    pub name: String,
    pub reason: String,
    /// ns; `None`: a full exclusion.
    pub grace: Option<i64>,
    pub conds: Vec<Cond>,
}

#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    /// The config file they came from.
    pub source: String,
    pub rules: Vec<ExclusionRule>,
    /// Things worth saying before the run (an exclusion that can match nothing).
    pub warnings: Vec<String>,
}

/// The guest's e-mail from a lower-cased guest UPN: the `#EXT#` form is undone, anything else
/// is taken as the address itself.
fn guest_email(upn: Expr) -> Expr {
    when(upn.clone().str().contains(lit("#ext#@"), true))
        .then(
            upn.clone()
                .str()
                .replace(lit(r"^(.*)_([^_]*)#ext#@.*$"), lit("$1@$2"), false),
        )
        .otherwise(upn)
}

/// The finding fields conditions look at, lower-cased, as work columns.
fn with_fields(frame: &DataFrame) -> LazyFrame {
    let lower = |c: &str| col(c).fill_null(lit("")).str().to_lowercase();
    frame
        .clone()
        .lazy()
        .with_columns([
            lower(out::INVITE_INITIATOR).alias(Field::InviteInitiator.column()),
            lower(out::TARGET_UPN).alias(Field::TargetUpn.column()),
            col(out::IP_ADDRESS)
                .fill_null(lit(""))
                .str()
                .strip_chars(lit(NULL))
                .str()
                .to_lowercase()
                .alias(Field::IpAddress.column()),
        ])
        .with_column(guest_email(col(Field::TargetUpn.column())).alias(Field::GuestEmail.column()))
        .with_column(
            col(Field::GuestEmail.column())
                .str()
                .extract(lit(r"@([^@]+)$"), 1)
                .alias(Field::GuestDomain.column()),
        )
}

/// The distinct addresses of `ips` inside any of `nets`; `::ffff:10.20.0.5` is 10.20.0.5 for
/// an IPv4 network.
fn inside(ips: &BTreeSet<String>, nets: &[ipnet::IpNet]) -> Vec<String> {
    ips.iter()
        .filter(|s| {
            s.parse::<std::net::IpAddr>().is_ok_and(|a| {
                let v4 = match a {
                    std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4),
                    _ => None,
                };
                nets.iter()
                    .any(|n| n.contains(&a) || v4.is_some_and(|b| n.contains(&b)))
            })
        })
        .cloned()
        .collect()
}

/// Builds the match columns: every key membership is a left join against a table of keys.
struct Matcher {
    lf: LazyFrame,
    /// Distinct addresses of the frame: replay frames repeat each invite once per tick.
    ips: BTreeSet<String>,
    joins: usize,
}

impl Matcher {
    /// Whether the work column `field` is one of `keys`.
    fn member(&mut self, field: &str, keys: &[String]) -> Expr {
        self.joins += 1;
        let name = format!("_c{}", self.joins);
        let distinct: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        let keys: Vec<&str> = distinct.into_iter().collect();
        let hit = vec![true; keys.len()];
        let table = df!("_k" => keys, name.as_str() => hit).expect("two equal-length columns");
        self.lf = std::mem::take(&mut self.lf).join(
            table.lazy(),
            [col(field)],
            [col("_k")],
            JoinArgs::new(JoinType::Left),
        );
        col(name.as_str()).fill_null(lit(false))
    }

    /// Whether one condition holds.
    fn holds(&mut self, c: &Cond) -> Expr {
        match c {
            Cond::Equals { field, values } => self.member(field.column(), values),
            Cond::Cidr(nets) => {
                let inside = inside(&self.ips, nets);
                self.member(Field::IpAddress.column(), &inside)
            }
            Cond::InitiatorIsUser(user) => {
                // Findings come from user-initiated invites only.
                let is_user = col(Field::InviteInitiator.column()).neq(lit(""));
                if *user {
                    is_user
                } else {
                    is_user.not()
                }
            }
            Cond::Watchlist { fields, keys, .. } => fields
                .iter()
                .map(|f| self.member(f.column(), keys))
                .reduce(|a, b| a.or(b))
                .unwrap_or(lit(false)),
        }
    }
}

/// `_m{i}` columns (rule i matches), on a frame with the finding columns.
fn matches(frame: &DataFrame, rules: &[ExclusionRule]) -> Result<LazyFrame> {
    let ips = frame
        .column(out::IP_ADDRESS)?
        .str()?
        .iter()
        .flatten()
        .map(|s| s.trim().to_lowercase())
        .collect();
    let mut m = Matcher {
        lf: with_fields(frame),
        ips,
        joins: 0,
    };
    for (i, rule) in rules.iter().enumerate() {
        let all = rule
            .conds
            .iter()
            .map(|c| m.holds(c))
            .reduce(|a, b| a.and(b))
            .unwrap_or(lit(false));
        m.lf = m.lf.with_column(all.alias(format!("_m{i}")));
    }
    Ok(m.lf)
}

fn drop_work_columns(lf: LazyFrame, original: &DataFrame) -> LazyFrame {
    let mut keep: Vec<Expr> = original
        .get_column_names()
        .iter()
        .map(|c| col(c.as_str()))
        .collect();
    keep.push(col(out::RULE));
    keep.push(col(out::REASON));
    lf.select(keep)
}

impl Exclusions {
    /// `frame` (finding columns: TargetUPN, InviteTime, InviteInitiator, IPAddress, …) with
    /// `Rule` and `Reason` added: the first rule that suppresses the row when evaluated at
    /// `at` (i64 ns: `lit(T)`, or a column such as replay's `EvaluatedAt`), null when kept.
    /// Row order is kept.
    pub fn classify(&self, frame: &DataFrame, at: Expr) -> Result<DataFrame> {
        let lf = matches(
            &frame.clone().with_row_index("_row".into(), None)?,
            &self.rules,
        )?;
        // Nested from the last rule inwards, so the first suppressing rule wins.
        let none = || lit(NULL).cast(DataType::String);
        let (mut rule, mut reason) = (none(), none());
        for (i, r) in self.rules.iter().enumerate().rev() {
            let hit = match r.grace {
                None => col(format!("_m{i}")),
                Some(g) => {
                    col(format!("_m{i}")).and((at.clone() - col(out::INVITE_TIME)).lt(lit(g)))
                }
            };
            rule = when(hit.clone()).then(lit(r.name.as_str())).otherwise(rule);
            reason = when(hit).then(lit(r.reason.as_str())).otherwise(reason);
        }
        let lf = lf
            .with_columns([rule.alias(out::RULE), reason.alias(out::REASON)])
            .sort(["_row"], SortMultipleOptions::default());
        Ok(drop_work_columns(lf, frame).collect()?)
    }

    /// For threshold sweeps, independent of T: [`EXCLUDED`] (a full exclusion matches) and
    /// [`GRACE`] (the longest grace among matching grace rules, ns; null when none).
    pub fn horizon(&self, frame: &DataFrame) -> Result<DataFrame> {
        let lf = matches(
            &frame.clone().with_row_index("_row".into(), None)?,
            &self.rules,
        )?;
        let full = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.grace.is_none())
            .map(|(i, _)| col(format!("_m{i}")))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false));
        // Longest grace first, so the first matching branch is the maximum.
        let mut graced: Vec<(usize, i64)> = self
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.grace.map(|g| (i, g)))
            .collect();
        graced.sort_by_key(|&(_, g)| std::cmp::Reverse(g));
        let mut grace = lit(NULL).cast(DataType::Int64);
        for (i, g) in graced.into_iter().rev() {
            grace = when(col(format!("_m{i}"))).then(lit(g)).otherwise(grace);
        }
        let mut keep: Vec<Expr> = frame
            .get_column_names()
            .iter()
            .map(|c| col(c.as_str()))
            .collect();
        keep.push(full.alias(EXCLUDED));
        keep.push(grace.cast(DataType::Int64).alias(GRACE));
        Ok(lf
            .sort(["_row"], SortMultipleOptions::default())
            .select(keep)
            .collect()?)
    }
}

/// Splits a classified frame into (kept, suppressed); `Rule`/`Reason` dropped from the kept.
pub(crate) fn split(classified: &DataFrame) -> Result<(DataFrame, DataFrame)> {
    let kept = classified
        .clone()
        .lazy()
        .filter(col(out::RULE).is_null())
        .drop(cols([out::RULE, out::REASON]))
        .collect()?;
    let suppressed = classified
        .clone()
        .lazy()
        .filter(col(out::RULE).is_not_null())
        .collect()?;
    Ok((kept, suppressed))
}

/// Suppressions per rule name, in rule order, zero included.
pub(crate) fn counts(ex: &Exclusions, suppressed: &DataFrame) -> Result<Vec<(String, u64)>> {
    let names = suppressed.column(out::RULE)?.str()?;
    Ok(ex
        .rules
        .iter()
        .map(|r| {
            let n = names.iter().filter(|v| *v == Some(r.name.as_str())).count() as u64;
            (r.name.clone(), n)
        })
        .collect())
}
