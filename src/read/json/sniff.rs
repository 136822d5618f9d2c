//! The envelope of a line the prefilter dropped, read without parsing the line: one walk over
//! its top-level object that takes the few string fields the counts need and skips every
//! other value by its brackets, strings found by SIMD (`memchr`). Nearly every line of an
//! archive is such a line, and a full parse of each would be most of a scan's work.
//!
//! The walk gives up (and the caller parses the line in full) on anything it does not read
//! exactly as the parse would: a key or a wanted value holding an escape, a key given twice,
//! bytes that are not UTF-8, a control character, or a line that is not one JSON object: the
//! values it skips have their grammar checked (objects, arrays, strings and their escapes,
//! literals, numbers), so a line it reads is one the parse reads too.

use super::marks::Marks;

/// The top-level fields of a dropped line that the counts read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Sniffed<'a> {
    pub(super) time: Option<&'a str>,
    pub(super) time_generated: Option<&'a str>,
    pub(super) tenant_id: Option<&'a str>,
    pub(super) table_tenant: Option<&'a str>,
    pub(super) resource_id: Option<&'a str>,
    /// The line has an object `properties` (a diagnostic record).
    pub(super) properties: bool,
    /// Some string holds a `\u` escape.
    pub(super) unicode_escape: bool,
}

/// How deep the values may nest below the envelope (deeper ones are left to the parse, whose limit is 128).
const DEPTH: usize = 100;

/// Where a walk stands: the line and the position in it.
struct Walk<'a, 'm> {
    line: &'a [u8],
    marks: &'m Marks,
    at: usize,
    /// A `\u` escape was met.
    unicode_escape: bool,
}

/// The fields of `line`, which `marks` marked, or `None`: parse it in full.
pub(super) fn sniff<'a>(line: &'a [u8], marks: &Marks) -> Option<Sniffed<'a>> {
    let kind = marks.kind();
    // A control character is whitespace between tokens, or an error inside a string: the
    // parse tells which.
    if kind.control || !kind.utf8 {
        return None;
    }
    let mut w = Walk {
        line,
        marks,
        at: 0,
        unicode_escape: false,
    };
    let mut out = Sniffed::default();
    // The parse rejects a field it reads given twice (and ignores other repeated keys).
    let mut seen = 0u8;
    w.expect(b'{')?;
    if w.peek()? == b'}' {
        w.at += 1;
        return w.at_end().then_some(out);
    }
    loop {
        w.expect(b'"')?;
        let key = w.plain_string()?;
        let (bit, slot) = match key {
            b"time" => (1, Some(&mut out.time)),
            b"TimeGenerated" => (2, Some(&mut out.time_generated)),
            b"tenantId" => (4, Some(&mut out.tenant_id)),
            b"TenantId" => (8, Some(&mut out.table_tenant)),
            b"resourceId" => (16, Some(&mut out.resource_id)),
            b"properties" => (32, None),
            _ => (0, None),
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        w.expect(b':')?;
        match (slot, w.peek()?) {
            (Some(slot), b'"') => {
                w.at += 1;
                *slot = Some(checked_text(w.plain_string()?));
            }
            // A wanted field that is not a string: the parse decides.
            (Some(_), _) => return None,
            (None, open) if key == b"properties" => match open {
                b'{' => {
                    out.properties = true;
                    w.skip_value(DEPTH)?;
                }
                b'n' => w.skip_value(DEPTH)?,
                // Neither an object nor null: the parse rejects the line.
                _ => return None,
            },
            (None, _) => w.skip_value(DEPTH)?,
        }
        match w.next()? {
            b',' => continue,
            b'}' => {
                out.unicode_escape = w.unicode_escape;
                return w.at_end().then_some(out);
            }
            _ => return None,
        }
    }
}

/// A string's bytes between its quotes, as text. Checked as part of its line (`sniff` reads only
/// UTF-8 lines), and cut at quotes, which are ASCII: it is UTF-8 too. Checking each again was
/// a thirtieth of a JSON scan's CPU.
#[allow(unsafe_code)]
fn checked_text(b: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(b).is_ok());
    // SAFETY: see above; `sniff` returns before any read when its line is not UTF-8.
    unsafe { std::str::from_utf8_unchecked(b) }
}

impl<'a> Walk<'a, '_> {
    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.line.get(self.at) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// The rest of a string whose opening quote is consumed, when it holds no escape.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        let end = self.marks.next(start)?;
        if self.line.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        self.line.get(start..end)
    }

    /// Past the rest of a string whose opening quote is consumed, escapes checked.
    fn skip_string(&mut self) -> Option<()> {
        loop {
            let i = self.marks.next(self.at)?;
            self.at = i + 1;
            if self.line.get(i) == Some(&b'"') {
                return Some(());
            }
            match self.line.get(self.at)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    self.unicode_escape = true;
                    let hex = self.line.get(self.at + 1..self.at + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 5;
                }
                _ => return None,
            }
        }
    }

    /// Past one value, its grammar checked: a string, an object or array (at most `depth`
    /// deep, as the parse allows), a literal or a number.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.next()? {
            b'"' => self.skip_string(),
            b'{' => {
                let depth = depth.checked_sub(1)?;
                if self.peek()? == b'}' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.expect(b'"')?;
                    self.skip_string()?;
                    self.expect(b':')?;
                    self.skip_value(depth)?;
                    match self.next()? {
                        b',' => {}
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                let depth = depth.checked_sub(1)?;
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth)?;
                    match self.next()? {
                        b',' => {}
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"rue"),
            b'f' => self.literal(b"alse"),
            b'n' => self.literal(b"ull"),
            b'-' => self.number(),
            b'0'..=b'9' => {
                self.at -= 1;
                self.number()
            }
            _ => None,
        }
    }

    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let got = self.line.get(self.at..self.at + rest.len())?;
        self.at += rest.len();
        (got == rest).then_some(())
    }

    /// A number's digits (its sign consumed): `int [frac] [exp]`, as JSON spells it.
    fn number(&mut self) -> Option<()> {
        match self.line.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.line.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.line.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.line.get(self.at) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.line.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sniffed(line: &[u8]) -> Option<Sniffed<'_>> {
        let mut m = Marks::default();
        m.mark(line);
        sniff(line, &m)
    }

    #[test]
    fn finds_the_first_quote_or_backslash_at_any_offset() {
        for len in 0..150 {
            for at in 0..=len {
                for mark in [b'"', b'\\'] {
                    let mut v = vec![b'a'; len];
                    // Bytes that differ from the marks by one bit, before and after.
                    v.iter_mut().step_by(3).for_each(|b| *b = b'"' ^ 0x80);
                    v.iter_mut().step_by(5).for_each(|b| *b = b'\\' ^ 0x01);
                    if at < len {
                        v[at] = mark;
                        v.iter_mut().skip(at + 1).step_by(2).for_each(|b| *b = b'"');
                    }
                    let want = v.iter().position(|&b| b == b'"' || b == b'\\');
                    let mut m = Marks::default();
                    m.mark(&v);
                    assert_eq!(m.next(0), want, "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn reads_the_top_level_fields_only() {
        let line = br#"{"time":"2026-01-01T00:00:00.1234567Z","resourceId":"/tenants/t1/x","category":"AuditLogs","tenantId":"t1","durationMs":0,"Level":4,"ok":true,"n":null,"properties":{"tenantId":"inner","time":"2000-01-01T00:00:00Z","targetResources":[{"displayName":"a \"quoted\" ] }"}],"x":[1,-2.5e3,[]]}}"#;
        let s = sniffed(line).unwrap();
        assert_eq!(s.time, Some("2026-01-01T00:00:00.1234567Z"));
        assert_eq!(s.tenant_id, Some("t1"));
        assert_eq!(s.resource_id, Some("/tenants/t1/x"));
        assert!(s.properties);
        let export = br#" { "TenantId" : "ws" , "TimeGenerated":"2026-01-01T00:00:00Z" } "#;
        let s = sniffed(export).unwrap();
        assert_eq!(
            (s.table_tenant, s.time_generated, s.properties),
            (Some("ws"), Some("2026-01-01T00:00:00Z"), false)
        );
        assert_eq!(sniffed(b"{}"), Some(Sniffed::default()));
    }

    #[test]
    fn leaves_to_the_parse_what_it_cannot_read_exactly() {
        for line in [
            &br#"{"time":"2026\u002d01"}"#[..],
            br#"{"ti\u006de":"x"}"#,
            br#"{"time":"a","time":"b"}"#,
            br#"{"time":1}"#,
            br#"{"a":1} x"#,
            br#"{"a":[1,2}"#,
            br#"{"a":"b"#,
            br#"{"a":tru}"#,
            br#"{"a":}"#,
            b"{\"a\":\"\xff\"}",
            br#"not json"#,
            br#"{"a":1,}"#,
            br#"{"properties":"x"}"#,
            b"{\"a\":\"x\ty\"}",
            br#"{"properties":{},"properties":{}}"#,
        ] {
            assert_eq!(sniffed(line), None, "{}", String::from_utf8_lossy(line));
        }
    }
}
