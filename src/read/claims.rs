//! What an object's footer and page headers claim, checked before any reader trusts it: row
//! counts that add up, value counts within their row group, and page sizes a decoder can
//! allocate. A damaged header that claims a gigabyte page is refused here, naming the column,
//! instead of being allocated (which no failure boundary can catch).

use std::ops::Range;

use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, FileMetadata};
use polars_parquet::parquet::schema::types::PhysicalType;
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::PageHeader;

use crate::archive::Fetched;
use crate::error::{Error, Result};

/// The largest decompressed page accepted (writers cut pages at about 1 MiB).
pub(crate) const MAX_PAGE: usize = 256 << 20;

/// Checks the row groups `groups` of a fetched object: the file's row count is the sum of its
/// row groups', and every page of every column chunk of `read` has a size and a value count
/// that fit its chunk, its codec and its row group.
pub(crate) fn check(
    key: &str,
    meta: &FileMetadata,
    groups: Range<usize>,
    f: &Fetched,
    read: &[&str],
) -> Result<()> {
    let total: u64 = meta.row_groups.iter().map(|g| g.num_rows() as u64).sum();
    if total != meta.num_rows as u64 {
        return Err(Error::corrupt(
            key,
            format!(
                "the footer claims {} rows, its row groups {total}",
                meta.num_rows
            ),
        ));
    }
    let Some(row_groups) = meta.row_groups.get(groups.clone()) else {
        return Err(Error::corrupt(key, "row groups beyond the footer"));
    };
    for (i, rg) in groups.zip(row_groups) {
        for &name in read {
            for c in rg.columns_under_root_iter(name).into_iter().flatten() {
                chunk(c, rg.num_rows(), f).map_err(|why| {
                    Error::corrupt(key, format!("column `{name}`, row group {i}: {why}"))
                })?;
            }
        }
    }
    Ok(())
}

/// The pages of one column chunk, by their headers (nothing is decompressed).
fn chunk(c: &ColumnChunkMetadata, rows: usize, f: &Fetched) -> Result<(), String> {
    let start = c
        .dictionary_page_offset()
        .unwrap_or_else(|| c.data_page_offset());
    let (Ok(start), Ok(len)) = (u64::try_from(start), u64::try_from(c.compressed_size())) else {
        return Err(format!("offset {start}, size {}", c.compressed_size()));
    };
    let end = start.checked_add(len).ok_or("a chunk ending beyond 2^64")?;
    let Some(bytes) = f.range(start..end) else {
        return Err(format!("chunk {start}..{end} was not fetched whole"));
    };
    // Flat columns hold one value per row; nested ones (lists) may hold more.
    let flat = c.descriptor().descriptor.max_rep_level == 0;
    let claimed = u64::try_from(c.num_values()).map_err(|_| "a negative value count")?;
    if flat && claimed != rows as u64 {
        return Err(format!("{claimed} values in a row group of {rows} rows"));
    }
    let (mut at, mut seen) = (0usize, 0u64);
    while seen < claimed {
        let mut rest = bytes.get(at..).unwrap_or_default();
        let before = rest.len();
        let h =
            PageHeader::read_from_in_protocol(&mut TCompactInputProtocol::new(&mut rest, before))
                .map_err(|e| format!("page header at {}: {e}", start + at as u64))?;
        let header_len = before - rest.len();
        let (Ok(compressed), Ok(uncompressed)) = (
            usize::try_from(h.compressed_page_size),
            usize::try_from(h.uncompressed_page_size),
        ) else {
            return Err(format!(
                "a page claims negative sizes ({}, {})",
                h.compressed_page_size, h.uncompressed_page_size
            ));
        };
        if compressed > rest.len() {
            return Err(format!(
                "a page of {compressed} bytes where {} remain in the chunk",
                rest.len()
            ));
        }
        let most = most_decompressed(c.compression(), compressed);
        if uncompressed > most {
            return Err(format!(
                "a page of {compressed} bytes claims {uncompressed} decompressed (at most {most} \
                 with {:?})",
                c.compression()
            ));
        }
        if let Some(d) = &h.dictionary_page_header {
            // Decoders allocate for the entries a dictionary claims: each takes at least its
            // type's width (a string its 4-byte length) of the decompressed page.
            let entries = u64::try_from(d.num_values).map_err(|_| "a negative dictionary size")?;
            let width = match c.descriptor().descriptor.primitive_type.physical_type {
                PhysicalType::Boolean => 0,
                PhysicalType::Int32 | PhysicalType::Float | PhysicalType::ByteArray => 4,
                PhysicalType::Int64 | PhysicalType::Double => 8,
                PhysicalType::Int96 => 12,
                PhysicalType::FixedLenByteArray(n) => n as u64,
            };
            if entries.saturating_mul(width) > uncompressed as u64 {
                return Err(format!(
                    "a dictionary of {entries} entries in {uncompressed} bytes"
                ));
            }
        }
        let values = match (&h.data_page_header, &h.data_page_header_v2) {
            (Some(v1), _) => v1.num_values,
            (None, Some(v2)) => v2.num_values,
            (None, None) => 0,
        };
        seen += u64::try_from(values).map_err(|_| "a page with a negative value count")?;
        if seen > claimed {
            return Err(format!("pages hold more than the chunk's {claimed} values"));
        }
        at += header_len + compressed;
        if at >= bytes.len() && seen < claimed {
            return Err(format!(
                "pages end after {seen} of the chunk's {claimed} values"
            ));
        }
    }
    Ok(())
}

/// The most a page of `compressed` bytes can decompress to with `codec`: each codec's format
/// bounds its expansion (snappy about 21×, LZ4 about 255×, deflate about 1032×); zstd and
/// brotli have no useful bound below [`MAX_PAGE`].
fn most_decompressed(codec: Compression, compressed: usize) -> usize {
    let ratio = match codec {
        Compression::Uncompressed => 1,
        Compression::Snappy => 32,
        Compression::Lz4 | Compression::Lz4Raw => 256,
        Compression::Gzip => 1100,
        _ => return MAX_PAGE,
    };
    compressed
        .saturating_mul(ratio)
        .saturating_add(64)
        .min(MAX_PAGE)
}
