//! The short table `run`, `replay` and `sweep` print on stdout: data, not progress.

use std::fmt::Write as _;

use super::summary::Summary;
use super::text::one_line;
use crate::time::{format_duration, NANOS_PER_SECOND};

/// The short human table printed on stdout.
pub fn stdout_table(s: &Summary) -> String {
    let mut t = String::new();
    // Tenant ids come from the archive: one line each, whatever they hold.
    let shown: Vec<String> = s.tenants.keys().map(|k| one_line(k, 64)).collect();
    let width = shown
        .iter()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        t,
        "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}",
        "TENANT", "INVITES", "REDEEMS", "FINDINGS", "PENDING"
    );
    for (tenant, c) in shown.iter().zip(s.tenants.values()) {
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
    if let Some(p) = &s.precise {
        let _ = writeln!(
            t,
            "{} invite(s) to deleted guests set apart (in suppressed.parquet, not findings)",
            p.set_apart
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
