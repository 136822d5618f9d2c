//! Which lines can hold an event the run reads, decided on raw bytes before any JSON is parsed.
//!
//! A line is kept when it holds an operation name the run reads (invites and redeems; with the
//! guest's life cycle, `precise`, also reset re-invites, deletions, and user updates in lines
//! that mention `UserState`), ASCII case ignored, as a whole JSON string (`"Invite external
//! user"`). Dropping the others is safe because the rule matches the whole `OperationName` with
//! a case-insensitive regex (`rule::operation_pattern`), an update accepts an invitation only
//! through a `UserState` property, and a JSON
//! string can spell that value other than as those bytes between quotes in only three ways,
//! each of which keeps the line too:
//! - a `\uXXXX` escape (letters and spaces have no other escape in JSON): any line holding `\u`
//!   is kept;
//! - a character whose Unicode case folding is an ASCII letter of the names: `ſ` (U+017F,
//!   folds to `s`) and the Kelvin sign `K` (U+212A, folds to `k`) are the only two; a line
//!   holding either is kept;
//! - bytes that are not UTF-8: such a line cannot parse as JSON, and is kept to be counted as
//!   unparseable.
//!
//! `tests` proves it on generated spellings of the names against the full parse. The search is
//! a few SIMD passes over the line (`memchr`): the `x` of `external`, which the names of invites
//! and redeems share, anchors the case-insensitive comparison (the space before `user` anchors
//! the life cycle's other names); the two characters are plain substrings, looked for only in
//! a line not all ASCII. The escape is taken from the walk of a dropped line (`json::triage`),
//! which meets every escape of the line anyway, and looked for as a substring only in a line
//! the walk cannot read.

use memchr::memmem::Finder;

use super::marks::Kind;
use crate::rule::{DELETE_OPS, INVITE_OP, REDEEM_OP, RESET_INVITE_OP, UPDATE_USER_OP, USER_STATE};

/// What the names of invites and redeems share, the anchor of their search.
const COMMON: &[u8] = b"external user";

/// The byte patterns that keep a line.
pub(crate) struct Prefilter {
    /// The escape that can spell any character.
    escape: Finder<'static>,
    /// `ſ` and `K`, the two characters other than ASCII that fold onto a letter of the names.
    folded: [Finder<'static>; 2],
    /// The names holding [`COMMON`] (its `x` anchors their search), and where it starts.
    by_x: Vec<(usize, &'static [u8])>,
    /// The other names (the life cycle's `… user`): the space before `user` anchors them.
    by_space: Vec<(usize, &'static [u8])>,
}

impl Prefilter {
    /// The prefilter for invites and redeems, or (`lifecycle`) for every operation of the
    /// guest's life cycle.
    pub(crate) fn new(lifecycle: bool) -> Self {
        let mut names = vec![INVITE_OP, REDEEM_OP];
        if lifecycle {
            names.extend([RESET_INVITE_OP, UPDATE_USER_OP]);
            names.extend(DELETE_OPS);
        }
        let (mut by_x, mut by_space) = (Vec::new(), Vec::new());
        for name in names {
            let n = name.as_bytes();
            match n.windows(COMMON.len()).position(|w| w == COMMON) {
                Some(i) => by_x.push((i, n)),
                // Every such name ends in ` user` (a test checks it).
                None => by_space.push((n.len() - 5, n)),
            }
        }
        Prefilter {
            escape: Finder::new(b"\\u"),
            folded: [Finder::new("ſ"), Finder::new("\u{212a}")],
            by_x,
            by_space,
        }
    }

    /// Can `line` (whose bytes are `kind`) hold an event the run reads, short of a `\u`
    /// escape (the walk meets those: `json::triage`)?
    pub(crate) fn keeps_spelled(&self, line: &[u8], kind: Kind) -> bool {
        self.holds_a_name(line)
            || (!kind.printable
                && (!kind.utf8 || self.folded.iter().any(|f| f.find(line).is_some())))
    }

    /// Does `line` hold a `\u` escape, which can spell any character?
    pub(crate) fn keeps_escaped(&self, line: &[u8], kind: Kind) -> bool {
        kind.backslash && self.escape.find(line).is_some()
    }

    /// Whether a name is in `line` as a whole JSON string (`"Invite external user"`), ASCII
    /// case ignored. Without an escape the string can hold the name only so: the rule matches
    /// the whole value, and the other ways to spell it are kept by [`Self::keeps`]. Every `x`
    /// (either case) is tried as the one of `external`, and (for the life cycle's other names)
    /// every space as the one before `user`: one SIMD pass over the line each, the rare hits
    /// checked in place.
    fn holds_a_name(&self, line: &[u8]) -> bool {
        const X: usize = 1; // the `x` of COMMON
        let x = || memchr::memchr2_iter(b'x', b'X', line).filter_map(|p| p.checked_sub(X));
        let space = || memchr::memchr_iter(b' ', line);
        whole_string_at(line, x(), &self.by_x)
            || (!self.by_space.is_empty() && whole_string_at(line, space(), &self.by_space))
    }
}

/// Whether one of `names` (each with the offset its anchor sits at) is a whole JSON string of
/// `line` with its anchor at one of `anchors`; "update user" only in a line holding
/// `UserState`, without which such an update accepts nothing.
fn whole_string_at(
    line: &[u8],
    mut anchors: impl Iterator<Item = usize>,
    names: &[(usize, &'static [u8])],
) -> bool {
    anchors.any(|p| {
        names.iter().any(|&(at, name)| {
            let Some(start) = p.checked_sub(at + 1) else {
                return false;
            };
            line.get(start..start + name.len() + 2).is_some_and(|w| {
                w.first() == Some(&b'"')
                    && w.last() == Some(&b'"')
                    && w.get(1..=name.len())
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            }) && (name != UPDATE_USER_OP.as_bytes()
                || memchr::memmem::find(line, USER_STATE.as_bytes()).is_some())
        })
    })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::rule::{lifecycle_operation_pattern, operation_pattern};

    /// `name` spelled as an exporter might: random case, `ſ` for `s`, `K` for `k`, and random
    /// characters as `\uXXXX` escapes; as it reads once parsed, and as JSON text.
    fn spelled(name: &str, rng: &mut ChaCha8Rng) -> (String, String) {
        let (mut value, mut json) = (String::new(), String::new());
        for c in name.chars() {
            let c = match c {
                's' if rng.gen_bool(0.2) => 'ſ',
                'k' if rng.gen_bool(0.2) => '\u{212a}',
                c if rng.gen_bool(0.5) => c.to_ascii_uppercase(),
                c => c,
            };
            value.push(c);
            if rng.gen_bool(0.1) {
                json.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                json.push(c);
            }
        }
        (value, json)
    }

    /// Whether the scan parses `line` as a possible candidate (the prefilter, with the walk
    /// for escapes).
    fn keeps(p: &Prefilter, line: &[u8]) -> bool {
        let mut m = super::super::marks::Marks::default();
        m.mark(line);
        matches!(
            super::super::triage(p, line, &m),
            super::super::Triage::Keep
        )
    }

    /// Lines naming `names` in random spellings and shapes, the `UserState` property in some;
    /// asserts that `p` keeps every one whose operation `pattern` matches (an update only with
    /// that property) and drops some.
    fn never_drops_a_candidate(p: &Prefilter, pattern: &str, names: &[&str], seed: u64) {
        let re = regex::Regex::new(pattern).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut candidates, mut dropped) = (0, 0);
        for i in 0..20_000 {
            let (value, json) = spelled(names[i % names.len()], &mut rng);
            let state = match rng.gen_bool(0.5) {
                true => r#","modifiedProperties":[{"displayName":"UserState"}]"#,
                false => "",
            };
            let line = match i % 3 {
                0 => {
                    format!(r#"{{"time":"2026-01-01T00:00:00Z","operationName":"{json}"{state}}}"#)
                }
                1 => format!(r#"{{"properties":{{"activityDisplayName":"{json}"{state}}}}}"#),
                _ => format!(r#"{{"TenantId":"t","OperationName":"{json}","Id":"{i}"{state}}}"#),
            };
            let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
            let name = [
                "/operationName",
                "/properties/activityDisplayName",
                "/OperationName",
            ]
            .iter()
            .find_map(|at| parsed.pointer(at)?.as_str())
            .unwrap();
            assert_eq!(name, value);
            let update = name
                .to_lowercase()
                .replace('ſ', "s")
                .replace('\u{212a}', "k")
                == UPDATE_USER_OP;
            let candidate = re.is_match(name) && (!update || !state.is_empty());
            candidates += usize::from(candidate);
            if !keeps(p, line.as_bytes()) {
                dropped += 1;
                assert!(!candidate, "dropped a candidate: {line}");
            }
        }
        // Both outcomes happen, or the test proves nothing.
        assert!(
            candidates > 5_000 && dropped > 1_000,
            "{candidates} {dropped}"
        );
    }

    #[test]
    fn a_dropped_line_is_never_a_candidate() {
        let names = [
            INVITE_OP,
            REDEEM_OP,
            "update user",
            "invite external uker",
            "invite external user with reset invitation status",
            " redeem external user invite",
        ];
        never_drops_a_candidate(&Prefilter::new(false), &operation_pattern(), &names, 25);
    }

    #[test]
    fn a_dropped_line_is_never_an_event_of_the_life_cycle() {
        let names = [
            INVITE_OP,
            REDEEM_OP,
            RESET_INVITE_OP,
            UPDATE_USER_OP,
            "update users",
            "delete user",
            "hard delete user",
            "delete external user",
            "delete  user",
            "harddelete user",
            "add user",
        ];
        let p = Prefilter::new(true);
        never_drops_a_candidate(&p, &lifecycle_operation_pattern(), &names, 24);
    }

    #[test]
    fn unicode_folding_reaches_the_names_only_through_two_characters() {
        // Every character whose simple case folding lands on an ASCII letter of the names is
        // ASCII itself, `ſ` or `K`: what the prefilter relies on.
        let letters: std::collections::BTreeSet<char> = lifecycle_operation_pattern()
            .chars()
            .filter(char::is_ascii_lowercase)
            .collect();
        for l in letters {
            let re =
                regex::Regex::new(&format!("(?i)^{}$", regex::escape(&l.to_string()))).unwrap();
            let mut buf = [0u8; 4];
            for c in (0x80u32..0x11_0000).filter_map(char::from_u32) {
                if re.is_match(c.encode_utf8(&mut buf)) {
                    assert!(matches!(c, 'ſ' | '\u{212a}'), "{c:?} folds to {l:?}");
                }
            }
        }
    }

    #[test]
    fn every_name_holds_its_anchor() {
        let p = Prefilter::new(true);
        assert_eq!((p.by_x.len(), p.by_space.len()), (4, 3));
        for (at, name) in p.by_x {
            assert_eq!(name.get(at..at + COMMON.len()), Some(COMMON));
        }
        for (at, name) in p.by_space {
            assert_eq!(name.get(at..), Some(&b" user"[..]));
        }
        let pairs = Prefilter::new(false);
        assert_eq!((pairs.by_x.len(), pairs.by_space.len()), (2, 0));
    }

    #[test]
    fn plain_lines_are_kept_or_dropped_by_name() {
        let p = Prefilter::new(false);
        assert!(keeps(&p, br#"{"operationName":"INVITE EXTERNAL USER"}"#));
        assert!(keeps(
            &p,
            br#"{"OperationName":"Redeem external user invite"}"#
        ));
        assert!(!keeps(&p, br#"{"OperationName":"Update user"}"#));
        assert!(keeps(
            &p,
            br#"{"OperationName":"Update user","x":"\u00e9"}"#
        ));
        // An escaped backslash before a `u` is no escape: the walk reads the line and drops it.
        assert!(!keeps(
            &p,
            br#"{"OperationName":"Update user","x":"\\u00e9"}"#
        ));
        assert!(keeps(&p, b"{\"OperationName\":\"\xff\"}"));
        // A name as a whole string, at either end of a line, next to other `x`s.
        assert!(keeps(&p, br#""invite external USER""#));
        assert!(keeps(&p, br#"xx"redeem eXternal user invite""#));
        assert!(!keeps(&p, br#""redeem external user invit""#));
        assert!(!keeps(&p, br#""nvite external user""#));
        assert!(keeps(&p, r#"é "invite external user""#.as_bytes()));
        assert!(keeps(&p, "ſ".as_bytes()));
        assert!(!keeps(&p, r#"é "update user""#.as_bytes()));
        // Within a longer value it is another operation (the rule matches whole values).
        let reset =
            br#"{"activityDisplayName":"Invite external user with reset invitation status"}"#;
        assert!(!keeps(&p, reset));
        assert!(!keeps(&p, br#"{"x":"Redeem external user invite later"}"#));
        let life = Prefilter::new(true);
        assert!(keeps(&life, reset));
        assert!(keeps(&life, br#"{"OperationName":"Hard Delete user"}"#));
        assert!(keeps(&life, br#" "delete USER""#));
        assert!(!keeps(&life, br#"{"OperationName":"Update user"}"#));
        assert!(keeps(
            &life,
            br#"{"OperationName":"Update user","p":[{"displayName":"UserState"}]}"#
        ));
        assert!(!keeps(
            &life,
            br#"{"OperationName":"Add user","p":"UserState"}"#
        ));
    }
}
