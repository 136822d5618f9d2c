//! polars' Parquet reader on one fetched object: every needed column decoded whole. It reads
//! every layout (nested dynamic columns, INT96 times, v2 pages, any encoding) and reports real
//! faults, so it takes every object the late reader declines.

use std::sync::Arc;

use polars::prelude::*;
use polars_buffer::Buffer;

use super::cache::Entry;
use super::events::{candidate_events, compact, predicate, Columns};
use super::scope::Scope;
use crate::archive::Fetched;
use crate::error::{Error, Result};
use crate::rule::columns::ev;

/// The candidate events of one object, and its row statistics.
pub(super) fn scan(key: &str, f: Fetched, scope: &Scope) -> Result<Entry> {
    let corrupt = |e: PolarsError| Error::corrupt_by(key, e);
    let (bytes, rows) = (f.sparse(), f.rows);
    let args = ScanArgsParquet {
        glob: false,
        hive_options: HiveOptions::new_disabled(),
        // Row groups are pruned before the fetch, on checked statistics (`read::statistics`);
        // polars would trust INT96 ones, which have no defined order.
        use_statistics: false,
        ..Default::default()
    };
    let sources = ScanSources::Buffers(Arc::from(vec![Buffer::from(bytes)]));
    let mut lf = LazyFrame::scan_parquet_sources(sources, args).map_err(corrupt)?;
    if let Some((offset, len)) = rows {
        // Only the row groups that were fetched: the slice keeps polars out of the others.
        lf = lf.slice(offset as i64, len as IdxSize);
    }
    let schema = lf.clone().collect_schema().map_err(corrupt)?;
    let cols = Columns::resolve(key, &schema, scope.lifecycle)?;
    let stats = row_stats(lf.clone(), &cols).map_err(corrupt)?;
    // The candidate rows, only the needed columns (nothing else was fetched).
    let read: Vec<Expr> = scope
        .read_columns()
        .iter()
        .filter(|c| schema.get(c).is_some())
        .map(|c| col(*c))
        .collect();
    let raw = lf
        .select(read)
        .filter(predicate(&cols, scope))
        .collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single())
        .map_err(corrupt)?;
    let events = candidate_events(raw.lazy(), &cols, scope, None).map_err(corrupt)?;
    Ok(Entry {
        events: compact(events)?,
        rows: stats.rows,
        max_time: stats.max_time,
        tenant_rows: stats.tenant_rows,
        from: None,
    })
}

struct RowStats {
    rows: u64,
    max_time: Option<i64>,
    tenant_rows: Vec<(String, u64)>,
}

/// Rows per tenant and the latest time: one pass over three narrow columns.
fn row_stats(lf: LazyFrame, cols: &Columns) -> PolarsResult<RowStats> {
    const ROWS: &str = "rows";
    const MAX: &str = "max";
    let stats = lf
        .group_by([cols.tenant.clone().alias(ev::TENANT)])
        .agg([len().alias(ROWS), cols.time.clone().max().alias(MAX)])
        .collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single())?;
    let tenants = stats.column(ev::TENANT)?.str()?.clone();
    let rows = stats
        .column(ROWS)?
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    let rows = rows.u64()?;
    let maxes = stats.column(MAX)?.i64()?;
    let mut out = RowStats {
        rows: 0,
        max_time: None,
        tenant_rows: Vec::with_capacity(stats.height()),
    };
    for i in 0..stats.height() {
        let n = rows.get(i).unwrap_or(0);
        out.rows += n;
        out.max_time = out.max_time.max(maxes.get(i));
        out.tenant_rows
            .push((tenants.get(i).unwrap_or("").to_string(), n));
    }
    Ok(out)
}
