//! Guest stories: an invite, sometimes a re-invite, and redeems after minutes, days, weeks or
//! never, with the awkward cases the rule must survive. Every value comes from the one seeded
//! stream, in a fixed order: the same seed gives the same archive, byte for byte.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::life::LIFE_CYCLE_SEED;
use super::rows::{
    app_initiator, details, drift, event_id, guid, ip, prop, target, user_initiator, Row, Tenant,
    DAY, FIRST, HOUR, LAST, MIN, MS, PARTNERS, SEC,
};
use super::GenSpec;

/// Guest events (invites, redeems and their companions) for the whole period.
pub(super) fn guest_events(
    rng: &mut ChaCha8Rng,
    spec: &GenSpec,
    tenants: &[Tenant],
    start: i64,
    end: i64,
) -> Vec<Row> {
    let mut g = Guests {
        shared: Vec::new(),
        rows: Vec::new(),
        end,
    };
    // The life-cycle cases `precise` reads draw from a stream of their own: the other events
    // stay what the same seed always gave.
    let mut side = ChaCha8Rng::seed_from_u64(spec.seed ^ LIFE_CYCLE_SEED);
    let mut serial = 0u64;
    for day in 0..spec.days as i64 {
        for (t, tenant) in tenants.iter().enumerate() {
            let whole = spec.invites_per_day.floor() as u32;
            let extra = rng.gen_bool(spec.invites_per_day.fract().clamp(0.0, 1.0)) as u32;
            for _ in 0..whole + extra {
                serial += 1;
                let at = start + day * DAY + rng.gen_range(0..DAY / MS) * MS;
                let start = g.rows.len();
                let s = g.story(rng, tenant, t, at, serial);
                g.life_cycle(&mut side, &s, tenant, start);
            }
        }
    }
    g.rows
}

/// The stories told so far.
pub(super) struct Guests {
    /// (upn, email) of every guest invited in some tenant.
    shared: Vec<(String, String)>,
    pub(super) rows: Vec<Row>,
    /// End of the period: no redeem is written after it.
    pub(super) end: i64,
}

/// One guest invited into one tenant, and how the invite looks.
pub(super) struct Story {
    pub(super) t: usize,
    pub(super) upn: String,
    pub(super) email: String,
    pub(super) admin: String,
    pub(super) admin_ip: String,
    pub(super) guest_id: String,
    pub(super) app_initiated: bool,
    no_upn: bool,
}

impl Guests {
    fn story(
        &mut self,
        rng: &mut ChaCha8Rng,
        tenant: &Tenant,
        t: usize,
        at: i64,
        serial: u64,
    ) -> Story {
        let s = Story::new(rng, tenant, t, serial, &mut self.shared);
        self.rows.push(s.invite(rng, at, &s.admin));
        // A re-invite a few days later (same guest, possibly another admin).
        if rng.gen_bool(0.08) {
            let later = at + rng.gen_range(1..10) * DAY + rng.gen_range(0..HOUR);
            let by = tenant.admins.choose(rng).unwrap().clone();
            self.rows.push(s.invite(rng, later, &by));
        }
        let delay = redeem_delay(rng);
        let guest_ip = ip(rng);
        let mut redeem = |rng: &mut ChaCha8Rng, when: i64, ok: bool| {
            self.rows.extend(s.redeem(rng, when, ok, &guest_ip));
        };
        if rng.gen_bool(0.03) {
            // A redeem of the same guest before this invite: never counts for it (intended).
            let before = at - rng.gen_range(1..5) * DAY;
            redeem(rng, before, true);
        } else if let Some(d) = delay {
            if rng.gen_bool(0.1) {
                redeem(rng, at + (d / 2).max(SEC), false);
            }
            if at + d < self.end {
                redeem(rng, at + d, true);
            }
        } else if rng.gen_bool(0.1) {
            // Tried and failed, never succeeded.
            let when = at + rng.gen_range(1..48) * HOUR;
            redeem(rng, when, false);
        }
        s
    }
}

/// Redeem delay mixture: minutes, hours to days, days to weeks, never.
fn redeem_delay(rng: &mut ChaCha8Rng) -> Option<i64> {
    match rng.gen_range(0..100) {
        0..=39 => Some(rng.gen_range(1..120) * MIN + rng.gen_range(0..60_000) * MS),
        40..=64 => Some(rng.gen_range(2..72) * HOUR + rng.gen_range(0..3_600_000) * MS),
        65..=74 => Some(rng.gen_range(5..25) * DAY + rng.gen_range(0..DAY / MS) * MS),
        _ => None,
    }
}

impl Story {
    fn new(
        rng: &mut ChaCha8Rng,
        tenant: &Tenant,
        t: usize,
        serial: u64,
        shared: &mut Vec<(String, String)>,
    ) -> Self {
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
        Story {
            t,
            upn,
            email,
            admin,
            admin_ip,
            guest_id,
            app_initiated,
            no_upn,
        }
    }

    pub(super) fn invite(&self, rng: &mut ChaCha8Rng, when: i64, by: &str) -> Row {
        let corr = guid(rng);
        let initiated = if self.app_initiated {
            app_initiator(&guid(rng), "Microsoft Teams Services", &guid(rng))
        } else {
            user_initiator(&guid(rng), by, &self.admin_ip)
        };
        let target_upn = if self.no_upn {
            if rng.gen_bool(0.5) {
                None
            } else {
                Some("")
            }
        } else {
            Some(self.upn.as_str())
        };
        Row {
            time: when,
            tenant: self.t,
            id: event_id(rng, "Invited Users", &corr),
            correlation: corr,
            category: drift(rng, "UserManagement", 0.1),
            operation: drift(rng, "Invite external user", 0.1),
            result: "success".into(),
            logged_by: "Invited Users",
            op_type: "Add",
            targets: target(&self.guest_id, None, "User", target_upn, ""),
            initiated,
            details: details(&[("invitedUserEmailAddress", &self.email)]),
        }
    }

    /// A redeem (and, when it succeeded, the user update that comes with it).
    pub(super) fn redeem(
        &self,
        rng: &mut ChaCha8Rng,
        when: i64,
        ok: bool,
        guest_ip: &str,
    ) -> Vec<Row> {
        let corr = guid(rng);
        let targets = self.redeem_targets(rng);
        let mut out = vec![Row {
            time: when,
            tenant: self.t,
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
            initiated: user_initiator(&guid(rng), &self.email, guest_ip),
            details: details(&[("invitationId", &guid(rng))]),
        }];
        if ok {
            // The same redemption as a user update, same second.
            out.push(Row {
                time: when,
                tenant: self.t,
                id: event_id(rng, "Directory", &corr),
                correlation: corr,
                category: "UserManagement".into(),
                operation: "Update user".into(),
                result: "success".into(),
                logged_by: "Core Directory",
                op_type: "Update",
                targets: target(
                    &self.guest_id,
                    None,
                    "User",
                    Some(&self.upn),
                    &prop("UserState", r#"["PendingAcceptance"]"#, r#"["Accepted"]"#),
                ),
                initiated: user_initiator(&guid(rng), &self.email, guest_ip),
                details: details(&[]),
            });
        }
        out
    }

    /// Where a redeem carries the guest's UPN: each place archives have been seen to put it.
    fn redeem_targets(&self, rng: &mut ChaCha8Rng) -> String {
        let (guest, email) = (&self.guest_id, &self.email);
        // Case drift of the UPN between invite and redeem.
        let r_upn = if rng.gen_bool(0.15) {
            self.upn.to_uppercase()
        } else {
            self.upn.clone()
        };
        let text = format!(
            "UPN: {r_upn}, Email: {email}, InvitationId: {}, Source: One Time Passcode",
            guid(rng)
        );
        match rng.gen_range(0..100) {
            // Public samples: the text in displayName, the bare UPN in userPrincipalName.
            0..=64 => target(guest, Some(&text), "User", Some(&r_upn), ""),
            // Seen in archives: the text in userPrincipalName.
            65..=89 => target(guest, Some(email), "User", Some(&text), ""),
            // No text anywhere: only the bare UPN.
            90..=97 => target(guest, Some(email), "User", Some(&r_upn), ""),
            // Malformed: a display name where the UPN belongs; no UPN can be derived.
            _ => target(guest, Some(email), "User", Some("Guest User"), ""),
        }
    }
}
