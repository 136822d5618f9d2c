//! The config file (`--config`, TOML): rule parameters, watchlists and exclusion rules.
//! Everything is validated before any scan starts, and every error names the file, the line
//! and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use polars::prelude::*;
use serde::Deserialize;
use toml::Spanned;

use super::detect::Semantics;
use super::exclude::{Cond, ExclusionRule, Exclusions, Field};
use crate::error::{Error, Result};
use crate::time::parse_duration;

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

/// A loaded watchlist: its file, its key column, its rows.
struct Watchlist {
    csv: PathBuf,
    key: String,
    rows: DataFrame,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

pub(crate) fn read_text(path: &Path, what: &'static str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Input {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The file being loaded: where errors point to.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn err<T>(&self, span: Range<usize>, field: &str, msg: impl std::fmt::Display) -> Result<T> {
        Err(Error::Usage(format!(
            "{}:{}: {field}: {msg}",
            self.path.display(),
            self.line(&span)
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
        Semantics::from_str(v.get_ref(), true).or_else(|_| {
            self.err(
                v.span(),
                field,
                format!(
                    "unknown semantics `{}`: expected `intended` or `sentinel`",
                    v.get_ref().to_ascii_lowercase()
                ),
            )
        })
    }

    fn params(&self, r: &RuleSection) -> Result<Params> {
        let params = Params {
            lookback: r
                .lookback
                .as_ref()
                .map(|v| self.duration(v, "rule.lookback"))
                .transpose()?,
            threshold: r
                .threshold
                .as_ref()
                .map(|v| self.duration(v, "rule.threshold"))
                .transpose()?,
            semantics: r
                .semantics
                .as_ref()
                .map(|v| self.semantics(v, "rule.semantics"))
                .transpose()?,
        };
        match &r.lookback {
            Some(v) if params.lookback == Some(0) => {
                self.err(v.span(), "rule.lookback", "must be greater than zero")
            }
            _ => Ok(params),
        }
    }

    fn watchlists(
        &self,
        specs: &BTreeMap<String, WatchlistSpec>,
    ) -> Result<BTreeMap<String, Watchlist>> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        let mut lists = BTreeMap::new();
        for (name, spec) in specs {
            let field = format!("watchlists.{name}");
            let csv = base.join(spec.file.get_ref());
            if !csv.is_file() {
                return self.err(
                    spec.file.span(),
                    &format!("{field}.file"),
                    format!("watchlist file `{}` not found", csv.display()),
                );
            }
            let rows = CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .try_into_reader_with_file_path(Some(csv.clone()))
                .and_then(|r| r.finish())
                .map_err(|e| {
                    Error::invalid(
                        format!("{}: not a readable CSV watchlist", csv.display()),
                        e,
                    )
                })?;
            let Some(key) = find_column(&rows, spec.key.get_ref()) else {
                return Err(Error::Usage(format!(
                    "{}:1: watchlist `{name}` has no key column `{key}` (columns: {}); {field}.key is at {}:{}",
                    csv.display(),
                    column_list(&rows),
                    self.path.display(),
                    self.line(&spec.key.span()),
                    key = spec.key.get_ref(),
                )));
            };
            lists.insert(name.clone(), Watchlist { csv, key, rows });
        }
        Ok(lists)
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = read_text(path, "config file")?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(1);
            Error::Usage(format!("{}:{line}: {}", path.display(), e.message().trim()))
        })?;
        let cx = Ctx { path, text: &text };
        let params = cx.params(&file.rule)?;
        let lists = cx.watchlists(&file.watchlists)?;
        let mut rules = Vec::new();
        let mut warnings = Vec::new();
        let mut names = BTreeSet::new();
        for (i, x) in file.exclusions.iter().enumerate() {
            let rule = Exclusion {
                cx: &cx,
                i,
                spec: x,
                lists: &lists,
            }
            .load(&mut names, &mut warnings)?;
            rules.push(rule);
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

/// One `[[exclusions]]` entry being loaded.
struct Exclusion<'a> {
    cx: &'a Ctx<'a>,
    /// Its position in the file, for `exclusions[i].field` in errors.
    i: usize,
    spec: &'a ExclusionSpec,
    lists: &'a BTreeMap<String, Watchlist>,
}

impl Exclusion<'_> {
    fn field(&self, f: &str) -> String {
        format!("exclusions[{}].{f}", self.i)
    }

    fn load(
        &self,
        names: &mut BTreeSet<String>,
        warnings: &mut Vec<String>,
    ) -> Result<ExclusionRule> {
        let (cx, x) = (self.cx, self.spec);
        let name = x.name.get_ref().trim().to_string();
        if name.is_empty() {
            return cx.err(x.name.span(), &self.field("name"), "must not be empty");
        }
        if x.reason.trim().is_empty() {
            return cx.err(
                x.name.span(),
                &self.field("reason"),
                format!("exclusion `{name}` needs a reason"),
            );
        }
        if !names.insert(name.clone()) {
            return cx.err(
                x.name.span(),
                &self.field("name"),
                format!("`{name}` is used twice"),
            );
        }
        let mut conds = self.value_conditions()?;
        if let Some(w) = &x.watchlist {
            conds.push(self.watchlist(w, &name, warnings)?);
        }
        if conds.is_empty() {
            return cx.err(
                x.name.span(),
                &self.field("name"),
                format!("exclusion `{name}` has no condition, so it would match every finding"),
            );
        }
        let grace = x
            .grace
            .as_ref()
            .map(|g| cx.duration(g, &self.field("grace")))
            .transpose()?;
        Ok(ExclusionRule {
            name,
            reason: x.reason.trim().to_string(),
            grace,
            conds,
        })
    }

    /// The conditions on the finding's own values: initiator, guest, IP, initiator type.
    fn value_conditions(&self) -> Result<Vec<Cond>> {
        let x = self.spec;
        let mut conds = Vec::new();
        let list = |v: &Option<OneOrMany>| v.as_ref().map(OneOrMany::list).unwrap_or_default();
        let mut values = |field: Field, v: Vec<String>| {
            if !v.is_empty() {
                conds.push(Cond::Equals {
                    field,
                    values: v.iter().map(|s| s.trim().to_lowercase()).collect(),
                });
            }
        };
        values(Field::InviteInitiator, list(&x.initiator));
        values(Field::TargetUpn, list(&x.target_upn));
        values(Field::GuestEmail, list(&x.guest_email));
        values(
            Field::GuestDomain,
            list(&x.guest_domain)
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_string())
                .collect(),
        );
        if let Some(ips) = &x.ip {
            let nets = ips
                .get_ref()
                .list()
                .iter()
                .map(|v| self.net(v, ips.span()))
                .collect::<Result<Vec<_>>>()?;
            if !nets.is_empty() {
                conds.push(Cond::Cidr(nets));
            }
        }
        if let Some(t) = &x.initiator_type {
            conds.push(match t.get_ref().to_ascii_lowercase().as_str() {
                "user" => Cond::InitiatorIsUser(true),
                "app" => Cond::InitiatorIsUser(false),
                other => {
                    return self.cx.err(
                        t.span(),
                        &self.field("initiator_type"),
                        format!("unknown initiator type `{other}`: expected `user` or `app`"),
                    )
                }
            });
        }
        Ok(conds)
    }

    fn net(&self, text: &str, span: Range<usize>) -> Result<ipnet::IpNet> {
        match parse_net(text) {
            Some(net) => Ok(net),
            None => self.cx.err(
                span,
                &self.field("ip"),
                format!("invalid address or CIDR `{text}`"),
            ),
        }
    }

    /// `watchlist = { name, match, where }`: the keys of the selected rows, and the fields
    /// looked up in them.
    fn watchlist(
        &self,
        w: &WatchlistMatch,
        name: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Cond> {
        let cx = self.cx;
        let wname = w.name.get_ref();
        let Some(list) = self.lists.get(wname) else {
            return cx.err(
                w.name.span(),
                &self.field("watchlist.name"),
                format!(
                    "no watchlist `{wname}` (declared: {})",
                    self.lists.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        };
        let mut fields = Vec::new();
        for f in w.on.get_ref().list() {
            match Field::parse(&f) {
                Some(field) => fields.push(field),
                None => {
                    return cx.err(
                        w.on.span(),
                        &self.field("watchlist.match"),
                        format!("unknown field `{}`: expected {}", f.trim(), Field::NAMES),
                    )
                }
            }
        }
        if fields.is_empty() {
            return cx.err(
                w.on.span(),
                &self.field("watchlist.match"),
                "names no field",
            );
        }
        let keys = self.selected_keys(w, list)?;
        if keys.is_empty() {
            warnings.push(format!(
                "{}:{}: {}: no row of watchlist `{wname}` is selected, so exclusion `{name}` matches nothing",
                cx.path.display(),
                cx.line(&w.name.span()),
                self.field("watchlist")
            ));
        }
        Ok(Cond::Watchlist {
            name: wname.clone(),
            fields,
            keys,
        })
    }

    /// The distinct lower-cased keys of the watchlist rows `where` selects.
    fn selected_keys(&self, w: &WatchlistMatch, list: &Watchlist) -> Result<Vec<String>> {
        let lower = |c: &str| col(c).str().strip_chars(lit(NULL)).str().to_lowercase();
        let mut rows = list.rows.clone().lazy();
        for (wanted_column, wanted) in &w.filter {
            let Some(column) = find_column(&list.rows, wanted_column) else {
                return Err(Error::Usage(format!(
                    "{}:1: watchlist `{}` has no column `{wanted_column}` (columns: {}), used by {}:{}: {}",
                    list.csv.display(),
                    w.name.get_ref(),
                    column_list(&list.rows),
                    self.cx.path.display(),
                    self.cx.line(&w.name.span()),
                    self.field("watchlist.where")
                )));
            };
            let any = wanted
                .list()
                .iter()
                .map(|v| lower(&column).eq(lit(v.trim().to_lowercase())))
                .reduce(|a, b| a.or(b))
                .unwrap_or(lit(false));
            rows = rows.filter(any.fill_null(lit(false)));
        }
        let keys = rows
            .select([lower(&list.key).alias("_k")])
            .filter(col("_k").is_not_null().and(col("_k").neq(lit(""))))
            .unique_stable(None, UniqueKeepStrategy::First)
            .collect()?;
        Ok(keys
            .column("_k")?
            .str()?
            .iter()
            .flatten()
            .map(String::from)
            .collect())
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address.
fn parse_net(text: &str) -> Option<ipnet::IpNet> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| t.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_parse_with_and_without_prefix() {
        assert!(parse_net("10.0.0.0/8").is_some());
        assert!(parse_net("203.0.113.7").is_some());
        assert!(parse_net("2001:db8::/32").is_some());
        assert!(parse_net("10.0.0/33").is_none());
        assert!(parse_net("10.0.0.0/33").is_none());
    }
}
