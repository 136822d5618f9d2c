//! Metadata of the Sentinel hunting query the job implements (REFERENCE.md).

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub severity: &'static str,
    pub tactics: &'static [&'static str],
    pub techniques: &'static [&'static str],
}

pub const RULE: Rule = Rule {
    id: "1ad620f0-fee4-4bb7-a2b3-62af7f18332b",
    name: "Invited Guest User but not redeemed Invite for longer period",
    severity: "Medium",
    tactics: &["InitialAccess"],
    techniques: &["T1078.004"],
};
