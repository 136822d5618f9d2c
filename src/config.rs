//! The config file (`--config`, TOML: rule parameters, watchlists, exclusion rules) and the
//! Sentinel rule file (`--rule`, YAML). Everything is validated before any scan starts, and
//! every error names the file, the line and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Deserialize;
use toml::Spanned;

use crate::detect::Semantics;
use crate::error::{Error, Result};
use crate::exclude::{Cond, ExclusionRule, Exclusions, Field};
use crate::rule::Rule;
use crate::timefmt::parse_duration;

/// Rule parameters from a file; `None` where the file says nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub lookback: Option<i64>,
    pub threshold: Option<i64>,
    pub semantics: Option<Semantics>,
}

/// A loaded `--config`.
#[derive(Debug, Clone)]
pub struct Config {
    pub params: Params,
    pub exclusions: Exclusions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    rule: RuleSection,
    #[serde(default)]
    watchlists: BTreeMap<String, WatchlistSpec>,
    #[serde(default)]
    exclusions: Vec<ExclusionSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    lookback: Option<Spanned<String>>,
    threshold: Option<Spanned<String>>,
    semantics: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchlistSpec {
    /// CSV with a header row, relative to the config file.
    file: Spanned<String>,
    /// The column whose values are matched.
    key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExclusionSpec {
    name: Spanned<String>,
    reason: String,
    initiator: Option<OneOrMany>,
    initiator_type: Option<Spanned<String>>,
    ip: Option<Spanned<OneOrMany>>,
    target_upn: Option<OneOrMany>,
    guest_email: Option<OneOrMany>,
    guest_domain: Option<OneOrMany>,
    watchlist: Option<WatchlistMatch>,
    grace: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchlistMatch {
    name: Spanned<String>,
    /// Finding field(s) looked up in the watchlist's key column; any may match.
    #[serde(rename = "match")]
    on: Spanned<OneOrMany>,
    /// Only watchlist rows whose columns have one of these values (case-insensitive).
    #[serde(default, rename = "where")]
    filter: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        msg: impl std::fmt::Display,
    ) -> Result<T> {
        Err(Error::Usage(format!(
            "{}:{}: {field}: {msg}",
            self.path.display(),
            line_of(self.text, span.start)
        )))
    }

    fn duration(&self, v: &Spanned<String>, field: &str) -> Result<i64> {
        parse_duration(v.get_ref()).or_else(|_| {
            self.err(
                v.span(),
                field,
                format!(
                    "invalid duration `{}`: expected a whole number and a unit, e.g. `14d`, `36h`, `90m`",
                    v.get_ref()
                ),
            )
        })
    }

    fn semantics(&self, v: &Spanned<String>, field: &str) -> Result<Semantics> {
        match v.get_ref().to_ascii_lowercase().as_str() {
            "intended" => Ok(Semantics::Intended),
            "sentinel" => Ok(Semantics::Sentinel),
            other => self.err(
                v.span(),
                field,
                format!("unknown semantics `{other}`: expected `intended` or `sentinel`"),
            ),
        }
    }
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {what} `{}`: {e}", path.display())))
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = read_text(path, "config file")?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(1);
            Error::Usage(format!("{}:{line}: {}", path.display(), e.message().trim()))
        })?;
        let cx = Ctx { path, text: &text };
        let r = &file.rule;
        let params = Params {
            lookback: r
                .lookback
                .as_ref()
                .map(|v| cx.duration(v, "rule.lookback"))
                .transpose()?,
            threshold: r
                .threshold
                .as_ref()
                .map(|v| cx.duration(v, "rule.threshold"))
                .transpose()?,
            semantics: r
                .semantics
                .as_ref()
                .map(|v| cx.semantics(v, "rule.semantics"))
                .transpose()?,
        };
        if params.lookback == Some(0) {
            return cx.err(
                r.lookback.as_ref().unwrap().span(),
                "rule.lookback",
                "must be greater than zero",
            );
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut lists: BTreeMap<String, (PathBuf, String, DataFrame)> = BTreeMap::new();
        for (name, spec) in &file.watchlists {
            let field = format!("watchlists.{name}");
            let csv = base.join(spec.file.get_ref());
            if !csv.is_file() {
                return cx.err(
                    spec.file.span(),
                    &format!("{field}.file"),
                    format!("watchlist file `{}` not found", csv.display()),
                );
            }
            let df = CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .try_into_reader_with_file_path(Some(csv.clone()))
                .and_then(|r| r.finish())
                .map_err(|e| {
                    Error::Usage(format!(
                        "{}: not a readable CSV watchlist: {e}",
                        csv.display()
                    ))
                })?;
            let Some(key) = find_column(&df, spec.key.get_ref()) else {
                return Err(Error::Usage(format!(
                    "{}:1: watchlist `{name}` has no key column `{key}` (columns: {}); {field}.key is at {}:{}",
                    csv.display(),
                    column_list(&df),
                    path.display(),
                    line_of(&text, spec.key.span().start),
                    key = spec.key.get_ref(),
                )));
            };
            lists.insert(name.clone(), (csv, key, df));
        }
        let mut rules = Vec::new();
        let mut warnings = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, x) in file.exclusions.iter().enumerate() {
            let field = |f: &str| format!("exclusions[{i}].{f}");
            let name = x.name.get_ref().trim().to_string();
            if name.is_empty() {
                return cx.err(x.name.span(), &field("name"), "must not be empty");
            }
            if x.reason.trim().is_empty() {
                return cx.err(
                    x.name.span(),
                    &field("reason"),
                    format!("exclusion `{name}` needs a reason"),
                );
            }
            if !names.insert(name.clone()) {
                return cx.err(
                    x.name.span(),
                    &field("name"),
                    format!("`{name}` is used twice"),
                );
            }
            let mut conds = Vec::new();
            let list = |v: &Option<OneOrMany>| v.as_ref().map(OneOrMany::list).unwrap_or_default();
            let mut values = |f: Field, v: &[String]| {
                if !v.is_empty() {
                    conds.push(Cond::Equals {
                        field: f,
                        values: v.iter().map(|s| s.trim().to_lowercase()).collect(),
                    });
                }
            };
            values(Field::InviteInitiator, &list(&x.initiator));
            values(Field::TargetUpn, &list(&x.target_upn));
            values(Field::GuestEmail, &list(&x.guest_email));
            values(
                Field::GuestDomain,
                &list(&x.guest_domain)
                    .iter()
                    .map(|d| d.trim().trim_start_matches('@').to_string())
                    .collect::<Vec<_>>(),
            );
            if let Some(ips) = &x.ip {
                let mut nets = Vec::new();
                for v in ips.get_ref().list() {
                    nets.push(parse_net(&v).or_else(|m| cx.err(ips.span(), &field("ip"), m))?);
                }
                if !nets.is_empty() {
                    conds.push(Cond::Cidr(nets));
                }
            }
            if let Some(t) = &x.initiator_type {
                match t.get_ref().to_ascii_lowercase().as_str() {
                    "user" => conds.push(Cond::InitiatorIsUser(true)),
                    "app" => conds.push(Cond::InitiatorIsUser(false)),
                    other => {
                        return cx.err(
                            t.span(),
                            &field("initiator_type"),
                            format!("unknown initiator type `{other}`: expected `user` or `app`"),
                        )
                    }
                }
            }
            if let Some(w) = &x.watchlist {
                let wname = w.name.get_ref();
                let Some((csv, key, df)) = lists.get(wname) else {
                    return cx.err(
                        w.name.span(),
                        &field("watchlist.name"),
                        format!(
                            "no watchlist `{wname}` (declared: {})",
                            lists.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                };
                let mut fields = Vec::new();
                for f in w.on.get_ref().list() {
                    fields.push(
                        Field::parse(&f)
                            .or_else(|m| cx.err(w.on.span(), &field("watchlist.match"), m))?,
                    );
                }
                if fields.is_empty() {
                    return cx.err(w.on.span(), &field("watchlist.match"), "names no field");
                }
                let mut rows = df.clone().lazy();
                for (wanted_column, wanted) in &w.filter {
                    let Some(column) = find_column(df, wanted_column) else {
                        return Err(Error::Usage(format!(
                            "{}:1: watchlist `{wname}` has no column `{wanted_column}` (columns: {}), used by {}:{}: {}",
                            csv.display(),
                            column_list(df),
                            path.display(),
                            line_of(&text, w.name.span().start),
                            field("watchlist.where")
                        )));
                    };
                    let wanted: Vec<String> = wanted
                        .list()
                        .iter()
                        .map(|s| s.trim().to_lowercase())
                        .collect();
                    let any = wanted
                        .iter()
                        .map(|v| {
                            col(column.as_str())
                                .str()
                                .strip_chars(lit(NULL))
                                .str()
                                .to_lowercase()
                                .eq(lit(v.as_str()))
                        })
                        .reduce(|a, b| a.or(b))
                        .unwrap_or(lit(false));
                    rows = rows.filter(any.fill_null(lit(false)));
                }
                let keys = rows
                    .select([col(key.as_str())
                        .str()
                        .strip_chars(lit(NULL))
                        .str()
                        .to_lowercase()
                        .alias("_k")])
                    .filter(col("_k").is_not_null().and(col("_k").neq(lit(""))))
                    .unique_stable(None, UniqueKeepStrategy::First)
                    .collect()?;
                let keys: Vec<String> = keys
                    .column("_k")?
                    .str()?
                    .iter()
                    .flatten()
                    .map(String::from)
                    .collect();
                if keys.is_empty() {
                    warnings.push(format!(
                        "{}:{}: {}: no row of watchlist `{wname}` is selected, so exclusion `{name}` matches nothing",
                        path.display(),
                        line_of(&text, w.name.span().start),
                        field("watchlist")
                    ));
                }
                conds.push(Cond::Watchlist {
                    name: wname.clone(),
                    fields,
                    keys,
                });
            }
            if conds.is_empty() {
                return cx.err(
                    x.name.span(),
                    &field("name"),
                    format!("exclusion `{name}` has no condition, so it would match every finding"),
                );
            }
            let grace = x
                .grace
                .as_ref()
                .map(|g| cx.duration(g, &field("grace")))
                .transpose()?;
            rules.push(ExclusionRule {
                name,
                reason: x.reason.trim().to_string(),
                grace,
                conds,
            });
        }
        Ok(Config {
            params,
            exclusions: Exclusions {
                source: path.display().to_string(),
                rules,
                warnings,
            },
        })
    }
}

/// A column by name, ignoring ASCII case (CSV headers vary).
fn find_column(df: &DataFrame, name: &str) -> Option<String> {
    df.get_column_names()
        .iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
        .map(|c| c.to_string())
}

fn column_list(df: &DataFrame) -> String {
    df.get_column_names()
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address.
fn parse_net(text: &str) -> std::result::Result<ipnet::IpNet, String> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("invalid address or CIDR `{text}`"))
}

/// A Sentinel analytic or hunting rule (YAML): its metadata, and the parameters its query sets
/// with `let lookback = …;` and `let invitethreshold = …;`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleYaml {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    severity: String,
    #[serde(default)]
    tactics: Vec<String>,
    #[serde(default)]
    relevant_techniques: Vec<String>,
    #[serde(default)]
    entity_mappings: Option<serde_norway::Value>,
    query: String,
}

pub fn load_rule(path: &Path) -> Result<(Rule, Params)> {
    let text = read_text(path, "rule file")?;
    let y: RuleYaml = serde_norway::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: {e}", rule_error_location(path, &e))))?;
    let mut params = Params::default();
    for (var, slot) in [
        ("lookback", &mut params.lookback),
        ("invitethreshold", &mut params.threshold),
    ] {
        if let Some((value, query_line)) = let_value(&y.query, var) {
            // The same statement found in the file itself gives the file's line.
            let line = let_value(&text, var).map_or(query_line, |(_, l)| l) + 1;
            let ns = parse_duration(&value).map_err(|_| {
                Error::Usage(format!(
                    "{}:{line}: query: `let {var} = {value};` is not a timespan this job reads (e.g. 14d, 36h, 90m)",
                    path.display()
                ))
            })?;
            *slot = Some(ns);
        }
    }
    if params.lookback == Some(0) {
        return Err(Error::Usage(format!(
            "{}: query: lookback must be greater than zero",
            path.display()
        )));
    }
    // Entity mappings are accepted but not used: the reports always map Account ← InviteInitiator
    // and IP ← IPAddress, as the rule does.
    let _ = &y.entity_mappings;
    Ok((
        Rule {
            id: y.id,
            name: y.name,
            description: y.description.trim().to_string(),
            severity: y.severity,
            tactics: y.tactics,
            techniques: y.relevant_techniques,
        },
        params,
    ))
}

fn rule_error_location(path: &Path, e: &serde_norway::Error) -> String {
    match e.location() {
        Some(l) => format!("{}:{}", path.display(), l.line()),
        None => path.display().to_string(),
    }
}

/// The value of `let <var> = <value>;` in KQL text and the 0-based line it is on. `//`
/// comments are ignored, and `<var>` must be the whole name (`lookback`, not `lookbackish`).
fn let_value(query: &str, var: &str) -> Option<(String, usize)> {
    for (n, line) in query.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for stmt in code.split(';') {
            let Some(rest) = stmt.trim_start().strip_prefix("let ") else {
                continue;
            };
            let Some(after) = rest.trim_start().strip_prefix(var) else {
                continue;
            };
            if let Some(v) = after.trim_start().strip_prefix('=') {
                return Some((v.trim().to_string(), n));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn let_values_are_read_from_kql() {
        let q = "// let lookback = 99d;\nlet lookbackish = 1d; let lookback = 21d;\nlet invitethreshold=36h ;\nAuditLogs";
        assert_eq!(let_value(q, "lookback"), Some(("21d".into(), 1)));
        assert_eq!(
            let_value(q, "invitethreshold").map(|v| v.0),
            Some("36h".into())
        );
        assert_eq!(let_value(q, "other"), None);
    }

    #[test]
    fn nets_parse_with_and_without_prefix() {
        assert!(parse_net("10.0.0.0/8").is_ok());
        assert!(parse_net("203.0.113.7").is_ok());
        assert!(parse_net("2001:db8::/32").is_ok());
        assert!(parse_net("10.0.0/33").is_err());
        assert!(parse_net("10.0.0.0/33").is_err());
    }
}
