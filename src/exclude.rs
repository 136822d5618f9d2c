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

use crate::error::Result;

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
    pub fn parse(name: &str) -> std::result::Result<Field, String> {
        Ok(match name.trim() {
            "InviteInitiator" => Field::InviteInitiator,
            "TargetUPN" => Field::TargetUpn,
            "GuestEmail" => Field::GuestEmail,
            "GuestDomain" => Field::GuestDomain,
            "IPAddress" => Field::IpAddress,
            other => {
                return Err(format!(
                    "unknown field `{other}`: expected InviteInitiator, TargetUPN, GuestEmail, GuestDomain or IPAddress"
                ))
            }
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

/// `_m{i}` columns (rule i matches), on a frame with the finding columns.
fn matches(frame: &DataFrame, rules: &[ExclusionRule]) -> Result<LazyFrame> {
    let lower = |c: &str| col(c).fill_null(lit("")).str().to_lowercase();
    let mut lf = frame.clone().lazy().with_columns([
        lower("InviteInitiator").alias("_f_initiator"),
        lower("TargetUPN").alias("_f_upn"),
        col("IPAddress")
            .fill_null(lit(""))
            .str()
            .strip_chars(lit(NULL))
            .str()
            .to_lowercase()
            .alias("_f_ip"),
    ]);
    lf = lf.with_column(guest_email(col("_f_upn")).alias("_f_email"));
    lf = lf.with_column(
        col("_f_email")
            .str()
            .extract(lit(r"@([^@]+)$"), 1)
            .alias("_f_domain"),
    );
    // Distinct addresses: replay frames repeat each invite once per tick.
    let ips: BTreeSet<String> = frame
        .column("IPAddress")?
        .str()?
        .iter()
        .flatten()
        .map(|s| s.trim().to_lowercase())
        .collect();
    let mut n = 0usize;
    let mut member = |lf: LazyFrame, field: &str, keys: &[String]| -> (LazyFrame, Expr) {
        n += 1;
        let name = format!("_c{n}");
        let distinct: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        let keys: Vec<&str> = distinct.into_iter().collect();
        let hit = vec![true; keys.len()];
        let table = df!("_k" => keys, name.as_str() => hit).expect("two equal-length columns");
        let lf = lf.join(
            table.lazy(),
            [col(field)],
            [col("_k")],
            JoinArgs::new(JoinType::Left),
        );
        (lf, col(name.as_str()).fill_null(lit(false)))
    };
    for (i, rule) in rules.iter().enumerate() {
        let mut all: Vec<Expr> = Vec::new();
        for c in &rule.conds {
            match c {
                Cond::Equals { field, values } => {
                    let (l, e) = member(lf, field.column(), values);
                    lf = l;
                    all.push(e);
                }
                Cond::Cidr(nets) => {
                    // The distinct addresses inside the networks, then the same join.
                    let inside: Vec<String> = ips
                        .iter()
                        .filter(|s| {
                            s.parse::<std::net::IpAddr>().is_ok_and(|a| {
                                // `::ffff:10.20.0.5` is 10.20.0.5 for an IPv4 network.
                                let v4 = match a {
                                    std::net::IpAddr::V6(v6) => {
                                        v6.to_ipv4_mapped().map(std::net::IpAddr::V4)
                                    }
                                    _ => None,
                                };
                                nets.iter()
                                    .any(|n| n.contains(&a) || v4.is_some_and(|b| n.contains(&b)))
                            })
                        })
                        .cloned()
                        .collect();
                    let (l, e) = member(lf, "_f_ip", &inside);
                    lf = l;
                    all.push(e);
                }
                Cond::InitiatorIsUser(user) => {
                    // Findings come from user-initiated invites only.
                    let is_user = col("_f_initiator").neq(lit(""));
                    all.push(if *user { is_user } else { is_user.not() });
                }
                Cond::Watchlist { fields, keys, .. } => {
                    let mut any: Option<Expr> = None;
                    for f in fields {
                        let (l, e) = member(lf, f.column(), keys);
                        lf = l;
                        any = Some(match any {
                            Some(a) => a.or(e),
                            None => e,
                        });
                    }
                    all.push(any.unwrap_or(lit(false)));
                }
            }
        }
        let m = all
            .into_iter()
            .reduce(|a, b| a.and(b))
            .unwrap_or(lit(false));
        lf = lf.with_column(m.alias(format!("_m{i}")));
    }
    Ok(lf)
}

fn drop_work_columns(lf: LazyFrame, original: &DataFrame) -> LazyFrame {
    let mut keep: Vec<Expr> = original
        .get_column_names()
        .iter()
        .map(|c| col(c.as_str()))
        .collect();
    keep.push(col("Rule"));
    keep.push(col("Reason"));
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
                Some(g) => col(format!("_m{i}")).and((at.clone() - col("InviteTime")).lt(lit(g))),
            };
            rule = when(hit.clone()).then(lit(r.name.as_str())).otherwise(rule);
            reason = when(hit).then(lit(r.reason.as_str())).otherwise(reason);
        }
        let lf = lf
            .with_columns([rule.alias("Rule"), reason.alias("Reason")])
            .sort(["_row"], SortMultipleOptions::default());
        Ok(drop_work_columns(lf, frame).collect()?)
    }

    /// For threshold sweeps, independent of T: `_excluded` (a full exclusion matches) and
    /// `_grace` (the longest grace among matching grace rules, ns; null when none).
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
        keep.push(full.alias("_excluded"));
        keep.push(grace.cast(DataType::Int64).alias("_grace"));
        Ok(lf
            .sort(["_row"], SortMultipleOptions::default())
            .select(keep)
            .collect()?)
    }
}

/// Splits a classified frame into (kept, suppressed); `Rule`/`Reason` dropped from the kept.
pub fn split(classified: &DataFrame) -> Result<(DataFrame, DataFrame)> {
    let kept = classified
        .clone()
        .lazy()
        .filter(col("Rule").is_null())
        .drop(cols(["Rule", "Reason"]))
        .collect()?;
    let suppressed = classified
        .clone()
        .lazy()
        .filter(col("Rule").is_not_null())
        .collect()?;
    Ok((kept, suppressed))
}

/// Suppressions per rule name, in rule order, zero included.
pub fn counts(ex: &Exclusions, suppressed: &DataFrame) -> Result<Vec<(String, u64)>> {
    let names = suppressed.column("Rule")?.str()?;
    Ok(ex
        .rules
        .iter()
        .map(|r| {
            let n = names.iter().filter(|v| *v == Some(r.name.as_str())).count() as u64;
            (r.name.clone(), n)
        })
        .collect())
}
