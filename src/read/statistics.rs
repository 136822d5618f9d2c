//! What a row group's column statistics claim, checked before any of them prunes: a damaged
//! footer (or a writer's bug) can claim a minimum years after the maximum, and a row group
//! pruned on that would leave the hunt without a word. A statistic that cannot be true makes
//! the object damaged, like a page header that cannot be (`read::claims`).
//!
//! Statistics are trusted only once checked: `min_value`/`max_value` (min ≤ max in the
//! column's own order, both decodable, a timestamp's both within what ns can hold) and
//! `null_count` (within the chunk's value count). The deprecated `min`/`max` are never read:
//! parquet-mr before 1.10 wrote byte arrays' in signed order. INT96 statistics are never read
//! either: they have no defined order. Nor are null counts written by polars: its writer
//! (0.55 here) gives every data page of a dictionary-encoded chunk the whole chunk's nulls, so
//! a chunk of N pages claims N times its nulls (measured: 4,000 of 3,000 values with 2 KiB
//! pages); no pruning uses a null count.

use polars_parquet::parquet::metadata::{ColumnChunkMetadata, FileMetadata};
use polars_parquet::parquet::schema::types::{PhysicalType, PrimitiveLogicalType};
use polars_parquet::parquet::statistics::Statistics;

use crate::archive::nanos_per_unit;
use crate::rule::columns::input;
use crate::time::format_instant;

/// Checks the statistics of every needed column in row group `rg`; the reason names the
/// column and the row group.
pub(crate) fn check(meta: &FileMetadata, rg: usize) -> Result<(), String> {
    let Some(group) = meta.row_groups.get(rg) else {
        return Err(format!("row group {rg} beyond the footer"));
    };
    let nulls = !overcounts_nulls(meta.created_by.as_deref());
    for name in input::NEEDED {
        for c in group.columns_under_root_iter(name).into_iter().flatten() {
            chunk(c, &meta.footer_buf, nulls).map_err(|why| {
                format!("column `{name}`, row group {rg}: statistics that cannot be true: {why}")
            })?;
        }
    }
    Ok(())
}

/// Writers known to claim more nulls than a chunk holds.
fn overcounts_nulls(created_by: Option<&str>) -> bool {
    created_by.is_some_and(|w| w.starts_with("Polars"))
}

/// One column chunk's statistics (its null count only when `nulls`).
fn chunk(c: &ColumnChunkMetadata, footer: &[u8], nulls: bool) -> Result<(), String> {
    let primitive = &c.descriptor().descriptor.primitive_type;
    if primitive.physical_type == PhysicalType::Int96 {
        return Ok(());
    }
    let Some(stats) = c.statistics(footer) else {
        return Ok(());
    };
    let stats = stats.map_err(|e| format!("undecodable ({e})"))?;
    let null_count = match &stats {
        Statistics::Binary(s) => s.null_count,
        Statistics::Int64(s) => s.null_count,
        Statistics::Int32(s) => s.null_count,
        Statistics::Boolean(s) => s.null_count,
        Statistics::FixedLen(s) => s.null_count,
        Statistics::Float(s) => s.null_count,
        Statistics::Double(s) => s.null_count,
        Statistics::Int96(s) => s.null_count,
    };
    if let Some(n) = null_count.filter(|_| nulls) {
        if n < 0 || n > c.num_values() {
            return Err(format!(
                "{n} nulls among the chunk's {} values",
                c.num_values()
            ));
        }
    }
    match &stats {
        Statistics::Int64(s) => {
            if let (Some(lo), Some(hi)) = (s.min_value, s.max_value) {
                if lo > hi {
                    return Err(bounds(primitive, lo, hi));
                }
            }
            if let Some(per_unit) = nanos_per_unit(primitive) {
                for v in [s.min_value, s.max_value].into_iter().flatten() {
                    if v.checked_mul(per_unit).is_none() {
                        return Err(format!(
                            "a bound of {v} units of {per_unit} ns is beyond any time in ns"
                        ));
                    }
                }
            }
        }
        Statistics::Binary(s) if bytewise(primitive.logical_type) => {
            if let (Some(lo), Some(hi)) = (&s.min_value, &s.max_value) {
                if lo > hi {
                    return Err(format!("min {} above max {}", quoted(lo), quoted(hi)));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Byte arrays whose order is unsigned bytewise (strings, JSON, unannotated): the order `Vec`
/// compares in. Decimals (signed) are left unchecked: no needed column is one.
fn bytewise(logical: Option<PrimitiveLogicalType>) -> bool {
    matches!(
        logical,
        None | Some(
            PrimitiveLogicalType::String
                | PrimitiveLogicalType::Enum
                | PrimitiveLogicalType::Json
                | PrimitiveLogicalType::Bson
        )
    )
}

/// `min … above max …`, as instants when the column is a timestamp.
fn bounds(
    primitive: &polars_parquet::parquet::schema::types::PrimitiveType,
    lo: i64,
    hi: i64,
) -> String {
    let instant = |v: i64| {
        nanos_per_unit(primitive)
            .and_then(|u| v.checked_mul(u))
            .map_or_else(|| v.to_string(), format_instant)
    };
    format!("min {} above max {}", instant(lo), instant(hi))
}

/// A bound for a message: as text when it is short printable ASCII (an archive's bytes never
/// reach a terminal unescaped), else its length.
fn quoted(b: &[u8]) -> String {
    if b.len() <= 64 && b.iter().all(|&c| c.is_ascii_graphic() || c == b' ') {
        format!("`{}`", String::from_utf8_lossy(b))
    } else {
        format!("({} bytes)", b.len())
    }
}
