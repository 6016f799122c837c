//! A 3x3 convolution at stride 1, padded 1 (the size-keeping convolution of every xresnet block
//! and of the lesson's CNNs), computed straight from the input: no patch matrix.
//!
//! In the channel-major layout the library's layers hand each other (`[c, n, h, w]`, see
//! `stored.rs`) a channel's maps are one long row of floats. An output pixel at position `j` of
//! that row reads, through tap `(ky, kx)`, the input at `j + (ky - 1) * w + kx - 1`: for every
//! tap, a run of consecutive outputs reads a run of consecutive floats, save the lanes whose
//! tap falls outside the map (the padding), which are masked off. So the kernels load each
//! vector of 16 inputs where it lies, masked, and compute outputs in vectors of 16: nothing is
//! unfolded, packed or wasted.
//!
//! - Forward: tiles of 8 output channels by 32 outputs, each step of the sum over channels and
//!   taps two masked loads and eight broadcast weights.
//! - Input gradient: the same convolution of the output's gradient (read where it lies) by the
//!   weights flipped and transposed ([`Direct::packed`] with `flip`).
//! - Weight gradient: for 8 output channels and the three taps of a kernel row, vectors of 16
//!   products summed lane by lane over every output, the lanes added up at the end.
//!
//! Each output element is one sum in a fixed order; the threads take whole tiles (forward) or
//! whole output channels (weight gradient): the bits do not depend on the thread count.

use super::im2col::{ConvGeometry, Sizes, PARALLEL_ELEMENTS};
use super::scratch;
use super::team::{self, Disjoint};
use std::mem::MaybeUninit;

mod weight_grad;

/// Output channels a forward tile computes (the broadcast weights).
const MR: usize = 8;
/// Vectors of 16 outputs a forward tile computes.
const NV: usize = 2;
/// Outputs of a forward tile.
const WIDTH: usize = 16 * NV;
/// Tiles a forward pass takes together: each block of weights (8 output channels, in the
/// first-level cache) goes over all of them while their inputs stay in the second-level cache.
const TILES: usize = 8;
/// Output channels of the weight gradient's tile (by the three taps of one kernel row).
const GR: usize = 8;
/// Vectors of outputs the weight gradient sums per pass over a group of input channels: its
/// gradient rows (8 of them, 32 KB) stay in the first-level cache while the channels go past.
const CHUNK: usize = 64;
/// Input channels below which a convolution unfolds instead (see [`Direct::of`]).
const MIN_CHANNELS: usize = 2;
/// Input channels whose partial sums (1.5 KB each kernel row) the weight gradient keeps while
/// it passes over the outputs: 36 KB, in the first-level cache.
const GROUP: usize = 8;

/// How a convolution of sizes `s` runs directly, and its input's copy with margins.
#[derive(Debug, Clone, Copy)]
pub(super) struct Direct {
    s: Sizes,
    /// Outputs (and inputs) per channel: `n * h * w`.
    len: usize,
    /// Zeros before a channel's copy: the weight gradient's unmasked reads before the first
    /// output.
    front: usize,
    /// Floats per channel of the copy.
    stride: usize,
}

impl Direct {
    /// The plan for a convolution of sizes `s`, if it runs directly: a 3x3 kernel at stride 1
    /// padded 1, at least [`MIN_CHANNELS`] input channels (a single channel's nine steps a tile
    /// ran no faster than unfolding), fp32 products, AVX-512.
    pub fn of(geometry: &ConvGeometry, s: Sizes) -> Option<Direct> {
        let shape = s.k == 3 && geometry.padding == 1 && geometry.stride == 1 && geometry.dilation == 1;
        if !shape || s.c < MIN_CHANNELS || super::bf16_products() || !available() {
            return None;
        }
        let len = s.n.checked_mul(s.h)?.checked_mul(s.w)?;
        let front = (s.w + 1).div_ceil(16) * 16;
        // The weight gradient's reads reach `w + 1` floats past the last output's vector, and
        // one vector beyond.
        let mut stride = (front + len.div_ceil(WIDTH) * WIDTH + s.w + 1 + 32).div_ceil(16) * 16;
        if stride.is_multiple_of(1024) {
            // Channels a multiple of 4 KB apart would share the first-level cache's sets.
            stride += 16;
        }
        Some(Direct { s, len, front, stride })
    }

    /// The convolution's sizes.
    pub fn sizes(&self) -> Sizes {
        self.s
    }

    /// A copy from [`Direct::copy`] as [`Direct::run`] reads it.
    pub fn through_copy<'a>(&self, copy: &'a [f32]) -> (&'a [f32], usize, usize) {
        (copy, self.stride, self.front)
    }

    /// Channel-major maps (`[c, n, h, w]`: a layer's stored output, an output's gradient) as
    /// [`Direct::run`] reads them, where they lie.
    pub fn in_place<'a>(&self, maps: &'a [f32]) -> (&'a [f32], usize, usize) {
        (maps, self.len, 0)
    }

    /// `x` (`c` channels of `n` maps `h x w`; channel-major `[c, n, h, w]` or `[n, c, h, w]`)
    /// copied channel-major with zeros around each channel: `c` rows of `stride` floats, the
    /// maps from `front`, in a scratch buffer (`scratch::give` it back). The weight gradient
    /// reads the input through such a copy; the forward, where the input is batch-major.
    pub fn copy(&self, x: &[f32], c: usize, channel_major: bool) -> Vec<f32> {
        let (s, map) = (self.s, self.s.h * self.s.w);
        let mut out = scratch::take(c * self.stride);
        team::rows_mut(PARALLEL_ELEMENTS, &mut out, self.stride, self.len, |first, rows| {
            for (ch, dst) in (first..).zip(rows.chunks_exact_mut(self.stride)) {
                dst[..self.front].fill(0.0);
                if channel_major {
                    dst[self.front..][..self.len].copy_from_slice(&x[ch * self.len..][..self.len]);
                } else {
                    for image in 0..s.n {
                        let src = &x[(image * c + ch) * map..][..map];
                        dst[self.front + image * map..][..map].copy_from_slice(src);
                    }
                }
                dst[self.front + self.len..].fill(0.0);
            }
        });
        out
    }

    /// The weight `[o, c, 3, 3]` as the forward tiles read it: blocks of [`MR`] output
    /// channels, each `c * 9` steps of `MR` weights (zeros past `o`). With `flip`, the weights
    /// of the convolution that gives the input's gradient: `c` outputs, `o` inputs, taps
    /// reversed.
    pub fn packed(&self, w: &[f32], flip: bool) -> Vec<f32> {
        let s = self.s;
        let (outs, ins) = if flip { (s.c, s.o) } else { (s.o, s.c) };
        let steps = ins * 9;
        let mut packed = vec![0f32; outs.div_ceil(MR) * steps * MR];
        // In the weight's order: its memory read once, front to back.
        for (i, taps) in w[..s.o * s.c * 9].chunks_exact(9).enumerate() {
            let (out, inp) = if flip { (i % s.c, i / s.c) } else { (i / s.c, i % s.c) };
            let at = out / MR * steps * MR + inp * 9 * MR + out % MR;
            for (tap, &v) in taps.iter().enumerate() {
                packed[at + (if flip { 8 - tap } else { tap }) * MR] = v;
            }
        }
        packed
    }

    /// For each vector of 16 outputs, the lanes that read the map through each of the nine
    /// taps: not the row above the first row of a map, the row below the last, the column left
    /// of the first or right of the last, and no output past the last. One pass over the
    /// outputs, counting rows and columns (no division per lane).
    fn masks(&self) -> Vec<[u16; 9]> {
        let s = self.s;
        let vectors = self.len.div_ceil(WIDTH) * NV;
        let (mut y, mut x) = (0, 0);
        let mut masks = Vec::with_capacity(vectors);
        for v in 0..vectors {
            // Lanes inside, and lanes on each edge: top, bottom, left, right.
            let (mut inside, mut edge) = (0u16, [0u16; 4]);
            for lane in 0..16 {
                if 16 * v + lane >= self.len {
                    break;
                }
                inside |= 1 << lane;
                for (e, on) in edge.iter_mut().zip([y == 0, y + 1 == s.h, x == 0, x + 1 == s.w]) {
                    *e |= u16::from(on) << lane;
                }
                x += 1;
                if x == s.w {
                    x = 0;
                    y = if y + 1 == s.h { 0 } else { y + 1 };
                }
            }
            masks.push(std::array::from_fn(|tap| {
                let (ky, kx) = (tap / 3, tap % 3);
                let cut = [ky == 0, ky == 2, kx == 0, kx == 2];
                edge.iter().zip(cut).filter(|(_, c)| *c).fold(inside, |m, (e, _)| m & !e)
            }));
        }
        masks
    }

    /// `out (+)= conv(input, w)`: `input` `ins` channels, channel `k`'s maps from
    /// `input.0[k * input.1 + input.2]` ([`Direct::through_copy`] or [`Direct::in_place`]), `w`
    /// packed for `outs` output channels, `out` `outs` maps per image in the order
    /// `channel_major` says, every element written (memory that may be uninitialised), or added
    /// to when `accumulate` (it must then hold values). In at most `parts` shares of tiles.
    pub fn run(
        &self,
        input: (&[f32], usize, usize),
        (ins, outs): (usize, usize),
        w: &[f32],
        out: &mut [MaybeUninit<f32>],
        (channel_major, accumulate): (bool, bool),
        parts: usize,
    ) {
        let wd = self.s.w as isize;
        let (data, stride, first) = input;
        assert!(ins > 0 && data.len() >= (ins - 1) * stride + first + self.len && stride >= self.len);
        assert!(w.len() >= outs.div_ceil(MR) * ins * 9 * MR && out.len() >= outs * self.len);
        let offs: Vec<isize> = (0..ins * 9)
            .map(|k| (k / 9 * stride) as isize + (k % 9 / 3) as isize * wd - wd + (k % 3) as isize - 1)
            .collect();
        let masks = self.masks();
        let tiles = self.len.div_ceil(WIDTH);
        let dst = Disjoint::new(out.as_mut_ptr() as *mut f32);
        let parts = parts.clamp(1, tiles.max(1));
        team::run(parts, &|part| {
            let mut tile = [0f32; MR * WIDTH];
            let mine = part * tiles / parts..(part + 1) * tiles / parts;
            for group in mine.clone().step_by(TILES) {
                for block in 0..outs.div_ceil(MR) {
                    let wb = &w[block * ins * 9 * MR..][..ins * 9 * MR];
                    for t in group..(group + TILES).min(mine.end) {
                        let j0 = t * WIDTH;
                        let m: &[[u16; 9]; NV] = masks[t * NV..][..NV].try_into().expect("NV masks a tile");
                        // SAFETY: a lane reads only where its mask lets it, and then a pixel of
                        // the same channel's maps, inside `data` (asserted); masked lanes read
                        // nothing (the pointers to them are never dereferenced). The weight
                        // block holds `ins * 9` steps (asserted).
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            tile_avx512(data.as_ptr().wrapping_add(first + j0), &offs, m, wb.as_ptr(), &mut tile)
                        };
                        let rows = (outs - block * MR).min(MR);
                        for (i, vals) in tile.chunks_exact(WIDTH).enumerate().take(rows) {
                            self.store(vals, j0, (block * MR + i, outs), channel_major, (dst, accumulate));
                        }
                    }
                }
            }
        });
    }

    /// Writes a tile row `vals` (outputs `j0..j0 + WIDTH` of channel `o` of `outs`) into the
    /// output: one run where the output is channel-major, else a run for each image.
    fn store(
        &self,
        vals: &[f32],
        j0: usize,
        (o, outs): (usize, usize),
        channel_major: bool,
        (out, accumulate): (Disjoint<f32>, bool),
    ) {
        let (end, map) = ((j0 + vals.len()).min(self.len), self.s.h * self.s.w);
        let mut j = j0;
        while j < end {
            let (at, next) = if channel_major {
                (o * self.len + j, end)
            } else {
                let image = j / map;
                ((image * outs + o) * map + j % map, ((image + 1) * map).min(end))
            };
            let src = &vals[j - j0..next - j0];
            // SAFETY: outputs `j..next` of channel `o` lie inside the output (checked by
            // `run`), only the share that has this tile writes them, and they hold values when
            // the caller accumulates (`run`'s contract).
            unsafe {
                if accumulate {
                    let d = std::slice::from_raw_parts_mut(out.get().add(at), next - j);
                    d.iter_mut().zip(src).for_each(|(d, v)| *d += v);
                } else {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), out.get().add(at), next - j);
                }
            }
            j = next;
        }
    }
}

/// Initialised floats as memory a [`Direct::run`] writes.
pub(super) fn as_uninit(x: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and `run` writes only values.
    unsafe { &mut *(x as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Whether the processor has AVX-512.
fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One forward tile: `MR` output channels by `WIDTH` outputs from `x` (the tile's first output
/// in the first input channel), the sum over the steps (an input channel's tap at offset
/// `offs[k]`, read through the tap's masks) of the weights' `MR` values times the input's
/// vectors. Only the lanes the masks let through are read or added to: a tap that falls in the
/// padding adds nothing, not a weight times zero (an infinite weight would make NaN there, where
/// the input gradient of PyTorch's convolution, which this kernel also computes, has none).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512(x: *const f32, offs: &[isize], m: &[[u16; 9]; NV], w: *const f32, tile: &mut [f32; MR * WIDTH]) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    for (k, &off) in offs.iter().enumerate() {
        let (b, tap) = (x.wrapping_offset(off), k % 9);
        let mut v = [_mm512_setzero_ps(); NV];
        for (t, v) in v.iter_mut().enumerate() {
            *v = _mm512_maskz_loadu_ps(m[t][tap], b.wrapping_add(16 * t));
        }
        let a = w.add(k * MR);
        for (i, acc) in acc.iter_mut().enumerate() {
            let s = _mm512_set1_ps(*a.add(i));
            for (t, (acc, v)) in acc.iter_mut().zip(&v).enumerate() {
                *acc = _mm512_mask3_fmadd_ps(s, *v, *acc, m[t][tap]);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (t, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(tile.as_mut_ptr().add(i * WIDTH + 16 * t), *acc);
        }
    }
}

#[cfg(test)]
mod tests;
