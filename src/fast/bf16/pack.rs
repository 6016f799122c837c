//! Operands packed into tiles of bf16 pairs, the layout both the tile unit and `vdpbf16ps` read.
//!
//! A tile holds 16 lines (rows of the left operand, columns of the right one) by 32 steps of `k`,
//! as 16 x 16 `u32`: each `u32` a pair of bf16 from two neighbouring steps of `k` (the even one
//! in the low half). Lines are grouped by 32 (two tiles side by side, the kernels' block) and
//! padded with zeros, as is `k` to a multiple of 32. Block `b` of 16 lines keeps its tiles along
//! `k` one after another: tile `(b, t)` starts at `(b * steps + t) * 256`. The left operand's
//! tiles are stored line by line (row `r`, pair `p` at `16 r + p`), the right one's pair by pair
//! (`16 p + c`): the layouts of AMX's A and B tiles.

use super::super::gemm::View;
use super::super::team::Disjoint;
use super::bits;

/// Lines (and pairs of `k`) per tile.
pub(crate) const TILE: usize = 16;
/// `u32`s per tile.
pub(crate) const WORDS: usize = TILE * TILE;

/// An operand's tiles, in a buffer that outlives the product.
pub(crate) struct Packed {
    data: Disjoint<u32>,
    /// Lines of the operand (rows of the left one, columns of the right one).
    pub len: usize,
    /// Its length along `k`.
    pub k: usize,
    /// Tiles along `k`.
    pub steps: usize,
}

impl Packed {
    /// Room in `buf` for `len` lines of `k` (grown, never shrunk).
    pub fn new(buf: &mut Vec<u32>, len: usize, k: usize) -> Packed {
        let steps = k.div_ceil(2 * TILE);
        let need = len.div_ceil(2 * TILE) * 2 * steps * WORDS;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        Packed { data: Disjoint::new(buf.as_mut_ptr()), len, k, steps }
    }

    /// Blocks of 32 lines (the kernels' unit of work).
    pub fn blocks(&self) -> usize {
        self.len.div_ceil(2 * TILE)
    }

    /// Tile `step` along `k` of the 16 lines `half` (0 or 1) of block `block`.
    pub fn tile(&self, block: usize, half: usize, step: usize) -> *const u32 {
        // `new` made room for every block's two halves and steps; a caller dereferences only those.
        self.data.get().wrapping_add(((2 * block + half) * self.steps + step) * WORDS)
    }

    /// Packs share `p` of `parts` of the blocks of `src` (`len x k`, element `(line, s)` at
    /// `line * rs + s * cs`; for the right operand, `right`, `src` is `k x len`).
    pub fn pack_share(&self, src: View, right: bool, p: usize, parts: usize) {
        let blocks = self.blocks();
        let src = if right { src.flipped() } else { src };
        // Steps outermost: consecutive tiles read the next 64 bytes of the same rows of an
        // operand contiguous along its lines (runs the prefetcher follows), rather than rows
        // that lie far apart.
        for step in 0..self.steps {
            for block in p * blocks / parts..(p + 1) * blocks / parts {
                for half in 0..2 {
                    let first = (2 * block + half) * TILE;
                    // SAFETY: each block is packed by one part only, into its own tiles.
                    let tile =
                        unsafe { std::slice::from_raw_parts_mut(self.tile(block, half, step) as *mut u32, WORDS) };
                    self.pack_tile(src, first, step * 2 * TILE, right, tile);
                }
            }
        }
    }

    /// One tile: lines `first..first + 16`, steps `s0..s0 + 32` of `src` (`len x k`).
    fn pack_tile(&self, src: View, first: usize, s0: usize, right: bool, tile: &mut [u32]) {
        let lines = self.len.saturating_sub(first).min(TILE);
        let steps = (self.k - s0).min(2 * TILE);
        #[cfg(target_arch = "x86_64")]
        if super::dot::available() && (src.cs == 1 || src.rs == 1) {
            // SAFETY: the processor converts to bf16 (checked), and every element read lies
            // inside `src` (lines and steps are clipped to the operand's size).
            unsafe {
                if src.cs == 1 {
                    along_k(src, first, lines, s0, steps, tile)
                } else {
                    along_lines(src, first, lines, s0, steps, tile)
                }
            };
            // Pairs come out line by line from rows along `k` and pair by pair from rows along
            // the lines; the other layout is their transpose.
            if (src.cs == 1) == right {
                transpose(tile);
            }
            return;
        }
        for (word, out) in tile.iter_mut().enumerate() {
            let (line, pair) = if right { (word % TILE, word / TILE) } else { (word / TILE, word % TILE) };
            let at = |s: usize| {
                let s = 2 * pair + s;
                if line < lines && s < steps {
                    bits(src.data[(first + line) * src.rs + (s0 + s) * src.cs]) as u32
                } else {
                    0
                }
            };
            *out = at(0) | (at(1) << 16);
        }
    }
}

/// A tile line by line (`16 line + p`) from an operand contiguous along `k`: each line's 32
/// steps converted in one instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn along_k(src: View, first: usize, lines: usize, s0: usize, steps: usize, tile: &mut [u32]) {
    use std::arch::x86_64::*;
    let lo = if steps >= TILE { u16::MAX } else { (1u16 << steps) - 1 };
    let hi = if steps >= 2 * TILE { u16::MAX } else { ((1u32 << steps.saturating_sub(TILE)) - 1) as u16 };
    let out = tile.as_mut_ptr() as *mut __m512i;
    for line in 0..TILE {
        let v = if line < lines {
            let p = src.data.as_ptr().add((first + line) * src.rs + s0);
            let (a, b) = (_mm512_maskz_loadu_ps(lo, p), _mm512_maskz_loadu_ps(hi, p.wrapping_add(TILE)));
            std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(b, a))
        } else {
            _mm512_setzero_si512()
        };
        _mm512_storeu_si512(out.add(line), v);
    }
}

/// A tile pair by pair (`16 p + line`) from an operand contiguous along its lines: two steps of
/// `k` converted together, their bf16 interleaved into pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn along_lines(src: View, first: usize, lines: usize, s0: usize, steps: usize, tile: &mut [u32]) {
    use std::arch::x86_64::*;
    let mask = if lines >= TILE { u16::MAX } else { (1u16 << lines) - 1 };
    let order: [u16; 32] = std::array::from_fn(|i| (i / 2 + (i % 2) * TILE) as u16);
    let order = _mm512_loadu_si512(order.as_ptr() as *const __m512i);
    let out = tile.as_mut_ptr() as *mut __m512i;
    let row = |s: usize| {
        if s < steps {
            _mm512_maskz_loadu_ps(mask, src.data.as_ptr().add(first + (s0 + s) * src.cs))
        } else {
            _mm512_setzero_ps()
        }
    };
    for pair in 0..TILE {
        let both = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(row(2 * pair + 1), row(2 * pair)));
        _mm512_storeu_si512(out.add(pair), _mm512_permutexvar_epi16(order, both));
    }
}

/// A tile's 16 x 16 words transposed in place.
fn transpose(tile: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if super::dot::available() {
        // SAFETY: the processor has AVX-512 (AVX512-BF16 implies it), and `tile` holds 256 words.
        return unsafe { transpose_avx512(tile) };
    }
    for i in 0..TILE {
        for j in i + 1..TILE {
            tile.swap(i * TILE + j, j * TILE + i);
        }
    }
}

/// [`transpose`] in sixteen registers: words, then pairs of words, then 128-bit lanes exchanged.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_avx512(tile: &mut [u32]) {
    use std::arch::x86_64::*;
    assert!(tile.len() >= WORDS);
    let p = tile.as_mut_ptr() as *mut __m512i;
    let r: [__m512i; 16] = std::array::from_fn(|i| _mm512_loadu_si512(p.add(i)));
    let t: [__m512i; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_epi32(a, b)
        } else {
            _mm512_unpackhi_epi32(a, b)
        }
    });
    // Rows 4q..4q+4 from t[4q..4q+4]: lo/hi 64-bit halves of (t0, t2) and (t1, t3).
    let r: [__m512i; 16] = std::array::from_fn(|i| {
        let q = i / 4 * 4;
        let (a, b) = match i % 4 {
            0 | 1 => (t[q], t[q + 2]),
            _ => (t[q + 1], t[q + 3]),
        };
        if i % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    // 128-bit lanes: even lanes of (r[i], r[i + 4]) then odd lanes, within each half of eight.
    let t: [__m512i; 16] = std::array::from_fn(|i| {
        let h = i / 8 * 8;
        let j = i % 4;
        if i % 8 < 4 {
            _mm512_shuffle_i32x4::<0x88>(r[h + j], r[h + j + 4])
        } else {
            _mm512_shuffle_i32x4::<0xdd>(r[h + j], r[h + j + 4])
        }
    });
    for i in 0..16 {
        let (a, b) = (t[i % 8], t[i % 8 + 8]);
        let row = if i < 8 { _mm512_shuffle_i32x4::<0x88>(a, b) } else { _mm512_shuffle_i32x4::<0xdd>(a, b) };
        _mm512_storeu_si512(p.add(i), row);
    }
}

#[cfg(test)]
pub(super) fn transpose_for_tests(tile: &mut [u32]) {
    transpose(tile)
}
