//! The one seeded data generator shared by tests, the sample archive and benches.
//!
//! It writes realistic AuditLogs Parquet (the full column set, mostly noise operations) with
//! guest invites whose redeem delays mix minutes, days, weeks and never, and with every awkward
//! case the rule must survive: case drift, UPN case drift, redeem text in `displayName` or in
//! `userPrincipalName`, failed redeems, re-invites, redeems before the invite, app-initiated
//! invites, invites without a UPN, duplicate deliveries, one UPN in two tenants, and near-miss
//! operation names. It also adds, every day and in each tenant, one invite from the rule's
//! false-positive scenarios ([`scenario`]), never redeemed, which `data/example-config/` suppresses.
//! Same seed, same bytes.

use chrono::{DateTime, Datelike, Utc};
use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::report::parquet_bytes;
use crate::source::{Location, Sink};

#[derive(Debug, Clone)]
pub struct GenSpec {
    pub tenants: u32,
    pub days: u32,
    /// First day, ns since the epoch (UTC).
    pub start: i64,
    pub rows_per_day: u32,
    pub invites_per_day: f64,
    pub seed: u64,
    pub nested: bool,
    pub rows_per_file: usize,
}

/// The identities behind the rule's five false-positive scenarios (REFERENCE.md), shared by
/// the generator, `data/example-config/` and the tests. Guests are given by e-mail; their UPN
/// in a tenant is the usual `local_domain#EXT#@tenant` form.
pub mod scenario {
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
}

/// One never-redeemed scenario invite of kind `kind` (0..[`scenario::KINDS`]).
fn scenario_invite(
    rng: &mut ChaCha8Rng,
    tenant: &Tenant,
    t: usize,
    at: i64,
    kind: usize,
    serial: u64,
) -> Row {
    use scenario::*;
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

/// What was written, for the caller's log line.
#[derive(Debug, Default)]
pub struct GenStats {
    pub files: usize,
    pub rows: u64,
    pub invites: u64,
    pub bytes: u64,
}

const MS: i64 = 1_000;
const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

struct Tenant {
    id: String,
    domain: String,
    admins: Vec<String>,
    users: Vec<String>,
}

/// One AuditLogs row before rendering; times in microseconds.
#[derive(Clone)]
struct Row {
    time: i64,
    tenant: usize,
    id: String,
    correlation: String,
    category: String,
    operation: String,
    result: String,
    logged_by: &'static str,
    op_type: &'static str,
    targets: String,
    initiated: String,
    details: String,
}

fn guid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.gen();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff | 0x4000,
        u16::from_be_bytes([b[8], b[9]]) & 0x3fff | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

fn ip(rng: &mut ChaCha8Rng) -> String {
    let nets = ["203.0.113", "198.51.100", "192.0.2"];
    format!("{}.{}", nets.choose(rng).unwrap(), rng.gen_range(1..255))
}

/// JSON string literal (the generator's own values never need more than quote escaping,
/// but serde keeps it honest).
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

fn opt_js(s: Option<&str>) -> String {
    s.map(js).unwrap_or_else(|| "null".into())
}

fn user_initiator(id: &str, upn: &str, ip: &str) -> String {
    format!(
        r#"{{"user":{{"id":{},"displayName":null,"userPrincipalName":{},"ipAddress":{},"roles":[]}}}}"#,
        js(id),
        js(upn),
        js(ip)
    )
}

fn app_initiator(app_id: &str, name: &str, sp: &str) -> String {
    format!(
        r#"{{"app":{{"appId":{},"displayName":{},"servicePrincipalId":{},"servicePrincipalName":{}}}}}"#,
        js(app_id),
        js(name),
        js(sp),
        js(name)
    )
}

fn target(id: &str, display: Option<&str>, kind: &str, upn: Option<&str>, props: &str) -> String {
    let upn = match upn {
        Some(u) => format!(r#","userPrincipalName":{}"#, js(u)),
        None => String::new(),
    };
    format!(
        r#"[{{"id":{},"displayName":{},"type":{}{},"modifiedProperties":[{}]}}]"#,
        js(id),
        opt_js(display),
        js(kind),
        upn,
        props
    )
}

fn prop(name: &str, old: &str, new: &str) -> String {
    format!(
        r#"{{"displayName":{},"oldValue":{},"newValue":{}}}"#,
        js(name),
        js(old),
        js(new)
    )
}

fn details(pairs: &[(&str, &str)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!(r#"{{"key":{},"value":{}}}"#, js(k), js(v)))
        .collect();
    format!("[{}]", items.join(","))
}

const FIRST: [&str; 12] = [
    "jane", "omar", "li", "maria", "sven", "aiko", "pedro", "fatima", "noah", "chloe", "ivan",
    "zara",
];
const LAST: [&str; 10] = [
    "doe", "haddad", "wei", "garcia", "berg", "tanaka", "silva", "khan", "smith", "martin",
];
const PARTNERS: [&str; 8] = [
    "fabrikam.com",
    "northwind.example",
    "adatum.org",
    "tailspin.example",
    "litware.net",
    "wingtip.example",
    "proseware.com",
    "gmail.example",
];

/// Noise operations: (category, operation, service, type). The first is a near miss of the
/// invite operation and must never count as one.
const NOISE: [(&str, &str, &str, &str); 9] = [
    (
        "UserManagement",
        "Invite external user with reset invitation status",
        "Invited Users",
        "Update",
    ),
    ("UserManagement", "Update user", "Core Directory", "Update"),
    ("UserManagement", "Add user", "Core Directory", "Add"),
    (
        "UserManagement",
        "Reset password (self-service)",
        "Self-service Password Management",
        "Update",
    ),
    (
        "GroupManagement",
        "Add member to group",
        "Core Directory",
        "Assign",
    ),
    (
        "ApplicationManagement",
        "Update application",
        "Core Directory",
        "Update",
    ),
    (
        "ApplicationManagement",
        "Update application – Certificates and secrets management ",
        "Core Directory",
        "Update",
    ),
    (
        "ApplicationManagement",
        "Add delegated permission grant",
        "Core Directory",
        "Assign",
    ),
    (
        "RoleManagement",
        "Add member to role",
        "Core Directory",
        "Assign",
    ),
];

fn drift(rng: &mut ChaCha8Rng, s: &str, p: f64) -> String {
    if !rng.gen_bool(p) {
        return s.to_string();
    }
    match rng.gen_range(0..3) {
        0 => s.to_lowercase(),
        1 => s.to_uppercase(),
        _ => s
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect(),
    }
}

fn event_id(rng: &mut ChaCha8Rng, prefix: &str, corr: &str) -> String {
    let suffix: String = (0..5).map(|_| rng.gen_range(b'A'..=b'Z') as char).collect();
    format!(
        "{prefix}_{corr}_{suffix}_{}",
        rng.gen_range(1_000_000..99_999_999)
    )
}

fn make_tenants(rng: &mut ChaCha8Rng, n: u32) -> Vec<Tenant> {
    (0..n)
        .map(|i| {
            let domain = format!("tenant{i}.onmicrosoft.com");
            let admins = (0..3)
                .map(|a| format!("admin{a}@tenant{i}.example"))
                .collect();
            let users = (0..40)
                .map(|u| {
                    format!(
                        "{}.{}{u}@tenant{i}.example",
                        FIRST[u % FIRST.len()],
                        LAST[(u / 3) % LAST.len()]
                    )
                })
                .collect();
            Tenant {
                id: guid(rng),
                domain,
                admins,
                users,
            }
        })
        .collect()
}

/// Guest events (invites, redeems and their companions) for the whole period.
fn guest_events(
    rng: &mut ChaCha8Rng,
    spec: &GenSpec,
    tenants: &[Tenant],
    start: i64,
    end: i64,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut shared: Vec<(String, String)> = Vec::new(); // (upn, email) used in some tenant
    let mut serial = 0u64;
    for day in 0..spec.days as i64 {
        for (t, tenant) in tenants.iter().enumerate() {
            let whole = spec.invites_per_day.floor() as u32;
            let extra = rng.gen_bool(spec.invites_per_day.fract().clamp(0.0, 1.0)) as u32;
            for _ in 0..whole + extra {
                serial += 1;
                let at = start + day * DAY + rng.gen_range(0..DAY / MS) * MS;
                invite_story(rng, tenant, t, at, end, serial, &mut shared, &mut rows);
            }
        }
    }
    rows
}

#[allow(clippy::too_many_arguments)]
fn invite_story(
    rng: &mut ChaCha8Rng,
    tenant: &Tenant,
    t: usize,
    at: i64,
    end: i64,
    serial: u64,
    shared: &mut Vec<(String, String)>,
    rows: &mut Vec<Row>,
) {
    // The guest: usually new, sometimes one already invited into another tenant (same UPN).
    let (upn, email) = if !shared.is_empty() && rng.gen_bool(0.05) {
        shared.choose(rng).unwrap().clone()
    } else {
        let partner = PARTNERS.choose(rng).unwrap();
        let email = format!(
            "{}.{}{serial}@{partner}",
            FIRST.choose(rng).unwrap(),
            LAST.choose(rng).unwrap()
        );
        let upn = format!("{}#EXT#@{}", email.replace('@', "_"), tenant.domain);
        (upn, email)
    };
    shared.push((upn.clone(), email.clone()));
    let admin = tenant.admins.choose(rng).unwrap().clone();
    let admin_ip = ip(rng);
    let guest_id = guid(rng);

    let app_initiated = rng.gen_bool(0.05);
    let no_upn = rng.gen_bool(0.02);
    let invite = |rng: &mut ChaCha8Rng, when: i64, by: &str| {
        let corr = guid(rng);
        let initiated = if app_initiated {
            app_initiator(&guid(rng), "Microsoft Teams Services", &guid(rng))
        } else {
            user_initiator(&guid(rng), by, &admin_ip)
        };
        let target_upn = if no_upn {
            if rng.gen_bool(0.5) {
                None
            } else {
                Some("")
            }
        } else {
            Some(upn.as_str())
        };
        Row {
            time: when,
            tenant: t,
            id: event_id(rng, "Invited Users", &corr),
            correlation: corr,
            category: drift(rng, "UserManagement", 0.1),
            operation: drift(rng, "Invite external user", 0.1),
            result: "success".into(),
            logged_by: "Invited Users",
            op_type: "Add",
            targets: target(&guest_id, None, "User", target_upn, ""),
            initiated,
            details: details(&[("invitedUserEmailAddress", &email)]),
        }
    };
    rows.push(invite(rng, at, &admin));

    // A re-invite a few days later (same guest, possibly another admin).
    if rng.gen_bool(0.08) {
        let later = at + rng.gen_range(1..10) * DAY + rng.gen_range(0..HOUR);
        let by = tenant.admins.choose(rng).unwrap().clone();
        rows.push(invite(rng, later, &by));
    }

    // Redeem delay mixture: minutes, hours to days, days to weeks, never.
    let delay = match rng.gen_range(0..100) {
        0..=39 => Some(rng.gen_range(1..120) * MIN + rng.gen_range(0..60_000) * MS),
        40..=64 => Some(rng.gen_range(2..72) * HOUR + rng.gen_range(0..3_600_000) * MS),
        65..=74 => Some(rng.gen_range(5..25) * DAY + rng.gen_range(0..DAY / MS) * MS),
        _ => None,
    };
    let guest_ip = ip(rng);
    let redeem = |rng: &mut ChaCha8Rng, when: i64, ok: bool| -> Vec<Row> {
        let corr = guid(rng);
        // Case drift of the UPN between invite and redeem.
        let r_upn = if rng.gen_bool(0.15) {
            upn.to_uppercase()
        } else {
            upn.clone()
        };
        let text = format!(
            "UPN: {r_upn}, Email: {email}, InvitationId: {}, Source: One Time Passcode",
            guid(rng)
        );
        let targets = match rng.gen_range(0..100) {
            // Public samples: the text in displayName, the bare UPN in userPrincipalName.
            0..=64 => target(&guest_id, Some(&text), "User", Some(&r_upn), ""),
            // Seen in archives: the text in userPrincipalName.
            65..=89 => target(&guest_id, Some(&email), "User", Some(&text), ""),
            // No text anywhere: only the bare UPN.
            90..=97 => target(&guest_id, Some(&email), "User", Some(&r_upn), ""),
            // Malformed: a display name where the UPN belongs; no UPN can be derived.
            _ => target(&guest_id, Some(&email), "User", Some("Guest User"), ""),
        };
        let mut out = vec![Row {
            time: when,
            tenant: t,
            id: event_id(rng, "B2B", &corr),
            correlation: corr.clone(),
            category: drift(rng, "UserManagement", 0.1),
            operation: drift(rng, "Redeem external user invite", 0.1),
            result: if ok {
                drift(rng, "success", 0.1)
            } else {
                "failure".into()
            },
            logged_by: "B2B Auth",
            op_type: "Update",
            targets,
            initiated: user_initiator(&guid(rng), &email, &guest_ip),
            details: details(&[("invitationId", &guid(rng))]),
        }];
        if ok {
            // The same redemption as a user update, same second.
            out.push(Row {
                time: when,
                tenant: t,
                id: event_id(rng, "Directory", &corr),
                correlation: corr,
                category: "UserManagement".into(),
                operation: "Update user".into(),
                result: "success".into(),
                logged_by: "Core Directory",
                op_type: "Update",
                targets: target(
                    &guest_id,
                    None,
                    "User",
                    Some(&upn),
                    &prop("UserState", "\"PendingAcceptance\"", "\"Accepted\""),
                ),
                initiated: user_initiator(&guid(rng), &email, &guest_ip),
                details: details(&[]),
            });
        }
        out
    };
    if rng.gen_bool(0.03) {
        // A redeem of the same guest before this invite: never counts for it (intended).
        let before = at - rng.gen_range(1..5) * DAY;
        rows.extend(redeem(rng, before, true));
    } else if let Some(d) = delay {
        if rng.gen_bool(0.1) {
            let fail_at = at + (d / 2).max(SEC);
            rows.extend(redeem(rng, fail_at, false));
        }
        if at + d < end {
            rows.extend(redeem(rng, at + d, true));
        }
    } else if rng.gen_bool(0.1) {
        // Tried and failed, never succeeded.
        let when = at + rng.gen_range(1..48) * HOUR;
        rows.extend(redeem(rng, when, false));
    }
}

fn noise_row(rng: &mut ChaCha8Rng, tenant: &Tenant, t: usize, when: i64) -> Row {
    let (category, operation, logged_by, op_type) = *NOISE.choose(rng).unwrap();
    let corr = guid(rng);
    let actor = tenant.users.choose(rng).unwrap();
    let initiated = if rng.gen_bool(0.2) {
        app_initiator(&guid(rng), "Microsoft Azure AD Connect", &guid(rng))
    } else {
        user_initiator(&guid(rng), actor, &ip(rng))
    };
    let subject = tenant.users.choose(rng).unwrap();
    let props = [
        prop(
            "StsRefreshTokensValidFrom",
            "[]",
            &format!("[\"{}\"]", when),
        ),
        prop(
            "Included Updated Properties",
            "",
            "\"StsRefreshTokensValidFrom\"",
        ),
    ]
    .join(",");
    let targets = match category {
        "ApplicationManagement" => target(
            &guid(rng),
            Some("Contoso HR App"),
            "Application",
            None,
            &props,
        ),
        "GroupManagement" => target(&guid(rng), Some("Finance Team"), "Group", None, &props),
        _ => target(&guid(rng), None, "User", Some(subject), &props),
    };
    Row {
        time: when,
        tenant: t,
        id: event_id(rng, "Directory", &corr),
        correlation: corr,
        category: category.into(),
        operation: operation.into(),
        result: if rng.gen_bool(0.97) {
            "success".into()
        } else {
            "failure".into()
        },
        logged_by,
        op_type,
        targets,
        initiated,
        details: details(&[("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")]),
    }
}

fn frame(rows: &[Row], tenants: &[Tenant], nested: bool) -> Result<DataFrame> {
    let s = |name: &str, f: &dyn Fn(&Row) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>())
    };
    let k = |name: &str, v: &str| Column::new(name.into(), vec![v.to_string(); rows.len()]);
    let times: Vec<i64> = rows.iter().map(|r| r.time).collect();
    let utc = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
    let time_col =
        |name: &str| -> Result<Column> { Ok(Column::new(name.into(), times.clone()).cast(&utc)?) };
    let df = DataFrame::new_infer_height(vec![
        s("TenantId", &|r| tenants[r.tenant].id.clone()),
        k("SourceSystem", "Azure AD"),
        time_col("TimeGenerated")?,
        s("ResourceId", &|r| {
            format!(
                "/tenants/{}/providers/Microsoft.aadiam",
                tenants[r.tenant].id
            )
        }),
        s("OperationName", &|r| r.operation.clone()),
        k("OperationVersion", "1.0"),
        s("Category", &|r| r.category.clone()),
        k("ResultType", ""),
        k("ResultSignature", "None"),
        k("ResultDescription", ""),
        k("DurationMs", "0"),
        s("CorrelationId", &|r| r.correlation.clone()),
        k("Resource", "Microsoft.aadiam"),
        k("ResourceGroup", "Microsoft.aadiam"),
        k("ResourceProvider", ""),
        k("Identity", ""),
        k("Level", "4"),
        k("Location", ""),
        s("AdditionalDetails", &|r| r.details.clone()),
        s("Id", &|r| r.id.clone()),
        s("InitiatedBy", &|r| r.initiated.clone()),
        s("LoggedByService", &|r| r.logged_by.to_string()),
        s("Result", &|r| r.result.clone()),
        k("ResultReason", ""),
        s("TargetResources", &|r| r.targets.clone()),
        s("AADTenantId", &|r| tenants[r.tenant].id.clone()),
        s("ActivityDisplayName", &|r| r.operation.clone()),
        time_col("ActivityDateTime")?,
        s("AADOperationType", &|r| r.op_type.to_string()),
        k("Type", "AuditLogs"),
    ])?;
    let df = df
        .lazy()
        .with_column(col("DurationMs").cast(DataType::Int64))
        .collect()?;
    if !nested {
        return Ok(df);
    }
    Ok(df
        .lazy()
        .with_columns([
            col("TargetResources").str().json_decode(targets_dtype()),
            col("InitiatedBy").str().json_decode(initiated_dtype()),
            col("AdditionalDetails").str().json_decode(details_dtype()),
        ])
        .collect()?)
}

fn strings(names: &[&str]) -> DataType {
    DataType::Struct(
        names
            .iter()
            .map(|n| Field::new((*n).into(), DataType::String))
            .collect(),
    )
}

/// The nested layout an inferring exporter (Spark, Fabric) writes.
pub fn targets_dtype() -> DataType {
    DataType::List(Box::new(DataType::Struct(vec![
        Field::new("id".into(), DataType::String),
        Field::new("displayName".into(), DataType::String),
        Field::new("type".into(), DataType::String),
        Field::new("userPrincipalName".into(), DataType::String),
        Field::new(
            "modifiedProperties".into(),
            DataType::List(Box::new(strings(&["displayName", "oldValue", "newValue"]))),
        ),
    ])))
}

pub fn initiated_dtype() -> DataType {
    let mut user = vec![
        Field::new("id".into(), DataType::String),
        Field::new("displayName".into(), DataType::String),
        Field::new("userPrincipalName".into(), DataType::String),
        Field::new("ipAddress".into(), DataType::String),
    ];
    user.push(Field::new(
        "roles".into(),
        DataType::List(Box::new(DataType::String)),
    ));
    DataType::Struct(vec![
        Field::new("user".into(), DataType::Struct(user)),
        Field::new(
            "app".into(),
            strings(&[
                "appId",
                "displayName",
                "servicePrincipalId",
                "servicePrincipalName",
            ]),
        ),
    ])
}

fn details_dtype() -> DataType {
    DataType::List(Box::new(strings(&["key", "value"])))
}

/// Writes the archive under `out` as `y=YYYY/m=MM/d=DD/part-NNNNN.parquet`.
pub fn generate(spec: &GenSpec, out: &Location) -> Result<GenStats> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let start_us = spec.start.div_euclid(1_000);
    let end_us = start_us + spec.days as i64 * DAY;
    let tenants = make_tenants(&mut rng, spec.tenants);
    let mut guests = guest_events(&mut rng, spec, &tenants, start_us, end_us);
    // Scenario invites from their own stream, so the rest of the archive does not depend on them.
    let mut srng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5CE7_A210);
    let mut serial = 0;
    for day in 0..spec.days as i64 {
        for (t, tenant) in tenants.iter().enumerate() {
            serial += 1;
            let at = start_us + day * DAY + srng.gen_range(0..DAY / MS) * MS;
            let kind = (day as usize + t) % scenario::KINDS;
            guests.push(scenario_invite(&mut srng, tenant, t, at, kind, serial));
        }
    }
    guests.retain(|r| r.time >= start_us && r.time < end_us);
    guests.sort_by_key(|r| r.time);
    let mut stats = GenStats {
        invites: guests
            .iter()
            .filter(|r| r.operation.eq_ignore_ascii_case("Invite external user"))
            .count() as u64,
        ..Default::default()
    };
    let sink = Sink::open(out.clone());
    let mut next_guest = 0;
    for day in 0..spec.days as i64 {
        let day_start = start_us + day * DAY;
        let mut rows: Vec<Row> = Vec::new();
        for (t, tenant) in tenants.iter().enumerate() {
            for _ in 0..spec.rows_per_day {
                let when = day_start + rng.gen_range(0..DAY / MS) * MS;
                rows.push(noise_row(&mut rng, tenant, t, when));
            }
        }
        while next_guest < guests.len() && guests[next_guest].time < day_start + DAY {
            rows.push(guests[next_guest].clone());
            next_guest += 1;
        }
        // Duplicate deliveries: the same event (same Id) written twice.
        let dups: Vec<Row> = rows
            .iter()
            .filter(|r| {
                let p = if r.logged_by == "Invited Users" || r.logged_by == "B2B Auth" {
                    0.03
                } else {
                    0.005
                };
                rng.gen_bool(p)
            })
            .cloned()
            .collect();
        rows.extend(dups);
        rows.sort_by_key(|r| r.time);
        let date: DateTime<Utc> = DateTime::from_timestamp_micros(day_start).expect("valid day");
        for (part, chunk) in rows.chunks(spec.rows_per_file).enumerate() {
            let df = frame(chunk, &tenants, spec.nested)?;
            let key = format!(
                "y={:04}/m={:02}/d={:02}/part-{part:05}.parquet",
                date.year(),
                date.month(),
                date.day()
            );
            let bytes = parquet_bytes(&df)?;
            stats.bytes += bytes.len() as u64;
            stats.rows += chunk.len() as u64;
            stats.files += 1;
            sink.put(&key, bytes)?;
        }
    }
    if stats.files == 0 {
        return Err(Error::Usage("nothing to generate".into()));
    }
    Ok(stats)
}
