//! The generator's raw material: tenants, AuditLogs rows before rendering, and the values in
//! them (ids, addresses, the JSON of the dynamic columns, case drift), all drawn from the seeded
//! stream.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(super) const MS: i64 = 1_000;
pub(super) const SEC: i64 = 1_000_000;
pub(super) const MIN: i64 = 60 * SEC;
pub(super) const HOUR: i64 = 60 * MIN;
pub(super) const DAY: i64 = 24 * HOUR;

pub(super) struct Tenant {
    pub(super) id: String,
    pub(super) domain: String,
    pub(super) admins: Vec<String>,
    pub(super) users: Vec<String>,
}

/// One AuditLogs row before rendering; times in microseconds.
#[derive(Clone)]
pub(super) struct Row {
    pub(super) time: i64,
    pub(super) tenant: usize,
    pub(super) id: String,
    pub(super) correlation: String,
    pub(super) category: String,
    pub(super) operation: String,
    pub(super) result: String,
    pub(super) logged_by: &'static str,
    pub(super) op_type: &'static str,
    pub(super) targets: String,
    pub(super) initiated: String,
    pub(super) details: String,
}

pub(super) fn guid(rng: &mut ChaCha8Rng) -> String {
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

pub(super) fn ip(rng: &mut ChaCha8Rng) -> String {
    let nets = ["203.0.113", "198.51.100", "192.0.2"];
    format!("{}.{}", nets.choose(rng).unwrap(), rng.gen_range(1..255))
}

/// JSON string literal (the generator's own values never need more than quote escaping,
/// but serde keeps it honest).
pub(super) fn js(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

pub(super) fn opt_js(s: Option<&str>) -> String {
    s.map(js).unwrap_or_else(|| "null".into())
}

pub(super) fn user_initiator(id: &str, upn: &str, ip: &str) -> String {
    format!(
        r#"{{"user":{{"id":{},"displayName":null,"userPrincipalName":{},"ipAddress":{},"roles":[]}}}}"#,
        js(id),
        js(upn),
        js(ip)
    )
}

pub(super) fn app_initiator(app_id: &str, name: &str, sp: &str) -> String {
    format!(
        r#"{{"app":{{"appId":{},"displayName":{},"servicePrincipalId":{},"servicePrincipalName":{}}}}}"#,
        js(app_id),
        js(name),
        js(sp),
        js(name)
    )
}

pub(super) fn target(
    id: &str,
    display: Option<&str>,
    kind: &str,
    upn: Option<&str>,
    props: &str,
) -> String {
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

pub(super) fn prop(name: &str, old: &str, new: &str) -> String {
    format!(
        r#"{{"displayName":{},"oldValue":{},"newValue":{}}}"#,
        js(name),
        js(old),
        js(new)
    )
}

pub(super) fn details(pairs: &[(&str, &str)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!(r#"{{"key":{},"value":{}}}"#, js(k), js(v)))
        .collect();
    format!("[{}]", items.join(","))
}

pub(super) const FIRST: [&str; 12] = [
    "jane", "omar", "li", "maria", "sven", "aiko", "pedro", "fatima", "noah", "chloe", "ivan",
    "zara",
];
pub(super) const LAST: [&str; 10] = [
    "doe", "haddad", "wei", "garcia", "berg", "tanaka", "silva", "khan", "smith", "martin",
];
pub(super) const PARTNERS: [&str; 8] = [
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
/// invite operation and must never count as one (reset re-invites, which `precise` reads, are
/// told with their guests' stories).
pub(super) const NOISE: [(&str, &str, &str, &str); 9] = [
    (
        "UserManagement",
        "Invite internal user to B2B collaboration",
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

pub(super) fn drift(rng: &mut ChaCha8Rng, s: &str, p: f64) -> String {
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

pub(super) fn event_id(rng: &mut ChaCha8Rng, prefix: &str, corr: &str) -> String {
    let suffix: String = (0..5).map(|_| rng.gen_range(b'A'..=b'Z') as char).collect();
    format!(
        "{prefix}_{corr}_{suffix}_{}",
        rng.gen_range(1_000_000..99_999_999)
    )
}

pub(super) fn make_tenants(rng: &mut ChaCha8Rng, n: u32) -> Vec<Tenant> {
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

pub(super) fn noise_row(rng: &mut ChaCha8Rng, tenant: &Tenant, t: usize, when: i64) -> Row {
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
