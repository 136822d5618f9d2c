//! A cache's **view**: the events of a whole listing as a run combined them (stacked in key
//! order, cut to its scope, deduplicated), kept beside the segments with the statistics of the
//! rows behind them. A rerun over the same objects with the same scope reads this one object and
//! none of the segments, and skips looking up, stacking, cutting and deduplicating hundreds of
//! entries: that was most of a warm rerun once listing was quick.
//!
//! A view is written only by a run whose every object was a cache hit, so what it holds is what
//! such a run computes, figures included. Its key names the scope and every object's identity;
//! one that does not match the run, or does not read back whole, is ignored (and replaced).

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::cache::{footer_value, with_footer};
use super::scan::{Extracted, ScanMetrics};
use super::{fnv, pruned, Scope};
use crate::archive::{ArchiveObject, Listing};
use crate::error::{Error, Result};
use crate::rule::columns::{empty_events, ev};

/// The footer key holding a view's [`Stats`].
const STATS_KEY: &str = "unredeemed.view";

/// What a view holds beside its events: its key and the figures of the run that combined them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stats {
    key: String,
    duplicates_dropped: u64,
    rows_scanned: u64,
    max_time: Option<i64>,
    tenant_rows: BTreeMap<String, u64>,
}

/// A view as read, or about to be written.
pub(crate) struct View {
    stats: Stats,
    events: DataFrame,
}

impl View {
    /// The key of a run's view: its scope, and every listed object's identity in key order.
    pub(crate) fn key_for(scope: &Scope, identities: impl Iterator<Item = String>) -> String {
        let (mut count, mut all) = (0usize, String::new());
        for id in identities {
            count += 1;
            all.push_str(&id);
            all.push_str("\n\n");
        }
        format!("{scope:?}\n{count} objects, {:016x}", fnv(&all))
    }

    /// The view's object name for a run of this scope: one for runs of invites and redeems, one
    /// for the life cycle's, each replaced by the last run that wrote it.
    pub(crate) fn file_name(scope: &Scope) -> &'static str {
        match scope.lifecycle {
            true => "lifecycle.view",
            false => "pairs.view",
        }
    }

    /// The view of a run whose every object was a hit.
    pub(crate) fn of(key: String, x: &Extracted) -> Self {
        View {
            stats: Stats {
                key,
                duplicates_dropped: x.duplicates_dropped,
                rows_scanned: x.metrics.rows_scanned,
                max_time: x.max_time,
                tenant_rows: x.tenant_rows.clone(),
            },
            events: x.events.clone(),
        }
    }

    /// A view read back (`None`: damaged, or written by another version).
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let json = footer_value(bytes, bytes.len() as u64, STATS_KEY).ok()?;
        let stats: Stats = serde_json::from_str(&json).ok()?;
        let events = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .ok()?;
        (events.schema() == empty_events().schema()).then_some(View { stats, events })
    }

    /// The view as a Parquet object (its stats in the footer).
    pub(crate) fn bytes(&self) -> Result<Vec<u8>> {
        let json = serde_json::to_string(&self.stats)
            .map_err(|e| Error::Internal(format!("view stats: {e}")))?;
        Ok(with_footer(&mut self.events.clone(), STATS_KEY, json)?)
    }

    pub(crate) fn key(&self) -> &str {
        &self.stats.key
    }

    /// What a run whose every listed object is a hit extracts: the view's events and figures,
    /// and the listing's own.
    pub(crate) fn extracted(self, listing: &Listing) -> Result<Extracted> {
        let objects: &[ArchiveObject] = &listing.objects;
        let mut listed_pruned = pruned::listed(listing);
        listed_pruned.sort_by(|a, b| a.key.cmp(&b.key));
        let metrics = ScanMetrics {
            files: objects.len(),
            files_listed: objects.len(),
            folders_pruned: listing.folders_pruned,
            bytes: objects.iter().map(|o| o.size).sum(),
            rows_scanned: self.stats.rows_scanned,
            pruned: listed_pruned,
            cache_hits: objects.len(),
            cache_segments: 1,
            ..Default::default()
        };
        let unparseable_json = self
            .events
            .column(ev::BAD_JSON)?
            .as_materialized_series()
            .sum::<u64>()?;
        Ok(Extracted {
            events: self.events,
            metrics,
            max_time: self.stats.max_time,
            tenant_rows: self.stats.tenant_rows,
            duplicates_dropped: self.stats.duplicates_dropped,
            unparseable_json,
            decode_time: std::time::Duration::ZERO,
            extract_time: std::time::Duration::ZERO,
            fresh: Vec::new(),
            paced: Default::default(),
        })
    }
}
