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

/// A strided matrix of bf16 values (their bits): element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View16<'a> {
    pub data: &'a [u16],
    pub rs: usize,
    pub cs: usize,
}

impl View16<'_> {
    /// The same memory read as the transposed matrix.
    pub fn flipped(self) -> Self {
        View16 { rs: self.cs, cs: self.rs, ..self }
    }
}

/// An operand as the packing reads it, `len` lines (rows of the left operand, columns of the
/// right one) by `k` steps: `f32` values rounded as they are packed, or values already bf16 (a
/// convolution's patches, unfolded once into bf16 for the forward's product and the weight
/// gradient's).
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    F32(View<'a>),
    Bf16(View16<'a>),
}

impl Source<'_> {
    /// The operand as a row-major `len x k` matrix of `f32` (for the way that does not pack).
    pub fn to_rows(self, len: usize, k: usize) -> Vec<f32> {
        let at = |l: usize, s: usize| match self {
            Source::F32(v) => v.data[l * v.rs + s * v.cs],
            Source::Bf16(v) => f32::from_bits((v.data[l * v.rs + s * v.cs] as u32) << 16),
        };
        (0..len * k).map(|i| at(i / k, i % k)).collect()
    }
}

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

    /// Packs share `p` of `parts` of the blocks of `src` (`len x k`; for the right operand,
    /// `right`, its columns).
    pub fn pack_share(&self, src: Source, right: bool, p: usize, parts: usize) {
        let blocks = self.blocks();
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
                    let (lines, s0) = (self.len.saturating_sub(first).min(TILE), step * 2 * TILE);
                    let steps = (self.k - s0).min(2 * TILE);
                    match src {
                        Source::F32(v) => pack_tile(v, (first, lines), (s0, steps), right, tile),
                        Source::Bf16(v) => pack_tile16(v, (first, lines), (s0, steps), right, tile),
                    }
                }
            }
        }
    }
}

/// One tile: lines `first..first + lines` (at most 16), steps `s0..s0 + steps` (at most 32) of
/// `src` (`len x k`), rounded to bf16, zeros past them.
fn pack_tile(src: View, (first, lines): (usize, usize), (s0, steps): (usize, usize), right: bool, tile: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if super::dot::available() && (src.cs == 1 || src.rs == 1) {
        // SAFETY: the processor converts to bf16 (checked), and every element read lies inside
        // `src` (lines and steps are clipped to the operand's size).
        unsafe {
            if src.cs == 1 {
                along_k(src, first, lines, s0, steps, tile)
            } else {
                along_lines(src, first, lines, s0, steps, tile)
            }
        };
        // Pairs come out line by line from rows along `k` and pair by pair from rows along the
        // lines; the other layout is their transpose.
        if (src.cs == 1) == right {
            transpose(tile);
        }
        return;
    }
    fill(tile, right, lines, steps, |l, s| bits(src.data[(first + l) * src.rs + (s0 + s) * src.cs]));
}

/// [`pack_tile`] from bf16 values: rows along `k` are already tile rows, rows along the lines
/// are paired by widening.
fn pack_tile16(
    src: View16,
    (first, lines): (usize, usize),
    (s0, steps): (usize, usize),
    right: bool,
    tile: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if super::dot::available() && std::arch::is_x86_feature_detected!("avx512vl") && (src.cs == 1 || src.rs == 1) {
        // SAFETY: the processor has AVX-512 BW and VL (checked), and every element read lies
        // inside `src` (lines and steps are clipped to the operand's size).
        unsafe {
            if src.cs == 1 {
                along_k16(src, first, lines, s0, steps, tile)
            } else {
                along_lines16(src, first, lines, s0, steps, tile)
            }
        };
        if (src.cs == 1) == right {
            transpose(tile);
        }
        return;
    }
    fill(tile, right, lines, steps, |l, s| src.data[(first + l) * src.rs + (s0 + s) * src.cs]);
}

/// A tile from the bf16 bits `at(line, step)` of its `lines x steps` corner, zeros past it.
fn fill(tile: &mut [u32], right: bool, lines: usize, steps: usize, at: impl Fn(usize, usize) -> u16) {
    for (word, out) in tile.iter_mut().enumerate() {
        let (line, pair) = if right { (word % TILE, word / TILE) } else { (word / TILE, word % TILE) };
        let half = |s: usize| {
            let s = 2 * pair + s;
            if line < lines && s < steps {
                at(line, s) as u32
            } else {
                0
            }
        };
        *out = half(0) | (half(1) << 16);
    }
}

/// A tile line by line (`16 line + p`) from bf16 rows along `k`: each line's 32 steps, 64 bytes,
/// are its row of pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn along_k16(src: View16, first: usize, lines: usize, s0: usize, steps: usize, tile: &mut [u32]) {
    use std::arch::x86_64::*;
    let mask = if steps >= 2 * TILE { u32::MAX } else { (1u32 << steps) - 1 };
    let out = tile.as_mut_ptr() as *mut __m512i;
    for line in 0..TILE {
        let v = if line < lines {
            _mm512_maskz_loadu_epi16(mask, src.data.as_ptr().add((first + line) * src.rs + s0) as *const i16)
        } else {
            _mm512_setzero_si512()
        };
        _mm512_storeu_si512(out.add(line), v);
    }
}

/// A tile pair by pair (`16 p + line`) from bf16 rows along the lines: two steps' rows of 16
/// values widened and interleaved into pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn along_lines16(src: View16, first: usize, lines: usize, s0: usize, steps: usize, tile: &mut [u32]) {
    use std::arch::x86_64::*;
    let mask = if lines >= TILE { u16::MAX } else { (1u16 << lines) - 1 };
    let out = tile.as_mut_ptr() as *mut __m512i;
    let row = |s: usize| {
        if s < steps {
            let p = src.data.as_ptr().add(first + (s0 + s) * src.cs) as *const i16;
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p))
        } else {
            _mm512_setzero_si512()
        }
    };
    for pair in 0..TILE {
        let both = _mm512_or_si512(row(2 * pair), _mm512_slli_epi32::<16>(row(2 * pair + 1)));
        _mm512_storeu_si512(out.add(pair), both);
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
