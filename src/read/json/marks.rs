//! Where a line's quotes and backslashes are, and whether it is all printable ASCII, found in
//! one pass of 16 bytes at a time. The walk (`sniff`) then finds the end of each string with a
//! bit scan instead of reading the string again: strings are most of a record's bytes.

#![allow(unsafe_code)]

/// What one pass over a line's bytes says, for the prefilter and the walk alike.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Kind {
    /// Every byte is printable ASCII (no control character, nothing beyond 0x7F).
    pub(crate) printable: bool,
    /// The line is UTF-8.
    pub(crate) utf8: bool,
    /// Some byte is a control character (below 0x20).
    pub(crate) control: bool,
    /// Some byte is a backslash.
    pub(crate) backslash: bool,
}

/// What the pass saw of one block of 64 bytes.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct Block {
    /// A bit per byte, set on `"` and `\`.
    marks: u64,
    /// Some byte is below 0x20, from 0x80 on, a backslash.
    control: bool,
    high: bool,
    backslash: bool,
}

/// A bit per byte of the last line marked: set on `"` and `\`.
#[derive(Debug, Default)]
pub(super) struct Marks {
    bits: Vec<u64>,
    kind: Kind,
}

impl Marks {
    /// Marks `line`, replacing the line marked before; what the pass saw of its bytes.
    pub(super) fn mark(&mut self, line: &[u8]) -> Kind {
        self.bits.clear();
        self.bits.reserve(line.len() / 64 + 1);
        let mut seen = Block::default();
        let mut add = |b: Block| {
            self.bits.push(b.marks);
            seen.control |= b.control;
            seen.high |= b.high;
            seen.backslash |= b.backslash;
        };
        let mut blocks = line.chunks_exact(64);
        for b in &mut blocks {
            add(block(b.try_into().unwrap_or(&[b' '; 64])));
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            // Spaces are neither marked nor odd.
            let mut pad = [b' '; 64];
            pad.get_mut(..rest.len())
                .unwrap_or_default()
                .copy_from_slice(rest);
            add(block(&pad));
        }
        self.kind = Kind {
            printable: !seen.control && !seen.high,
            utf8: !seen.high || std::str::from_utf8(line).is_ok(),
            control: seen.control,
            backslash: seen.backslash,
        };
        self.kind
    }

    /// What the pass saw of the marked line's bytes.
    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// The first quote or backslash of the marked line at or after `at`.
    #[inline]
    pub(super) fn next(&self, at: usize) -> Option<usize> {
        let mut w = at / 64;
        let mut word = self.bits.get(w)? & (u64::MAX << (at % 64));
        loop {
            if word != 0 {
                return Some(w * 64 + word.trailing_zeros() as usize);
            }
            w += 1;
            word = *self.bits.get(w)?;
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn block(b: &[u8; 64]) -> Block {
    // SAFETY: SSE2 is part of every x86_64 processor.
    unsafe { block_sse2(b) }
}

/// [`block`] 16 bytes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn block_sse2(b: &[u8; 64]) -> Block {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let (space, none) = (_mm_set1_epi8(0x20), _mm_set1_epi8(-1));
    let (mut marks, mut slashes, mut control, mut high) = (0u64, _mm_setzero_si128(), 0, 0);
    for (i, chunk) in b.chunks_exact(16).enumerate() {
        // SAFETY: `chunk` is 16 bytes; the load has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
        let s = _mm_cmpeq_epi8(v, backslash);
        slashes = _mm_or_si128(slashes, s);
        let m = _mm_or_si128(_mm_cmpeq_epi8(v, quote), s);
        marks |= u64::from(_mm_movemask_epi8(m) as u16) << (16 * i);
        // Signed bytes: those from 0x80 on are negative, the sign bit is the movemask's.
        high |= _mm_movemask_epi8(v);
        control |= _mm_movemask_epi8(_mm_and_si128(
            _mm_cmpgt_epi8(v, none),
            _mm_cmplt_epi8(v, space),
        ));
    }
    Block {
        marks,
        control: control != 0,
        high: high != 0,
        backslash: _mm_movemask_epi8(slashes) != 0,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn block(b: &[u8; 64]) -> Block {
    portable(b)
}

/// The same as [`block`], a byte at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn portable(b: &[u8; 64]) -> Block {
    let mut out = Block::default();
    for (i, &c) in b.iter().enumerate() {
        out.marks |= u64::from(c == b'"' || c == b'\\') << i;
        out.control |= c < 0x20;
        out.high |= c >= 0x80;
        out.backslash |= c == b'\\';
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn blocks_agree_with_the_bytes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(64);
        let alphabet = [b'"', b'\\', b' ', b'a', 0x1f, 0x20, 0x7f, 0x80, 0xff, b'{'];
        for _ in 0..5_000 {
            let mut b = [0u8; 64];
            let rare = rng.gen_bool(0.5);
            for c in &mut b {
                *c = if rare && rng.gen_bool(0.9) {
                    b'a'
                } else {
                    alphabet[rng.gen_range(0..alphabet.len())]
                };
            }
            assert_eq!(block(&b), portable(&b), "{b:?}");
        }
    }

    #[test]
    fn finds_every_mark_past_a_position() {
        let line = format!(
            "{}\"{}\\{}\"",
            "a".repeat(70),
            "b".repeat(3),
            "é".repeat(40)
        );
        let mut m = Marks::default();
        let kind = m.mark(line.as_bytes());
        assert!(!kind.printable && kind.utf8 && kind.backslash && !kind.control);
        let want: Vec<usize> = line
            .bytes()
            .enumerate()
            .filter(|&(_, c)| c == b'"' || c == b'\\')
            .map(|(i, _)| i)
            .collect();
        for at in 0..=line.len() + 70 {
            assert_eq!(m.next(at), want.iter().copied().find(|&i| i >= at), "{at}");
        }
        let kind = m.mark(b"{\"a\": 1}");
        assert!(kind.printable && !kind.backslash);
        let kind = m.mark(b"{\"a\":\t1,\xff}");
        assert!(!kind.printable && kind.control && !kind.utf8);
        assert_eq!(m.next(3), Some(3));
        assert_eq!(m.next(4), None, "the marks of the line before are gone");
    }
}
