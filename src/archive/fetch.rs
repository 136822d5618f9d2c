//! Fetching an object as far as the job needs it: its footer, then with ranged requests only
//! the chunks of the needed columns in the row groups that can matter. Nothing else in the
//! object is ever transferred.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::io::Cursor;
use std::ops::Range;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore};
use polars_parquet::parquet::metadata::FileMetadata;

use super::location::ArchiveObject;
use crate::error::{Error, Result};

/// An object's bytes as far as the job needs them: the footer and the chunks of the needed
/// columns in the row groups that can matter, as fetched.
pub(crate) struct Fetched {
    /// `(offset, bytes)` of every fetched range, by offset.
    pub(crate) parts: Vec<(u64, Bytes)>,
    pub(crate) size: u64,
    /// The parsed footer.
    pub(crate) meta: FileMetadata,
    /// The row groups fetched.
    pub(crate) groups: Range<usize>,
    pub(crate) bytes_read: u64,
    pub(crate) row_groups_pruned: usize,
    /// Rows to read, `(offset, len)`, when row groups at the ends were pruned; `None`: all.
    pub(crate) rows: Option<(u64, u64)>,
}

impl Fetched {
    /// Every row group was pruned: nothing of the object is in scope.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows == Some((0, 0))
    }

    /// The object as one buffer of its full size, the fetched ranges at their true offsets and
    /// zeros elsewhere (lazily zeroed: untouched pages cost no memory).
    pub(crate) fn sparse(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.size as usize];
        for (start, b) in &self.parts {
            // Parts lie inside the object (each was fetched whole from a range within it).
            let at = *start as usize;
            if let Some(dst) = buf.get_mut(at..at + b.len()) {
                dst.copy_from_slice(b);
            }
        }
        buf
    }

    /// The bytes of `r`, when it was fetched: a slice of one part, or a copy across parts.
    pub(crate) fn range(&self, r: Range<u64>) -> Option<Bytes> {
        let i = self
            .parts
            .partition_point(|(s, _)| *s <= r.start)
            .checked_sub(1)?;
        let (s, b) = self.parts.get(i)?;
        let off = (r.start - s) as usize;
        if off + (r.end - r.start) as usize <= b.len() {
            return Some(b.slice(off..off + (r.end - r.start) as usize));
        }
        let mut out = Vec::with_capacity((r.end - r.start) as usize);
        let mut at = r.start;
        for (s, b) in self.parts.get(i..)? {
            if *s > at || at >= r.end {
                break;
            }
            let from = (at - s) as usize;
            let to = ((r.end - s) as usize).min(b.len());
            if from >= to {
                continue;
            }
            out.extend_from_slice(b.get(from..to)?);
            at = s + to as u64;
        }
        (at == r.end).then(|| Bytes::from(out))
    }
}

/// What was fetched of one object: a Parquet object's footer and needed chunks, or a JSON
/// object whole (it has no footer to read first).
pub(crate) enum Got {
    Parquet(Box<Fetched>),
    Json(Bytes),
}

/// Whether an object is read as JSON Lines, by its name: `.json`, `.jsonl`, either gzip'd.
pub(crate) fn is_json_key(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.ends_with(".json") || name.ends_with(".jsonl")
}

/// Fetches a whole object, under the same If-Match as a Parquet object's ranges.
pub(crate) async fn fetch_whole(store: &dyn ObjectStore, obj: &ArchiveObject) -> Result<Bytes> {
    if obj.size == 0 {
        return Ok(Bytes::new());
    }
    get_matching(store, obj, 0..obj.size).await
}

/// Bytes read from the end at first: the footer of most objects, in one request.
const TAIL: u64 = 64 * 1024;

/// A remote object up to this size is read whole by that first request: a second round trip
/// for its needed ranges costs more than the bytes it would save.
const WHOLE_UNDER: u64 = 512 * 1024;

/// One object being fetched: the store, what it is, and what came so far.
struct Fetch<'a> {
    store: &'a dyn ObjectStore,
    obj: &'a ArchiveObject,
    /// `(offset, bytes)` fetched so far.
    parts: Vec<(u64, Bytes)>,
    bytes_read: u64,
    /// Bytes the first request reads from the end.
    tail: u64,
}

/// Ranged requests closer than this are merged into one (object_store's own default).
const COALESCE: u64 = 1024 * 1024;

/// Ranges of a local object closer than this are read as one: a read call costs about what
/// copying this many bytes does, and a Parquet object's unneeded columns lie between needed ones.
const COALESCE_LOCAL: u64 = 16 * 1024;

/// Ranged requests in flight at once for one object.
const PARALLEL: usize = 10;

/// Fetches `r` of `obj`, which must come back whole (an object that shrank is a changed
/// object), with If-Match on the listed ETag: an object rewritten since the listing (or the
/// plan) is an error, never read as the version listed.
async fn get_matching(
    store: &dyn ObjectStore,
    obj: &ArchiveObject,
    r: Range<u64>,
) -> Result<Bytes> {
    let options = GetOptions {
        range: Some(GetRange::Bounded(r.clone())),
        if_match: obj.e_tag.clone(),
        ..Default::default()
    };
    let got = async {
        let got = store.get_opts(&obj.path(), options).await?;
        match got.payload {
            // On a local scan's decoder (outside the runtime), read in place into its pool;
            // inside the runtime object_store reads it on the blocking pool.
            GetResultPayload::File(file, _)
                if r.end - r.start >= POOL_AT_LEAST
                    && tokio::runtime::Handle::try_current().is_err() =>
            {
                local(&file, got.range.clone()).map_err(local_error)
            }
            _ => got.bytes().await,
        }
    };
    let b = got.await.map_err(|e| fetch_error(obj, e))?;
    if b.len() as u64 != r.end - r.start {
        return Err(Error::ObjectUnreadable {
            object: obj.key.clone(),
            reason: Some(
                "the object changed while it was read (size differs from the listing)".into(),
            ),
            source: None,
        });
    }
    Ok(b)
}

/// The error of a failed request for `obj`.
fn fetch_error(obj: &ArchiveObject, e: object_store::Error) -> Error {
    match e {
        object_store::Error::Precondition { .. } => Error::ObjectUnreadable {
            object: obj.key.clone(),
            reason: Some("the object changed since it was listed (its ETag differs)".into()),
            source: None,
        },
        e => Error::unreadable_by(&obj.key, e),
    }
}

/// Local ranges from this size on are read into a buffer of the reading thread's pool rather
/// than a fresh one: a JSON blob is read whole, and fresh buffers cost page faults.
const POOL_AT_LEAST: u64 = 64 * 1024;

/// `r` of a local file, read into a pooled buffer (a range too large to pool, into fresh
/// memory). Not mapped: mapping and unmapping each object took the process's memory-map lock,
/// and the decoders of a local scan waited on it (a fifth of the scan's CPU time idle on 720
/// JSON blobs). A file cut short while it is read is an error, never a crash.
fn local(file: &std::fs::File, r: Range<u64>) -> std::io::Result<Bytes> {
    let len = usize::try_from(r.end - r.start).map_err(std::io::Error::other)?;
    if len > POOLED_AT_MOST {
        // Too large to keep: read into fresh memory, not zeroed first.
        use std::io::{Read, Seek, SeekFrom};
        let (mut f, mut buf) = (file, Vec::with_capacity(len));
        f.seek(SeekFrom::Start(r.start))?;
        f.take(len as u64).read_to_end(&mut buf)?;
        if buf.len() < len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(buf.into());
    }
    let mut buf = Pooled::take(len);
    read_at(file, buf.space(), r.start)?;
    Ok(Bytes::from_owner(buf))
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, into: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, into, at)
}

#[cfg(not(unix))]
fn read_at(mut file: &std::fs::File, into: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(into)
}

/// Buffers a thread keeps for its next local reads, and the largest kept: the scan's
/// decoders hold one object at a time, a Parquet object's merged ranges at most a few.
const POOLED: usize = 2;
const POOLED_AT_MOST: usize = 16 << 20;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer from the thread's pool, the first `len` bytes in use; it goes back to the pool of
/// the thread that drops it. Its bytes stay initialized between uses, so a reuse neither
/// zeroes nor faults in a page.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
}

impl Pooled {
    fn take(len: usize) -> Self {
        let mut buf = POOL
            .try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        if buf.len() < len {
            buf.resize(len, 0);
        }
        Pooled { buf, len }
    }

    fn space(&mut self) -> &mut [u8] {
        self.buf.get_mut(..self.len).unwrap_or_default()
    }
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.len() <= POOLED_AT_MOST {
            // At thread exit the pool is gone: the buffer is simply freed.
            let _ = POOL.try_with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOLED {
                    p.push(buf);
                }
            });
        }
    }
}

fn local_error(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    }
}

/// Fetches every range of `ranges` (sorted by start), merging close ones, each request under
/// the same If-Match; a local object's (not `remote`) from one open file.
async fn get_all_matching(
    store: &dyn ObjectStore,
    obj: &ArchiveObject,
    ranges: &[Range<u64>],
    remote: bool,
) -> Result<Vec<Bytes>> {
    let gap = if remote { COALESCE } else { COALESCE_LOCAL };
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(m) if r.start <= m.end.saturating_add(gap) => m.end = m.end.max(r.end),
            _ => merged.push(r.clone()),
        }
    }
    let fetched = match remote {
        true => get_each(store, obj, &merged).await?,
        false => get_local(store, obj, &merged).await?,
    };
    // Every range lies inside the merged range that starts at or before it.
    ranges
        .iter()
        .map(|r| {
            let i = merged
                .partition_point(|m| m.start <= r.start)
                .checked_sub(1);
            match i.and_then(|i| Some((merged.get(i)?.start, fetched.get(i)?))) {
                Some((start, b)) if r.end - start <= b.len() as u64 => {
                    Ok(b.slice((r.start - start) as usize..(r.end - start) as usize))
                }
                _ => Err(Error::Internal(format!(
                    "range {r:?} of `{}` not fetched",
                    obj.key
                ))),
            }
        })
        .collect()
}

/// One request per range of `merged`.
async fn get_each(
    store: &dyn ObjectStore,
    obj: &ArchiveObject,
    merged: &[Range<u64>],
) -> Result<Vec<Bytes>> {
    futures::stream::iter(merged.iter().cloned())
        .map(|r| get_matching(store, obj, r))
        .buffered(PARALLEL)
        .try_collect()
        .await
}

/// The ranges `merged` (sorted, apart) of a local object: on a local scan's decoder (outside
/// the runtime) opened once and read into one buffer of the thread's pool; elsewhere, or when
/// the store streams them, one request per range.
async fn get_local(
    store: &dyn ObjectStore,
    obj: &ArchiveObject,
    merged: &[Range<u64>],
) -> Result<Vec<Bytes>> {
    let (Some(first), Some(last)) = (merged.first(), merged.last()) else {
        return Ok(Vec::new());
    };
    if merged.len() == 1 || tokio::runtime::Handle::try_current().is_ok() {
        return get_each(store, obj, merged).await;
    }
    let options = GetOptions {
        range: Some(GetRange::Bounded(first.start..last.end)),
        if_match: obj.e_tag.clone(),
        ..Default::default()
    };
    let got = store
        .get_opts(&obj.path(), options)
        .await
        .map_err(|e| fetch_error(obj, e))?;
    let GetResultPayload::File(file, _) = got.payload else {
        return get_each(store, obj, merged).await;
    };
    let all = read_ranges(&file, merged).map_err(|e| fetch_error(obj, local_error(e)))?;
    let mut at = 0;
    Ok(merged
        .iter()
        .map(|r| {
            let len = (r.end - r.start) as usize;
            at += len;
            all.slice(at - len..at)
        })
        .collect())
}

/// `ranges` of a local file one after the other in one buffer (of the thread's pool, unless
/// too large to keep).
fn read_ranges(file: &std::fs::File, ranges: &[Range<u64>]) -> std::io::Result<Bytes> {
    let len = |r: &Range<u64>| usize::try_from(r.end - r.start).map_err(std::io::Error::other);
    let mut total = 0usize;
    for r in ranges {
        total = total
            .checked_add(len(r)?)
            .ok_or(std::io::ErrorKind::InvalidInput)?;
    }
    let fill = |into: &mut [u8]| -> std::io::Result<()> {
        let mut at = 0;
        for r in ranges {
            let n = len(r)?;
            let part = into
                .get_mut(at..at + n)
                .ok_or(std::io::ErrorKind::InvalidInput)?;
            read_at(file, part, r.start)?;
            at += n;
        }
        Ok(())
    };
    if total > POOLED_AT_MOST {
        let mut buf = vec![0; total];
        fill(&mut buf)?;
        return Ok(buf.into());
    }
    let mut buf = Pooled::take(total);
    fill(buf.space())?;
    Ok(Bytes::from_owner(buf))
}

impl Fetch<'_> {
    async fn get(&mut self, r: Range<u64>) -> Result<Bytes> {
        let b = get_matching(self.store, self.obj, r).await?;
        self.bytes_read += b.len() as u64;
        Ok(b)
    }

    /// The footer: the tail read, then whatever of the footer lay before it. Returns where the
    /// footer and the tail read start, and the parsed footer.
    async fn footer(&mut self) -> Result<(u64, u64, FileMetadata)> {
        let (key, size) = (self.obj.key.as_str(), self.obj.size);
        if size < 12 {
            return Err(Error::corrupt(
                key,
                format!("{size} bytes is too small for Parquet"),
            ));
        }
        let tail_start = size.saturating_sub(self.tail);
        let tail = self.get(tail_start..size).await?;
        let Some(&[a, b, c, d, b'P', b'A', b'R', b'1']) =
            tail.len().checked_sub(8).and_then(|at| tail.get(at..))
        else {
            return Err(Error::corrupt(
                key,
                "no Parquet magic bytes at the end (corrupt or truncated)",
            ));
        };
        let footer_len = u64::from(u32::from_le_bytes([a, b, c, d]));
        if footer_len + 12 > size {
            return Err(Error::corrupt(
                key,
                format!("footer length {footer_len} exceeds the object size {size}"),
            ));
        }
        let footer_start = size - 8 - footer_len;
        self.parts.push((tail_start, tail));
        if footer_start < tail_start {
            let more = self.get(footer_start..tail_start).await?;
            self.parts.insert(0, (footer_start, more));
        }
        // The footer alone: its offsets are absolute, so it parses without the rest.
        let footer: Vec<u8> = self
            .parts
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .skip((footer_start - self.parts.first().map_or(0, |p| p.0)) as usize)
            .collect();
        let meta = polars_parquet::parquet::read::read_metadata_with_size(
            &mut Cursor::new(&footer[..]),
            footer.len() as u64,
        )
        .map_err(|e| Error::corrupt_in(key, "unreadable footer", e))?;
        Ok((footer_start, tail_start, meta))
    }
}

/// Fetches the footer, then every needed column chunk of the contiguous run of row groups
/// `keep` accepts, with one ranged request each, coalesced by the store. `keep` sees every row
/// group, and its error (a footer it cannot trust) is the fetch's. From a `remote` store a
/// small object is read whole at once.
pub(crate) async fn fetch_needed(
    store: &dyn ObjectStore,
    obj: &ArchiveObject,
    remote: bool,
    columns: &[&str],
    keep: impl Fn(&FileMetadata, usize) -> Result<bool>,
) -> Result<Fetched> {
    let mut f = Fetch {
        store,
        obj,
        parts: Vec::new(),
        bytes_read: 0,
        tail: match remote && obj.size <= WHOLE_UNDER {
            true => obj.size,
            false => TAIL,
        },
    };
    let (footer_start, tail_start, meta) = f.footer().await?;
    let groups = meta.row_groups.len();
    let mut kept = Vec::new();
    for i in 0..groups {
        if keep(&meta, i)? {
            kept.push(i);
        }
    }
    let (Some(&first), Some(&last)) = (kept.first(), kept.last()) else {
        return Ok(Fetched {
            parts: Vec::new(),
            size: obj.size,
            // Kept to say what pruned the object.
            meta,
            groups: 0..0,
            bytes_read: f.bytes_read,
            row_groups_pruned: groups,
            rows: Some((0, 0)),
        });
    };
    // Bytes already in the tail read are not fetched again.
    let ranges: BTreeSet<(u64, u64)> =
        chunk_ranges(&obj.key, &meta, first..last + 1, columns, footer_start)?
            .into_iter()
            .map(|(start, end)| (start, end.min(tail_start)))
            .filter(|(start, end)| start < end)
            .collect();
    let ranges: Vec<Range<u64>> = ranges.into_iter().map(|(s, e)| s..e).collect();
    let got = get_all_matching(store, obj, &ranges, remote).await?;
    for (r, b) in ranges.iter().zip(got) {
        f.bytes_read += b.len() as u64;
        f.parts.push((r.start, b));
    }
    f.parts.sort_by_key(|(s, _)| *s);
    let rows = |gs: &[polars_parquet::parquet::metadata::RowGroupMetadata]| -> u64 {
        gs.iter().map(|g| g.num_rows() as u64).sum()
    };
    let (before, kept_rows) = (
        rows(meta.row_groups.get(..first).unwrap_or_default()),
        rows(meta.row_groups.get(first..=last).unwrap_or_default()),
    );
    let pruned = groups - (last - first + 1);
    Ok(Fetched {
        parts: f.parts,
        size: obj.size,
        meta,
        groups: first..last + 1,
        bytes_read: f.bytes_read,
        row_groups_pruned: pruned,
        rows: (pruned > 0).then_some((before, kept_rows)),
    })
}

/// The byte ranges of the needed columns' chunks in row groups `groups`, checked to lie inside
/// the data: `byte_range()` would panic on the negative sizes of a corrupt footer.
fn chunk_ranges(
    key: &str,
    meta: &FileMetadata,
    groups: Range<usize>,
    columns: &[&str],
    footer_start: u64,
) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for rg in meta.row_groups.get(groups).unwrap_or_default() {
        for name in columns {
            for chunk in rg.columns_under_root_iter(name).into_iter().flatten() {
                let start = chunk
                    .dictionary_page_offset()
                    .unwrap_or_else(|| chunk.data_page_offset());
                let len = chunk.compressed_size();
                let r = match (u64::try_from(start), u64::try_from(len)) {
                    (Ok(s), Ok(l)) if s.checked_add(l).is_some() => s..s + l,
                    _ => {
                        return Err(Error::corrupt(
                            key,
                            format!("column chunk of `{name}` has offset {start} and size {len}"),
                        ))
                    }
                };
                if r.end > footer_start || r.start > r.end {
                    return Err(Error::corrupt(
                        key,
                        format!("column chunk of `{name}` lies outside the data ({r:?})"),
                    ));
                }
                out.push((r.start, r.end));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Pooled reads give each range's own bytes, however the buffers were used before, and a
    /// file shorter than the range asked is an error.
    #[test]
    fn local_reads_reuse_buffers_and_refuse_a_short_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.json");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        for r in [
            0..300_000u64,
            5..70_000,
            1_000..2_000,
            0..300_000,
            299_999..300_000,
        ] {
            let got = local(&file, r.clone()).unwrap();
            assert_eq!(&got[..], &bytes[r.start as usize..r.end as usize], "{r:?}");
        }
        // Both pooled at once: neither overwrites the other.
        let (a, b) = (
            local(&file, 0..100).unwrap(),
            local(&file, 100..200).unwrap(),
        );
        assert_eq!((&a[..], &b[..]), (&bytes[..100], &bytes[100..200]));
        let short = local(&file, 200_000..400_000).unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
        // Past what a pool keeps: read alone, cut short the same way.
        let big: Vec<u8> = (0..POOLED_AT_MOST as u32 + 5_000)
            .map(|i| (i % 241) as u8)
            .collect();
        std::fs::write(&path, &big).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let n = big.len() as u64;
        assert_eq!(&local(&file, 3..n).unwrap()[..], &big[3..]);
        let short = local(&file, 1..n + 1).unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
