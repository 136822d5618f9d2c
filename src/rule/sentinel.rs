//! The Sentinel rule the job implements: its built-in metadata, or that of a rule file given
//! with `--rule` (YAML), whose query may set the rule's parameters with `let lookback = …;` and
//! `let invitethreshold = …;`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::{read_text, Params};
use crate::error::{Error, Result};
use crate::time::parse_duration;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rule {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub severity: String,
    pub tactics: Vec<String>,
    pub techniques: Vec<String>,
}

impl Rule {
    /// "Invited Guest User but not redeemed Invite for longer period".
    pub fn builtin() -> Rule {
        Rule {
            id: "1ad620f0-fee4-4bb7-a2b3-62af7f18332b".into(),
            name: "Invited Guest User but not redeemed Invite for longer period".into(),
            description: String::new(),
            severity: "Medium".into(),
            tactics: vec!["InitialAccess".into()],
            techniques: vec!["T1078.004".into()],
        }
    }
}

impl Default for Rule {
    fn default() -> Self {
        Rule::builtin()
    }
}

/// A Sentinel analytic or hunting rule (YAML): its metadata, and its query. Other fields
/// (`entityMappings` among them) are accepted and not used: the reports always map
/// Account ← InviteInitiator and IP ← IPAddress, as the rule does.
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
    query: String,
}

/// Loads `--rule FILE`: its metadata, and the parameters its query sets.
pub(crate) fn load_rule(path: &Path) -> Result<(Rule, Params)> {
    let text = read_text(path, "rule file")?;
    let y: RuleYaml = serde_norway::from_str(&text).map_err(|e| {
        let at = match e.location() {
            Some(l) => format!("{}:{}", path.display(), l.line()),
            None => path.display().to_string(),
        };
        Error::invalid(at, e)
    })?;
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
}
