//! `tenant=<id>/report.md`: the rule and its window, the findings grouped by guest and inviter,
//! suppressions, the baseline, and after `replay` / `sweep` their sections.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use polars::prelude::*;

use super::frames::{ints, strings};
use super::summary::{ExclusionSummary, PreciseCounts, Summary};
use super::text::{code_cell, one_line};
use crate::analysis::{Replay, Sweep};
use crate::error::Result;
use crate::rule::columns::out;
use crate::rule::{Semantics, Window, DELETED_RULE};
use crate::time::{format_duration, format_instant, NANOS_PER_SECOND};

/// One tenant's share of everything a run produced.
pub(super) struct TenantView<'a> {
    pub(super) tenant: &'a str,
    /// The Entra tenant (`""`: the input names none).
    pub(super) aad_tenant: &'a str,
    pub(super) summary: &'a Summary,
    pub(super) window: Window,
    /// The tenant's findings, times as i64 ns.
    pub(super) findings: &'a DataFrame,
    pub(super) suppressed: Option<&'a DataFrame>,
    /// The tenant's row of `baseline/by_tenant.parquet` (none: no invites).
    pub(super) by_tenant: &'a DataFrame,
    /// The tenant's rows of `baseline/time_to_redeem.parquet`.
    pub(super) time_to_redeem: &'a DataFrame,
    pub(super) replay: Option<ReplayView<'a>>,
    pub(super) sweep: Option<SweepView<'a>>,
}

/// A replay's tables, the tenant's rows only.
pub(super) struct ReplayView<'a> {
    pub(super) replay: &'a Replay,
    pub(super) by_tick: &'a DataFrame,
    pub(super) alerts: &'a DataFrame,
    pub(super) suppressed: Option<&'a DataFrame>,
}

/// A sweep's tables, the tenant's rows only.
pub(super) struct SweepView<'a> {
    pub(super) sweep: &'a Sweep,
    pub(super) table: &'a DataFrame,
    pub(super) suggested: &'a DataFrame,
}

/// `3d 4h`, `2h 5m`, `45s`: readable age for reports.
fn human_seconds(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A value from the archive in a table cell (see [`code_cell`]).
fn code(v: &str) -> String {
    code_cell(v)
}

/// One table row: `| a | b | … |`.
fn row(md: &mut String, cells: &[String]) {
    let _ = writeln!(md, "| {} |", cells.join(" | "));
}

fn instant(v: Option<i64>) -> String {
    v.map(format_instant).unwrap_or_default()
}

/// The whole `report.md` of one tenant.
pub(super) fn markdown(v: &TenantView) -> Result<String> {
    markdown_with(v, usize::MAX)
}

/// [`markdown`] with at most `max_rows` rows in the findings table: the longest pending,
/// longest first, and a link to `findings.csv`, which holds them all.
pub(super) fn markdown_with(v: &TenantView, max_rows: usize) -> Result<String> {
    let mut md = String::new();
    header(&mut md, v);
    findings_section(&mut md, v.findings, max_rows)?;
    let (excluded, deleted) = match v.suppressed {
        Some(gone) => {
            let deleted = || col(out::RULE).eq(lit(DELETED_RULE));
            let part = |p: Expr| gone.clone().lazy().filter(p).collect();
            (Some(part(deleted().not())?), Some(part(deleted())?))
        }
        None => (None, None),
    };
    if let (Some(gone), Some(ex)) = (&excluded, &v.summary.exclusions) {
        suppressed_section(&mut md, gone, ex)?;
    }
    if let (Some(gone), Semantics::Precise) = (&deleted, v.summary.semantics) {
        deleted_section(&mut md, gone)?;
    }
    let _ = writeln!(md, "\n## Baseline of time to redeem\n");
    let _ = writeln!(md, "{}", baseline_line(v.by_tenant)?);
    if let Some(p) = PreciseCounts::of_row(v.by_tenant, 0)? {
        let _ = writeln!(md, "\n{}", pairing_line(&p));
    }
    if let Some(r) = &v.replay {
        replay_timeline(&mut md, r)?;
        replay_longest(&mut md, r.alerts)?;
    }
    if let Some(w) = &v.sweep {
        sweep_table(&mut md, w)?;
        sweep_suggestion(&mut md, w)?;
    }
    Ok(md)
}

/// The rule's metadata and the window it was evaluated over.
fn header(md: &mut String, v: &TenantView) {
    let (s, w) = (v.summary, v.window);
    let _ = writeln!(md, "# {}\n", s.rule.name);
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Tenant | {} |", code_cell(v.tenant));
    if !v.aad_tenant.is_empty() && v.aad_tenant != v.tenant {
        let _ = writeln!(md, "| Entra tenant | {} |", code_cell(v.aad_tenant));
    }
    let _ = writeln!(md, "| Rule id | `{}` |", s.rule.id);
    if !s.rule.description.is_empty() {
        let _ = writeln!(
            md,
            "| Description | {} |",
            one_line(&s.rule.description, usize::MAX).replace('|', "\\|")
        );
    }
    let _ = writeln!(md, "| Severity | {} |", s.rule.severity);
    let _ = writeln!(md, "| Tactic | {} |", s.rule.tactics.join(", "));
    let _ = writeln!(md, "| Technique | {} |", s.rule.techniques.join(", "));
    let _ = writeln!(md, "| Semantics | {} |", s.semantics.as_str());
    let _ = writeln!(md, "| Evaluated at (T) | {} |", s.as_of);
    let lo = format_instant(w.as_of - w.lookback);
    let th = format_instant(w.as_of - w.threshold);
    let window = match s.semantics {
        Semantics::Intended => format!(
            "invites after {lo} and at or before {th} (lookback {}, threshold {}) with no successful redeem of the same guest between the invite and T",
            format_duration(w.lookback),
            format_duration(w.threshold)
        ),
        Semantics::Precise => format!(
            "invites and reset re-invites after {lo} and at or before {th} (lookback {}, threshold {}) with no redemption between the invite and T matching the guest's object id, invitation, UPN or email, nor an update accepting it; invites to guests deleted since are listed as suppressed",
            format_duration(w.lookback),
            format_duration(w.threshold)
        ),
        Semantics::Sentinel => format!(
            "as the Sentinel query reads: invites after {th} (newer than the threshold {}) in the {} lookback with no redeem key equal to the guest UPN",
            format_duration(w.threshold),
            format_duration(w.lookback)
        ),
    };
    let _ = writeln!(md, "| Window | {window} |");
    if let Some(since) = &s.since {
        let _ = writeln!(md, "| History since | {since} |");
    }
}

/// Findings of one (guest, inviter).
#[derive(Default)]
struct Group<'a> {
    n: usize,
    ips: BTreeSet<&'a str>,
    first: Option<i64>,
    last: Option<i64>,
    pending: f64,
}

/// The findings, grouped by (guest, inviter) in Rust: a tenant's findings are few.
fn findings_section(md: &mut String, findings: &DataFrame, max_rows: usize) -> Result<()> {
    let _ = writeln!(md, "\n## Findings ({})\n", findings.height());
    if findings.height() == 0 {
        let _ = writeln!(md, "No unredeemed invite in the window.");
        return Ok(());
    }
    let (upn, who, ip) = (
        strings(findings, out::TARGET_UPN)?,
        strings(findings, out::INVITE_INITIATOR)?,
        strings(findings, out::IP_ADDRESS)?,
    );
    let times = findings.column(out::INVITE_TIME)?.i64()?;
    let pending = findings.column(out::PENDING_SECONDS)?.f64()?;
    let mut groups: BTreeMap<(&str, &str), Group> = BTreeMap::new();
    for i in 0..findings.height() {
        let g = groups.entry((&upn[i], &who[i])).or_default();
        let t = times.get(i).unwrap_or(0);
        g.n += 1;
        g.first = Some(g.first.map_or(t, |f| f.min(t)));
        g.last = Some(g.last.map_or(t, |l| l.max(t)));
        g.pending = g.pending.max(pending.get(i).unwrap_or(0.0));
        if !ip[i].is_empty() {
            g.ips.insert(&ip[i]);
        }
    }
    let _ = writeln!(
        md,
        "| Guest (TargetUPN) | Account (InviteInitiator) | IP (IPAddress) | Invites | First invite | Last invite | Pending for |"
    );
    let _ = writeln!(md, "|---|---|---|---:|---|---|---|");
    let mut rows: Vec<(&(&str, &str), &Group)> = groups.iter().collect();
    if rows.len() > max_rows {
        rows.sort_by(|a, b| b.1.pending.total_cmp(&a.1.pending));
        rows.truncate(max_rows);
    }
    for ((upn, who), g) in rows {
        let ips: Vec<&str> = g.ips.iter().copied().collect();
        row(
            md,
            &[
                code(upn),
                code(who),
                code(&ips.join(", ")),
                g.n.to_string(),
                instant(g.first),
                instant(g.last),
                human_seconds(g.pending),
            ],
        );
    }
    if groups.len() > max_rows {
        let _ = writeln!(
            md,
            "\nThe {max_rows} longest pending of {} rows; every finding is in [findings.csv](findings.csv).",
            groups.len()
        );
    }
    Ok(())
}

/// One sentence on the tenant's time-to-redeem history.
fn baseline_line(row: &DataFrame) -> Result<String> {
    if row.height() == 0 {
        return Ok("No invites in the scanned history.".into());
    }
    let int = |c: &str| -> Result<i64> { Ok(row.column(c)?.i64()?.get(0).unwrap_or(0)) };
    let f = |c: &str| -> Result<Option<f64>> { Ok(row.column(c)?.f64()?.get(0)) };
    let (inv, red, pen) = (int(out::INVITES)?, int(out::REDEEMED)?, int(out::PENDING)?);
    let mut line = format!("{inv} invites up to T: {red} redeemed, {pen} pending.");
    if let (Some(p50), Some(p90), Some(p95), Some(p99), Some(max)) = (
        f(out::P50_SECONDS)?,
        f(out::P90_SECONDS)?,
        f(out::P95_SECONDS)?,
        f(out::P99_SECONDS)?,
        f(out::MAX_SECONDS)?,
    ) {
        let _ = write!(
            line,
            " Time to redeem: p50 {}, p90 {}, p95 {}, p99 {}, max {}.",
            human_seconds(p50),
            human_seconds(p90),
            human_seconds(p95),
            human_seconds(p99),
            human_seconds(max)
        );
    }
    Ok(line)
}

/// How many invites the longest-alerted table lists.
const LONGEST: usize = 10;

/// The alert timeline: the ticks where the count changes.
fn replay_timeline(md: &mut String, v: &ReplayView) -> Result<()> {
    let (r, ticks, alerts) = (v.replay, v.by_tick, v.alerts);
    let _ = writeln!(
        md,
        "\n## Replay: alert timeline\n\nThe rule ({} semantics) evaluated at {} tick(s), every {}, from {} to {}: {} alert(s) on {} invite(s).\n",
        r.semantics.as_str(),
        r.ticks,
        format_duration(r.every),
        format_instant(r.from),
        format_instant(r.to),
        alerts.height(),
        alerts.column(out::FIRST_ALERT)?.bool()?.sum().unwrap_or(0),
    );
    if let Some(gone) = v.suppressed {
        let names = strings(gone, out::RULE)?;
        let per: Vec<String> = r
            .suppressed_by_rule
            .iter()
            .map(|(rule, _)| format!("`{rule}` {}", names.iter().filter(|n| *n == rule).count()))
            .collect();
        let _ = writeln!(
            md,
            "Alerts suppressed by exclusions at their tick: {} ({}); they are in `replay/suppressed.parquet`.\n",
            gone.height(),
            per.join(", ")
        );
    }
    let at = ints(ticks, out::EVALUATED_AT)?;
    let n = ints(ticks, out::ALERTS)?;
    let new = ints(ticks, out::NEW_ALERTS)?;
    // Only ticks where something changes: daily ticks over months stay readable.
    let _ = writeln!(
        md,
        "| Evaluated at | Alerts | New alerts |\n|---|---:|---:|"
    );
    let mut prev = None;
    let mut shown = 0;
    for i in 0..ticks.height() {
        let (a, b) = (n[i].unwrap_or(0), new[i].unwrap_or(0));
        if prev != Some(a) || b > 0 {
            row(md, &[instant(at[i]), a.to_string(), b.to_string()]);
            shown += 1;
        }
        prev = Some(a);
    }
    if shown < ticks.height() {
        let _ = writeln!(
            md,
            "\n{} tick(s) with the same count as the tick before are not shown; `replay/by_tick.parquet` has them all.",
            ticks.height() - shown
        );
    }
    Ok(())
}

/// The invites alerted at the most ticks.
fn replay_longest(md: &mut String, alerts: &DataFrame) -> Result<()> {
    const TICKS: &str = "Ticks";
    const FIRST: &str = "First";
    const LAST: &str = "Last";
    let _ = writeln!(md, "\n## Replay: invites alerted longest\n");
    if alerts.height() == 0 {
        let _ = writeln!(md, "No invite alerted at any tick.");
        return Ok(());
    }
    let longest = alerts
        .clone()
        .lazy()
        .group_by([
            col(out::TARGET_UPN),
            col(out::INVITE_TIME),
            col(out::ID),
            col(out::INVITE_INITIATOR),
        ])
        .agg([
            len().cast(DataType::Int64).alias(TICKS),
            col(out::EVALUATED_AT).min().alias(FIRST),
            col(out::EVALUATED_AT).max().alias(LAST),
        ])
        .sort_by_exprs(
            [col(TICKS), col(out::INVITE_TIME), col(out::TARGET_UPN)],
            SortMultipleOptions::default()
                .with_order_descending_multi([true, false, false])
                .with_maintain_order(true),
        )
        .limit(LONGEST as IdxSize)
        .collect()?;
    let (upn, who) = (
        strings(&longest, out::TARGET_UPN)?,
        strings(&longest, out::INVITE_INITIATOR)?,
    );
    let (inv, k, first, last) = (
        ints(&longest, out::INVITE_TIME)?,
        ints(&longest, TICKS)?,
        ints(&longest, FIRST)?,
        ints(&longest, LAST)?,
    );
    let _ = writeln!(
        md,
        "| Guest (TargetUPN) | Account (InviteInitiator) | Invited | Ticks alerted | First alert | Last alert |\n|---|---|---|---:|---|---|"
    );
    for i in 0..longest.height() {
        row(
            md,
            &[
                code(&upn[i]),
                code(&who[i]),
                instant(inv[i]),
                k[i].unwrap_or(0).to_string(),
                instant(first[i]),
                instant(last[i]),
            ],
        );
    }
    Ok(())
}

/// Flagged counts per threshold.
fn sweep_table(md: &mut String, v: &SweepView) -> Result<()> {
    let (w, t) = (v.sweep, v.table);
    let _ = writeln!(
        md,
        "\n## Threshold sweep\n\nIntended rules over every invite up to {} (no lookback): an invite is flagged at threshold X when it was redeemed more than X after the invite, or is still pending and at least X old.\n",
        format_instant(w.as_of)
    );
    let first =
        |c: &str| -> Result<i64> { Ok(ints(t, c)?.first().copied().flatten().unwrap_or(0)) };
    if w.exclusions {
        let (ex, gr) = (first(out::EXCLUDED)?, first(out::GRACED)?);
        let _ = writeln!(
            md,
            "Exclusions applied: {ex} invite(s) left out by a full exclusion; {gr} counted with their grace period as a floor on X.\n"
        );
    }
    let _ = writeln!(
        md,
        "| Threshold | Invites | Flagged | Later redeemed | Still pending | Redeemed within |\n|---|---:|---:|---:|---:|---:|"
    );
    let x = ints(t, out::THRESHOLD_SECONDS)?;
    let inv = ints(t, out::INVITES)?;
    let fl = ints(t, out::FLAGGED)?;
    let lr = ints(t, out::FLAGGED_LATER_REDEEMED)?;
    let sp = ints(t, out::FLAGGED_STILL_PENDING)?;
    let within: Vec<Option<f64>> = t.column(out::REDEEMED_WITHIN)?.f64()?.iter().collect();
    for i in 0..t.height() {
        let mark = if x[i].unwrap_or(0) * NANOS_PER_SECOND == w.current_threshold {
            " (current)"
        } else {
            ""
        };
        let count = |v: &[Option<i64>]| v[i].unwrap_or(0).to_string();
        row(
            md,
            &[
                format!(
                    "{}{mark}",
                    format_duration(x[i].unwrap_or(0) * NANOS_PER_SECOND)
                ),
                count(&inv),
                count(&fl),
                count(&lr),
                count(&sp),
                within[i].map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0)),
            ],
        );
    }
    Ok(())
}

/// The suggested threshold, and what it would flag against the current one.
fn sweep_suggestion(md: &mut String, v: &SweepView) -> Result<()> {
    let (w, s) = (v.sweep, v.suggested);
    let first = |c: &str| -> Result<Option<i64>> { Ok(ints(s, c)?.first().copied().flatten()) };
    let quant: Option<f64> = s.column(out::QUANTILE_SECONDS)?.f64()?.get(0);
    let sugg = first(out::SUGGESTED_THRESHOLD_SECONDS)?;
    let at_s = first(out::FLAGGED_AT_SUGGESTED)?;
    let at_c = first(out::FLAGGED_AT_CURRENT)?;
    let red = first(out::REDEEMED)?.unwrap_or(0);
    let _ = writeln!(md);
    match (quant, sugg) {
        (Some(qs), Some(x)) => {
            let _ = writeln!(
                md,
                "**Suggested threshold: {}** — the {} quantile of time to redeem over {red} redeemed invite(s) is {}; rounded up to a whole hour. It would flag {} invite(s), against {} at the current threshold {}.",
                format_duration(x * NANOS_PER_SECOND),
                w.target_quantile,
                human_seconds(qs),
                at_s.unwrap_or(0),
                at_c.unwrap_or(0),
                format_duration(w.current_threshold),
            );
        }
        _ => {
            let _ = writeln!(
                md,
                "No threshold suggested: no invite of this tenant was redeemed up to T."
            );
        }
    }
    Ok(())
}

/// `precise`: how the baseline's pairs were made.
fn pairing_line(p: &PreciseCounts) -> String {
    let by = |k: &str| p.pairs_by.get(k).copied().unwrap_or(0);
    format!(
        "Pairs by the strongest key matched: object id {}, invitation {}, UPN {}, email {}, \
         accepting user update {}. Pairing on UPN text alone would have left {} of them \
         pending; {} have no redeem record in the archive (only the update accepting them). \
         Pending invites to guests deleted since: {}.",
        by("object_id"),
        by("invitation_id"),
        by("upn"),
        by("email"),
        by("user_state"),
        p.missed_by_upn,
        p.lost_redeem_records,
        p.deleted_guests
    )
}

/// `precise`: the invites that would be findings but for the deletion of their guest.
fn deleted_section(md: &mut String, gone: &DataFrame) -> Result<()> {
    let _ = writeln!(
        md,
        "\n## Invites to deleted guests ({})\n\nThe guest object was deleted after the invite: no one can redeem it any more. Not findings; listed in `suppressed.parquet` with the deletion.\n",
        gone.height()
    );
    if gone.height() == 0 {
        return Ok(());
    }
    let (upn, who, why) = (
        strings(gone, out::TARGET_UPN)?,
        strings(gone, out::INVITE_INITIATOR)?,
        strings(gone, out::REASON)?,
    );
    let t = ints(gone, out::INVITE_TIME)?;
    let _ = writeln!(
        md,
        "| Guest (TargetUPN) | Account (InviteInitiator) | Invited | Deletion |\n|---|---|---|---|"
    );
    for i in 0..gone.height() {
        row(
            md,
            &[code(&upn[i]), code(&who[i]), instant(t[i]), why[i].clone()],
        );
    }
    Ok(())
}

/// Suppressions per rule, and the suppressed findings with their rule.
fn suppressed_section(md: &mut String, gone: &DataFrame, ex: &ExclusionSummary) -> Result<()> {
    let _ = writeln!(
        md,
        "\n## Suppressed by exclusions ({})\n\nRules from `{}`; a rule with a grace period suppresses a finding only while the invite is younger than it.\n",
        gone.height(),
        ex.config
    );
    let names = strings(gone, out::RULE)?;
    let _ = writeln!(
        md,
        "| Rule | Reason | Grace | Suppressed here |\n|---|---|---|---:|"
    );
    for r in &ex.rules {
        let n = names.iter().filter(|v| **v == r.name).count();
        row(
            md,
            &[
                format!("`{}`", r.name),
                r.reason.replace('|', "\\|"),
                r.grace_seconds
                    .map_or("—".to_string(), |g| format_duration(g * NANOS_PER_SECOND)),
                n.to_string(),
            ],
        );
    }
    if gone.height() > 0 {
        let (upn, who) = (
            strings(gone, out::TARGET_UPN)?,
            strings(gone, out::INVITE_INITIATOR)?,
        );
        let t = ints(gone, out::INVITE_TIME)?;
        let _ = writeln!(
            md,
            "\n| Guest (TargetUPN) | Account (InviteInitiator) | Invited | Rule |\n|---|---|---|---|"
        );
        for i in 0..gone.height() {
            row(
                md,
                &[
                    code(&upn[i]),
                    code(&who[i]),
                    instant(t[i]),
                    format!("`{}`", names[i]),
                ],
            );
        }
    }
    Ok(())
}
