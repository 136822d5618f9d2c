//! One data page's bytes, decompressed on demand, and the primitives that read values out of
//! them: PLAIN values, and RLE/bit-packed runs (definition levels, dictionary indices) through
//! polars-parquet's own decoder.

use std::ops::Range;

use polars_parquet::parquet::encoding::hybrid_rle::{HybridRleChunk, HybridRleDecoder};

use super::floor::Meter;
use super::no;
use super::snappy::Snappy;
use super::zstd::Blocks;
use crate::error::Result;

/// How a PLAIN value is laid out.
#[derive(Clone, Copy)]
pub(super) enum Width {
    /// BYTE_ARRAY: a 4-byte length, then the bytes.
    Bytes,
    /// INT64.
    Eight,
}

/// A data page's bytes, decompressed on demand.
pub(super) enum Body<'a> {
    Whole(&'a [u8]),
    Zstd {
        src: &'a [u8],
        in_pos: usize,
        out: &'a mut [u8],
        filled: usize,
        ctx: &'a mut Blocks,
    },
    Snappy {
        src: &'a [u8],
        state: Snappy,
        out: &'a mut [u8],
        filled: usize,
        /// The floor bench's meter (`floor`), which times the decoding.
        meter: &'a mut Option<Meter>,
    },
}

impl Body<'_> {
    /// Makes the first `n` bytes available.
    pub(super) fn ensure(&mut self, n: usize) -> Result<()> {
        let (there, most) = match self {
            Body::Whole(b) => (b.len(), b.len()),
            Body::Zstd { out, filled, .. } | Body::Snappy { out, filled, .. } => {
                (*filled, out.len())
            }
        };
        if n <= there {
            return Ok(());
        }
        if n > most {
            return no("value beyond the page");
        }
        match self {
            Body::Whole(_) => Ok(()),
            Body::Zstd {
                src,
                in_pos,
                out,
                filled,
                ctx,
            } => {
                // Block by block, straight into the page buffer, until `n` bytes are there.
                while *filled < n {
                    match ctx.step(src, *in_pos, out, *filled)? {
                        Some((read, wrote)) => {
                            *in_pos += read;
                            *filled += wrote;
                        }
                        None => return no("zstd stream ends early"),
                    }
                }
                Ok(())
            }
            Body::Snappy {
                src,
                state,
                out,
                filled,
                meter,
            } => {
                let started = meter.is_some().then(std::time::Instant::now);
                let before = *filled;
                *filled = state.fill(src, out, *filled, n)?;
                if let (Some(m), Some(t)) = (meter.as_mut(), started) {
                    m.add(*filled - before, t);
                }
                Ok(())
            }
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Body::Whole(b) => b,
            Body::Zstd { out, filled, .. } | Body::Snappy { out, filled, .. } => &out[..*filled],
        }
    }

    #[inline]
    pub(super) fn u32_at(&mut self, pos: usize) -> Result<usize> {
        if let Some(&[a, b, c, d]) = self.bytes().get(pos..pos + 4) {
            return Ok(u32::from_le_bytes([a, b, c, d]) as usize);
        }
        self.ensure(pos + 4)?;
        match self.bytes().get(pos..pos + 4) {
            Some(&[a, b, c, d]) => Ok(u32::from_le_bytes([a, b, c, d]) as usize),
            _ => no("value beyond the page"),
        }
    }

    /// The PLAIN value at `pos`: its byte range.
    pub(super) fn value_at(&mut self, pos: usize, width: Width) -> Result<Range<usize>> {
        let r = match width {
            Width::Eight => pos..pos + 8,
            Width::Bytes => {
                let len = self.u32_at(pos)?;
                pos + 4..pos + 4 + len
            }
        };
        self.ensure(r.end)?;
        Ok(r)
    }
}

/// Decodes `count` values of Parquet's RLE/bit-packed hybrid encoding into `out`. A run that
/// ends early (truncated or corrupt data) is an error, not fewer values.
pub(super) fn hybrid(data: &[u8], bit_width: u32, count: usize, out: &mut Vec<u32>) -> Result<()> {
    if bit_width > 32 {
        return no("bit width over 32");
    }
    let before = out.len();
    for chunk in HybridRleDecoder::new(data, bit_width, count).into_chunk_iter() {
        match chunk.or_else(|e| no(format!("RLE/bit-packed runs: {e}")))? {
            HybridRleChunk::Rle(value, n) => out.resize(out.len() + n, value),
            HybridRleChunk::Bitpacked(decoder) => decoder.collect_into(out),
        }
    }
    if out.len() - before != count {
        return no("RLE/bit-packed runs end before their values");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_decodes_rle_and_bit_packed_runs() {
        // RLE run of 3 × 5 (width 3: one byte), then one bit-packed group of 0..8 (width 3).
        let mut data = vec![3 << 1, 5];
        data.push(1 << 1 | 1);
        let mut bits = 0u64;
        for v in 0..8u64 {
            bits |= v << (3 * v);
        }
        data.extend_from_slice(&bits.to_le_bytes()[..3]);
        let mut out = Vec::new();
        hybrid(&data, 3, 10, &mut out).unwrap();
        assert_eq!(out, [5, 5, 5, 0, 1, 2, 3, 4, 5, 6]);
        assert!(hybrid(&[3 << 1], 3, 3, &mut Vec::new()).is_err());
        // A bit-packed run header claiming 2^63 groups: an error, not an overflow.
        let mut huge = vec![0xff; 9];
        huge.push(0x01);
        for width in [2, 12] {
            assert!(hybrid(&huge, width, 5, &mut Vec::new()).is_err());
        }
        // Wider than a byte: one group of 8 twelve-bit values, and a two-byte RLE value.
        let mut bits = 0u128;
        for v in 0..8u128 {
            bits |= (4000 + v) << (12 * v);
        }
        let mut data = vec![1 << 1 | 1];
        data.extend_from_slice(&bits.to_le_bytes()[..12]);
        data.extend_from_slice(&[2 << 1, 0x34, 0x0a]);
        let mut out = Vec::new();
        hybrid(&data, 12, 10, &mut out).unwrap();
        assert_eq!(
            out,
            [4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 0xa34, 0xa34]
        );
        assert!(hybrid(&data, 33, 1, &mut Vec::new()).is_err());
    }
}
