//! `vdpbf16ps`: 16 lanes, each adding two bf16 products to an `f32` sum (AVX512-BF16).

use super::pack::{Packed, TILE};
use std::ops::Range;

/// Whether the processor has AVX512-BF16 (and the AVX-512 the packing uses with it).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512bf16") && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The 32x32 blocks `rows x cols` of `a · bᵀ`, each handed to `write` (row-major, 32 floats a row).
pub(super) fn multiply(
    a: &Packed,
    b: &Packed,
    (rows, cols): (Range<usize>, Range<usize>),
    write: impl Fn(usize, usize, &[f32; 4 * TILE * TILE]),
) {
    let mut out = [0f32; 4 * TILE * TILE];
    for r in rows {
        for c in cols.clone() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `unit` picked this kernel because the processor has AVX512-BF16; the
            // tiles lie in the packed buffers.
            unsafe {
                block(a, b, r, c, &mut out)
            };
            write(r * 2 * TILE, c * 2 * TILE, &out);
        }
    }
}

/// One 32x32 block, eight rows at a time: 16 sums of 16 lanes in registers, each step of a pair
/// of `k` one broadcast of the left operand's pair per row against the right tiles' rows. Rows
/// past the left operand's lines and pairs past `k` are zeros in the packing: the eights of rows
/// wholly past it are not computed (their sums are never written out), nor the pairs past `k` (a
/// product of zeros adds nothing to a sum that starts at +0), so small products (a convolution of
/// 8 channels, or of 9 taps) do only their live share of the work.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn block(a: &Packed, b: &Packed, r: usize, c: usize, out: &mut [f32; 4 * TILE * TILE]) {
    use std::arch::x86_64::*;
    let bh = |v: __m512i| std::mem::transmute::<__m512i, __m512bh>(v);
    let live = a.len - r * 2 * TILE;
    for quarter in (0..4).take_while(|q| q * 8 < live) {
        let (half, first) = (quarter / 2, quarter % 2 * 8);
        let mut acc = [[_mm512_setzero_ps(); 2]; 8];
        for step in 0..a.steps {
            let at = a.tile(r, half, step).add(first * TILE) as *const i32;
            let (b0, b1) = (b.tile(c, 0, step), b.tile(c, 1, step));
            let pairs = (a.k - step * 2 * TILE).div_ceil(2).min(TILE);
            for pair in 0..pairs {
                let y0 = bh(_mm512_loadu_si512(b0.add(pair * TILE) as *const __m512i));
                let y1 = bh(_mm512_loadu_si512(b1.add(pair * TILE) as *const __m512i));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let x = bh(_mm512_set1_epi32(*at.add(i * TILE + pair)));
                    acc[0] = _mm512_dpbf16_ps(acc[0], x, y0);
                    acc[1] = _mm512_dpbf16_ps(acc[1], x, y1);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            let row = out.as_mut_ptr().add((quarter * 8 + i) * 2 * TILE);
            _mm512_storeu_ps(row, acc[0]);
            _mm512_storeu_ps(row.add(TILE), acc[1]);
        }
    }
}
