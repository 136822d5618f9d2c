//! Late-materialized scan of one object in the common flat layout (every needed column a flat
//! string or timestamp leaf). The narrow columns (`Category`, `OperationName`, `TenantId`,
//! `TimeGenerated`) are decoded whole, their predicates evaluated once per dictionary entry; the
//! wide ones (`TargetResources`, `InitiatedBy`, `Id`, `Result`) only where a candidate row lies:
//! a page without one is never decompressed, and a PLAIN zstd page is decompressed only up to
//! its last candidate's value. Decompression is most of a scan's CPU, and guest events are rare.
//!
//! Anything this reader does not handle (nested dynamic columns, v2 pages, other encodings,
//! INT96 times, invalid UTF-8, a malformed page) makes it give up with [`Unsupported`], and the
//! caller scans the object with polars instead, which also reports real faults.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::ops::Range;

use blocks::Blocks;
use bytes::Bytes;
use polars::prelude::*;
use polars_buffer::Buffer;
use polars_parquet::parquet::compression::{Compression, DecompressionContext};
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, FileMetadata};
use polars_parquet::parquet::page::{CompressedPage, DataPageHeader, FormatEncoding, Page};
use polars_parquet::parquet::read::{decompress, PageReader};
use polars_parquet::parquet::schema::types::{
    PhysicalType, PrimitiveConvertedType, PrimitiveLogicalType, TimeUnit as PqUnit,
};

use crate::extract::{CATEGORY, INVITE_OP, REDEEM_OP};

/// Why the late reader gave up on an object.
#[derive(Debug)]
pub struct Unsupported(pub String);

type R<T> = std::result::Result<T, Unsupported>;

fn no<T>(why: impl Into<String>) -> R<T> {
    Err(Unsupported(why.into()))
}

/// The candidate rows of one object (all `Category`/`OperationName` matches, before the tenant
/// and time cut), with the raw columns the event expressions read, plus the per-object stats.
pub struct Raw {
    /// `TenantId`, `Id`, `TimeGenerated` (datetime ns), `Category`, `OperationName`, `Result`,
    /// `TargetResources`, `InitiatedBy`.
    pub frame: DataFrame,
    pub rows: u64,
    pub max_time: Option<i64>,
    pub tenant_rows: Vec<(String, u64)>,
}

const STRINGS: [&str; 7] = [
    "TenantId",
    "Id",
    "Category",
    "OperationName",
    "Result",
    "TargetResources",
    "InitiatedBy",
];

/// The late scan of row groups `groups`; `bytes` gives a column chunk's fetched bytes. Rows
/// before `since` or outside `tenants` (when not empty) need not be candidates: the caller
/// applies the full predicate to what comes back.
pub fn scan(
    meta: &FileMetadata,
    groups: Range<usize>,
    bytes: impl Fn(Range<u64>) -> Option<Bytes>,
    since: Option<i64>,
    tenants: &[String],
) -> R<Raw> {
    // The same types polars would give the columns, so that the events come out the same.
    let arrow = polars_parquet::arrow::read::infer_schema(meta)
        .map_err(|e| Unsupported(format!("schema: {e}")))?;
    let schema = Schema::from_arrow_schema(&arrow);
    for name in STRINGS {
        if schema.get(name) != Some(&DataType::String) {
            return no(format!("`{name}` is not a string column"));
        }
    }
    let Some(DataType::Datetime(unit, _)) = schema.get("TimeGenerated") else {
        return no("`TimeGenerated` is not a timestamp");
    };
    // polars converts stored values to the unit it infers (from an embedded Arrow schema, when
    // there is one); only the case where that is the stored unit is read here.
    let inferred_scale = match unit {
        TimeUnit::Milliseconds => 1_000_000,
        TimeUnit::Microseconds => 1_000,
        TimeUnit::Nanoseconds => 1,
    };
    let category = regex::Regex::new(&format!("(?i)^{CATEGORY}$")).expect("a valid regex");
    let operation =
        regex::Regex::new(&format!("(?i)^(?:{INVITE_OP}|{REDEEM_OP})$")).expect("a valid regex");

    let mut cx = Cx::default();
    let mut out = Gathered::default();
    let mut tenant_rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows = 0u64;
    let mut max_time: Option<i64> = None;
    for rg in &meta.row_groups[groups] {
        let n = rg.num_rows();
        let chunk = |name: &str, physical: PhysicalType| -> R<(&ColumnChunkMetadata, Bytes)> {
            let mut it = rg.columns_under_root_iter(name).into_iter().flatten();
            let c = match (it.next(), it.next()) {
                (Some(c), None) => c,
                _ => return no(format!("`{name}` is not one flat column")),
            };
            let d = &c.descriptor().descriptor;
            if c.descriptor().path_in_schema.len() != 1
                || d.max_rep_level != 0
                || d.max_def_level > 1
                || d.primitive_type.physical_type != physical
            {
                return no(format!("`{name}` is not a flat {physical:?} column"));
            }
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let (Ok(s), Ok(l)) = (u64::try_from(start), u64::try_from(c.compressed_size())) else {
                return no(format!("`{name}`: bad chunk offsets"));
            };
            let Some(end) = s.checked_add(l) else {
                return no(format!("`{name}`: bad chunk offsets"));
            };
            match bytes(s..end) {
                Some(b) => Ok((c, b)),
                None => no(format!("`{name}`: chunk not fetched")),
            }
        };
        let col = |name: &str, want: Want, cx: &mut Cx| -> R<Values> {
            let (c, b) = chunk(name, PhysicalType::ByteArray)?;
            read(c, b, n, Width::Bytes, want, cx)
        };

        let cat = col("Category", Want::All, &mut cx)?;
        let op = col("OperationName", Want::All, &mut cx)?;
        let cat_ok = cat.matches(&category)?;
        let op_ok = op.matches(&operation)?;
        let mut hits: Vec<usize> = (0..n)
            .filter(|&i| op.key_ok(i, &op_ok) && cat.key_ok(i, &cat_ok))
            .collect();

        let tenant = col("TenantId", Want::All, &mut cx)?;
        if !tenants.is_empty() {
            let keep: Vec<bool> = (0..tenant.entries())
                .map(|k| tenants.iter().any(|t| t.as_bytes() == tenant.entry(k)))
                .collect();
            let null_kept = tenants.iter().any(String::is_empty);
            hits.retain(|&i| match tenant.keys[i] {
                NULL => null_kept,
                k => keep[k as usize],
            });
        }
        let mut counts = vec![0u64; tenant.entries() + 1];
        for &k in &tenant.keys {
            counts[if k == NULL {
                tenant.entries()
            } else {
                k as usize
            }] += 1;
        }
        for (k, &c) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
            let name = if k == tenant.entries() {
                ""
            } else {
                utf8(tenant.entry(k), "TenantId")?
            };
            *tenant_rows.entry(name.to_string()).or_default() += c;
        }

        let (tc, tb) = chunk("TimeGenerated", PhysicalType::Int64)?;
        let scale = time_scale(tc)?;
        if scale != inferred_scale {
            return no("`TimeGenerated` stored in another unit than it reads as");
        }
        let time = read(tc, tb, n, Width::Eight, Want::All, &mut cx)?;
        let at = |i: usize| -> R<Option<i64>> {
            time.get(i)
                .map(|b| {
                    let v = i64::from_le_bytes(b.try_into().expect("8 bytes"));
                    v.checked_mul(scale)
                        .ok_or_else(|| Unsupported("time out of range".into()))
                })
                .transpose()
        };
        // Scaling keeps the order, so the stored maximum is scaled once. A value whose scaling
        // overflows (polars would wrap it around) is left to polars.
        let stored = time
            .keys
            .iter()
            .filter(|&&k| k != NULL)
            .map(|&k| i64::from_le_bytes(time.entry(k as usize).try_into().expect("8 bytes")));
        let (lo, hi) = stored.fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo <= hi {
            let out_of_range = || Unsupported("time out of range".into());
            lo.checked_mul(scale).ok_or_else(out_of_range)?;
            max_time = max_time.max(Some(hi.checked_mul(scale).ok_or_else(out_of_range)?));
        }
        rows += n as u64;
        if let Some(since) = since {
            let mut kept = Vec::with_capacity(hits.len());
            for &i in &hits {
                if at(i)?.is_some_and(|t| t >= since) {
                    kept.push(i);
                }
            }
            hits = kept;
        }

        if hits.is_empty() {
            continue;
        }
        for &i in &hits {
            out.time.push(at(i)?);
            out.tenant.push(opt_string(tenant.get(i), "TenantId")?);
            out.category.push(opt_string(cat.get(i), "Category")?);
            out.operation.push(opt_string(op.get(i), "OperationName")?);
        }
        for (name, dst) in [
            ("Id", &mut out.id),
            ("Result", &mut out.result),
            ("TargetResources", &mut out.targets),
        ] {
            let v = col(name, Want::Rows(&hits), &mut cx)?;
            for j in 0..hits.len() {
                dst.push(opt_string(v.get(j), name)?);
            }
        }
        // Only an invite's initiator matters (see `extract::candidate_events`): the pages
        // holding only redeems are never decompressed.
        let invite: Vec<bool> = (0..op.entries())
            .map(|k| utf8(op.entry(k), "OperationName").map(|s| s.to_lowercase() == INVITE_OP))
            .collect::<R<_>>()?;
        let invites: Vec<usize> = hits
            .iter()
            .copied()
            .filter(|&i| op.key_ok(i, &invite))
            .collect();
        let v = col("InitiatedBy", Want::Rows(&invites), &mut cx)?;
        let mut next = 0;
        for &i in &hits {
            if invites.get(next) == Some(&i) {
                out.initiated.push(opt_string(v.get(next), "InitiatedBy")?);
                next += 1;
            } else {
                out.initiated.push(None);
            }
        }
    }
    let s = |name: &str, v: Vec<Option<String>>| Column::new(name.into(), v);
    let frame = DataFrame::new_infer_height(vec![
        s("TenantId", out.tenant),
        s("Id", out.id),
        Column::new("TimeGenerated".into(), out.time)
            .cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))
            .map_err(|e| Unsupported(e.to_string()))?,
        s("Category", out.category),
        s("OperationName", out.operation),
        s("Result", out.result),
        s("TargetResources", out.targets),
        s("InitiatedBy", out.initiated),
    ])
    .map_err(|e| Unsupported(e.to_string()))?;
    Ok(Raw {
        frame,
        rows,
        max_time,
        tenant_rows: tenant_rows.into_iter().collect(),
    })
}

#[derive(Default)]
struct Gathered {
    tenant: Vec<Option<String>>,
    id: Vec<Option<String>>,
    time: Vec<Option<i64>>,
    category: Vec<Option<String>>,
    operation: Vec<Option<String>>,
    result: Vec<Option<String>>,
    targets: Vec<Option<String>>,
    initiated: Vec<Option<String>>,
}

fn utf8<'a>(b: &'a [u8], column: &str) -> R<&'a str> {
    std::str::from_utf8(b).map_err(|_| Unsupported(format!("`{column}`: invalid UTF-8")))
}

fn opt_string(b: Option<&[u8]>, column: &str) -> R<Option<String>> {
    b.map(|b| utf8(b, column).map(str::to_string)).transpose()
}

/// Nanoseconds per stored unit of an INT64 timestamp column.
fn time_scale(c: &ColumnChunkMetadata) -> R<i64> {
    let t = &c.descriptor().descriptor.primitive_type;
    match (t.logical_type, t.converted_type) {
        (Some(PrimitiveLogicalType::Timestamp { unit, .. }), _) => Ok(match unit {
            PqUnit::Milliseconds => 1_000_000,
            PqUnit::Microseconds => 1_000,
            PqUnit::Nanoseconds => 1,
        }),
        (None, Some(PrimitiveConvertedType::TimestampMillis)) => Ok(1_000_000),
        (None, Some(PrimitiveConvertedType::TimestampMicros)) => Ok(1_000),
        _ => no("`TimeGenerated` has no timestamp unit"),
    }
}

/// Larger decompressed pages are left to polars (writers cut pages at about 1 MiB).
const MAX_PAGE: usize = 256 << 20;

/// Key of a null value.
const NULL: u32 = u32::MAX;

/// Decoded values: distinct entries (a dictionary's, then PLAIN values as met) in one buffer,
/// and one key per row read.
#[derive(Default)]
struct Values {
    data: Vec<u8>,
    /// Entry `i` is `data[offsets[i]..offsets[i + 1]]`; with `fixed`, `data[8 * i..8 * i + 8]`.
    offsets: Vec<usize>,
    fixed: bool,
    keys: Vec<u32>,
}

impl Values {
    fn new(width: Width) -> Self {
        Values {
            fixed: matches!(width, Width::Eight),
            ..Default::default()
        }
    }

    fn entries(&self) -> usize {
        if self.fixed {
            self.data.len() / 8
        } else {
            self.offsets.len().saturating_sub(1)
        }
    }

    fn entry(&self, k: usize) -> &[u8] {
        if self.fixed {
            &self.data[8 * k..8 * k + 8]
        } else {
            &self.data[self.offsets[k]..self.offsets[k + 1]]
        }
    }

    fn push(&mut self, v: &[u8]) -> R<u32> {
        self.data.extend_from_slice(v);
        if !self.fixed {
            if self.offsets.is_empty() {
                self.offsets.push(0);
            }
            self.offsets.push(self.data.len());
        }
        u32::try_from(self.entries() - 1)
            .ok()
            .filter(|&k| k != NULL)
            .ok_or_else(|| Unsupported("too many values".into()))
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        match self.keys[i] {
            NULL => None,
            k => Some(self.entry(k as usize)),
        }
    }

    /// Whether each entry matches `re` (a string column's predicate, once per entry).
    fn matches(&self, re: &regex::Regex) -> R<Vec<bool>> {
        (0..self.entries())
            .map(|k| utf8(self.entry(k), "filter column").map(|s| re.is_match(s)))
            .collect()
    }

    fn key_ok(&self, i: usize, ok: &[bool]) -> bool {
        let k = self.keys[i];
        k != NULL && ok[k as usize]
    }
}

#[derive(Clone, Copy)]
enum Width {
    /// BYTE_ARRAY: a 4-byte length, then the bytes.
    Bytes,
    /// INT64.
    Eight,
}

#[derive(Clone, Copy)]
enum Want<'a> {
    All,
    /// These rows of the row group, ascending.
    Rows(&'a [usize]),
}

/// Per-object decoding state, reused across pages.
struct Cx {
    zstd: Blocks,
    other: DecompressionContext,
    /// Decompression target; only ever grows, so pages after the first cost no zeroing.
    scratch: Vec<u8>,
    levels: Vec<u32>,
    indices: Vec<u32>,
}

impl Default for Cx {
    fn default() -> Self {
        Cx {
            zstd: Blocks::new(),
            other: DecompressionContext::Unset,
            scratch: Vec::new(),
            levels: Vec::new(),
            indices: Vec::new(),
        }
    }
}

/// A data page's bytes, decompressed on demand.
enum Body<'a> {
    Whole(&'a [u8]),
    Zstd {
        src: &'a [u8],
        in_pos: usize,
        out: &'a mut [u8],
        filled: usize,
        ctx: &'a mut Blocks,
    },
}

impl Body<'_> {
    /// Makes the first `n` bytes available.
    fn ensure(&mut self, n: usize) -> R<()> {
        match self {
            Body::Whole(b) if n <= b.len() => Ok(()),
            Body::Whole(_) => no("value beyond the page"),
            Body::Zstd {
                src,
                in_pos,
                out,
                filled,
                ctx,
            } => {
                if n <= *filled {
                    return Ok(());
                }
                if n > out.len() {
                    return no("value beyond the page");
                }
                // Block by block, straight into the page buffer, until `n` bytes are there.
                while *filled < n {
                    match ctx.step(src, *in_pos, out, *filled)? {
                        Some((read, wrote)) => {
                            *in_pos += read;
                            *filled += wrote;
                        }
                        None => return no("zstd stream ends early"),
                    }
                }
                Ok(())
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Body::Whole(b) => b,
            Body::Zstd { out, filled, .. } => &out[..*filled],
        }
    }

    #[inline]
    fn u32_at(&mut self, pos: usize) -> R<usize> {
        if let Some(b) = self.bytes().get(pos..pos + 4) {
            return Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
        }
        self.ensure(pos + 4)?;
        let b: [u8; 4] = self.bytes()[pos..pos + 4].try_into().expect("4 bytes");
        Ok(u32::from_le_bytes(b) as usize)
    }

    /// The PLAIN value at `pos`: its byte range.
    fn value_at(&mut self, pos: usize, width: Width) -> R<Range<usize>> {
        let r = match width {
            Width::Eight => pos..pos + 8,
            Width::Bytes => {
                let len = self.u32_at(pos)?;
                pos + 4..pos + 4 + len
            }
        };
        self.ensure(r.end)?;
        Ok(r)
    }
}

/// Reads one column chunk of a row group of `n` rows: every row, or only `Want::Rows`, whose
/// pages alone are decompressed.
fn read(
    c: &ColumnChunkMetadata,
    bytes: Bytes,
    n: usize,
    width: Width,
    want: Want,
    cx: &mut Cx,
) -> R<Values> {
    let bad = |e: polars_parquet::parquet::error::ParquetError| Unsupported(e.to_string());
    let has_def = c.descriptor().descriptor.max_def_level > 0;
    // No data page (nor header field) can be larger than its chunk: this bounds what a corrupt
    // header can make the reader read. (A dictionary page's declared decompressed size is
    // polars-parquet's to check, as in polars' own reader.)
    let limit = bytes.len();
    let pages = PageReader::new(Cursor::new(Buffer::from_owner(bytes)), c, Vec::new(), limit);
    let mut v = Values::new(width);
    let mut dict: Option<usize> = None;
    let mut row0 = 0usize;
    let mut next = 0usize;
    for page in pages {
        let page = page.map_err(bad)?;
        let mut page = match page {
            CompressedPage::Dict(d) => {
                if dict.is_some() || row0 > 0 {
                    return no("a dictionary page after data pages");
                }
                let Page::Dict(p) =
                    decompress(CompressedPage::Dict(d), &mut Vec::new(), &mut cx.other)
                        .map_err(bad)?
                else {
                    return no("not a dictionary page");
                };
                let count = p.num_values;
                let mut body = Body::Whole(&p.buffer);
                let mut pos = 0;
                for _ in 0..count {
                    let r = body.value_at(pos, width)?;
                    v.push(&body.bytes()[r.clone()])?;
                    pos = r.end;
                }
                dict = Some(count);
                continue;
            }
            CompressedPage::Data(p) => p,
        };
        let DataPageHeader::V1(h) = page.header().clone() else {
            return no("a v2 data page");
        };
        let rows = usize::try_from(h.num_values)
            .ok()
            .filter(|&r| r <= n - row0)
            .ok_or_else(|| Unsupported(format!("a page of {} rows", h.num_values)))?;
        let sel: &[usize] = match want {
            Want::All => &[],
            Want::Rows(all) => {
                let end = all[next..].partition_point(|&r| r < row0 + rows);
                let s = &all[next..next + end];
                next += end;
                if s.is_empty() {
                    row0 += rows;
                    continue;
                }
                s
            }
        };
        if has_def && h.definition_level_encoding != FormatEncoding::RLE {
            return no("definition levels not RLE");
        }
        let dictionary = match h.encoding {
            FormatEncoding::PLAIN => false,
            FormatEncoding::RLE_DICTIONARY | FormatEncoding::PLAIN_DICTIONARY => true,
            e => return no(format!("encoding {e:?}")),
        };
        let total = page.uncompressed_size();
        if total > MAX_PAGE {
            return no(format!("a page of {total} bytes"));
        }
        let whole;
        let mut body = if page.compression() == Compression::Zstd {
            if cx.scratch.len() < total {
                cx.scratch.resize(total, 0);
            }
            cx.zstd.begin()?;
            Body::Zstd {
                src: &page.slice_mut()[..],
                in_pos: 0,
                out: &mut cx.scratch[..total],
                filled: 0,
                ctx: &mut cx.zstd,
            }
        } else {
            let mut tmp = Vec::new();
            whole = match decompress(CompressedPage::Data(page), &mut tmp, &mut cx.other)
                .map_err(bad)?
            {
                Page::Data(d) => d,
                Page::Dict(_) => return no("not a data page"),
            };
            Body::Whole(whole.buffer())
        };

        // Definition levels (bit width 1): which rows hold a value.
        let mut pos = 0;
        cx.levels.clear();
        if has_def {
            let len = body.u32_at(0)?;
            body.ensure(4 + len)?;
            hybrid(&body.bytes()[4..4 + len], 1, rows, &mut cx.levels)?;
            pos = 4 + len;
        }
        // Dense: every row of the page holds a value (the common case, one RLE run).
        let dense = !has_def || !cx.levels.contains(&0);
        let defined = |i: usize, levels: &[u32]| dense || levels[i] == 1;

        if dictionary {
            let Some(size) = dict else {
                return no("dictionary-encoded page without a dictionary");
            };
            body.ensure(total)?;
            let b = body.bytes();
            let Some(&bw) = b.get(pos) else {
                return no("dictionary page without a bit width");
            };
            let count = if dense {
                rows
            } else {
                (0..rows).filter(|&i| defined(i, &cx.levels)).count()
            };
            cx.indices.clear();
            hybrid(&b[pos + 1..], u32::from(bw), count, &mut cx.indices)?;
            if cx.indices.iter().any(|&k| k as usize >= size) {
                return no("dictionary index out of range");
            }
            let all_defined = count == rows;
            if all_defined && matches!(want, Want::All) {
                v.keys.extend_from_slice(&cx.indices);
                row0 += rows;
                continue;
            }
            let mut vi = 0;
            let mut s = sel.iter().peekable();
            for i in 0..rows {
                let d = defined(i, &cx.levels);
                let wanted = match want {
                    Want::All => true,
                    Want::Rows(_) => s.next_if(|&&r| r == row0 + i).is_some(),
                };
                if wanted {
                    v.keys.push(if d { cx.indices[vi] } else { NULL });
                }
                vi += usize::from(d);
            }
        } else if let Want::Rows(_) = want {
            // Walk to each wanted row; a skipped string's length is all that is read of it.
            let mut i = 0;
            for &r in sel {
                let at = r - row0;
                while i < at {
                    if defined(i, &cx.levels) {
                        pos = match width {
                            Width::Bytes => pos + 4 + body.u32_at(pos)?,
                            Width::Eight => pos + 8,
                        };
                    }
                    i += 1;
                }
                pos = take(&mut body, &mut v, pos, width, defined(at, &cx.levels))?;
                i = at + 1;
            }
        } else {
            body.ensure(total)?;
            if matches!(width, Width::Eight) && dense {
                // Every row holds an 8-byte value: one copy.
                let Some(b) = body.bytes().get(pos..pos + 8 * rows) else {
                    return no("values beyond the page");
                };
                let first = v.entries();
                if first + rows >= NULL as usize {
                    return no("too many values");
                }
                v.data.extend_from_slice(b);
                v.keys.extend((first..first + rows).map(|k| k as u32));
                row0 += rows;
                continue;
            }
            for i in 0..rows {
                pos = take(&mut body, &mut v, pos, width, defined(i, &cx.levels))?;
            }
        }
        row0 += rows;
    }
    let expected = match want {
        Want::All => n,
        Want::Rows(r) => r.len(),
    };
    if row0 != n || v.keys.len() != expected {
        return no(format!(
            "pages hold {row0} rows for {n} ({} of {expected} read)",
            v.keys.len()
        ));
    }
    Ok(v)
}

/// Reads the PLAIN value at `pos` into `v` (a null key when the row has none); returns where
/// the next value starts.
fn take(body: &mut Body, v: &mut Values, pos: usize, width: Width, defined: bool) -> R<usize> {
    if !defined {
        v.keys.push(NULL);
        return Ok(pos);
    }
    let r = body.value_at(pos, width)?;
    let k = v.push(&body.bytes()[r.clone()])?;
    v.keys.push(k);
    Ok(r.end)
}

/// zstd's buffer-less streaming API (stable since zstd 0.6, in the static library but outside
/// the `zstd` crates' safe API): each block is decoded straight into the page buffer, after the
/// blocks before it, so a page is decoded only as far as needed, without the extra copy and
/// split-literal decoding of `ZSTD_decompressStream`'s buffered mode.
#[allow(unsafe_code)]
mod blocks {
    use super::{no, R};
    use std::ffi::c_void;
    use std::ptr::NonNull;
    use zstd_sys::{ZSTD_DCtx, ZSTD_createDCtx, ZSTD_freeDCtx, ZSTD_isError};

    extern "C" {
        fn ZSTD_decompressBegin(dctx: *mut ZSTD_DCtx) -> usize;
        fn ZSTD_nextSrcSizeToDecompress(dctx: *mut ZSTD_DCtx) -> usize;
        fn ZSTD_decompressContinue(
            dctx: *mut ZSTD_DCtx,
            dst: *mut c_void,
            dst_capacity: usize,
            src: *const c_void,
            src_size: usize,
        ) -> usize;
    }

    /// One decompression context, used by one thread.
    pub struct Blocks(NonNull<ZSTD_DCtx>);

    // SAFETY: the context is only ever used through `&mut self`.
    unsafe impl Send for Blocks {}

    impl Blocks {
        pub fn new() -> Self {
            // SAFETY: plain constructor; null only when out of memory.
            let p = unsafe { ZSTD_createDCtx() };
            Blocks(NonNull::new(p).expect("zstd context allocation"))
        }

        /// Starts a new frame.
        pub fn begin(&mut self) -> R<()> {
            // SAFETY: a live context.
            let r = unsafe { ZSTD_decompressBegin(self.0.as_ptr()) };
            // SAFETY: pure function of its argument.
            if unsafe { ZSTD_isError(r) } != 0 {
                return no("zstd begin failed");
            }
            Ok(())
        }

        /// Decodes the next header or block of `src[at..]` into `out[filled..]`, after the
        /// output so far (which must stay where it is: later blocks refer back to it). Returns
        /// the bytes read and written, `None` once `src` is exhausted.
        pub fn step(
            &mut self,
            src: &[u8],
            at: usize,
            out: &mut [u8],
            filled: usize,
        ) -> R<Option<(usize, usize)>> {
            // SAFETY: a live context.
            let mut need = unsafe { ZSTD_nextSrcSizeToDecompress(self.0.as_ptr()) };
            if need == 0 {
                // Frame done: a page may hold several frames back to back.
                if at >= src.len() {
                    return Ok(None);
                }
                self.begin()?;
                // SAFETY: as above.
                need = unsafe { ZSTD_nextSrcSizeToDecompress(self.0.as_ptr()) };
            }
            let Some(input) = src.get(at..at + need) else {
                return no("zstd frame truncated");
            };
            let Some(dst) = out.get_mut(filled..) else {
                return no("zstd output beyond the page");
            };
            // SAFETY: `input` and `dst` are valid for the lengths given; zstd writes at most
            // `dst.len()` bytes and reads only the `need` bytes it asked for. The earlier output
            // it refers back to lies just before `dst`, inside the same live buffer.
            let wrote = unsafe {
                ZSTD_decompressContinue(
                    self.0.as_ptr(),
                    dst.as_mut_ptr().cast(),
                    dst.len(),
                    input.as_ptr().cast(),
                    need,
                )
            };
            // SAFETY: pure function of its argument.
            if unsafe { ZSTD_isError(wrote) } != 0 {
                return no("zstd data corrupt");
            }
            if wrote > dst.len() {
                return no("zstd wrote beyond the page");
            }
            Ok(Some((need, wrote)))
        }
    }

    impl Drop for Blocks {
        fn drop(&mut self) {
            // SAFETY: created by ZSTD_createDCtx, freed once.
            unsafe { ZSTD_freeDCtx(self.0.as_ptr()) };
        }
    }
}

/// Decodes `count` values of Parquet's RLE/bit-packed hybrid encoding into `out`.
fn hybrid(data: &[u8], bit_width: u32, count: usize, out: &mut Vec<u32>) -> R<()> {
    if bit_width > 32 {
        return no("bit width over 32");
    }
    let mask = if bit_width == 32 {
        u32::MAX as u64
    } else {
        (1u64 << bit_width) - 1
    };
    let target = out.len() + count;
    let mut pos = 0;
    while out.len() < target {
        let (header, used) = uleb128(&data[pos.min(data.len())..])?;
        pos += used;
        if header & 1 == 1 {
            // Bit-packed: groups of 8 values, `bit_width` bytes per group.
            // Only the groups still needed count: a corrupt header cannot overflow what follows.
            let groups = usize::try_from(header >> 1)
                .unwrap_or(usize::MAX)
                .min((target - out.len()).div_ceil(8));
            let len = groups * bit_width as usize;
            let packed = &data[pos.min(data.len())..(pos + len).min(data.len())];
            if (1..=8).contains(&bit_width) {
                // A group is at most 8 bytes: one load, eight shifts.
                let bw = bit_width as usize;
                for g in 0..groups {
                    let left = target - out.len();
                    if left == 0 {
                        break;
                    }
                    let Some(bytes) = packed.get(g * bw..(g + 1) * bw) else {
                        return no("bit-packed run beyond the data");
                    };
                    let mut w = [0u8; 8];
                    w[..bw].copy_from_slice(bytes);
                    let word = u64::from_le_bytes(w);
                    out.extend((0..8.min(left)).map(|j| ((word >> (j * bw)) & mask) as u32));
                }
                pos += len;
                continue;
            }
            for j in 0..groups * 8 {
                if out.len() == target {
                    break;
                }
                let bit = j * bit_width as usize;
                let from = bit / 8;
                let word = match packed.get(from..from + 8) {
                    Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")),
                    None => {
                        let mut w = [0u8; 8];
                        if from < packed.len() {
                            w[..packed.len() - from].copy_from_slice(&packed[from..]);
                        } else if bit_width > 0 {
                            return no("bit-packed run beyond the data");
                        }
                        u64::from_le_bytes(w)
                    }
                };
                out.push(((word >> (bit % 8)) & mask) as u32);
            }
            pos += len;
        } else {
            let run = (header >> 1) as usize;
            let width = bit_width.div_ceil(8) as usize;
            let Some(b) = data.get(pos..pos + width) else {
                return no("RLE run beyond the data");
            };
            let mut word = [0u8; 4];
            word[..width].copy_from_slice(b);
            let value = u32::from_le_bytes(word);
            pos += width;
            if run == 0 {
                return no("empty RLE run");
            }
            let take = run.min(target - out.len());
            out.extend(std::iter::repeat_n(value, take));
        }
    }
    Ok(())
}

fn uleb128(data: &[u8]) -> R<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    no("bad ULEB128 run header")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_decodes_rle_and_bit_packed_runs() {
        // RLE run of 3 × 5 (width 3: one byte), then one bit-packed group of 0..8 (width 3).
        let mut data = vec![3 << 1, 5];
        data.push(1 << 1 | 1);
        let mut bits = 0u64;
        for v in 0..8u64 {
            bits |= v << (3 * v);
        }
        data.extend_from_slice(&bits.to_le_bytes()[..3]);
        let mut out = Vec::new();
        hybrid(&data, 3, 10, &mut out).unwrap();
        assert_eq!(out, [5, 5, 5, 0, 1, 2, 3, 4, 5, 6]);
        assert!(hybrid(&[3 << 1], 3, 3, &mut Vec::new()).is_err());
        // A bit-packed run header claiming 2^63 groups: an error, not an overflow.
        let mut huge = vec![0xff; 9];
        huge.push(0x01);
        for width in [2, 12] {
            assert!(hybrid(&huge, width, 5, &mut Vec::new()).is_err());
        }
        // Wider than a byte: one group of 8 twelve-bit values, and a two-byte RLE value.
        let mut bits = 0u128;
        for v in 0..8u128 {
            bits |= (4000 + v) << (12 * v);
        }
        let mut data = vec![1 << 1 | 1];
        data.extend_from_slice(&bits.to_le_bytes()[..12]);
        data.extend_from_slice(&[2 << 1, 0x34, 0x0a]);
        let mut out = Vec::new();
        hybrid(&data, 12, 10, &mut out).unwrap();
        assert_eq!(
            out,
            [4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 0xa34, 0xa34]
        );
    }
}
