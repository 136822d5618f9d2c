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

use crate::source::SourceObject;

/// Bump the leading number whenever extraction changes what it produces (columns read, JSON
/// paths, filters); entries whose schema differs from the current event frame are rebuilt too.
pub const EXTRACTOR_VERSION: &str = concat!("3/", env!("CARGO_PKG_VERSION"));

pub struct Cache {
    dir: PathBuf,
}

/// What the cache keeps per object.
pub struct Entry {
    pub events: DataFrame,
    pub rows: u64,
    pub max_time: Option<i64>,
    pub tenant_rows: Vec<(String, u64)>,
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
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// The default location: `$XDG_CACHE_HOME/unredeemed/extract` or `~/.cache/unredeemed/extract`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("unredeemed").join("extract"))
    }

    fn identity(archive: &str, obj: &SourceObject) -> String {
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

    /// The cached events of `obj`, if a whole, matching entry exists.
    pub fn load(&self, archive: &str, obj: &SourceObject) -> Option<Entry> {
        let identity = Self::identity(archive, obj);
        let (data, meta) = self.paths(&identity);
        let meta: Meta = serde_json::from_slice(&std::fs::read(meta).ok()?).ok()?;
        if meta.identity != identity {
            return None;
        }
        let file = std::fs::File::open(data).ok()?;
        let events = ParquetReader::new(file).finish().ok()?;
        if events.schema() != crate::extract::empty_events().schema() {
            return None;
        }
        Some(Entry {
            events,
            rows: meta.rows,
            max_time: meta.max_time,
            tenant_rows: meta.tenant_rows.into_iter().collect(),
        })
    }

    /// Stores `entry` for `obj`: data first, then the metadata that makes it valid, each written
    /// to a temporary name and renamed into place.
    pub fn store(&self, archive: &str, obj: &SourceObject, entry: &Entry) -> std::io::Result<()> {
        let identity = Self::identity(archive, obj);
        let (data, meta_path) = self.paths(&identity);
        let mut buf = Vec::new();
        // Uncompressed: entries are small, and a warm rerun is mostly reading them back.
        ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Uncompressed)
            .finish(&mut entry.events.clone())
            .map_err(std::io::Error::other)?;
        write_atomic(&data, &buf)?;
        let meta = Meta {
            identity,
            rows: entry.rows,
            max_time: entry.max_time,
            tenant_rows: entry.tenant_rows.iter().cloned().collect(),
        };
        write_atomic(&meta_path, &serde_json::to_vec(&meta)?)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = path.with_file_name(format!(".{name}.{}.{unique}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
