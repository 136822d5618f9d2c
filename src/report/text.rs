//! Values from the archive made safe for text outputs (report.md, stdout): whatever a guest
//! UPN, a display name or a tenant id holds (pipes, backticks, HTML, newlines, control
//! characters, a megabyte), it stays inside its cell and its line. Parquet and CSV keep the
//! values exactly (CSV quotes them).

use std::fmt::Write as _;

/// Characters of one value shown in a text output; the rest is counted, not shown.
pub(crate) const MAX_SHOWN: usize = 200;

/// `v` on one line: control and line-breaking characters as escapes (`\n`, `\u{1b}`), cut at
/// `max` characters with how many more there were.
pub(crate) fn one_line(v: &str, max: usize) -> String {
    let mut out = String::with_capacity(v.len().min(max * 2));
    for (shown, c) in v.chars().enumerate() {
        if shown == max {
            let rest = v.chars().count() - shown;
            let _ = write!(out, "… ({rest} more characters)");
            return out;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Controls, line breaks, and the invisible format characters that reorder or hide
            // text (bidi overrides and isolates, zero-width marks).
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{feff}')
                || ('\u{200b}'..='\u{200f}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A value in a Markdown table cell, as a code span: HTML and emphasis stay literal, pipes
/// are escaped (GFM tables), and the fence is longer than any run of backticks inside.
pub(crate) fn code_cell(v: &str) -> String {
    if v.is_empty() {
        return "—".to_string();
    }
    let v = one_line(v, MAX_SHOWN).replace('|', "\\|");
    let longest = v.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A space on each side when the value starts or ends with a backtick (CommonMark strips
    // one space from each side of such a span).
    if v.starts_with('`') || v.ends_with('`') {
        format!("{fence} {v} {fence}")
    } else {
        format!("{fence}{v}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_in_their_cell() {
        assert_eq!(code_cell("a@b.c"), "`a@b.c`");
        assert_eq!(code_cell("a|b"), "`a\\|b`");
        assert_eq!(code_cell("x`y``z"), "```x`y``z```");
        assert_eq!(code_cell("`x"), "`` `x ``");
        assert_eq!(code_cell("a\nb\r\u{1b}[31m"), "`a\\nb\\r\\u{1b}[31m`");
        assert_eq!(code_cell(""), "—");
        assert_eq!(one_line("a\u{202e}b\u{200b}", 10), "a\\u{202e}b\\u{200b}");
        let long = "é".repeat(MAX_SHOWN + 5);
        let shown = one_line(&long, MAX_SHOWN);
        assert!(shown.ends_with("… (5 more characters)"), "{shown}");
        assert_eq!(shown.chars().filter(|c| *c == 'é').count(), MAX_SHOWN);
    }
}
