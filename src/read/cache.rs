//! The extraction cache: the invite/redeem events of each source object, kept as Parquet so a
//! rerun over an unchanged archive reads none of it again, and a new day costs that day's scan.
//!
//! An entry is keyed by the object's location, size, ETag and last-modified time and by the
//! extractor's version; its identity is stored inside it and checked on read, and an entry that
//! does not read back whole is rebuilt, never trusted. Entries hold the whole object's events
//! (no tenant or time filter), so every run can share them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::archive::ArchiveObject;
use crate::error::{Error, Result};
use crate::rule::columns::empty_events;

/// Bump the leading number whenever extraction changes what it produces (columns read, JSON
/// paths, filters); entries whose schema differs from the current event frame are rebuilt too.
const EXTRACTOR_VERSION: &str = concat!("3/", env!("CARGO_PKG_VERSION"));

pub(crate) struct Cache {
    dir: PathBuf,
}

/// What the cache keeps per object: its events and its row statistics.
pub(crate) struct Entry {
    pub(crate) events: DataFrame,
    pub(crate) rows: u64,
    pub(crate) max_time: Option<i64>,
    pub(crate) tenant_rows: Vec<(String, u64)>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    identity: String,
    rows: u64,
    max_time: Option<i64>,
    tenant_rows: BTreeMap<String, u64>,
}

/// FNV-1a, 64 bits: a stable file name for an identity (which is checked on read anyway).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Cache {
    /// Opens (creates) the cache folder; a folder that cannot be used is a usage error.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::invalid(
                format!("cannot use the cache folder `{}`", dir.display()),
                e,
            )
        })?;
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// The default location: `$XDG_CACHE_HOME/unredeemed/extract` or `~/.cache/unredeemed/extract`.
    pub(crate) fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("unredeemed").join("extract"))
    }

    fn identity(archive: &str, obj: &ArchiveObject) -> String {
        format!(
            "{EXTRACTOR_VERSION}\n{archive}\n{}\n{}\n{}\n{}",
            obj.key,
            obj.size,
            obj.e_tag.as_deref().unwrap_or(""),
            obj.last_modified.as_deref().unwrap_or("")
        )
    }

    fn paths(&self, identity: &str) -> (PathBuf, PathBuf) {
        let name = format!("{:016x}", fnv(identity));
        (
            self.dir.join(format!("{name}.parquet")),
            self.dir.join(format!("{name}.json")),
        )
    }

    /// The cached events of `obj`, if a whole, matching entry exists. A missing, foreign or
    /// damaged entry is `None` (it is rebuilt, never trusted); an entry that exists but cannot
    /// be read (permissions, I/O) is an error.
    pub(crate) fn load(&self, archive: &str, obj: &ArchiveObject) -> Result<Option<Entry>> {
        let identity = Self::identity(archive, obj);
        let (data, meta) = self.paths(&identity);
        let Some(mut meta) = open_if_present(&meta)? else {
            return Ok(None);
        };
        let mut json = Vec::new();
        if std::io::Read::read_to_end(&mut meta, &mut json).is_err() {
            return Ok(None);
        }
        let meta: Meta = match serde_json::from_slice(&json) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        };
        if meta.identity != identity {
            return Ok(None);
        }
        let Some(data) = open_if_present(&data)? else {
            return Ok(None);
        };
        let events = match ParquetReader::new(data).finish() {
            Ok(events) if events.schema() == empty_events().schema() => events,
            _ => return Ok(None),
        };
        Ok(Some(Entry {
            events,
            rows: meta.rows,
            max_time: meta.max_time,
            tenant_rows: meta.tenant_rows.into_iter().collect(),
        }))
    }

    /// Stores `entry` for `obj`: data first, then the metadata that makes it valid, each written
    /// to a temporary name and renamed into place.
    pub(crate) fn store(&self, archive: &str, obj: &ArchiveObject, entry: &Entry) -> Result<()> {
        let identity = Self::identity(archive, obj);
        let (data, meta_path) = self.paths(&identity);
        let mut buf = Vec::new();
        // Uncompressed: entries are small, and a warm rerun is mostly reading them back.
        ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Uncompressed)
            .finish(&mut entry.events.clone())
            .map_err(|e| Error::write(&data, e))?;
        write_atomic(&data, &buf)?;
        let meta = Meta {
            identity,
            rows: entry.rows,
            max_time: entry.max_time,
            tenant_rows: entry.tenant_rows.iter().cloned().collect(),
        };
        let json = serde_json::to_vec(&meta).map_err(|e| Error::write(&meta_path, e))?;
        write_atomic(&meta_path, &json)
    }
}

/// A file, opened; `None` when it does not exist.
fn open_if_present(path: &Path) -> Result<Option<std::fs::File>> {
    match std::fs::File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Input {
            what: "cache entry",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `bytes` to a temporary name beside `path`, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = path.with_file_name(format!(".{name}.{}.{unique}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::write(path, e))
}
