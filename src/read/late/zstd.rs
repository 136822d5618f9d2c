//! zstd's buffer-less streaming API (`ZSTD_decompressBegin` / `ZSTD_decompressContinue`): each
//! block is decoded straight into the page buffer, after the blocks before it, so a page is
//! decoded only as far as needed, without the extra copy and split-literal decoding of
//! `ZSTD_decompressStream`'s buffered mode.
//!
//! zstd 1.5.7's header marks this API deprecated (it stays in the library); zstd-sys exports it
//! under its `experimental` feature, and Cargo.toml pins zstd-sys (and so zstd) exactly. Any
//! failure here makes the late reader decline the object, and polars' reader decodes its
//! pages whole instead.

#![allow(unsafe_code)]

use std::ptr::NonNull;

use zstd_sys::{
    ZSTD_DCtx, ZSTD_createDCtx, ZSTD_decompressBegin, ZSTD_decompressContinue, ZSTD_freeDCtx,
    ZSTD_isError, ZSTD_nextSrcSizeToDecompress,
};

use super::floor::Meter;
use super::no;
use crate::error::Result;

/// One decompression context, used by one thread; with a meter, its work is timed.
pub(super) struct Blocks(NonNull<ZSTD_DCtx>, pub(super) Option<Meter>);

// SAFETY: the context is only ever used through `&mut self`.
unsafe impl Send for Blocks {}

impl Blocks {
    pub(super) fn new() -> Result<Self> {
        // SAFETY: plain constructor; null only when out of memory.
        let p = unsafe { ZSTD_createDCtx() };
        match NonNull::new(p) {
            Some(p) => Ok(Blocks(p, None)),
            None => no("cannot allocate a zstd context"),
        }
    }

    /// Starts a new frame.
    pub(super) fn begin(&mut self) -> Result<()> {
        // SAFETY: a live context.
        let r = unsafe { ZSTD_decompressBegin(self.0.as_ptr()) };
        // SAFETY: pure function of its argument.
        if unsafe { ZSTD_isError(r) } != 0 {
            return no("zstd begin failed");
        }
        Ok(())
    }

    /// Decodes the next header or block of `src[at..]` into `out[filled..]`, after the output
    /// so far (which must stay where it is: later blocks refer back to it). Returns the bytes
    /// read and written, `None` once `src` is exhausted.
    pub(super) fn step(
        &mut self,
        src: &[u8],
        at: usize,
        out: &mut [u8],
        filled: usize,
    ) -> Result<Option<(usize, usize)>> {
        // SAFETY: a live context.
        let mut need = unsafe { ZSTD_nextSrcSizeToDecompress(self.0.as_ptr()) };
        if need == 0 {
            // Frame done: a page may hold several frames back to back.
            if at >= src.len() {
                return Ok(None);
            }
            self.begin()?;
            // SAFETY: as above.
            need = unsafe { ZSTD_nextSrcSizeToDecompress(self.0.as_ptr()) };
        }
        let Some(input) = at.checked_add(need).and_then(|end| src.get(at..end)) else {
            return no("zstd frame truncated");
        };
        let Some(dst) = out.get_mut(filled..) else {
            return no("zstd output beyond the page");
        };
        let started = self.1.is_some().then(std::time::Instant::now);
        // SAFETY: `input` and `dst` are valid for the lengths given; zstd writes at most
        // `dst.len()` bytes and reads only the `need` bytes it asked for. The earlier output it
        // refers back to lies just before `dst`, inside the same live buffer.
        let wrote = unsafe {
            ZSTD_decompressContinue(
                self.0.as_ptr(),
                dst.as_mut_ptr().cast(),
                dst.len(),
                input.as_ptr().cast(),
                need,
            )
        };
        // SAFETY: pure function of its argument.
        if unsafe { ZSTD_isError(wrote) } != 0 {
            return no("zstd data corrupt");
        }
        if wrote > dst.len() {
            return no("zstd wrote beyond the page");
        }
        if let (Some(m), Some(t)) = (&mut self.1, started) {
            m.add(wrote, t);
        }
        Ok(Some((need, wrote)))
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createDCtx, freed once.
        unsafe { ZSTD_freeDCtx(self.0.as_ptr()) };
    }
}
