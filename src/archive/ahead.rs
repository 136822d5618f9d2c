//! Read-ahead of a local folder's objects: while a decoder reads one object, the kernel is
//! asked to bring a later one into the page cache, so that a scan from disk does not need more
//! decoders than cores to keep them busy (a decoder waiting on the disk leaves its core idle).

use std::path::PathBuf;

use object_store::local::LocalFileSystem;

use super::location::{ArchiveObject, Location};

/// Objects from this size on are read ahead; a smaller one is one read the kernel's own
/// read-ahead covers, and the hint (three system calls) would cost more than it hides.
pub(crate) const AHEAD_AT_LEAST: u64 = 256 * 1024;

/// Where a local folder's objects are on disk.
pub(crate) struct ReadAhead(LocalFileSystem);

impl ReadAhead {
    /// For a local folder; `None` for a store or a single file.
    pub(crate) fn of(loc: &Location) -> Option<Self> {
        let root = loc.folder.as_ref()?;
        LocalFileSystem::new_with_prefix(root).ok().map(ReadAhead)
    }

    /// Asks the kernel to read `obj` into the page cache, without waiting for it, if it is
    /// large enough to be worth it; whether it was asked. A hint only: a file that cannot be
    /// opened is the later fetch's error to report.
    pub(crate) fn hint(&self, obj: &ArchiveObject) -> bool {
        if obj.size < AHEAD_AT_LEAST {
            return false;
        }
        let path: Option<PathBuf> = self.0.path_to_filesystem(&obj.path()).ok();
        path.and_then(|p| std::fs::File::open(p).ok())
            .is_some_and(|file| will_need(&file))
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn will_need(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a hint on a descriptor open for as long as the call; no memory is passed.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn will_need(_: &std::fs::File) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The objects as the listing names them: keys object_store encodes (a space, `%`, `#`,
    /// non-ASCII) still lead to their files.
    #[test]
    fn listed_objects_are_hinted_by_their_files_from_the_size_on() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let names = [
            "y=2025/a b%20#1 ü.parquet",
            "y=2025/plain.parquet",
            "small.parquet",
        ];
        for (name, size) in names.iter().zip([AHEAD_AT_LEAST, AHEAD_AT_LEAST + 1, 10]) {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vec![1u8; size as usize]).unwrap();
        }
        let (metas, _) = super::super::folder::walk_folder(&root, None).unwrap();
        let ahead = ReadAhead(LocalFileSystem::new_with_prefix(&root).unwrap());
        let mut hinted: Vec<(String, bool)> = metas
            .into_iter()
            .map(|m| {
                let obj = ArchiveObject {
                    key: m.location.as_ref().to_string(),
                    size: m.size,
                    e_tag: m.e_tag,
                    last_modified: Some(m.last_modified),
                };
                (obj.key.clone(), ahead.hint(&obj))
            })
            .collect();
        hinted.sort();
        let large: Vec<bool> = hinted.iter().map(|(_, h)| *h).collect();
        assert_eq!(large, [false, true, true], "{hinted:?}");
        // An object gone since the listing is not hinted, and not an error.
        std::fs::remove_file(root.join(names[1])).unwrap();
        let gone = ArchiveObject {
            key: "y=2025/plain.parquet".into(),
            size: AHEAD_AT_LEAST,
            e_tag: None,
            last_modified: None,
        };
        assert!(!ahead.hint(&gone));
    }
}
