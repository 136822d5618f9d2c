//! Where the archive lives and where reports go. Listing and writing go through `object_store`
//! so the same code serves a local folder today and a bucket later; Parquet objects are scanned
//! by polars from their local path (projection and predicate pushdown, one object at a time).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result};

/// One Parquet object of the archive.
#[derive(Debug, Clone)]
pub struct SourceObject {
    /// Key relative to the archive root, `/`-separated (what messages and metrics show).
    pub key: String,
    /// Local path polars reads.
    pub path: PathBuf,
    pub size: u64,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the I/O runtime: {e}")))
}

/// Lists every `*.parquet` object under `root` (recursively, sorted by key). Hive-style folder
/// names are only path segments here: nothing is inferred from them.
pub fn list_archive(root: &Path) -> Result<Vec<SourceObject>> {
    let unreadable = |reason: String| Error::ArchiveUnreadable {
        location: root.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(root).map_err(|e| unreadable(e.to_string()))?;
    if meta.is_file() {
        return Ok(vec![SourceObject {
            key: root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: root.to_path_buf(),
            size: meta.len(),
        }]);
    }
    let store = LocalFileSystem::new_with_prefix(root).map_err(|e| unreadable(e.to_string()))?;
    let listed: Vec<_> = runtime()?
        .block_on(store.list(None).try_collect::<Vec<_>>())
        .map_err(|e| unreadable(e.to_string()))?;
    let mut objects: Vec<SourceObject> = listed
        .into_iter()
        .filter(|m| is_data_object(m.location.as_ref()))
        .map(|m| SourceObject {
            key: m.location.to_string(),
            path: root.join(m.location.as_ref()),
            size: m.size,
        })
        .collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    if objects.is_empty() {
        return Err(unreadable("no `*.parquet` objects found".into()));
    }
    Ok(objects)
}

/// Parquet data objects only: hidden and `_`-prefixed names (`_SUCCESS`, `.crc`, staging
/// files) are bookkeeping of the writers, not data.
fn is_data_object(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.to_ascii_lowercase().ends_with(".parquet")
        && !key
            .split('/')
            .any(|seg| seg.starts_with('.') || seg.starts_with('_'))
}

/// Destination for reports. Every object is written whole with one `put`, which the local
/// store stages under a temporary name and renames into place: a crash never leaves half a
/// report behind.
pub struct Sink {
    root: PathBuf,
    store: Arc<LocalFileSystem>,
    rt: tokio::runtime::Runtime,
}

impl Sink {
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::write(root, e))?;
        let store = LocalFileSystem::new_with_prefix(root).map_err(|e| Error::write(root, e))?;
        Ok(Sink {
            root: root.to_path_buf(),
            store: Arc::new(store),
            rt: runtime()?,
        })
    }

    pub fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let location = ObjectPath::parse(key).map_err(|e| Error::write(self.root.join(key), e))?;
        let payload = PutPayload::from(Bytes::from(data));
        self.rt
            .block_on(self.store.put(&location, payload))
            .map_err(|e| Error::write(self.root.join(key), e))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_parquet_objects_are_data() {
        assert!(is_data_object("y=2026/m=03/d=01/part-0.parquet"));
        assert!(is_data_object("TenantId=abc/PART.PARQUET"));
        assert!(!is_data_object("y=2026/_SUCCESS"));
        assert!(!is_data_object("_delta_log/x.parquet"));
        assert!(!is_data_object("y=2026/.part-0.parquet.crc"));
        assert!(!is_data_object("notes.json"));
    }
}
