//! Snappy's raw format decoded as far as needed: a page is decoded into its buffer element by
//! element, and only up to the last value wanted, as zstd pages are (`zstd`). The `snap` crate
//! decodes whole buffers only; pages of snappy layouts are often one per row group, tens of MB,
//! and walking the values of a page decoded whole runs out of the cache.
//!
//! The format (google/snappy `format_description.txt`): the decoded length as a varint, then
//! elements, each a tag byte whose low two bits say literal (length in the tag or in up to 4
//! bytes after it) or copy (of 4–64 bytes, from 1, 2 or 4 bytes of offset back).

use super::no;
use crate::error::Result;

/// Bytes decoded at least per call beyond what is asked: fewer calls, as zstd's 128 KB blocks.
const STEP: usize = 64 * 1024;

/// Where a snappy page's decoding stands.
#[derive(Debug, Default)]
pub(super) struct Snappy {
    /// Next element in the source.
    at: usize,
}

/// The decoded length the page's preamble claims, and where its elements start.
pub(super) fn preamble(src: &[u8]) -> Result<(usize, usize)> {
    let mut len = 0usize;
    for (i, &b) in src.iter().enumerate().take(5) {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((len, i + 1));
        }
    }
    no("snappy: bad length preamble")
}

impl Snappy {
    /// Starts after the preamble (`at`: where the elements start).
    pub(super) fn new(at: usize) -> Self {
        Snappy { at }
    }

    /// Decodes elements of `src` into `out` after its first `filled` bytes until at least
    /// `want` bytes are there (or the page ends); returns the new `filled`.
    pub(super) fn fill(
        &mut self,
        src: &[u8],
        out: &mut [u8],
        mut filled: usize,
        want: usize,
    ) -> Result<usize> {
        let goal = want.max(filled + STEP).min(out.len());
        while filled < goal {
            let Some(&tag) = src.get(self.at) else {
                return no("snappy: input ends early");
            };
            self.at += 1;
            filled = match tag & 3 {
                0 => self.literal(tag, src, out, filled)?,
                kind => {
                    let (len, offset) = match kind {
                        1 => {
                            let lo = self.take(src, 1)?;
                            (
                                4 + usize::from((tag >> 2) & 7),
                                (usize::from(tag >> 5) << 8) | lo,
                            )
                        }
                        2 => (1 + usize::from(tag >> 2), self.take(src, 2)?),
                        _ => (1 + usize::from(tag >> 2), self.take(src, 4)?),
                    };
                    copy(out, filled, offset, len)?
                }
            };
        }
        Ok(filled)
    }

    /// `n` (1 to 4) little-endian bytes of the source as a number.
    #[inline]
    fn take(&mut self, src: &[u8], n: usize) -> Result<usize> {
        let v = match (n, src.get(self.at..)) {
            (1, Some(&[a, ..])) => usize::from(a),
            (2, Some(&[a, b, ..])) => usize::from(u16::from_le_bytes([a, b])),
            (3, Some(&[a, b, c, ..])) => u32::from_le_bytes([a, b, c, 0]) as usize,
            (4, Some(&[a, b, c, d, ..])) => u32::from_le_bytes([a, b, c, d]) as usize,
            _ => return no("snappy: input ends early"),
        };
        self.at += n;
        Ok(v)
    }

    #[inline]
    fn literal(&mut self, tag: u8, src: &[u8], out: &mut [u8], filled: usize) -> Result<usize> {
        let len = match tag >> 2 {
            n @ 0..=59 => usize::from(n) + 1,
            n => self.take(src, usize::from(n - 59))? + 1,
        };
        // Most literals are short: 16 bytes moved at once where both sides have room (the
        // bytes past the literal are written again by what follows).
        if len <= 16 {
            if let (Some(from), Some(to)) = (
                src.get(self.at..self.at + 16),
                out.get_mut(filled..filled + 16),
            ) {
                to.copy_from_slice(from);
                self.at += len;
                return Ok(filled + len);
            }
        }
        let (Some(from), Some(to)) = (
            src.get(self.at..self.at + len),
            out.get_mut(filled..filled + len),
        ) else {
            return no("snappy: a literal beyond the page");
        };
        to.copy_from_slice(from);
        self.at += len;
        Ok(filled + len)
    }
}

/// Copies `len` bytes from `offset` back, an overlapping copy repeating its pattern.
#[inline]
fn copy(out: &mut [u8], filled: usize, offset: usize, len: usize) -> Result<usize> {
    if offset == 0 || offset > filled || filled + len > out.len() {
        return no("snappy: a copy beyond the page");
    }
    let from = filled - offset;
    if offset >= 16 && filled + 64 <= out.len() {
        // A copy is at most 64 bytes: 16 at a time, each chunk read before it is written and
        // never overlapping it (the bytes past the copy are written again by what follows).
        let mut done = 0;
        while done < len {
            let mut chunk = [0u8; 16];
            chunk.copy_from_slice(&out[from + done..from + done + 16]);
            out[filled + done..filled + done + 16].copy_from_slice(&chunk);
            done += 16;
        }
        return Ok(filled + len);
    }
    if offset >= len {
        out.copy_within(from..from + len, filled);
    } else {
        for i in 0..len {
            out[filled + i] = out[from + i];
        }
    }
    Ok(filled + len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Decodes `src` whole, asking for `step` more bytes at a time.
    fn decode(src: &[u8], step: usize) -> Result<Vec<u8>> {
        let (len, at) = preamble(src)?;
        if len > 1 << 22 {
            // Damage to the preamble: a page's size is bounded by its header, not by it.
            return no("larger than any page here");
        }
        let mut out = vec![0; len];
        let (mut s, mut filled) = (Snappy::new(at), 0);
        while filled < len {
            filled = s.fill(src, &mut out, filled, filled + step)?;
        }
        Ok(out)
    }

    #[test]
    fn decodes_what_snap_encodes_at_any_step() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for case in 0..200 {
            // Runs (overlapping copies), repeats from far back, and noise (literals).
            let mut data = Vec::new();
            while data.len() < rng.gen_range(0..300_000) {
                match rng.gen_range(0..3) {
                    0 => data.extend(std::iter::repeat_n(rng.gen::<u8>(), rng.gen_range(1..200))),
                    1 if !data.is_empty() => {
                        let from = rng.gen_range(0..data.len());
                        let to = (from + rng.gen_range(1..3_000)).min(data.len());
                        data.extend_from_within(from..to);
                    }
                    _ => data.extend((0..rng.gen_range(1..5_000)).map(|_| rng.gen::<u8>())),
                }
            }
            let src = snap::raw::Encoder::new().compress_vec(&data).unwrap();
            for step in [1, 100, 70_000] {
                assert_eq!(decode(&src, step).unwrap(), data, "case {case} step {step}");
            }
        }
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let src = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert!(decode(&src[..src.len() / 2], 1_000).is_err());
        assert!(preamble(&[0xff; 6]).is_err());
        // A copy reaching before the start of the page.
        assert!(decode(&[10, 0b0000_0110, 5, 0], 10).is_err());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        for _ in 0..2_000 {
            let mut bad = src.clone();
            let i = rng.gen_range(0..bad.len());
            bad[i] = rng.gen();
            let _ = decode(&bad, 4_096);
        }
    }
}
