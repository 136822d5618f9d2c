//! Listing a local folder with the operating system's directory reads: one `stat` per file,
//! relative to its open folder. object_store's local listing makes three per file, each
//! walking the whole path again (a warm rerun over 480 objects spent a quarter of its time
//! there). What it gives is what object_store's listing gives: same keys, sizes, ETags and
//! times (the cache's identities hold them), symbolic links followed, broken ones and
//! object_store's own staging files (`name#123`) left out; a test holds the two side by side.

use std::fs::{DirEntry, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use object_store::path::Path as ObjectPath;
use object_store::ObjectMeta;

/// Every file under `root` (canonical), with the folders `descend` kept out (relative, ending
/// in `/`). Without `descend`, every folder is entered.
pub(super) fn walk_folder(
    root: &Path,
    descend: Option<&dyn Fn(&str) -> bool>,
) -> object_store::Result<(Vec<ObjectMeta>, Vec<String>)> {
    let base = ObjectPath::from_absolute_path(root).map_err(|e| failed(root, e))?;
    let (mut metas, mut pruned) = (Vec::new(), Vec::new());
    // Folders to read, each with the inodes of the folders above it (a link back up is a
    // loop, an error as in object_store's walk).
    let top = std::fs::metadata(root).map_err(|e| failed(root, e))?;
    let mut todo = vec![(root.to_path_buf(), vec![(top.dev(), top.ino())])];
    while let Some((dir, above)) = todo.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == ErrorKind::NotFound && dir != root => continue,
            read => read.map_err(|e| failed(&dir, e))?,
        };
        for entry in entries {
            let entry = entry.map_err(|e| failed(&dir, e))?;
            let path = entry.path();
            let Some(meta) = followed(&entry, &path)? else {
                continue;
            };
            if meta.is_dir() {
                let node = (meta.dev(), meta.ino());
                if above.contains(&node) {
                    let loop_error = std::io::Error::other("a link leads back to a folder above");
                    return Err(failed(&path, loop_error));
                }
                let key = key(&base, &path)?;
                match descend {
                    Some(descend) if !descend(key.as_ref()) => pruned.push(format!("{key}/")),
                    _ => todo.push((path, [above.as_slice(), &[node]].concat())),
                }
            } else if meta.is_file() {
                let location = key(&base, &path)?;
                if is_staging(&location) {
                    continue;
                }
                metas.push(object_meta(location, &meta));
            }
        }
    }
    Ok((metas, pruned))
}

/// What `entry` is, a link followed (`None`: it is gone, or a link to nothing). A link that
/// cannot be followed otherwise (a loop) fails the listing, as in object_store's.
fn followed(entry: &DirEntry, path: &Path) -> object_store::Result<Option<Metadata>> {
    let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
    let meta = if is_link {
        std::fs::metadata(path)
    } else {
        entry.metadata()
    };
    match meta {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed(path, e)),
    }
}

/// The object path of `path` under the root's.
fn key(base: &ObjectPath, path: &Path) -> object_store::Result<ObjectPath> {
    let full = ObjectPath::from_absolute_path(path).map_err(|e| failed(path, e))?;
    let relative = full.prefix_match(base).map(ObjectPath::from_iter);
    relative.ok_or_else(|| failed(path, std::io::Error::other("not under the listed folder")))
}

/// object_store names a file it is still writing `name#<digits>` and leaves it out.
fn is_staging(location: &ObjectPath) -> bool {
    location
        .filename()
        .and_then(|n| n.split_once('#'))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The listing's answer for a file, with object_store's ETag: inode, modified time (µs) and
/// size, in hexadecimal.
fn object_meta(location: ObjectPath, meta: &Metadata) -> ObjectMeta {
    let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
    let micros = modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    ObjectMeta {
        location,
        last_modified: modified.into(),
        size: meta.len(),
        e_tag: Some(format!("{:x}-{micros:x}-{:x}", meta.ino(), meta.len())),
        version: None,
    }
}

fn failed(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("{}: {e}", PathBuf::from(path).display()).into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::local::LocalFileSystem;
    use object_store::ObjectStore;
    use std::os::unix::fs::symlink;

    type Seen = Vec<(String, u64, Option<String>, i64)>;

    fn seen(metas: Vec<ObjectMeta>) -> Seen {
        let mut all: Seen = metas
            .into_iter()
            .map(|m| {
                let micros = m.last_modified.timestamp_micros();
                (m.location.to_string(), m.size, m.e_tag, micros)
            })
            .collect();
        all.sort();
        all
    }

    /// Files, odd names, links (to a file, to a folder, broken), object_store's staging names,
    /// an empty folder and a fifo.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, body) in [
            ("y=2025/m=01/d=01/part-0.parquet", "a"),
            ("y=2025/m=01/d=02/part 1 %41 é.parquet", "bb"),
            ("y=2025/m=02/d=01/PT1H.json", "ccc"),
            ("top.jsonl", "dddd"),
            ("staging/x.parquet#123", "e"),
            ("staging/y.parquet#12a", "ff"),
            ("staging/z.parquet#", "ggg"),
            (".hidden/_SUCCESS", ""),
        ] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            // Sizes past 9 bytes: the ETag's size is hexadecimal.
            std::fs::write(p, body.repeat(17)).unwrap();
        }
        std::fs::create_dir_all(root.join("empty/inner")).unwrap();
        symlink(root.join("top.jsonl"), root.join("link.jsonl")).unwrap();
        symlink(root.join("y=2025/m=02"), root.join("linked-month")).unwrap();
        symlink(root.join("gone.parquet"), root.join("broken.parquet")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("pipe"))
            .status();
        assert!(made.unwrap().success(), "mkfifo (coreutils) is needed");
        dir
    }

    /// What object_store's own listing of `root` gives.
    fn object_store_listing(root: &Path) -> object_store::Result<Vec<ObjectMeta>> {
        let store = LocalFileSystem::new_with_prefix(root).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(store.list(None).try_collect())
    }

    #[test]
    fn the_walk_lists_what_object_stores_listing_lists() {
        let dir = tree();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let (metas, pruned) = walk_folder(&root, None).unwrap();
        assert!(pruned.is_empty());
        let walked = seen(metas);
        assert_eq!(walked, seen(object_store_listing(&root).unwrap()));
        let keys: Vec<&str> = walked.iter().map(|w| w.0.as_str()).collect();
        assert!(keys.contains(&"linked-month/d=01/PT1H.json"), "{keys:?}");
        assert!(keys.contains(&"staging/y.parquet#12a"), "{keys:?}");
        assert!(!keys.contains(&"staging/x.parquet#123"), "{keys:?}");
        assert!(!keys
            .iter()
            .any(|k| k.contains("broken") || k.contains("pipe")));
    }

    #[test]
    fn a_folder_kept_out_is_not_entered_and_is_named() {
        let dir = tree();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let descend = |folder: &str| !folder.ends_with("m=01") && folder != "staging";
        let (metas, mut pruned) = walk_folder(&root, Some(&descend)).unwrap();
        pruned.sort();
        assert_eq!(pruned, ["staging/", "y=2025/m=01/"]);
        let keys: Vec<String> = seen(metas).into_iter().map(|w| w.0).collect();
        assert!(keys.iter().all(|k| !k.starts_with("y=2025/m=01/")));
        assert!(keys.contains(&"y=2025/m=02/d=01/PT1H.json".to_string()));
    }

    #[test]
    fn a_link_back_up_is_an_error_naming_it() {
        let dir = tree();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        symlink(root.join("y=2025"), root.join("y=2025/m=01/again")).unwrap();
        let e = walk_folder(&root, None).unwrap_err().to_string();
        assert!(
            e.contains("y=2025/m=01/again") && e.contains("back to a folder"),
            "{e}"
        );
    }

    #[test]
    fn a_link_to_itself_fails_both_listings() {
        let dir = tree();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        symlink(root.join("self.parquet"), root.join("self.parquet")).unwrap();
        let e = walk_folder(&root, None).unwrap_err().to_string();
        assert!(e.contains("self.parquet"), "{e}");
        assert!(object_store_listing(&root).is_err());
    }
}
