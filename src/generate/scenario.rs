//! The identities behind the rule's five false-positive scenarios (README, "Exclusions,
//! watchlists and the rule file"), shared by the generator, `data/example-config/` and the
//! tests. Guests are given by e-mail; their UPN in a tenant is the usual
//! `local_domain#EXT#@tenant` form.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::rows::{
    details, event_id, guid, ip, target, user_initiator, Row, Tenant, FIRST, LAST, PARTNERS,
};

/// 1. Scheduled maintenance/backup jobs: service accounts (automation watchlist), inviting
///    from the automation subnet.
pub const AUTOMATION: [&str; 3] = [
    "svc-azurebackup@automation.contoso.example",
    "svc-awsbackup@automation.contoso.example",
    "svc-sccm@automation.contoso.example",
];
pub const AUTOMATION_IP: &str = "10.20.0.5";
/// The same accounts sometimes invite from elsewhere: not the scheduled job, never suppressed.
pub const AUTOMATION_ELSEWHERE_IP: &str = "198.51.100.77";
/// 2. Admin-initiated invites for future use (admins watchlist, with a grace period).
pub const FUTURE_USE_ADMIN: &str = "ga.planner@admins.contoso.example";
/// In the admins watchlist with a role outside the rule's `where`: never suppressed.
pub const HELPDESK_ADMIN: &str = "helpdesk.lead@admins.contoso.example";
/// 3. Invitee on leave (user_status watchlist: on_leave).
pub const ON_LEAVE: [&str; 2] = ["kim.leave@fabrikam.com", "raj.leave@fabrikam.com"];
/// In user_status too, but `active`: never suppressed.
pub const ACTIVE: &str = "ana.active@fabrikam.com";
/// 4. Invitee testing access before redeeming (invite_context: access_test).
pub const ACCESS_TEST: [&str; 2] = [
    "qa.tester1@contoso-qa.example",
    "qa.tester2@contoso-qa.example",
];
/// 5. Multi-step onboarding (invite_context: pending_approval), and a partner onboarding
///    program's domain with a grace period.
pub const PENDING_APPROVAL: [&str; 2] = [
    "new.hire1@northwind-onboarding.example",
    "new.hire2@northwind-onboarding.example",
];
pub const PROGRAM_DOMAIN: &str = "partner-program.example";
/// Kinds in the order the generator cycles through them.
pub const KINDS: usize = 7;

/// One never-redeemed scenario invite of kind `kind` (0..[`scenario::KINDS`]).
pub(super) fn scenario_invite(
    rng: &mut ChaCha8Rng,
    tenant: &Tenant,
    t: usize,
    at: i64,
    kind: usize,
    serial: u64,
) -> Row {
    let admin = tenant.admins.choose(rng).unwrap().clone();
    let (by, by_ip, email) = match kind {
        0 => (
            AUTOMATION.choose(rng).unwrap().to_string(),
            if rng.gen_bool(0.25) {
                AUTOMATION_ELSEWHERE_IP
            } else {
                AUTOMATION_IP
            }
            .to_string(),
            format!("backup.operator{serial}@dr.contoso-backup.example"),
        ),
        1 => (
            if rng.gen_bool(0.25) {
                HELPDESK_ADMIN
            } else {
                FUTURE_USE_ADMIN
            }
            .to_string(),
            ip(rng),
            format!(
                "{}.{}{serial}@{}",
                FIRST.choose(rng).unwrap(),
                LAST.choose(rng).unwrap(),
                PARTNERS.choose(rng).unwrap()
            ),
        ),
        2 => (admin, ip(rng), ON_LEAVE.choose(rng).unwrap().to_string()),
        3 => (admin, ip(rng), ACCESS_TEST.choose(rng).unwrap().to_string()),
        4 => (
            admin,
            ip(rng),
            PENDING_APPROVAL.choose(rng).unwrap().to_string(),
        ),
        5 => (
            admin,
            ip(rng),
            format!(
                "{}.{}{serial}@{PROGRAM_DOMAIN}",
                FIRST.choose(rng).unwrap(),
                LAST.choose(rng).unwrap()
            ),
        ),
        _ => (admin, ip(rng), ACTIVE.to_string()),
    };
    let upn = format!("{}#EXT#@{}", email.replace('@', "_"), tenant.domain);
    let corr = guid(rng);
    Row {
        time: at,
        tenant: t,
        id: event_id(rng, "Invited Users", &corr),
        correlation: corr,
        category: "UserManagement".into(),
        operation: "Invite external user".into(),
        result: "success".into(),
        logged_by: "Invited Users",
        op_type: "Add",
        targets: target(&guid(rng), None, "User", Some(&upn), ""),
        initiated: user_initiator(&guid(rng), &by, &by_ip),
        details: details(&[("invitedUserEmailAddress", &email)]),
    }
}
