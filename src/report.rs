//! Writers: per-tenant findings (Parquet, CSV, Markdown), the baseline, `summary.json`, and the
//! short table on stdout. Every object is serialised in memory and written with one atomic put.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::detect::{Semantics, Window};
use crate::error::{Error, Result};
use crate::extract::ev;
use crate::rule::Rule;
use crate::source::Sink;
use crate::timefmt::{format_duration, format_instant, NANOS_PER_SECOND};

/// Per-tenant counts in `summary.json` and on stdout.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TenantCounts {
    pub rows: u64,
    pub invites: u64,
    pub redeems: u64,
    pub findings: u64,
    /// Findings suppressed by exclusion rules (not in `findings`).
    pub suppressed: u64,
    pub baseline_redeemed: u64,
    pub baseline_pending: u64,
    pub app_initiated_invites: u64,
    pub invites_without_upn: u64,
    pub redeems_without_upn: u64,
}

/// Wall time of each stage (listing, scan, join, baseline, write). Within the scan:
/// `decode_seconds` is the decoder threads' time on the objects (summed over threads, so it
/// can exceed `scan_seconds`), `extract_seconds` the wall time of the one pass that turns the
/// candidate rows into events (objects read by polars' reader are extracted while decoded).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub list_seconds: f64,
    pub scan_seconds: f64,
    pub decode_seconds: f64,
    pub extract_seconds: f64,
    pub join_seconds: f64,
    pub baseline_seconds: f64,
    pub write_seconds: f64,
}

/// `summary.json`: what was evaluated, over what, and what came out.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub as_of: String,
    pub lookback_seconds: i64,
    pub threshold_seconds: i64,
    pub semantics: Semantics,
    pub since: Option<String>,
    pub rule: Rule,
    pub archive: String,
    pub files: usize,
    pub files_listed: usize,
    pub files_pruned: usize,
    pub folders_pruned: usize,
    pub row_groups_pruned: usize,
    pub bytes: u64,
    pub bytes_read: u64,
    pub rows_scanned: u64,
    pub bad_files: Vec<crate::extract::BadFile>,
    pub cache_hits: usize,
    pub cache_misses: usize,
    pub invites: u64,
    pub redeems: u64,
    pub findings: u64,
    pub suppressed: u64,
    /// Present when exclusion rules were applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusions: Option<ExclusionSummary>,
    pub duplicates_dropped: u64,
    pub app_initiated_invites: u64,
    pub invites_without_upn: u64,
    pub redeems_without_upn: u64,
    pub unparseable_json: u64,
    pub tenants: BTreeMap<String, TenantCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<crate::replay::ReplaySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<crate::sweep::SweepSummary>,
    pub timings: Timings,
}

/// The `exclusions` block of `summary.json`: suppressions per rule, zeros included.
#[derive(Debug, Clone, Serialize)]
pub struct ExclusionSummary {
    pub config: String,
    pub rules: Vec<RuleCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    pub name: String,
    pub reason: String,
    pub grace_seconds: Option<i64>,
    pub suppressed: u64,
}

impl ExclusionSummary {
    pub fn new(ex: &crate::exclude::Exclusions, suppressed: &DataFrame) -> Result<Self> {
        let counts = crate::exclude::counts(ex, suppressed)?;
        Ok(ExclusionSummary {
            config: ex.source.clone(),
            rules: ex
                .rules
                .iter()
                .zip(counts)
                .map(|(r, (_, n))| RuleCount {
                    name: r.name.clone(),
                    reason: r.reason.clone(),
                    grace_seconds: r.grace.map(|g| g / NANOS_PER_SECOND),
                    suppressed: n,
                })
                .collect(),
        })
    }
}

/// Everything one run writes.
pub struct Outputs<'a> {
    pub summary: &'a Summary,
    pub window: Window,
    /// All findings, times as i64 ns.
    pub findings: &'a DataFrame,
    /// Suppressed findings (`Rule`, `Reason` added); `None` without exclusions.
    pub suppressed: Option<&'a DataFrame>,
    pub time_to_redeem: &'a DataFrame,
    pub by_tenant: &'a DataFrame,
    pub replay: Option<&'a crate::replay::Replay>,
    pub sweep: Option<&'a crate::sweep::Sweep>,
}

/// Output timestamps: microseconds (what ADX and most readers use), zoned UTC.
fn utc(name: &str) -> Expr {
    let zoned = |unit| DataType::Datetime(unit, Some(TimeZone::UTC));
    // Internal times are i64 ns: reinterpret as ns, then convert the unit.
    col(name)
        .cast(zoned(TimeUnit::Nanoseconds))
        .cast(zoned(TimeUnit::Microseconds))
}

fn with_utc(df: &DataFrame, names: &[&str]) -> Result<DataFrame> {
    let exprs: Vec<Expr> = names.iter().map(|n| utc(n)).collect();
    Ok(df.clone().lazy().with_columns(exprs).collect()?)
}

pub fn parquet_bytes(df: &DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    ParquetWriter::new(&mut buf).finish(&mut df)?;
    Ok(buf)
}

fn csv_bytes(df: &DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    CsvWriter::new(&mut buf)
        .with_datetime_format(Some("%Y-%m-%dT%H:%M:%S%.6fZ".into()))
        .finish(&mut df)?;
    Ok(buf)
}

/// Folder-safe form of a tenant id (ids are GUIDs; anything else is percent-encoded).
pub fn tenant_dir(tenant: &str) -> String {
    let mut s = String::from("tenant=");
    for b in tenant.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

/// Per-tenant reports and the baseline (`summary.json` is written last, by [`write_summary`]).
pub fn write_reports(sink: &Sink, o: &Outputs) -> Result<()> {
    let findings = with_utc(o.findings, &["InviteTime"])?;
    // Tenants are independent: their reports are built and written in parallel (an MSSP's run
    // over many tenants, and a warm rerun, are mostly this).
    let tenants: Vec<&String> = o.summary.tenants.keys().collect();
    tenants.par_iter().try_for_each(|tenant| -> Result<()> {
        let tenant = tenant.as_str();
        let own = mine(&findings, tenant)?;
        let dir = tenant_dir(tenant);
        sink.put(&format!("{dir}/findings.parquet"), parquet_bytes(&own)?)?;
        sink.put(&format!("{dir}/findings.csv"), csv_bytes(&own)?)?;
        let raw = mine(o.findings, tenant)?;
        if let Some(gone) = o.suppressed {
            let gone = with_utc(&mine(gone, tenant)?, &["InviteTime"])?;
            sink.put(&format!("{dir}/suppressed.parquet"), parquet_bytes(&gone)?)?;
        }
        let md = markdown(o, tenant, &raw)?;
        sink.put(&format!("{dir}/report.md"), md.into_bytes())
    })?;
    if let Some(r) = o.replay {
        let alerts = with_utc(&r.alerts, &["EvaluatedAt", "InviteTime"])?;
        sink.put("replay/alerts.parquet", parquet_bytes(&alerts)?)?;
        let by_tick = with_utc(&r.by_tick, &["EvaluatedAt"])?;
        sink.put("replay/by_tick.parquet", parquet_bytes(&by_tick)?)?;
        if let Some(gone) = &r.suppressed {
            let gone = with_utc(gone, &["EvaluatedAt", "InviteTime"])?;
            sink.put("replay/suppressed.parquet", parquet_bytes(&gone)?)?;
        }
    }
    if let Some(w) = o.sweep {
        sink.put("sweep/sweep.parquet", parquet_bytes(&w.table)?)?;
        sink.put("sweep/suggested.parquet", parquet_bytes(&w.suggested)?)?;
    }
    let ttr = with_utc(o.time_to_redeem, &["InviteTime", "RedeemTime"])?;
    sink.put("baseline/time_to_redeem.parquet", parquet_bytes(&ttr)?)?;
    sink.put("baseline/by_tenant.parquet", parquet_bytes(o.by_tenant)?)?;
    Ok(())
}

/// `summary.json`, and for `replay` and `sweep` a copy beside their outputs, so that running
/// both into one folder keeps each command's own parameters.
pub fn write_summary(sink: &Sink, summary: &Summary) -> Result<()> {
    let json = serde_json::to_vec_pretty(summary)
        .map_err(|e| Error::write(format!("{}/summary.json", sink.display()), e))?;
    if summary.replay.is_some() {
        sink.put("replay/summary.json", json.clone())?;
    }
    if summary.sweep.is_some() {
        sink.put("sweep/summary.json", json.clone())?;
    }
    sink.put("summary.json", json)
}

/// `3d 4h`, `2h 5m`, `45s`: readable age for reports.
pub fn human_seconds(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn markdown(o: &Outputs, tenant: &str, findings: &DataFrame) -> Result<String> {
    let s = o.summary;
    let w = o.window;
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", s.rule.name);
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Tenant | `{tenant}` |");
    let _ = writeln!(md, "| Rule id | `{}` |", s.rule.id);
    if !s.rule.description.is_empty() {
        let _ = writeln!(
            md,
            "| Description | {} |",
            s.rule.description.replace('|', "\\|").replace('\n', " ")
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

    let _ = writeln!(md, "\n## Findings ({})\n", findings.height());
    if findings.height() == 0 {
        let _ = writeln!(md, "No unredeemed invite in the window.");
    } else {
        // Group by (guest, inviter) in Rust: a tenant's findings are few.
        let txt = |c: &str| -> Result<Vec<String>> {
            Ok(findings
                .column(c)?
                .str()?
                .iter()
                .map(|v| v.unwrap_or("").to_string())
                .collect())
        };
        let (upn, who, ip) = (
            txt("TargetUPN")?,
            txt("InviteInitiator")?,
            txt("IPAddress")?,
        );
        let times = findings.column("InviteTime")?.i64()?.clone();
        let pending = findings.column("PendingSeconds")?.f64()?.clone();
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
        let cell = |v: &str| {
            if v.is_empty() {
                "—".to_string()
            } else {
                format!("`{}`", v.replace('|', "\\|"))
            }
        };
        for ((upn, who), g) in &groups {
            let ips: Vec<&str> = g.ips.iter().copied().collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(upn),
                cell(who),
                cell(&ips.join(", ")),
                g.n,
                g.first.map(format_instant).unwrap_or_default(),
                g.last.map(format_instant).unwrap_or_default(),
                human_seconds(g.pending),
            );
        }
    }

    if let (Some(gone), Some(ex)) = (o.suppressed, &s.exclusions) {
        suppressed_section(&mut md, &mine(gone, tenant)?, ex)?;
    }
    let _ = writeln!(md, "\n## Baseline of time to redeem\n");
    let _ = writeln!(md, "{}", baseline_line(o.by_tenant, tenant)?);
    if let Some(r) = o.replay {
        replay_sections(&mut md, r, tenant)?;
    }
    if let Some(w) = o.sweep {
        sweep_section(&mut md, w, tenant)?;
    }
    Ok(md)
}

#[derive(Default)]
struct Group<'a> {
    n: usize,
    ips: std::collections::BTreeSet<&'a str>,
    first: Option<i64>,
    last: Option<i64>,
    pending: f64,
}

/// One sentence on the tenant's time-to-redeem history.
pub fn baseline_line(by_tenant: &DataFrame, tenant: &str) -> Result<String> {
    let row = by_tenant
        .clone()
        .lazy()
        .filter(col(ev::TENANT).eq(lit(tenant)))
        .collect()?;
    if row.height() == 0 {
        return Ok("No invites in the scanned history.".into());
    }
    let int = |c: &str| -> Result<i64> { Ok(row.column(c)?.i64()?.get(0).unwrap_or(0)) };
    let f = |c: &str| -> Result<Option<f64>> { Ok(row.column(c)?.f64()?.get(0)) };
    let (inv, red, pen) = (int("Invites")?, int("Redeemed")?, int("Pending")?);
    let mut line = format!("{inv} invites up to T: {red} redeemed, {pen} pending.");
    if let (Some(p50), Some(p90), Some(p95), Some(p99), Some(max)) = (
        f("P50Seconds")?,
        f("P90Seconds")?,
        f("P95Seconds")?,
        f("P99Seconds")?,
        f("MaxSeconds")?,
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

/// The short human table printed on stdout.
pub fn stdout_table(s: &Summary) -> String {
    let mut t = String::new();
    let width = s.tenants.keys().map(|k| k.len()).max().unwrap_or(6).max(6);
    let _ = writeln!(
        t,
        "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}",
        "TENANT", "INVITES", "REDEEMS", "FINDINGS", "PENDING"
    );
    for (tenant, c) in &s.tenants {
        let _ = writeln!(
            t,
            "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}",
            tenant, c.invites, c.redeems, c.findings, c.baseline_pending
        );
    }
    if let Some(ex) = &s.exclusions {
        let per: Vec<String> = ex
            .rules
            .iter()
            .map(|r| format!("{} {}", r.name, r.suppressed))
            .collect();
        let _ = writeln!(
            t,
            "{} finding(s) suppressed by exclusions ({})",
            s.suppressed,
            per.join(", ")
        );
    }
    let _ = writeln!(
        t,
        "{} finding(s) at {} ({} semantics, lookback {}, threshold {})",
        s.findings,
        s.as_of,
        s.semantics.as_str(),
        format_duration(s.lookback_seconds * NANOS_PER_SECOND),
        format_duration(s.threshold_seconds * NANOS_PER_SECOND),
    );
    if let Some(r) = &s.replay {
        let _ = writeln!(
            t,
            "replay: {} alert(s) on {} invite(s) over {} tick(s) from {} to {}",
            r.alerts, r.alerting_invites, r.ticks, r.from, r.to
        );
    }
    if let Some(w) = &s.sweep {
        for (tenant, x) in &w.suggested {
            let _ = writeln!(
                t,
                "suggested threshold for {tenant} (quantile {}): {}",
                w.target_quantile,
                x.as_deref().unwrap_or("none (no redeemed invite)")
            );
        }
    }
    t
}

fn mine(df: &DataFrame, tenant: &str) -> Result<DataFrame> {
    Ok(df
        .clone()
        .lazy()
        .filter(col(ev::TENANT).eq(lit(tenant)))
        .collect()?)
}

fn strs(df: &DataFrame, c: &str) -> Result<Vec<String>> {
    Ok(df
        .column(c)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect())
}

fn ints(df: &DataFrame, c: &str) -> Result<Vec<Option<i64>>> {
    let s = df
        .column(c)?
        .as_materialized_series()
        .cast(&DataType::Int64)?;
    Ok(s.i64()?.iter().collect())
}

fn code(v: &str) -> String {
    if v.is_empty() {
        "—".to_string()
    } else {
        format!("`{}`", v.replace('|', "\\|"))
    }
}

/// How many invites the longest-alerted table lists.
const LONGEST: usize = 10;

/// The alert timeline (ticks where the count changes) and the invites alerted longest.
fn replay_sections(md: &mut String, r: &crate::replay::Replay, tenant: &str) -> Result<()> {
    let ticks = mine(&r.by_tick, tenant)?;
    let alerts = mine(&r.alerts, tenant)?;
    let _ = writeln!(
        md,
        "\n## Replay: alert timeline\n\nThe rule ({} semantics) evaluated at {} tick(s), every {}, from {} to {}: {} alert(s) on {} invite(s).\n",
        r.semantics.as_str(),
        r.ticks,
        format_duration(r.every),
        format_instant(r.from),
        format_instant(r.to),
        alerts.height(),
        alerts
            .column("FirstAlert")?
            .bool()?
            .sum()
            .unwrap_or(0),
    );
    if let Some(gone) = &r.suppressed {
        let gone = mine(gone, tenant)?;
        let names = strs(&gone, "Rule")?;
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
    let at = ints(&ticks, "EvaluatedAt")?;
    let n = ints(&ticks, "Alerts")?;
    let new = ints(&ticks, "NewAlerts")?;
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
            let _ = writeln!(
                md,
                "| {} | {a} | {b} |",
                at[i].map(format_instant).unwrap_or_default()
            );
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

    let _ = writeln!(md, "\n## Replay: invites alerted longest\n");
    if alerts.height() == 0 {
        let _ = writeln!(md, "No invite alerted at any tick.");
        return Ok(());
    }
    let longest = alerts
        .lazy()
        .group_by([
            col("TargetUPN"),
            col("InviteTime"),
            col(ev::ID),
            col("InviteInitiator"),
        ])
        .agg([
            len().cast(DataType::Int64).alias("Ticks"),
            col("EvaluatedAt").min().alias("First"),
            col("EvaluatedAt").max().alias("Last"),
        ])
        .sort_by_exprs(
            [col("Ticks"), col("InviteTime"), col("TargetUPN")],
            SortMultipleOptions::default()
                .with_order_descending_multi([true, false, false])
                .with_maintain_order(true),
        )
        .limit(LONGEST as IdxSize)
        .collect()?;
    let (upn, who) = (
        strs(&longest, "TargetUPN")?,
        strs(&longest, "InviteInitiator")?,
    );
    let (inv, k, first, last) = (
        ints(&longest, "InviteTime")?,
        ints(&longest, "Ticks")?,
        ints(&longest, "First")?,
        ints(&longest, "Last")?,
    );
    let _ = writeln!(
        md,
        "| Guest (TargetUPN) | Account (InviteInitiator) | Invited | Ticks alerted | First alert | Last alert |\n|---|---|---|---:|---|---|"
    );
    for i in 0..longest.height() {
        let t = |v: Option<i64>| v.map(format_instant).unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            code(&upn[i]),
            code(&who[i]),
            t(inv[i]),
            k[i].unwrap_or(0),
            t(first[i]),
            t(last[i])
        );
    }
    Ok(())
}

/// Flagged counts per threshold and the suggested threshold.
fn sweep_section(md: &mut String, w: &crate::sweep::Sweep, tenant: &str) -> Result<()> {
    let t = mine(&w.table, tenant)?;
    let _ = writeln!(
        md,
        "\n## Threshold sweep\n\nIntended rules over every invite up to {} (no lookback): an invite is flagged at threshold X when it was redeemed more than X after the invite, or is still pending and at least X old.\n",
        format_instant(w.as_of)
    );
    if w.exclusions {
        let ex = ints(&t, "Excluded")?
            .first()
            .copied()
            .flatten()
            .unwrap_or(0);
        let gr = ints(&t, "Graced")?.first().copied().flatten().unwrap_or(0);
        let _ = writeln!(
            md,
            "Exclusions applied: {ex} invite(s) left out by a full exclusion; {gr} counted with their grace period as a floor on X.\n"
        );
    }
    let _ = writeln!(
        md,
        "| Threshold | Invites | Flagged | Later redeemed | Still pending | Redeemed within |\n|---|---:|---:|---:|---:|---:|"
    );
    let x = ints(&t, "ThresholdSeconds")?;
    let inv = ints(&t, "Invites")?;
    let fl = ints(&t, "Flagged")?;
    let lr = ints(&t, "FlaggedLaterRedeemed")?;
    let sp = ints(&t, "FlaggedStillPending")?;
    let within: Vec<Option<f64>> = t.column("RedeemedWithin")?.f64()?.iter().collect();
    for i in 0..t.height() {
        let mark = if x[i].unwrap_or(0) * NANOS_PER_SECOND == w.current_threshold {
            " (current)"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "| {}{mark} | {} | {} | {} | {} | {} |",
            format_duration(x[i].unwrap_or(0) * NANOS_PER_SECOND),
            inv[i].unwrap_or(0),
            fl[i].unwrap_or(0),
            lr[i].unwrap_or(0),
            sp[i].unwrap_or(0),
            within[i].map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0)),
        );
    }
    let s = mine(&w.suggested, tenant)?;
    let q = w.target_quantile;
    let quant: Option<f64> = s.column("QuantileSeconds")?.f64()?.get(0);
    let sugg = ints(&s, "SuggestedThresholdSeconds")?
        .first()
        .copied()
        .flatten();
    let at_s = ints(&s, "FlaggedAtSuggested")?.first().copied().flatten();
    let at_c = ints(&s, "FlaggedAtCurrent")?.first().copied().flatten();
    let red = ints(&s, "Redeemed")?
        .first()
        .copied()
        .flatten()
        .unwrap_or(0);
    let _ = writeln!(md);
    match (quant, sugg) {
        (Some(qs), Some(x)) => {
            let _ = writeln!(
                md,
                "**Suggested threshold: {}** — the {} quantile of time to redeem over {red} redeemed invite(s) is {}; rounded up to a whole hour. It would flag {} invite(s), against {} at the current threshold {}.",
                format_duration(x * NANOS_PER_SECOND),
                q,
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

/// Suppressions per rule, and the suppressed findings with their rule.
fn suppressed_section(md: &mut String, gone: &DataFrame, ex: &ExclusionSummary) -> Result<()> {
    let _ = writeln!(
        md,
        "\n## Suppressed by exclusions ({})\n\nRules from `{}`; a rule with a grace period suppresses a finding only while the invite is younger than it.\n",
        gone.height(),
        ex.config
    );
    let names = strs(gone, "Rule")?;
    let _ = writeln!(
        md,
        "| Rule | Reason | Grace | Suppressed here |\n|---|---|---|---:|"
    );
    for r in &ex.rules {
        let n = names.iter().filter(|v| **v == r.name).count();
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {n} |",
            r.name,
            r.reason.replace('|', "\\|"),
            r.grace_seconds
                .map_or("—".to_string(), |g| format_duration(g * NANOS_PER_SECOND)),
        );
    }
    if gone.height() > 0 {
        let (upn, who) = (strs(gone, "TargetUPN")?, strs(gone, "InviteInitiator")?);
        let t = ints(gone, "InviteTime")?;
        let _ = writeln!(
            md,
            "\n| Guest (TargetUPN) | Account (InviteInitiator) | Invited | Rule |\n|---|---|---|---|"
        );
        for i in 0..gone.height() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | `{}` |",
                code(&upn[i]),
                code(&who[i]),
                t[i].map(format_instant).unwrap_or_default(),
                names[i]
            );
        }
    }
    Ok(())
}
