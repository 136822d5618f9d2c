//! Reading one column chunk of a row group: every row, or only the wanted rows, whose pages
//! alone are decompressed (a zstd or snappy page only up to the last wanted value, a dictionary
//! page only up to the last entry they use).

use std::io::Cursor;

use bytes::Bytes;
use polars_buffer::Buffer;
use polars_parquet::parquet::compression::{Compression, DecompressionContext};
use polars_parquet::parquet::metadata::ColumnChunkMetadata;
use polars_parquet::parquet::page::{
    CompressedDataPage, CompressedPage, DataPageHeader, FormatEncoding,
};
use polars_parquet::parquet::read::PageReader;
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::PageHeader;

use super::floor::Meter;
use super::no;
use super::page::{hybrid, Body, Width};
use super::snappy::{self, Snappy};
use super::zstd::Blocks;
use crate::error::{Error, Result};

use crate::read::claims::MAX_PAGE;

/// Key of a null value.
pub(super) const NULL: u32 = u32::MAX;

/// Decoded values: distinct entries (a dictionary's, then PLAIN values as met) in one buffer,
/// and one key per row read.
#[derive(Default)]
pub(super) struct Values {
    data: Vec<u8>,
    /// Entry `i` is `data[offsets[i]..offsets[i + 1]]`; with `fixed`, `data[8 * i..8 * i + 8]`.
    offsets: Vec<usize>,
    fixed: bool,
    pub(super) keys: Vec<u32>,
}

impl Values {
    fn new(width: Width) -> Self {
        Values {
            fixed: matches!(width, Width::Eight),
            ..Default::default()
        }
    }

    pub(super) fn entries(&self) -> usize {
        if self.fixed {
            self.data.len() / 8
        } else {
            self.offsets.len().saturating_sub(1)
        }
    }

    pub(super) fn entry(&self, k: usize) -> &[u8] {
        if self.fixed {
            &self.data[8 * k..8 * k + 8]
        } else {
            &self.data[self.offsets[k]..self.offsets[k + 1]]
        }
    }

    /// An 8-byte entry as the INT64 it holds.
    pub(super) fn int(&self, k: usize) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.entry(k));
        i64::from_le_bytes(b)
    }

    /// Adds an entry; returns its key.
    pub(super) fn push(&mut self, v: &[u8]) -> Result<u32> {
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
            .ok_or_else(|| Error::Unsupported("too many values".into()))
    }

    pub(super) fn push_null(&mut self) {
        self.keys.push(NULL);
    }

    pub(super) fn get(&self, i: usize) -> Option<&[u8]> {
        match self.keys[i] {
            NULL => None,
            k => Some(self.entry(k as usize)),
        }
    }

    /// Whether row `i` holds an entry `ok` accepts.
    pub(super) fn key_ok(&self, i: usize, ok: &[bool]) -> bool {
        let k = self.keys[i];
        k != NULL && ok[k as usize]
    }
}

#[derive(Clone, Copy)]
pub(super) enum Want<'a> {
    All,
    /// These rows of the row group, ascending.
    Rows(&'a [usize]),
}

/// Per-object decoding state, reused across pages.
pub(super) struct Cx {
    pub(super) dec: Decode,
    levels: Vec<u32>,
    indices: Vec<u32>,
}

/// What decompresses pages: the codecs' state, the buffer pages are decoded into, and (for
/// the floor's bench, `floor`) a meter of what was decompressed.
pub(super) struct Decode {
    zstd: Blocks,
    other: DecompressionContext,
    /// Decompression target; only ever grows, so pages after the first cost no zeroing.
    scratch: Vec<u8>,
    /// Counts every page decompressed, and times those not decoded by `zstd` (which meters
    /// its own).
    pub(super) meter: Option<Meter>,
}

impl Decode {
    /// The body of a page of `total` bytes once decompressed from `src`: decoded on demand
    /// (zstd, snappy), or whole into `whole` (other codecs).
    fn open<'b>(
        &'b mut self,
        src: &'b [u8],
        codec: Compression,
        total: usize,
        whole: &'b mut Vec<u8>,
    ) -> Result<Body<'b>> {
        if let Some(m) = &mut self.meter {
            m.pages += 1;
        }
        if matches!(codec, Compression::Zstd | Compression::Snappy) && self.scratch.len() < total {
            self.scratch.resize(total, 0);
        }
        match codec {
            Compression::Uncompressed => Ok(Body::Whole(src)),
            Compression::Zstd => {
                self.zstd.begin()?;
                Ok(Body::Zstd {
                    src,
                    in_pos: 0,
                    out: &mut self.scratch[..total],
                    filled: 0,
                    ctx: &mut self.zstd,
                })
            }
            Compression::Snappy => {
                let (len, at) = snappy::preamble(src)?;
                if len != total {
                    return no(format!("snappy: {len} bytes where the page claims {total}"));
                }
                Ok(Body::Snappy {
                    src,
                    state: Snappy::new(at),
                    out: &mut self.scratch[..total],
                    filled: 0,
                    meter: &mut self.meter,
                })
            }
            codec => {
                let started = self.meter.is_some().then(std::time::Instant::now);
                whole.clear();
                whole.resize(total, 0);
                polars_parquet::parquet::compression::decompress(
                    codec,
                    src,
                    whole,
                    &mut self.other,
                )
                .map_err(bad)?;
                if let (Some(m), Some(t)) = (&mut self.meter, started) {
                    m.add(total, t);
                }
                Ok(Body::Whole(whole))
            }
        }
    }
}

thread_local! {
    /// A decoder thread's state, kept from one object to the next: a zstd context and a
    /// scratch buffer allocated (and zeroed) per object were a tenth of the CPU of a scan of
    /// small objects.
    static KEPT: std::cell::RefCell<Option<Cx>> = const { std::cell::RefCell::new(None) };
}

/// Scratch kept for the next object up to this size (a page may claim up to 256 MiB).
const KEEP_SCRATCH: usize = 16 << 20;

impl Cx {
    /// This thread's state, or a new one.
    pub(super) fn take() -> Result<Self> {
        match KEPT.with(|k| k.borrow_mut().take()) {
            Some(cx) => Ok(cx),
            None => Ok(Cx {
                dec: Decode {
                    zstd: Blocks::new()?,
                    other: DecompressionContext::Unset,
                    scratch: Vec::new(),
                    meter: None,
                },
                levels: Vec::new(),
                indices: Vec::new(),
            }),
        }
    }

    /// Sets zstd's meter; the one it had.
    pub(super) fn zstd_meter(&mut self, meter: Option<Meter>) -> Option<Meter> {
        std::mem::replace(&mut self.dec.zstd.1, meter)
    }

    /// Keeps the state for this thread's next object (not after an error: a frame may be
    /// half read).
    pub(super) fn put_back(mut self) {
        if self.dec.scratch.capacity() > KEEP_SCRATCH {
            self.dec.scratch = Vec::new();
        }
        KEPT.with(|k| *k.borrow_mut() = Some(self));
    }
}

/// Reads the PLAIN value at `pos` into `v` (a null key when the row has none); returns where
/// the next value starts.
fn take(body: &mut Body, v: &mut Values, pos: usize, width: Width, defined: bool) -> Result<usize> {
    if !defined {
        v.push_null();
        return Ok(pos);
    }
    let r = body.value_at(pos, width)?;
    let k = v.push(&body.bytes()[r.clone()])?;
    v.keys.push(k);
    Ok(r.end)
}

fn bad(e: polars_parquet::parquet::error::ParquetError) -> Error {
    Error::Unsupported(e.to_string())
}

/// Reads one column chunk of a row group of `n` rows: every row, or only `Want::Rows`, whose
/// pages alone are decompressed.
pub(super) fn read(
    c: &ColumnChunkMetadata,
    bytes: Bytes,
    n: usize,
    width: Width,
    want: Want,
    cx: &mut Cx,
) -> Result<Values> {
    // No data page (nor header field) can be larger than its chunk: this bounds what a corrupt
    // header can make the reader read. (A dictionary page's declared decompressed size is
    // polars-parquet's to check, as in polars' own reader.)
    let limit = bytes.len();
    let pages = PageReader::new(
        Cursor::new(Buffer::from_owner(bytes.clone())),
        c,
        Vec::new(),
        limit,
    );
    let mut chunk = Chunk {
        n,
        width,
        want,
        has_def: c.descriptor().descriptor.max_def_level > 0,
        v: Values::new(width),
        bytes,
        compression: c.compression(),
        dict: None,
        row0: 0,
        next: 0,
    };
    for page in pages {
        match page.map_err(bad)? {
            CompressedPage::Dict(_) => chunk.dictionary_page(cx)?,
            CompressedPage::Data(p) => chunk.data_page(p, cx)?,
        }
    }
    chunk.materialize(cx)?;
    chunk.finish()
}

/// One column chunk being read, page by page.
struct Chunk<'a> {
    /// Rows in the row group.
    n: usize,
    width: Width,
    want: Want<'a>,
    /// The column has definition levels (it may hold nulls).
    has_def: bool,
    v: Values,
    /// The chunk's bytes, from its first page's header on.
    bytes: Bytes,
    compression: Compression,
    /// The dictionary page, not yet decompressed.
    dict: Option<Dict>,
    /// Row of the row group the next data page starts at.
    row0: usize,
    /// Index into the wanted rows of the next one not yet read.
    next: usize,
}

/// A dictionary page. For wanted rows it is decompressed only once the chunk's pages say which
/// of its entries they use, and then only up to the last of them: a wide column's dictionary is
/// a MiB of values of which a row group's candidates use a few.
struct Dict {
    /// The compressed body.
    body: Bytes,
    uncompressed: usize,
    entries: usize,
    /// What the data pages' indices are tagged with until [`Chunk::materialize`]: [`IN_DICT`],
    /// or nothing when every row is wanted and the dictionary was read whole at once (its
    /// entries are then keys `0..entries`, as they come first).
    tag: u32,
}

/// Marks a key that is a dictionary index, until [`Chunk::materialize`] turns it into the key
/// of an entry (a dictionary holds fewer than 2^31 entries: [`MAX_PAGE`] bounds it).
const IN_DICT: u32 = 1 << 31;

/// What a data page is, from its header: rows, encoding and size.
struct PageShape {
    rows: usize,
    dictionary: bool,
    total: usize,
}

impl<'a> Chunk<'a> {
    /// The dictionary page, the chunk's first: its header read again here, where its body
    /// can be kept undecompressed.
    fn dictionary_page(&mut self, cx: &mut Cx) -> Result<()> {
        if self.dict.is_some() || self.row0 > 0 {
            return no("a dictionary page after data pages");
        }
        let mut rest = &self.bytes[..];
        let before = rest.len();
        let h =
            PageHeader::read_from_in_protocol(&mut TCompactInputProtocol::new(&mut rest, before))
                .or_else(|e| no(format!("dictionary page header: {e}")))?;
        let at = before - rest.len();
        let sizes = (
            usize::try_from(h.compressed_page_size),
            usize::try_from(h.uncompressed_page_size),
        );
        let (Some(d), (Ok(compressed), Ok(uncompressed))) = (h.dictionary_page_header, sizes)
        else {
            return no("not a dictionary page");
        };
        let Ok(entries) = usize::try_from(d.num_values) else {
            return no("a negative dictionary size");
        };
        if uncompressed > MAX_PAGE || at + compressed > self.bytes.len() {
            return no(format!("a dictionary page of {uncompressed} bytes"));
        }
        let mut d = Dict {
            body: self.bytes.slice(at..at + compressed),
            uncompressed,
            entries,
            tag: IN_DICT,
        };
        if matches!(self.want, Want::All) {
            // A narrow column, read whole: all its entries, with no indices to rewrite.
            self.add_all(cx, &d)?;
            d.tag = 0;
        }
        self.dict = Some(d);
        Ok(())
    }

    /// Decompresses `d` whole and adds all its entries, keys `0..entries` (the chunk's first):
    /// 8-byte entries (a column of times, often one entry per row) in one copy.
    fn add_all(&mut self, cx: &mut Cx, d: &Dict) -> Result<()> {
        if !matches!(self.width, Width::Eight) {
            self.add_entries(cx, d, &vec![true; d.entries])?;
            return Ok(());
        }
        if d.entries >= NULL as usize {
            return no("too many values");
        }
        let mut whole = Vec::new();
        let mut body = cx
            .dec
            .open(&d.body, self.compression, d.uncompressed, &mut whole)?;
        let len = 8 * d.entries;
        body.ensure(len)?;
        match body.bytes().get(..len) {
            Some(b) => self.v.data.extend_from_slice(b),
            None => return no("dictionary entries beyond the page"),
        }
        Ok(())
    }

    /// Decompresses `d` up to the last entry `used` says, and adds those entries; the key of
    /// each by its index.
    fn add_entries(&mut self, cx: &mut Cx, d: &Dict, used: &[bool]) -> Result<Vec<u32>> {
        let Some(last) = used.iter().rposition(|&u| u) else {
            return Ok(Vec::new());
        };
        let mut whole = Vec::new();
        let mut body = cx
            .dec
            .open(&d.body, self.compression, d.uncompressed, &mut whole)?;
        let mut key = vec![NULL; last + 1];
        let mut pos = 0;
        for (k, &u) in used.iter().enumerate().take(last + 1) {
            let r = body.value_at(pos, self.width)?;
            if u {
                key[k] = self.v.push(&body.bytes()[r.clone()])?;
            }
            pos = r.end;
        }
        Ok(key)
    }

    /// Decompresses the dictionary up to the last entry a wanted row uses, adds the entries
    /// used, and turns the dictionary indices into their keys.
    fn materialize(&mut self, cx: &mut Cx) -> Result<()> {
        let Some(d) = self.dict.take().filter(|d| d.tag == IN_DICT) else {
            return Ok(());
        };
        let mut used = vec![false; d.entries];
        for &k in &self.v.keys {
            if k != NULL && k & IN_DICT != 0 {
                used[(k & !IN_DICT) as usize] = true;
            }
        }
        let key = self.add_entries(cx, &d, &used)?;
        for k in &mut self.v.keys {
            if *k != NULL && *k & IN_DICT != 0 {
                *k = key[(*k & !IN_DICT) as usize];
            }
        }
        Ok(())
    }

    /// The page's rows, from a v1 header.
    fn rows(&self, page: &CompressedDataPage) -> Result<usize> {
        let DataPageHeader::V1(h) = page.header() else {
            return no("a v2 data page");
        };
        usize::try_from(h.num_values)
            .ok()
            .filter(|&r| r <= self.n - self.row0)
            .ok_or_else(|| Error::Unsupported(format!("a page of {} rows", h.num_values)))
    }

    /// The page's encoding and size, checked against what this reader handles (only for a
    /// page that is read: one without a wanted row is skipped whatever it holds).
    fn shape(&self, page: &CompressedDataPage, rows: usize) -> Result<PageShape> {
        let DataPageHeader::V1(h) = page.header() else {
            return no("a v2 data page");
        };
        if self.has_def && h.definition_level_encoding != FormatEncoding::RLE {
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
        Ok(PageShape {
            rows,
            dictionary,
            total,
        })
    }

    /// The wanted rows on a page of `rows` rows starting at `row0` (all of them: empty).
    fn wanted(&mut self, rows: usize) -> Option<&'a [usize]> {
        match self.want {
            Want::All => Some(&[]),
            Want::Rows(all) => {
                let end = all[self.next..].partition_point(|&r| r < self.row0 + rows);
                let s = &all[self.next..self.next + end];
                self.next += end;
                (!s.is_empty()).then_some(s)
            }
        }
    }

    fn data_page(&mut self, mut page: CompressedDataPage, cx: &mut Cx) -> Result<()> {
        let rows = self.rows(&page)?;
        let Some(sel) = self.wanted(rows) else {
            // No wanted row on this page: it is never decompressed.
            self.row0 += rows;
            return Ok(());
        };
        let shape = self.shape(&page, rows)?;
        let codec = page.compression();
        let mut whole = Vec::new();
        let mut body = cx
            .dec
            .open(&page.slice_mut()[..], codec, shape.total, &mut whole)?;
        let mut p = DataPage {
            body: &mut body,
            levels: &mut cx.levels,
            rows: shape.rows,
            row0: self.row0,
            pos: 0,
            dense: true,
        };
        p.definition_levels(self.has_def)?;
        let v = &mut self.v;
        match (shape.dictionary, self.want) {
            (true, want) => {
                let Some(d) = &self.dict else {
                    return no("dictionary-encoded page without a dictionary");
                };
                let dict = (d.entries, d.tag);
                p.dictionary_keys(dict, shape.total, want, sel, &mut cx.indices, v)?
            }
            (false, Want::Rows(_)) => p.plain_rows(sel, self.width, v)?,
            (false, Want::All) => p.plain_all(shape.total, self.width, v)?,
        }
        self.row0 += shape.rows;
        Ok(())
    }

    fn finish(self) -> Result<Values> {
        let expected = match self.want {
            Want::All => self.n,
            Want::Rows(r) => r.len(),
        };
        if self.row0 != self.n || self.v.keys.len() != expected {
            return no(format!(
                "pages hold {} rows for {} ({} of {expected} read)",
                self.row0,
                self.n,
                self.v.keys.len()
            ));
        }
        Ok(self.v)
    }
}

/// One data page being read: its body, its definition levels and where its values start.
struct DataPage<'a, 'b> {
    body: &'a mut Body<'b>,
    levels: &'a mut Vec<u32>,
    rows: usize,
    /// Row of the row group the page starts at.
    row0: usize,
    /// Where the values start in the body.
    pos: usize,
    /// Every row of the page holds a value (the common case, one RLE run).
    dense: bool,
}

impl DataPage<'_, '_> {
    /// Definition levels (bit width 1): which rows hold a value.
    fn definition_levels(&mut self, has_def: bool) -> Result<()> {
        self.levels.clear();
        if has_def {
            let len = self.body.u32_at(0)?;
            self.body.ensure(4 + len)?;
            hybrid(&self.body.bytes()[4..4 + len], 1, self.rows, self.levels)?;
            self.pos = 4 + len;
        }
        self.dense = !has_def || !self.levels.contains(&0);
        Ok(())
    }

    #[inline]
    fn defined(&self, i: usize) -> bool {
        self.dense || self.levels[i] == 1
    }

    /// A dictionary-encoded page: the keys of every row, or of the wanted rows.
    /// `dict`: the dictionary's entries, and the tag its indices get.
    fn dictionary_keys(
        &mut self,
        (size, tag): (usize, u32),
        total: usize,
        want: Want,
        sel: &[usize],
        indices: &mut Vec<u32>,
        v: &mut Values,
    ) -> Result<()> {
        self.body.ensure(total)?;
        let b = self.body.bytes();
        let Some(&bw) = b.get(self.pos) else {
            return no("dictionary page without a bit width");
        };
        // Indices only up to the last wanted row.
        let upto = match want {
            Want::All => self.rows,
            Want::Rows(_) => sel.last().map_or(0, |&r| r + 1 - self.row0),
        };
        let count = if self.dense {
            upto
        } else {
            (0..upto).filter(|&i| self.defined(i)).count()
        };
        indices.clear();
        hybrid(&b[self.pos + 1..], u32::from(bw), count, indices)?;
        // One pass the compiler vectorizes, not a search that stops at the first bad index.
        let top = indices.iter().fold(0, |m, &k| m.max(k));
        if !indices.is_empty() && top as usize >= size {
            return no("dictionary index out of range");
        }
        match want {
            Want::All if count == self.rows => {
                match tag {
                    0 => v.keys.extend_from_slice(indices),
                    _ => v.keys.extend(indices.iter().map(|&k| k | tag)),
                }
                return Ok(());
            }
            Want::Rows(_) if self.dense => {
                v.keys
                    .extend(sel.iter().map(|&r| indices[r - self.row0] | tag));
                return Ok(());
            }
            _ => {}
        }
        let mut vi = 0;
        let mut s = sel.iter().peekable();
        for i in 0..upto {
            let d = self.defined(i);
            let wanted = match want {
                Want::All => true,
                Want::Rows(_) => s.next_if(|&&r| r == self.row0 + i).is_some(),
            };
            if wanted {
                v.keys.push(if d { indices[vi] | tag } else { NULL });
            }
            vi += usize::from(d);
        }
        Ok(())
    }

    /// A PLAIN page, wanted rows only: walks to each; a skipped string's length is all that is
    /// read of it.
    fn plain_rows(&mut self, sel: &[usize], width: Width, v: &mut Values) -> Result<()> {
        let mut pos = self.pos;
        let mut i = 0;
        for &r in sel {
            let at = r - self.row0;
            while i < at {
                if self.defined(i) {
                    pos = match width {
                        Width::Bytes => pos + 4 + self.body.u32_at(pos)?,
                        Width::Eight => pos + 8,
                    };
                }
                i += 1;
            }
            pos = take(self.body, v, pos, width, self.defined(at))?;
            i = at + 1;
        }
        Ok(())
    }

    /// A PLAIN page, every row.
    fn plain_all(&mut self, total: usize, width: Width, v: &mut Values) -> Result<()> {
        self.body.ensure(total)?;
        if matches!(width, Width::Eight) && self.dense {
            // Every row holds an 8-byte value: one copy.
            let Some(b) = self.body.bytes().get(self.pos..self.pos + 8 * self.rows) else {
                return no("values beyond the page");
            };
            let first = v.entries();
            if first + self.rows >= NULL as usize {
                return no("too many values");
            }
            v.data.extend_from_slice(b);
            v.keys.extend((first..first + self.rows).map(|k| k as u32));
            return Ok(());
        }
        let mut pos = self.pos;
        for i in 0..self.rows {
            pos = take(self.body, v, pos, width, self.defined(i))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use polars::prelude::*;
    use polars_parquet::parquet::metadata::FileMetadata;

    use super::*;

    /// A string column `s` of `rows` rows cycling through 2,000 values of 300 bytes: one
    /// dictionary of 600 KB, zstd (in blocks of at most 128 KB, the most it can skip); the
    /// object's footer and bytes.
    fn dictionary_object(rows: usize) -> (FileMetadata, Bytes) {
        let value = |i: usize| format!("{:0>300}", i % 2_000);
        let s: Vec<String> = (0..rows).map(value).collect();
        let mut df = DataFrame::new(rows, vec![Column::new("s".into(), s)]).unwrap();
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)
            .unwrap();
        let meta = polars_parquet::parquet::read::read_metadata(&mut Cursor::new(&buf)).unwrap();
        (meta, Bytes::from(buf))
    }

    #[test]
    fn a_dictionary_is_decompressed_up_to_its_last_entry_used() {
        let rows = 10_000;
        let (meta, object) = dictionary_object(rows);
        let mut chunks = meta.row_groups[0].columns_under_root_iter("s").unwrap();
        let c = chunks.next().unwrap();
        let start = c.dictionary_page_offset().expect("a dictionary") as usize;
        let bytes = object.slice(start..start + c.compressed_size() as usize);
        // The values read and the bytes zstd gave for them.
        let read_metered = |want: Want| {
            let mut cx = Cx::take().unwrap();
            cx.zstd_meter(Some(Meter::default()));
            let v = read(c, bytes.clone(), rows, Width::Bytes, want, &mut cx).unwrap();
            (v, cx.zstd_meter(None).unwrap().bytes)
        };
        let (all, whole) = read_metered(Want::All);
        assert_eq!(all.entries(), 2_000);
        // Rows 3 and 6,003 use entry 3: the dictionary's first block is decompressed, and only
        // the entry used is kept.
        let (early, few) = read_metered(Want::Rows(&[3, 6_003]));
        assert_eq!(early.entries(), 1);
        assert_eq!(early.get(0), Some(format!("{:0>300}", 3).as_bytes()));
        assert_eq!(early.get(1), early.get(0));
        assert!(few < whole / 3, "{few} of {whole}");
        // Row 1,999 uses the last entry: the whole dictionary.
        let (late, most) = read_metered(Want::Rows(&[1_999]));
        assert_eq!(late.get(0), Some(format!("{:0>300}", 1_999).as_bytes()));
        assert!(most > 2_000 * 300 && most <= whole, "{most} of {whole}");
    }
}
