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

/// Bump the leading number whenever extraction changes what it produces (columns read, JSON
/// paths, filters); entries whose schema differs from the current event frame are rebuilt too.
const EXTRACTOR_VERSION: &str = concat!("4/", env!("CARGO_PKG_VERSION"));

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
}

impl Entry {
    pub(crate) fn empty() -> Self {
        Entry {
            events: empty_events(),
            rows: 0,
            max_time: None,
            tenant_rows: Vec::new(),
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
    /// Segment name → the identities it holds (segments that read back whole).
    pub(crate) segments: BTreeMap<String, Vec<String>>,
    /// Segments ignored: unreadable or damaged, with the reason.
    pub(crate) damaged: Vec<(String, String)>,
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
            obj.last_modified.as_deref().unwrap_or("")
        )
    }

    /// The names of the segments in the cache (one listing).
    pub(crate) fn list(&self) -> Result<Vec<String>> {
        let listed = block_on(
            self.loc
                .store
                .list(Some(&self.folder))
                .try_collect::<Vec<_>>(),
        )?
        .map_err(|e| self.unreadable(e))?;
        let mut names: Vec<String> = listed
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .filter(|n| n.ends_with(".parquet") && !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
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
    pub(crate) fn read(&self, names: &[String]) -> Result<Loaded> {
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
        let mut loaded = Loaded::default();
        for (name, segment) in parsed {
            match segment {
                Ok(entries) => {
                    let ids = entries.iter().map(|(id, _)| id.clone()).collect();
                    for (id, entry) in entries {
                        loaded.entries.entry(id).or_insert(entry);
                    }
                    loaded.segments.insert(name, ids);
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
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(
            INDEX_KEY.to_string(),
            json,
        )])))
        .finish(&mut events)?;
    Ok(buf)
}

/// A segment's entries (identity, entry), or why it cannot be trusted.
type Parsed = std::result::Result<Vec<(String, Entry)>, String>;

fn parse_segment(bytes: Bytes) -> Parsed {
    let mut cursor = std::io::Cursor::new(bytes.as_ref());
    let meta = polars_parquet::parquet::read::read_metadata(&mut cursor)
        .map_err(|e| format!("unreadable footer: {e}"))?;
    let json = meta
        .key_value_metadata()
        .iter()
        .flatten()
        .find(|kv| kv.key == INDEX_KEY)
        .and_then(|kv| kv.value.clone())
        .ok_or("no index in the footer")?;
    let index: Index = serde_json::from_str(&json).map_err(|e| format!("bad index: {e}"))?;
    let events = ParquetReader::new(std::io::Cursor::new(bytes.as_ref()))
        .finish()
        .map_err(|e| format!("unreadable events: {e}"))?;
    if events.schema() != empty_events().schema() {
        return Err("the events' schema is not this version's".into());
    }
    let total: u64 = index.entries.iter().map(|e| e.events).sum();
    if total != events.height() as u64 {
        return Err(format!(
            "the index counts {total} events, the segment holds {}",
            events.height()
        ));
    }
    let mut seen = HashSet::new();
    let mut offset = 0i64;
    let mut out = Vec::with_capacity(index.entries.len());
    for e in index.entries {
        let slice = events.slice(offset, e.events as usize);
        offset += e.events as i64;
        if seen.insert(e.identity.clone()) {
            out.push((
                e.identity,
                Entry {
                    events: slice,
                    rows: e.rows,
                    max_time: e.max_time,
                    tenant_rows: e.tenant_rows.into_iter().collect(),
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
    /// more than [`COMPACT_AT`] segments, every entry it used is written instead, and the
    /// segments that holds whole (or whose other entries are older versions of listed
    /// objects) are deleted, so the next warm run reads one segment.
    pub(crate) fn keep(
        &self,
        loaded: &Loaded,
        listed: &[ArchiveObject],
        fresh: &[(String, Entry)],
    ) -> Result<Kept> {
        let compact = loaded.segments.len() + loaded.damaged.len() > COMPACT_AT;
        if fresh.is_empty() && !compact {
            return Ok(Kept::default());
        }
        if !compact {
            let entries: Vec<(String, &Entry)> =
                fresh.iter().map(|(id, e)| (id.clone(), e)).collect();
            let name = self.write("run", &entries)?;
            return Ok(Kept {
                written: Some(name),
                deleted: 0,
            });
        }
        let fresh: HashMap<&str, &Entry> = fresh.iter().map(|(id, e)| (id.as_str(), e)).collect();
        let mut entries: Vec<(String, &Entry)> = Vec::new();
        let mut current: HashSet<&str> = HashSet::new();
        for obj in listed {
            let id = self.identity(obj);
            current.insert(obj.key.as_str());
            if let Some(e) = fresh.get(id.as_str()).copied().or_else(|| loaded.get(&id)) {
                entries.push((id, e));
            }
        }
        let name = self.write("run", &entries)?;
        let kept: HashSet<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
        // An identity whose key is listed but which is not kept is an older version of it.
        let replaced = |id: &str| {
            kept.contains(id) || id.split('\n').nth(2).is_some_and(|k| current.contains(k))
        };
        let stale: Vec<String> = loaded
            .segments
            .iter()
            .filter(|(n, ids)| **n != name && ids.iter().all(|id| replaced(id)))
            .map(|(n, _)| n.clone())
            .chain(loaded.damaged.iter().map(|(n, _)| n.clone()))
            .collect();
        self.delete(&stale)?;
        Ok(Kept {
            written: Some(name),
            deleted: stale.len(),
        })
    }
}
