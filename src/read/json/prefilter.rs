//! Which lines can hold an invite or a redeem, decided on raw bytes before any JSON is parsed.
//!
//! A line is kept when it holds either operation name, ASCII case ignored, anywhere. Dropping
//! the others is safe because the rule matches `OperationName` with a case-insensitive regex
//! (`rule::operation_pattern`), and a JSON string can spell that value without holding its
//! bytes in only three ways, each of which keeps the line too:
//! - a `\uXXXX` escape (letters and spaces have no other escape in JSON): any line holding `\u`
//!   is kept;
//! - a character whose Unicode case folding is an ASCII letter of the names: `ſ` (U+017F,
//!   folds to `s`) and the Kelvin sign `K` (U+212A, folds to `k`) are the only two; a line
//!   holding either is kept;
//! - bytes that are not UTF-8: such a line cannot parse as JSON, and is kept to be counted as
//!   unparseable.
//!
//! `tests` proves it on generated spellings of both names against the full parse.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder};

use crate::rule::{INVITE_OP, REDEEM_OP};

/// The byte patterns that keep a line.
pub(crate) struct Prefilter {
    names: AhoCorasick,
    escapes: AhoCorasick,
}

impl Prefilter {
    pub(crate) fn new() -> Self {
        // Built from two literals: construction cannot fail (a failure would be a bug).
        #[allow(clippy::expect_used)]
        let names = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build([INVITE_OP, REDEEM_OP])
            .expect("two literal patterns");
        #[allow(clippy::expect_used)]
        let escapes = AhoCorasick::new([&b"\\u"[..], "ſ".as_bytes(), "\u{212a}".as_bytes()])
            .expect("three literal patterns");
        Prefilter { names, escapes }
    }

    /// Can `line` hold an invite or a redeem?
    pub(crate) fn keeps(&self, line: &[u8]) -> bool {
        self.names.is_match(line)
            || self.escapes.is_match(line)
            || std::str::from_utf8(line).is_err()
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

    #[test]
    fn a_dropped_line_is_never_a_candidate() {
        let re = regex::Regex::new(&operation_pattern()).unwrap();
        let p = Prefilter::new();
        let mut rng = ChaCha8Rng::seed_from_u64(25);
        let (mut candidates, mut dropped) = (0, 0);
        let names = [INVITE_OP, REDEEM_OP, "update user", "invite external uker"];
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
            if !p.keeps(line.as_bytes()) {
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
    fn plain_lines_are_kept_or_dropped_by_name() {
        let p = Prefilter::new();
        assert!(p.keeps(br#"{"operationName":"INVITE EXTERNAL USER"}"#));
        assert!(p.keeps(br#"{"OperationName":"Redeem external user invite"}"#));
        assert!(!p.keeps(br#"{"OperationName":"Update user"}"#));
        assert!(p.keeps(br#"{"OperationName":"Update user","x":"\u00e9"}"#));
        assert!(p.keeps(b"{\"OperationName\":\"\xff\"}"));
    }
}
