//! The extraction cache: the invite/redeem events of each source object, kept so a rerun over
//! an unchanged archive reads none of it again, and a new day costs that day's scan. It lives
//! in any location `--archive` takes (a folder, a container, a bucket), so the workers of a
//! cluster fan-out fill one cache that the final run reads.
//!
//! Entries are grouped in **segments**: one Parquet object holds the events of many objects,
//! and its footer holds their index (identity, row statistics, where each object's events
//! start). A warm run lists one folder and reads a handful of segments, not one file per
//! object. An entry's identity (archive, key, size, ETag, last-modified, extractor version) is
//! stored in the index and compared on read; a segment that does not read back whole is
//! ignored and its objects re-extracted, never trusted. A segment is written with one put (the
//! local store renames a temporary file into place, object stores publish it whole) under a
//! name derived from its identities, so two workers writing the same objects' segment write the
//! same bytes to the same name. Entries hold whole objects' events (no tenant or time cut), so
//! every run can share them.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use polars::prelude::*;
use polars_core::runtime::THREAD_POOL;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::archive::{block_on, ArchiveObject, Location};
use crate::error::{Error, Result};
use crate::rule::columns::empty_events;

use super::View;

/// Bump the leading number whenever extraction changes what it produces (columns read, JSON
/// paths, filters); entries whose schema differs from the current event frame are rebuilt too.
const EXTRACTOR_VERSION: &str = concat!("6/", env!("CARGO_PKG_VERSION"));

/// The footer key holding a segment's index.
const INDEX_KEY: &str = "unredeemed.cache.index";

/// Segments read or written at once.
const CONCURRENCY: usize = 16;

/// What the cache keeps per object: its events and its row statistics.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) events: DataFrame,
    pub(crate) rows: u64,
    pub(crate) max_time: Option<i64>,
    pub(crate) tenant_rows: Vec<(String, u64)>,
    /// Where `events` lie in the segment it was read from (`None`: not read from one).
    pub(crate) from: Option<Slice>,
}

/// Rows `offset..` of a segment's events, as read in this process (`id` tells segments apart).
#[derive(Debug, Clone)]
pub(crate) struct Slice {
    pub(crate) id: usize,
    pub(crate) offset: usize,
    pub(crate) segment: DataFrame,
}

impl Entry {
    pub(crate) fn empty() -> Self {
        Entry {
            events: empty_events(),
            rows: 0,
            max_time: None,
            tenant_rows: Vec::new(),
            from: None,
        }
    }
}

/// One object's line in a segment's index; its events are the next `events` rows.
#[derive(Serialize, Deserialize)]
struct IndexEntry {
    identity: String,
    events: u64,
    rows: u64,
    max_time: Option<i64>,
    tenant_rows: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
struct Index {
    entries: Vec<IndexEntry>,
}

/// FNV-1a, 64 bits: stable names for identities (which are checked on read anyway).
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The cache of one archive: the segments under `<cache>/v4/<archive hash>/`.
pub(crate) struct Cache {
    loc: Location,
    folder: ObjectPath,
    archive: String,
}

/// Segments as read: every whole entry by identity, and what each segment held.
#[derive(Default)]
pub(crate) struct Loaded {
    entries: HashMap<String, Entry>,
    /// The segments that read back whole.
    pub(crate) segments: Vec<String>,
    /// Segments ignored: damaged, with the reason.
    pub(crate) damaged: Vec<(String, String)>,
    /// Segments listed but gone when read.
    vanished: usize,
}

impl Loaded {
    pub(crate) fn get(&self, identity: &str) -> Option<&Entry> {
        self.entries.get(identity)
    }

    pub(crate) fn contains(&self, identity: &str) -> bool {
        self.entries.contains_key(identity)
    }
}

impl Cache {
    /// The cache of `archive` (as displayed: identities hold it) under `loc`.
    pub(crate) fn open(loc: Location, archive: &str) -> Self {
        let version = EXTRACTOR_VERSION.split('/').next().unwrap_or("0");
        let hash = format!("{:016x}", fnv(&format!("{EXTRACTOR_VERSION}\n{archive}")));
        let folder = loc
            .prefix
            .parts()
            .chain([format!("v{version}").into(), hash.into()])
            .collect();
        Cache {
            loc,
            folder,
            archive: archive.to_string(),
        }
    }

    /// The default location: `$XDG_CACHE_HOME/unredeemed/extract` or `~/.cache/unredeemed/extract`.
    pub(crate) fn default_dir() -> Option<String> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache"))
            })?;
        Some(
            base.join("unredeemed")
                .join("extract")
                .display()
                .to_string(),
        )
    }

    pub(crate) fn display(&self) -> String {
        format!(
            "{}/{}",
            self.loc.display.trim_end_matches('/'),
            self.relative(&self.folder)
        )
    }

    fn relative(&self, p: &ObjectPath) -> String {
        p.as_ref()
            .get(self.loc.prefix.as_ref().len()..)
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string()
    }

    /// What an entry for `obj` must carry to be trusted.
    pub(crate) fn identity(&self, obj: &ArchiveObject) -> String {
        format!(
            "{EXTRACTOR_VERSION}\n{}\n{}\n{}\n{}\n{}",
            self.archive,
            obj.key,
            obj.size,
            obj.e_tag.as_deref().unwrap_or(""),
            obj.last_modified
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        )
    }

    /// The object key inside an identity. Keys may hold newlines, so it is what lies between
    /// the known prefix and the last three fields (size, ETag, last-modified have none).
    fn key_of<'a>(&self, identity: &'a str) -> Option<&'a str> {
        let rest = identity
            .strip_prefix(EXTRACTOR_VERSION)?
            .strip_prefix('\n')?
            .strip_prefix(self.archive.as_str())?
            .strip_prefix('\n')?;
        rest.rsplitn(4, '\n').nth(3)
    }

    /// The segments in the cache, `(name, size)` by name (one listing).
    pub(crate) fn list(&self) -> Result<Vec<(String, u64)>> {
        let listed = block_on(
            self.loc
                .store
                .list(Some(&self.folder))
                .try_collect::<Vec<_>>(),
        )?
        .map_err(|e| self.unreadable(e))?;
        let mut names: Vec<(String, u64)> = listed
            .into_iter()
            .filter_map(|m| m.location.filename().map(|n| (n.to_string(), m.size)))
            .filter(|(n, _)| n.ends_with(".parquet") && !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Lists the segments `want` accepts and reads them whole. A segment that vanished in
    /// between (another run compacted it) makes one more listing and read; a damaged one is
    /// deleted (segments are written whole, so it can never become valid) and its objects are
    /// extracted again.
    pub(crate) fn load(&self, want: impl Fn(&str) -> bool, warn: impl Fn(&str)) -> Result<Loaded> {
        let mut attempt = 0;
        loop {
            let names: Vec<String> = self
                .list()?
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| want(n))
                .collect();
            let loaded = self.read(&names)?;
            attempt += 1;
            if loaded.vanished == 0 || attempt == 2 {
                self.drop_damaged(&loaded, &warn);
                return Ok(loaded);
            }
        }
    }

    fn drop_damaged(&self, loaded: &Loaded, warn: &impl Fn(&str)) {
        for (name, why) in &loaded.damaged {
            warn(&format!(
                "cache segment `{name}` is damaged ({why}): deleted, its objects are extracted again"
            ));
        }
        let names: Vec<String> = loaded.damaged.iter().map(|(n, _)| n.clone()).collect();
        if let Err(e) = self.delete(&names) {
            warn(&format!(
                "cannot delete damaged cache segments: {}",
                e.report()
            ));
        }
    }

    /// The identities held by the segments `want` accepts, from their footers alone (a ranged
    /// read each): what `extract` needs to skip what is cached. A segment whose footer does
    /// not parse is deleted; one whose body is damaged is caught, and deleted, by the run
    /// that reads it whole.
    pub(crate) fn identities(
        &self,
        want: impl Fn(&str) -> bool,
        warn: impl Fn(&str),
    ) -> Result<HashSet<String>> {
        let names: Vec<(String, u64)> = self.list()?.into_iter().filter(|(n, _)| want(n)).collect();
        let got: Vec<(String, object_store::Result<Option<Bytes>>)> = block_on(
            futures::stream::iter(names)
                .map(|(name, size)| async move {
                    let footer = self.footer(&name, size).await;
                    (name, footer)
                })
                .buffered(CONCURRENCY)
                .collect(),
        )?;
        let mut ids = HashSet::new();
        let mut damaged = Loaded::default();
        for (name, footer) in got {
            let index = match footer {
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.unreadable(e)),
                Ok(None) => Err("no Parquet footer".to_string()),
                Ok(Some(bytes)) => parse_index(&bytes, bytes.len() as u64),
            };
            match index {
                Ok(index) => ids.extend(index.entries.into_iter().map(|e| e.identity)),
                Err(why) => damaged.damaged.push((name, why)),
            }
        }
        self.drop_damaged(&damaged, &warn);
        Ok(ids)
    }

    /// The footer of a segment of `size` bytes (its metadata, length and magic); `None` when
    /// it has none.
    async fn footer(&self, name: &str, size: u64) -> object_store::Result<Option<Bytes>> {
        const TAIL: u64 = 64 * 1024;
        let path = self.path(name);
        if size < 12 {
            return Ok(None);
        }
        let tail = self
            .loc
            .store
            .get_range(&path, size.saturating_sub(TAIL)..size)
            .await?;
        let n = tail.len();
        let Some(&[a, b, c, d, b'P', b'A', b'R', b'1']) =
            n.checked_sub(8).and_then(|at| tail.get(at..))
        else {
            return Ok(None);
        };
        let len = u64::from(u32::from_le_bytes([a, b, c, d])) + 8;
        if len + 4 > size {
            return Ok(None);
        }
        if len <= n as u64 {
            return Ok(Some(tail.slice(n - len as usize..)));
        }
        self.loc
            .store
            .get_range(&path, size - len..size)
            .await
            .map(Some)
    }

    fn unreadable(&self, e: object_store::Error) -> Error {
        Error::Storage {
            what: "extraction cache",
            location: self.display(),
            source: e,
        }
    }

    fn path(&self, name: &str) -> ObjectPath {
        self.folder.parts().chain([name.into()]).collect()
    }

    /// Reads the segments `names`. A segment gone meanwhile (compacted by another run) or not
    /// whole is skipped, and its objects are extracted again; a store that refuses to answer
    /// is an error.
    fn read(&self, names: &[String]) -> Result<Loaded> {
        let got: Vec<(String, object_store::Result<Bytes>)> = block_on(
            futures::stream::iter(names.iter().cloned())
                .map(|name| async move {
                    let path = self.path(&name);
                    let bytes = match self.loc.store.get(&path).await {
                        Ok(r) => r.bytes().await,
                        Err(e) => Err(e),
                    };
                    (name, bytes)
                })
                .buffered(CONCURRENCY)
                .collect(),
        )?;
        let vanished = got
            .iter()
            .filter(|(_, b)| matches!(b, Err(object_store::Error::NotFound { .. })))
            .count();
        let parsed: Vec<(String, Parsed)> = THREAD_POOL.install(|| {
            got.into_par_iter()
                .filter_map(|(name, bytes)| match bytes {
                    Ok(b) => Some(Ok((name, b))),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(e) => Some(Err(self.unreadable(e))),
                })
                .map(|r| r.map(|(name, b)| (name, parse_segment(b))))
                .collect::<Result<Vec<_>>>()
        })?;
        let mut loaded = Loaded {
            vanished,
            ..Loaded::default()
        };
        for (name, segment) in parsed {
            match segment {
                Ok(entries) => {
                    for (id, entry) in entries {
                        loaded.entries.entry(id).or_insert(entry);
                    }
                    loaded.segments.push(name);
                }
                Err(reason) => loaded.damaged.push((name, reason)),
            }
        }
        Ok(loaded)
    }

    /// Writes one segment holding `entries` (identity, entry; in this order) under
    /// `<label>-<hash of the identities>.parquet`; returns its name.
    pub(crate) fn write(&self, label: &str, entries: &[(String, &Entry)]) -> Result<String> {
        let ids: String = entries.iter().map(|(id, _)| format!("{id}\n\n")).collect();
        let name = format!("{label}-{:016x}.parquet", fnv(&ids));
        let path = self.path(&name);
        let shown = std::path::PathBuf::from(format!("{}/{name}", self.display()));
        let bytes = segment_bytes(entries).map_err(|e| Error::write(&shown, e))?;
        block_on(
            self.loc
                .store
                .put(&path, PutPayload::from(Bytes::from(bytes))),
        )?
        .map_err(|e| Error::write(&shown, e))?;
        Ok(name)
    }

    /// The view `name` (see `read::view`), when there is one that reads back whole. A view is
    /// only ever a shortcut: any failure to read it means reading the segments instead.
    pub(crate) fn read_view(&self, name: &str) -> Option<View> {
        let path = self.path(name);
        let got = block_on(async { self.loc.store.get(&path).await?.bytes().await });
        View::parse(&got.ok()?.ok()?)
    }

    /// Writes the view `name` with one put, replacing the last whole.
    pub(crate) fn write_view(&self, name: &str, view: &View) -> Result<()> {
        let shown = std::path::PathBuf::from(format!("{}/{name}", self.display()));
        let bytes = view.bytes()?;
        let path = self.path(name);
        block_on(self.loc.store.put(&path, Bytes::from(bytes).into()))?
            .map_err(|e| Error::write(&shown, e))?;
        Ok(())
    }

    /// Deletes segments (after compaction); one already gone is no error.
    pub(crate) fn delete(&self, names: &[String]) -> Result<()> {
        block_on(
            futures::stream::iter(names.iter().map(|n| self.path(n)))
                .map(|p| async move {
                    match self.loc.store.delete(&p).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(self.unreadable(e)),
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>(),
        )??;
        Ok(())
    }
}

/// A segment: the entries' events one after the other, the index in the footer. zstd: a
/// segment often crosses a network, and its strings (UPNs, addresses) compress several-fold.
fn segment_bytes(entries: &[(String, &Entry)]) -> PolarsResult<Vec<u8>> {
    let index = Index {
        entries: entries
            .iter()
            .map(|(id, e)| IndexEntry {
                identity: id.clone(),
                events: e.events.height() as u64,
                rows: e.rows,
                max_time: e.max_time,
                tenant_rows: e.tenant_rows.iter().cloned().collect(),
            })
            .collect(),
    };
    let json = serde_json::to_string(&index).map_err(|e| polars_err!(ComputeError: "{e}"))?;
    let frames: Vec<LazyFrame> = entries
        .iter()
        .map(|(_, e)| e.events.clone().lazy())
        .collect();
    let mut events = if frames.is_empty() {
        empty_events()
    } else {
        concat(frames, UnionArgs::default())?.collect()?
    };
    with_footer(&mut events, INDEX_KEY, json)
}

/// `events` as Parquet (zstd) with `value` under `key` in its footer.
pub(super) fn with_footer(
    events: &mut DataFrame,
    key: &str,
    value: String,
) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(
            key.to_string(),
            value,
        )])))
        .finish(events)?;
    Ok(buf)
}

/// The value under `key` in the footer of a Parquet object (`bytes`: its last `size` bytes,
/// or all of it).
pub(super) fn footer_value(
    bytes: &[u8],
    size: u64,
    key: &str,
) -> std::result::Result<String, String> {
    let mut cursor = std::io::Cursor::new(bytes);
    let meta = polars_parquet::parquet::read::read_metadata_with_size(&mut cursor, size)
        .map_err(|e| format!("unreadable footer: {e}"))?;
    let value = meta
        .key_value_metadata()
        .iter()
        .flatten()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone());
    value.ok_or_else(|| format!("no `{key}` in the footer"))
}

/// A segment's entries (identity, entry), or why it cannot be trusted.
type Parsed = std::result::Result<Vec<(String, Entry)>, String>;

/// The index in a footer (`bytes`: the footer's last `size` bytes or the whole segment).
fn parse_index(bytes: &[u8], size: u64) -> std::result::Result<Index, String> {
    let json = footer_value(bytes, size, INDEX_KEY)?;
    serde_json::from_str(&json).map_err(|e| format!("bad index: {e}"))
}

fn parse_segment(bytes: Bytes) -> Parsed {
    let index = parse_index(&bytes, bytes.len() as u64)?;
    let events = ParquetReader::new(std::io::Cursor::new(bytes.as_ref()))
        .finish()
        .map_err(|e| format!("unreadable events: {e}"))?;
    if events.schema() != empty_events().schema() {
        return Err("the events' schema is not this version's".into());
    }
    let total = index
        .entries
        .iter()
        .try_fold(0u64, |sum, e| sum.checked_add(e.events));
    if total != Some(events.height() as u64) {
        return Err(format!(
            "the index's event counts do not add up to the {} events it holds",
            events.height()
        ));
    }
    static SEGMENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let id = SEGMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut seen = HashSet::new();
    let mut offset = 0usize;
    let mut out = Vec::with_capacity(index.entries.len());
    for e in index.entries {
        let len = e.events as usize;
        let from = Slice {
            id,
            offset,
            segment: events.clone(),
        };
        let slice = events.slice(offset as i64, len);
        offset += len;
        if seen.insert(e.identity.clone()) {
            out.push((
                e.identity,
                Entry {
                    events: slice,
                    rows: e.rows,
                    max_time: e.max_time,
                    tenant_rows: e.tenant_rows.into_iter().collect(),
                    from: Some(from),
                },
            ));
        }
    }
    Ok(out)
}

/// Segments a warm run may read before it rewrites them as one.
const COMPACT_AT: usize = 8;

/// What a run left in the cache.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    pub(crate) written: Option<String>,
    pub(crate) deleted: usize,
}

impl Cache {
    /// After a run over `listed`: its fresh entries written as one segment. When the run read
    /// more than [`COMPACT_AT`] segments, every entry it read is rewritten with them as one
    /// segment, except older versions of listed objects and, when `listed` is the whole
    /// archive (`complete`), entries of objects no longer in it; then every segment read is
    /// deleted, so the next warm run reads one. Entries of objects a pruned listing did not
    /// reach are carried over, never dropped.
    pub(crate) fn keep(
        &self,
        loaded: &Loaded,
        listed: &[ArchiveObject],
        complete: bool,
        fresh: &[(String, Entry)],
    ) -> Result<Kept> {
        let compact = loaded.segments.len() + loaded.damaged.len() > COMPACT_AT;
        if fresh.is_empty() && !compact {
            return Ok(Kept::default());
        }
        let mut entries: Vec<(String, &Entry)> =
            fresh.iter().map(|(id, e)| (id.clone(), e)).collect();
        if !compact {
            let name = self.write("run", &entries)?;
            return Ok(Kept {
                written: Some(name),
                deleted: 0,
            });
        }
        let current: HashMap<&str, String> = listed
            .iter()
            .map(|o| (o.key.as_str(), self.identity(o)))
            .collect();
        let written: HashSet<String> = entries.iter().map(|(id, _)| id.clone()).collect();
        let mut carried: Vec<(&String, &Entry)> = loaded
            .entries
            .iter()
            .filter(|(id, _)| !written.contains(*id))
            .filter(
                |(id, _)| match self.key_of(id).and_then(|k| current.get(k)) {
                    Some(now) => now == *id,
                    None => !complete,
                },
            )
            .collect();
        carried.sort_by(|a, b| a.0.cmp(b.0));
        entries.extend(carried.into_iter().map(|(id, e)| (id.clone(), e)));
        let name = self.write("run", &entries)?;
        let stale: Vec<String> = loaded
            .segments
            .iter()
            .chain(loaded.damaged.iter().map(|(n, _)| n))
            .filter(|n| **n != name)
            .cloned()
            .collect();
        self.delete(&stale)?;
        Ok(Kept {
            written: Some(name),
            deleted: stale.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::resolve;

    #[test]
    fn keys_with_newlines_come_back_whole_from_identities() {
        let dir = tempfile::tempdir().unwrap();
        let loc = resolve(dir.path().to_str().unwrap(), &[], true).unwrap();
        let cache = Cache::open(loc.clone(), "az://c/a\nb");
        for key in ["plain.parquet", "y=2026/odd\nname\n.parquet", "\n"] {
            let obj = ArchiveObject {
                key: key.to_string(),
                size: 7,
                e_tag: Some("\"0x8D\"".to_string()),
                last_modified: None,
            };
            assert_eq!(cache.key_of(&cache.identity(&obj)), Some(key));
        }
        let other = Cache::open(loc, "az://c/other");
        assert_eq!(
            other.key_of(&cache.identity(&ArchiveObject {
                key: "k".into(),
                size: 1,
                e_tag: None,
                last_modified: None,
            })),
            None,
            "another archive's identity has no key here"
        );
    }
}
