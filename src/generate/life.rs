//! The guest's life cycle around a story, as `precise` reads it: every invite carries its own
//! `InvitationId` (which its redeems name), and some stories get a renamed guest, a lost
//! redeem record, a redeem naming only the invitation or only the email, a deleted guest, or a
//! reset of the redemption (redeemed again or not). Drawn from a stream of their own.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::rows::{details, guid, target, user_initiator, Row, Tenant, DAY, HOUR};
use super::story::{Guests, Story};
use crate::rule::{INVITE_OP, REDEEM_OP};

/// XORed into the seed for the life-cycle stream.
pub(super) const LIFE_CYCLE_SEED: u64 = 0x24_1f_ec_1e;

/// The successful redeems of a story's rows (as the rule reads the operation).
fn is_redeem(r: &Row) -> bool {
    r.operation.eq_ignore_ascii_case(REDEEM_OP) && r.result.eq_ignore_ascii_case("success")
}

fn is_invite(r: &Row) -> bool {
    r.operation.eq_ignore_ascii_case(INVITE_OP)
}

/// `rows`' redeem texts naming `inv` as their invitation.
fn name_invitation(rows: &mut [Row], inv: &str) {
    const AT: &str = "InvitationId: ";
    for r in rows
        .iter_mut()
        .filter(|r| r.operation.eq_ignore_ascii_case(REDEEM_OP))
    {
        let Some(start) = r.targets.find(AT).map(|i| i + AT.len()) else {
            continue;
        };
        let rest = r.targets.get(start..).unwrap_or_default();
        let end = start + rest.find([',', '"']).unwrap_or(rest.len());
        r.targets.replace_range(start..end, inv);
    }
}

impl Guests {
    /// The life-cycle cases of the story `s`, whose rows start at `start`.
    pub(super) fn life_cycle(
        &mut self,
        side: &mut ChaCha8Rng,
        s: &Story,
        tenant: &Tenant,
        start: usize,
    ) {
        let mut invitation = String::new();
        for r in self.rows.iter_mut().skip(start).filter(|r| is_invite(r)) {
            invitation = guid(side);
            r.details = details(&[
                ("InvitationId", &invitation),
                ("invitedUserEmailAddress", &s.email),
            ]);
        }
        name_invitation(self.rows.get_mut(start..).unwrap_or_default(), &invitation);
        let redeemed = self
            .rows
            .iter()
            .skip(start)
            .filter(|r| is_redeem(r))
            .map(|r| r.time)
            .min();
        let story = |rows: &mut Vec<Row>| rows.split_off(start.min(rows.len()));
        match (redeemed, side.gen_range(0..100)) {
            // The guest was renamed before it redeemed: only the object id ties them.
            (Some(_), 0..=3) => {
                let renamed = format!("renamed.{}", s.upn);
                for r in self.rows.iter_mut().skip(start).filter(|r| !is_invite(r)) {
                    r.targets = r
                        .targets
                        .replace(&s.upn, &renamed)
                        .replace(&s.upn.to_uppercase(), &renamed);
                }
            }
            // The redeem record was lost: only the update accepting the invitation is left.
            (Some(_), 4..=6) => {
                let kept: Vec<Row> = story(&mut self.rows)
                    .into_iter()
                    .filter(|r| !is_redeem(r))
                    .collect();
                self.rows.extend(kept);
            }
            // A redeem naming only the invitation, without the guest's object.
            (Some(_), 7..=8) => {
                let text = format!("InvitationId: {invitation}, Source: One Time Passcode");
                for r in self.rows.iter_mut().skip(start).filter(|r| is_redeem(r)) {
                    r.targets = target("", Some(&text), "User", Some(""), "");
                }
            }
            // An admin resets the redemption; the guest redeems again, or never.
            (Some(at), 9..=13) => self.reset(side, s, tenant, at),
            // A redeem naming only the guest's email, without the guest's object.
            (Some(_), 14..=15) => {
                let text = format!("Email: {}, Source: Microsoft Account", s.email);
                for r in self.rows.iter_mut().skip(start).filter(|r| is_redeem(r)) {
                    r.targets = target("", Some(&text), "User", Some(""), "");
                }
            }
            // The guest is deleted before it redeemed.
            (None, 0..=3) if !s.app_initiated => self.delete(side, s, start),
            _ => {}
        }
    }

    fn reset(&mut self, side: &mut ChaCha8Rng, s: &Story, tenant: &Tenant, redeemed: i64) {
        let when = redeemed + side.gen_range(2..20) * DAY + side.gen_range(0..HOUR);
        if when >= self.end {
            return;
        }
        let by = tenant
            .admins
            .get(side.gen_range(0..tenant.admins.len()))
            .unwrap_or(&s.admin);
        let mut reset = s.invite(side, when, by);
        reset.operation = "Invite external user with reset invitation status".into();
        reset.op_type = "Update";
        let invitation = guid(side);
        reset.details = details(&[
            ("InvitationId", &invitation),
            ("invitedUserEmailAddress", &s.email),
        ]);
        self.rows.push(reset);
        if side.gen_bool(0.5) {
            let again = when + side.gen_range(1..72) * HOUR;
            if again < self.end {
                let ip = super::rows::ip(side);
                let mut rows = s.redeem(side, again, true, &ip);
                name_invitation(&mut rows, &invitation);
                self.rows.extend(rows);
            }
        }
    }

    fn delete(&mut self, side: &mut ChaCha8Rng, s: &Story, start: usize) {
        let last = self
            .rows
            .iter()
            .skip(start)
            .filter(|r| is_invite(r))
            .map(|r| r.time)
            .max()
            .unwrap_or(0);
        let when = last + side.gen_range(1..4) * DAY + side.gen_range(0..HOUR);
        if when >= self.end {
            return;
        }
        let corr = guid(side);
        let op = if side.gen_bool(0.3) {
            "Hard Delete user"
        } else {
            "Delete user"
        };
        self.rows.push(Row {
            time: when,
            tenant: s.t,
            id: super::rows::event_id(side, "Directory", &corr),
            correlation: corr,
            category: "UserManagement".into(),
            operation: op.into(),
            result: "success".into(),
            logged_by: "Core Directory",
            op_type: "Delete",
            targets: target(&s.guest_id, None, "User", Some(&s.upn), ""),
            initiated: user_initiator(&guid(side), &s.admin, &s.admin_ip),
            details: details(&[]),
        });
    }
}
