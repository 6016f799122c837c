//! A direct convolution's weight gradient (see the module's overview): for [`GR`] output
//! channels and the three taps of a kernel row, vectors of 16 products summed lane by lane over
//! every output, the lanes added up at the end.

use super::{Direct, CHUNK, GR, GROUP};
use crate::fast::scratch;
use crate::fast::team::{self, Disjoint};

impl Direct {
    /// The weight gradient `[o, c, 3, 3]` from the input's copy `xs` ([`Direct::copy`]) and
    /// the output's gradient `g` (`[o, n, h, w]`, channel-major), in at most `parts` shares of
    /// output channels.
    ///
    /// A share takes [`GR`] output channels at a time, [`CHUNK`] vectors of their gradient at a
    /// time (in the first-level cache while [`GROUP`] input channels go past them), and keeps
    /// each weight's 16 partial sums (one per lane) from one chunk to the next; the lanes are
    /// added up once at the end. Every weight's gradient is summed in one order, whatever the
    /// shares.
    pub fn weight_grad(&self, xs: &[f32], g: &[f32], parts: usize) -> Vec<f32> {
        let (s, stride, wd) = (self.s, self.stride, self.s.w);
        assert!(xs.len() >= s.c * stride && g.len() >= s.o * self.len);
        let masks = self.masks();
        let vectors = self.len.div_ceil(16);
        let blocks = s.o.div_ceil(GR);
        let mut dw = vec![0f32; s.o * s.c * 9];
        let dst = Disjoint::new(dw.as_mut_ptr());
        let parts = parts.clamp(1, blocks.max(1));
        team::run(parts, &|part| {
            // Per input channel of a group and kernel row: GR x 3 vectors of partial sums.
            let mut partial = scratch::take(GROUP * 3 * GR * 3 * 16);
            for block in part * blocks / parts..(part + 1) * blocks / parts {
                let rows = (s.o - block * GR).min(GR);
                // Rows past `o` read row 0 again; their sums are dropped.
                let a: [usize; GR] = std::array::from_fn(|i| (block * GR + if i < rows { i } else { 0 }) * self.len);
                for first in (0..s.c).step_by(GROUP) {
                    let channels = (s.c - first).min(GROUP);
                    let partial = &mut partial[..channels * 3 * GR * 3 * 16];
                    partial.fill(0.0);
                    for v0 in (0..vectors).step_by(CHUNK) {
                        let m = &masks[v0..(v0 + CHUNK).min(vectors)];
                        for (i, partial) in partial.chunks_exact_mut(GR * 3 * 16).enumerate() {
                            let (ch, ky) = (first + i / 3, i % 3);
                            // The input row this kernel row reads, from its left tap.
                            let x = ch * stride + self.front + 16 * v0 + ky * wd - wd - 1;
                            // SAFETY: the gradient's reads are masked to outputs inside `g`
                            // (asserted); the input's lie between `w + 1` floats before the
                            // chunk's first output and `w + 32` after its last, inside the
                            // channel's copy (`front`, `stride`); `partial` holds GR x 3
                            // vectors.
                            #[cfg(target_arch = "x86_64")]
                            unsafe {
                                let a = a.map(|row| g.as_ptr().wrapping_add(row + 16 * v0));
                                wtile_avx512(a, xs.as_ptr().add(x), (m, ky), partial)
                            };
                        }
                    }
                    for (i, partial) in partial.chunks_exact(GR * 3 * 16).enumerate() {
                        let (ch, ky) = (first + i / 3, i % 3);
                        for (row, lanes) in partial.chunks_exact(3 * 16).enumerate().take(rows) {
                            let at = ((block * GR + row) * s.c + ch) * 9 + 3 * ky;
                            // SAFETY: `at..at + 3` is inside `dw`, and only this share writes
                            // output channel `block * GR + row`.
                            let d = unsafe { std::slice::from_raw_parts_mut(dst.get().add(at), 3) };
                            d.iter_mut().zip(lanes.chunks_exact(16)).for_each(|(d, l)| *d = lane_sum(l));
                        }
                    }
                }
            }
            scratch::give(partial);
        });
        dw
    }
}

/// 16 partial sums added up pairwise, in a fixed order.
fn lane_sum(l: &[f32]) -> f32 {
    let mut v: [f32; 16] = std::array::from_fn(|i| l[i]);
    for width in [8, 4, 2, 1] {
        for i in 0..width {
            v[i] += v[i + width];
        }
    }
    v[0]
}

/// The weight gradient's tile over a chunk of outputs: `GR` output channels (gradient rows from
/// `a`, read up to the last output) by the three taps of kernel row `m.1` (the input from `row`,
/// shifted by 0, 1, 2), each lane's product added to its partial sum in `partial` (`GR` x 3
/// vectors) only where the tap's masks `m.0` say it reads the map: a tap in the padding, or on
/// a neighbouring row's or image's value, adds nothing (not a product with zero, which an
/// infinite value would make NaN).
/// The three taps read the same floats shifted by one: each vector of them is loaded once and
/// shifted in registers (three loads a step, mostly split across cache lines, beside eight of
/// the gradient, are more than the load ports take with 24 multiply-adds).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wtile_avx512(a: [*const f32; GR], row: *const f32, (m, ky): (&[[u16; 9]], usize), partial: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(partial.len() >= GR * 3 * 16);
    let p = partial.as_mut_ptr();
    let mut acc = [[_mm512_setzero_ps(); 3]; GR];
    for (i, acc) in acc.iter_mut().enumerate() {
        for (t, acc) in acc.iter_mut().enumerate() {
            *acc = _mm512_loadu_ps(p.add((i * 3 + t) * 16));
        }
    }
    let mut cur = _mm512_loadu_si512(row as *const __m512i);
    for (v, m) in m.iter().enumerate() {
        let next = _mm512_loadu_si512(row.add(16 * (v + 1)) as *const __m512i);
        let shifted = [
            _mm512_castsi512_ps(cur),
            _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(next, cur)),
            _mm512_castsi512_ps(_mm512_alignr_epi32::<2>(next, cur)),
        ];
        for (acc, a) in acc.iter_mut().zip(&a) {
            let av = _mm512_maskz_loadu_ps(m[4], a.wrapping_add(16 * v));
            for (kx, (acc, xv)) in acc.iter_mut().zip(&shifted).enumerate() {
                *acc = _mm512_mask3_fmadd_ps(av, *xv, *acc, m[3 * ky + kx]);
            }
        }
        cur = next;
    }
    for (i, acc) in acc.iter().enumerate() {
        for (t, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(p.add((i * 3 + t) * 16), *acc);
        }
    }
}
