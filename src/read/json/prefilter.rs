//! Which lines can hold an invite or a redeem, decided on raw bytes before any JSON is parsed.
//!
//! A line is kept when it holds either operation name, ASCII case ignored, as a whole JSON
//! string (`"Invite external user"`). Dropping the others is safe because the rule matches the
//! whole `OperationName` with a case-insensitive regex (`rule::operation_pattern`), and a JSON
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
//! `tests` proves it on generated spellings of both names against the full parse. The search
//! is a few SIMD passes over the line (`memchr`): the `x` of `external`, which both names share,
//! anchors the case-insensitive comparison; the escape and the two characters are plain
//! substrings, looked for only in a line that is not all ASCII for the latter.

use memchr::memmem::Finder;

use super::marks::Kind;
use crate::rule::{INVITE_OP, REDEEM_OP};

/// What both names share, and where it sits in each.
const COMMON: &[u8] = b"external user";

/// The byte patterns that keep a line.
pub(crate) struct Prefilter {
    /// The escape that can spell any character.
    escape: Finder<'static>,
    /// `ſ` and `K`, the two characters other than ASCII that fold onto a letter of the names.
    folded: [Finder<'static>; 2],
    /// Where [`COMMON`] starts in each name, and the name.
    names: [(usize, &'static [u8]); 2],
}

impl Prefilter {
    pub(crate) fn new() -> Self {
        let at = |name: &'static str| {
            let n = name.as_bytes();
            // Both names hold COMMON (a test checks it): `windows` finds where.
            let i = n.windows(COMMON.len()).position(|w| w == COMMON);
            (i.unwrap_or(usize::MAX), n)
        };
        Prefilter {
            escape: Finder::new(b"\\u"),
            folded: [Finder::new("ſ"), Finder::new("\u{212a}")],
            names: [at(INVITE_OP), at(REDEEM_OP)],
        }
    }

    /// Can `line` (whose bytes are `kind`) hold an invite or a redeem?
    pub(crate) fn keeps(&self, line: &[u8], kind: Kind) -> bool {
        self.holds_a_name(line)
            || (kind.backslash && self.escape.find(line).is_some())
            || (!kind.printable
                && (!kind.utf8 || self.folded.iter().any(|f| f.find(line).is_some())))
    }

    /// Whether either name is in `line` as a whole JSON string (`"Invite external user"`),
    /// ASCII case ignored. Without an escape the string can hold the name only so: the rule
    /// matches the whole value, and the other ways to spell it are kept by [`Self::keeps`].
    /// Every `x` (either case) is tried as the one of `external`: one SIMD pass over the line,
    /// the rare hits checked in place.
    fn holds_a_name(&self, line: &[u8]) -> bool {
        const X: usize = 1; // the `x` of COMMON
        memchr::memchr2_iter(b'x', b'X', line).any(|p| {
            self.names.iter().any(|&(at, name)| {
                let Some(start) = p.checked_sub(at + X + 1) else {
                    return false;
                };
                line.get(start..start + name.len() + 2).is_some_and(|w| {
                    w.first() == Some(&b'"')
                        && w.last() == Some(&b'"')
                        && w.get(1..=name.len())
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::rule::operation_pattern;

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

    fn keeps(p: &Prefilter, line: &[u8]) -> bool {
        let kind = super::super::marks::Marks::default().mark(line);
        p.keeps(line, kind)
    }

    #[test]
    fn a_dropped_line_is_never_a_candidate() {
        let re = regex::Regex::new(&operation_pattern()).unwrap();
        let p = Prefilter::new();
        let mut rng = ChaCha8Rng::seed_from_u64(25);
        let (mut candidates, mut dropped) = (0, 0);
        let names = [
            INVITE_OP,
            REDEEM_OP,
            "update user",
            "invite external uker",
            "invite external user with reset invitation status",
            " redeem external user invite",
        ];
        for i in 0..20_000 {
            let (value, json) = spelled(names[i % names.len()], &mut rng);
            let line = match i % 3 {
                0 => format!(r#"{{"time":"2026-01-01T00:00:00Z","operationName":"{json}"}}"#),
                1 => format!(r#"{{"properties":{{"activityDisplayName":"{json}"}}}}"#),
                _ => format!(r#"{{"TenantId":"t","OperationName":"{json}","Id":"{i}"}}"#),
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
            let candidate = re.is_match(name);
            candidates += usize::from(candidate);
            if !keeps(&p, line.as_bytes()) {
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
    fn unicode_folding_reaches_the_names_only_through_two_characters() {
        // Every character whose simple case folding lands on an ASCII letter of the names is
        // ASCII itself, `ſ` or `K`: what the prefilter relies on.
        let letters: std::collections::BTreeSet<char> =
            INVITE_OP.chars().chain(REDEEM_OP.chars()).collect();
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
    fn both_names_hold_the_common_part() {
        let p = Prefilter::new();
        for (at, name) in p.names {
            assert_eq!(name.get(at..at + COMMON.len()), Some(COMMON));
        }
    }

    #[test]
    fn plain_lines_are_kept_or_dropped_by_name() {
        let p = Prefilter::new();
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
    }
}
