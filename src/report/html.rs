//! The HTML reports: `index.html` at the root of `--out` and `tenant=<id>/report.html` beside
//! each `report.md`. Self-contained: no script, font, style sheet or image from anywhere (a
//! Content-Security-Policy forbids them), charts inlined as SVG, readable in print and in dark
//! mode. The tenant page is `report.md` rendered (the same content), each section followed by
//! its chart; every value from the archive is escaped.

use std::fmt::Write as _;

use pulldown_cmark::{Event, Options, Parser};

use super::charts::{self, Chart};
use super::frames::{counts, floats, ints, strings};
use super::markdown::{markdown_with, TenantView};
use crate::error::Result;
use crate::rule::columns::out;
use crate::rule::DELETED_RULE;
use crate::time::NANOS_PER_SECOND;

/// Rows of the findings table in a tenant page: the longest pending (all in `findings.csv`).
pub(super) const MAX_FINDING_ROWS: usize = 500;

/// Nothing may be fetched: styles only inline, no scripts, fonts, images or frames.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

const STYLE: &str = "
:root { color-scheme: light dark; --ink: #1f2937; --paper: #ffffff; --rule: #d1d5db; --soft: #f3f4f6; --link: #1d4ed8; }
@media (prefers-color-scheme: dark) {
  :root { --ink: #e5e7eb; --paper: #111827; --rule: #374151; --soft: #1f2937; --link: #93c5fd; }
}
html { background: var(--paper); color: var(--ink); }
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0; }
main { max-width: 68rem; margin: 0 auto; padding: 1.5rem; }
a { color: var(--link); }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.75rem; border-bottom: 1px solid var(--rule); }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid var(--rule); padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: var(--soft); }
td:has(> code) { word-break: break-all; }
code { font: 0.85rem ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace; }
figure { margin: 0.5rem 0 1.5rem; }
figure svg { width: 100%; height: auto; max-width: 760px; }
figcaption { font-size: 0.85rem; opacity: 0.8; }
nav { font-size: 0.9rem; margin-bottom: 1rem; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
@media print {
  :root { --ink: #000; --paper: #fff; --rule: #999; --soft: #eee; --link: #000; }
  main { max-width: none; padding: 0; }
  figure, table { break-inside: avoid; }
  nav { display: none; }
}
";

/// Text made safe for HTML text and attribute values.
pub(super) fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// Markdown as HTML. Raw HTML in it (there should be none: values are code spans) is shown as
/// text, never passed through.
fn from_markdown(md: &str) -> String {
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        e => e,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn figure(c: &Chart) -> String {
    format!(
        "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
        c.svg,
        escape(&c.title)
    )
}

/// The chart that follows the section headed `heading`, if it has one.
fn chart_after(heading: &str, v: &TenantView) -> Result<Option<Chart>> {
    let secs = |ns: i64| ns as f64 / NANOS_PER_SECOND as f64;
    let (threshold, lookback) = (secs(v.window.threshold), secs(v.window.lookback));
    let chart = if heading.starts_with("Findings") && v.findings.height() > 0 {
        let pending = floats(v.findings, out::PENDING_SECONDS)?;
        charts::pending_histogram(&pending, threshold)
    } else if heading.starts_with("Suppressed by exclusions") {
        let Some(gone) = v.suppressed else {
            return Ok(None);
        };
        let mut by: Vec<(String, u64)> = Vec::new();
        for rule in strings(gone, out::RULE)? {
            match by.iter_mut().find(|(r, _)| *r == rule) {
                Some((_, n)) => *n += 1,
                None if rule != DELETED_RULE => by.push((rule, 1)),
                None => {}
            }
        }
        if by.is_empty() {
            return Ok(None);
        }
        charts::by_rule(&by)
    } else if heading.starts_with("Baseline of time to redeem") {
        let ttr = floats(v.time_to_redeem, out::TIME_TO_REDEEM_SECONDS)?;
        charts::ttr_ecdf(&ttr, threshold, lookback)
    } else if let (true, Some(r)) = (heading.starts_with("Replay: alert timeline"), &v.replay) {
        let ticks = split_counts(r.by_tick, out::EVALUATED_AT, out::ALERTS, out::NEW_ALERTS)?;
        charts::alerts_per_tick(&ticks, r.replay.every)
    } else if let (true, Some(w)) = (heading.starts_with("Threshold sweep"), &v.sweep) {
        let (x, later, still) = (
            out::THRESHOLD_SECONDS,
            out::FLAGGED_LATER_REDEEMED,
            out::FLAGGED_STILL_PENDING,
        );
        let rows: Vec<(f64, u64, u64)> = split_counts(w.table, x, later, still)?
            .into_iter()
            .map(|(x, l, s)| (x as f64, l, s))
            .collect();
        let suggested = ints(w.suggested, out::SUGGESTED_THRESHOLD_SECONDS)?;
        let suggested = suggested.first().copied().flatten().map(|s| s as f64);
        charts::flagged_per_threshold(&rows, secs(w.sweep.current_threshold), suggested)
    } else {
        return Ok(None);
    };
    Ok(Some(chart))
}

/// Rows of `t` as (`x`, `a`, `b`): a position and the two counts stacked at it (null as 0).
fn split_counts(
    t: &polars::prelude::DataFrame,
    x: &str,
    a: &str,
    b: &str,
) -> Result<Vec<(i64, u64, u64)>> {
    let (x, a, b) = (ints(t, x)?, counts(t, a)?, counts(t, b)?);
    Ok(x.iter()
        .zip(a.iter().zip(&b))
        .map(|(x, (a, b))| (x.unwrap_or(0), *a, *b))
        .collect())
}

/// One Entra tenant's part of a tenant page: its `report.md`, each section followed by its
/// chart.
/// `full` is its `report.md` text, the page's own where its findings fit the page.
fn tenant_part(v: &TenantView, full: &str) -> Result<String> {
    let capped;
    let md = if v.findings.height() <= MAX_FINDING_ROWS {
        full
    } else {
        capped = markdown_with(v, MAX_FINDING_ROWS)?;
        capped.as_str()
    };
    let mut html = String::new();
    // Sections start at `## ` lines; a value never holds a line break (see `text`).
    let mut sections = md.split("\n## ");
    if let Some(head) = sections.next() {
        html.push_str(&from_markdown(head));
    }
    for section in sections {
        html.push_str(&from_markdown(&format!("## {section}")));
        let heading = section.lines().next().unwrap_or_default();
        if let Some(c) = chart_after(heading, v)? {
            html.push_str(&figure(&c));
        }
    }
    Ok(html)
}

/// `tenant=<id>/report.html`: its Entra tenants' parts (one, mostly).
/// `mds` holds each view's `report.md` text.
pub(super) fn tenant_page(views: &[TenantView], mds: &[String]) -> Result<String> {
    let Some(first) = views.first() else {
        return Ok(String::new());
    };
    let mut body = String::from(
        "<nav><a href=\"../index.html\">All tenants</a> · <a href=\"findings.csv\">findings.csv</a> · <a href=\"report.md\">report.md</a></nav>\n",
    );
    let parts = views
        .iter()
        .zip(mds)
        .map(|(v, md)| tenant_part(v, md))
        .collect::<Result<Vec<_>>>()?;
    body.push_str(&parts.join("<hr>\n"));
    let title = format!("{} — tenant {}", first.summary.rule.name, first.tenant);
    Ok(page(&title, &body))
}

/// Number cell.
fn num(v: impl std::fmt::Display) -> String {
    format!("<td class=\"num\">{v}</td>")
}

/// One `index.html` row's numbers besides the summary's counts.
pub(super) struct IndexRow<'a> {
    pub(super) tenant: &'a str,
    pub(super) dir: String,
    pub(super) counts: &'a super::TenantCounts,
    /// p50, p90, p99 of time to redeem, in seconds (one Entra tenant's).
    pub(super) quantiles: Vec<Option<f64>>,
    pub(super) suggested: Option<String>,
}

/// `index.html`: the run at the top, then one row per tenant, worst first.
pub(super) fn index_page(summary: &super::Summary, rows: &mut [IndexRow]) -> String {
    let s = summary;
    rows.sort_by(|a, b| {
        (b.counts.findings, b.counts.baseline_pending)
            .cmp(&(a.counts.findings, a.counts.baseline_pending))
            .then_with(|| a.tenant.cmp(b.tenant))
    });
    let mut b = String::new();
    let _ = writeln!(b, "<h1>{}</h1>", escape(&s.rule.name));
    let _ = writeln!(b, "<table>");
    let mut fact = |k: &str, v: &str| {
        let _ = writeln!(
            b,
            "<tr><th scope=\"row\">{k}</th><td>{}</td></tr>",
            escape(v)
        );
    };
    fact("Rule id", &s.rule.id);
    fact("Severity", &s.rule.severity);
    fact("Semantics", s.semantics.as_str());
    fact("Evaluated at (T)", &s.as_of);
    let human = |secs: i64| crate::time::format_duration(secs * NANOS_PER_SECOND);
    fact("Lookback", &human(s.lookback_seconds));
    fact("Threshold", &human(s.threshold_seconds));
    fact("Bad files skipped", &s.scan.bad_files.len().to_string());
    fact("Unparseable JSON lines", &s.unparseable_json.to_string());
    fact(
        "Duplicate deliveries dropped",
        &s.duplicates_dropped.to_string(),
    );
    let _ = writeln!(b, "</table>");
    let sweep = rows.iter().any(|r| r.suggested.is_some());
    let _ = writeln!(b, "<h2>Tenants ({})</h2>", rows.len());
    let _ = write!(
        b,
        "<table>\n<thead><tr><th scope=\"col\">Tenant</th><th scope=\"col\">Invites</th><th scope=\"col\">Redeemed</th><th scope=\"col\">Pending</th><th scope=\"col\">Findings</th><th scope=\"col\">Suppressed</th><th scope=\"col\">p50</th><th scope=\"col\">p90</th><th scope=\"col\">p99</th>{}</tr></thead>\n<tbody>\n",
        if sweep { "<th scope=\"col\">Suggested threshold</th>" } else { "" }
    );
    for r in rows.iter() {
        let c = r.counts;
        let q = |i: usize| {
            r.quantiles
                .get(i)
                .copied()
                .flatten()
                .map_or("—".to_string(), charts::short_duration)
        };
        let _ = write!(
            b,
            "<tr><td><a href=\"{}/report.html\"><code>{}</code></a></td>{}{}{}{}{}{}{}{}",
            // A folder name is `%`-encoded already: the link encodes that `%` once more.
            escape(&r.dir.replace('%', "%25")),
            escape(&super::text::one_line(r.tenant, super::text::MAX_SHOWN)),
            num(c.invites),
            num(c.baseline_redeemed),
            num(c.baseline_pending),
            num(c.findings),
            num(c.suppressed),
            num(q(0)),
            num(q(1)),
            num(q(2)),
        );
        if sweep {
            let _ = write!(b, "{}", num(escape(r.suggested.as_deref().unwrap_or("—"))));
        }
        let _ = writeln!(b, "</tr>");
    }
    let _ = writeln!(b, "</tbody>\n</table>");
    page(&format!("{} — all tenants", s.rule.name), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_values_never_become_markup() {
        assert_eq!(
            escape("\"><img src=x onerror=alert(1)>"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        let html = from_markdown("a <script>alert(1)</script> b\n\n<div>x</div>\n");
        assert!(
            !html.contains("<script") && !html.contains("<div"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let table = from_markdown("| A | B |\n|---|---|\n| `<b>x</b>` | 1 |\n");
        assert!(
            table.contains("<th>A</th>") && table.contains("<code>&lt;b&gt;x&lt;/b&gt;</code>")
        );
    }

    #[test]
    fn a_page_forbids_every_fetch() {
        let p = page("t <x>", "<p>b</p>");
        assert!(p.contains("default-src 'none'"));
        assert!(p.contains("<title>t &lt;x&gt;</title>"));
        assert!(!p.contains("http://") && !p.contains("https://"));
    }
}
