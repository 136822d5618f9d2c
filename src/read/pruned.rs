//! Why a folder or an object contributed nothing to a run (or, by row-group statistics, less),
//! for `summary.json`: a hunter must be able to tell an object pruned on purpose from one lost.

use polars_parquet::parquet::metadata::FileMetadata;

use super::scope::Scope;
use crate::archive::{folder_span, row_group_span, Fetched, Listing};
use crate::rule::columns::input;
use crate::time::format_instant;

/// A folder or object pruned, and by what.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pruned {
    /// An object's key, or a folder's path (ending in `/`).
    pub key: String,
    pub by: PrunedBy,
    pub reason: String,
}

/// What pruned a folder or an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrunedBy {
    /// Its date folder ends before `--since`: not even listed.
    Folder,
    /// Its `TenantId=` folder names a tenant not asked for.
    TenantFolder,
    /// Every row group's `TimeGenerated` statistics lie outside the window.
    ObjectStatistics,
    /// Some row groups' statistics lie outside the window: the others were read.
    RowGroupStatistics,
    /// The object holds no row group.
    NoRowGroups,
}

/// What listing pruned: folders before `--since`, objects of other tenants' folders.
pub(super) fn listed(listing: &Listing) -> Vec<Pruned> {
    let folders = listing.pruned_folders.iter().map(|f| Pruned {
        key: f.clone(),
        by: PrunedBy::Folder,
        reason: match folder_span(f) {
            Some((start, end)) => format!(
                "its folders name {} to {}, before --since",
                format_instant(start),
                format_instant(end)
            ),
            None => "before --since".into(),
        },
    });
    let tenants = listing.out_of_scope.iter().map(|k| Pruned {
        key: k.clone(),
        by: PrunedBy::TenantFolder,
        reason: "its `TenantId=` folder names a tenant not asked for".into(),
    });
    folders.chain(tenants).collect()
}

/// What pruned row groups of a fetched object, if anything did.
pub(super) fn object(key: &str, f: &Fetched, scope: &Scope) -> Option<Pruned> {
    let total = f.meta.row_groups.len();
    if total == 0 {
        return Some(Pruned {
            key: key.to_string(),
            by: PrunedBy::NoRowGroups,
            reason: "no row group".into(),
        });
    }
    if f.row_groups_pruned == 0 {
        return None;
    }
    let gone = (0..total).filter(|rg| !f.groups.contains(rg));
    let by = if f.is_empty() {
        PrunedBy::ObjectStatistics
    } else {
        PrunedBy::RowGroupStatistics
    };
    Some(Pruned {
        key: key.to_string(),
        by,
        reason: format!(
            "`{}` statistics of {} of {total} row group(s) claim {}, outside {}",
            input::TIME_GENERATED,
            f.row_groups_pruned,
            span(&f.meta, gone),
            window(scope)
        ),
    })
}

/// The span the row groups' time statistics claim, as text.
fn span(meta: &FileMetadata, groups: impl Iterator<Item = usize>) -> String {
    let spans = groups.filter_map(|rg| row_group_span(meta, rg, input::TIME_GENERATED));
    match spans.reduce(|(a, b), (c, d)| (a.min(c), b.max(d))) {
        Some((lo, hi)) => format!("{} to {}", format_instant(lo), format_instant(hi)),
        None => "no span".into(),
    }
}

/// The window row groups are pruned to, as text.
fn window(scope: &Scope) -> String {
    match (scope.since, scope.until) {
        (Some(s), Some(u)) => format!(
            "--since {} to --as-of {}",
            format_instant(s),
            format_instant(u)
        ),
        (Some(s), None) => format!("--since {}", format_instant(s)),
        (None, Some(u)) => format!("--as-of {}", format_instant(u)),
        (None, None) => "the window".into(),
    }
}
