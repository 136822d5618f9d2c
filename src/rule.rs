//! Metadata of the rule the job implements: the Sentinel hunting query of REFERENCE.md, or the
//! rule file given with `--rule`.

use serde::Serialize;

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
