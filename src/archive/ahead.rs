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
    /// large enough to be worth it. A hint only: a file that cannot be opened is the later
    /// fetch's error to report.
    pub(crate) fn hint(&self, obj: &ArchiveObject) {
        if obj.size < AHEAD_AT_LEAST {
            return;
        }
        let path: Option<PathBuf> = self.0.path_to_filesystem(&obj.path()).ok();
        if let Some(file) = path.and_then(|p| std::fs::File::open(p).ok()) {
            will_need(&file);
        }
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn will_need(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a hint on a descriptor open for as long as the call; no memory is passed.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
    }
}

#[cfg(not(target_os = "linux"))]
fn will_need(_: &std::fs::File) {}
