//! A convolution's geometry, and its input unfolded into the patch matrix (im2col); `fold.rs`
//! folds the patches' gradient back (col2im).
//!
//! For a batch of `n` images of `c` channels, `k x k` kernels and `p` output pixels per image,
//! the patches are `[c*k*k, n*p]`: a row per kernel tap, a column per output pixel (the layout
//! `conv.rs`'s products read fastest).

use super::gather::{gather, gather_bf16};
use super::live_taps::{ConvShape, Cut};
use super::scratch::{self, Halves};
use candle_core::bail;

/// Stride, padding and dilation of a square convolution (one group), and how its input is stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvGeometry {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    /// Whether the input is channel-major (`[c, n, h, w]`: the previous layer's own output, see
    /// `stored.rs`) rather than `[n, c, h, w]`.
    pub channel_major: bool,
}

/// The sizes of one convolution: input `[n, c, h, w]`, kernel `k`, output `[n, o, oh, ow]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Sizes {
    /// Rows of the patch matrix: one per (channel, kernel row, kernel column).
    pub fn taps(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// Columns of the patch matrix: one per output pixel of the batch.
    pub fn cols(&self) -> usize {
        self.n * self.pixels()
    }
}

impl ConvGeometry {
    pub(super) fn sizes(&self, x: &[usize], w: &[usize]) -> candle_core::Result<Sizes> {
        let (&[n, c, h, wd], &[o, cw, k, k2]) = (x, w) else {
            bail!("conv2d: expected [n, c, h, w] input and [o, c, k, k] weight, found {x:?} and {w:?}")
        };
        let (n, c) = if self.channel_major { (c, n) } else { (n, c) };
        let span = self.dilation * (k.max(1) - 1) + 1;
        if c != cw
            || k != k2
            || k == 0
            || self.stride == 0
            || h + 2 * self.padding < span
            || wd + 2 * self.padding < span
        {
            bail!("conv2d: input {x:?}, weight {w:?}, {self:?}");
        }
        let out = |s: usize| (s + 2 * self.padding - span) / self.stride + 1;
        Ok(Sizes { n, c, h, w: wd, o, k, oh: out(h), ow: out(wd) })
    }

    /// The geometry and sizes the products run with, and the kernel's cut: this convolution's
    /// own, or the 1x1 convolution of its one tap that reads the input (see `live_taps.rs`).
    pub(super) fn plan(&self, s: Sizes) -> (ConvGeometry, Sizes, Option<Cut>) {
        let shape = ConvShape {
            k: s.k,
            input: (s.h, s.w),
            output: (s.oh, s.ow),
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        };
        match Cut::of(shape) {
            Some(cut) => {
                let padding = cut.padding(self.padding, self.dilation);
                (ConvGeometry { padding, ..*self }, Sizes { k: 1, ..s }, Some(cut))
            }
            None => (*self, s, None),
        }
    }

    /// The sides of an input plane with its padding.
    pub(super) fn padded(&self, s: Sizes) -> (usize, usize) {
        (s.h + 2 * self.padding, s.w + 2 * self.padding)
    }

    /// Where the columns of a block of images (output pixels, `block` images at a time) start
    /// reading in a channel's padded planes (`[n][ph][pw]`, see [`pad`](Self::pad)), and where each
    /// kernel tap sits in a window. Column `i` of block `b` reads tap `t` at
    /// `b * block * ph * pw + tap[t] + column[i]`: with the padding made real every read is inside
    /// the input, and a row of the patch matrix is a few long reads through the table (at least
    /// 256 columns each, `gather.rs`) rather than one per image (short rows of 2 to 16 pixels per
    /// image made those loops cost more), through a table that stays in the first-level cache.
    pub(super) fn offsets(&self, s: Sizes) -> (Vec<u32>, Vec<usize>, usize) {
        let (ph, pw) = self.padded(s);
        let p = s.pixels().max(1);
        let block = 256usize.div_ceil(p).clamp(1, s.n.max(1));
        let window = |j: usize| (j / s.ow * pw + j % s.ow) * self.stride;
        let column = (0..block * p).map(|i| (i / p * ph * pw + window(i % p)) as u32).collect();
        let tap = (0..s.k * s.k).map(|t| (t / s.k * pw + t % s.k) * self.dilation).collect();
        (column, tap, block)
    }

    /// The column table as the gathers read it (`gather.rs`): with stride 1 or 2 the windows of
    /// an output row are `ow` floats `stride` apart, one run from every `ow`-th offset;
    /// otherwise every offset on its own (runs of 1). Returns the offsets and `(run, step)`.
    pub(super) fn runs(&self, s: Sizes, column: Vec<u32>) -> (Vec<u32>, (usize, usize)) {
        if self.stride <= 2 && s.ow > 1 {
            (column.into_iter().step_by(s.ow).collect(), (s.ow, self.stride))
        } else {
            (column, (1, 1))
        }
    }

    /// `x` (`[n][c][h][w]`, or already `[c][n][h][w]`) channel-major (`[c][n][ph][pw]`) with
    /// `padding` zeros around every plane, the planes shared between the kernel threads when
    /// large.
    pub(super) fn pad(&self, x: &[f32], s: Sizes) -> Vec<f32> {
        let (ph, pw, pad) = (self.padded(s).0, self.padded(s).1, self.padding);
        let mut out = scratch::take(s.c * s.n * ph * pw);
        let plane = (ph * pw).max(1);
        super::team::rows_mut(PARALLEL_ELEMENTS, &mut out, plane, plane, |first, part| {
            for (j, dst) in part.chunks_exact_mut(plane).enumerate() {
                // Padded plane `first + j` is channel `ch` of image `image`.
                let (ch, image) = ((first + j) / s.n, (first + j) % s.n);
                let i = if self.channel_major { first + j } else { image * s.c + ch };
                let src = &x[i * s.h * s.w..][..s.h * s.w];
                // Every float written once: the zeros of the border beside the copied rows,
                // rather than zeroing the whole buffer first.
                dst[..pad * pw + pad].fill(0.0);
                for (r, line) in src.chunks_exact(s.w).enumerate() {
                    let at = (r + pad) * pw + pad;
                    dst[at..at + s.w].copy_from_slice(line);
                    // The right border of this row and the left one of the next.
                    dst[at + s.w..at + s.w + 2 * pad].fill(0.0);
                }
                dst[(s.h + pad) * pw + pad..].fill(0.0);
            }
        });
        out
    }

    /// The patch matrix `[c*k*k, n*p]` of `x`, its rows shared between the kernel threads.
    pub(super) fn im2col(&self, x: &[f32], s: Sizes) -> Vec<f32> {
        filled_with(s.taps() * s.cols(), |out| {
            // SAFETY: every offset is inside `from` (`unfold`'s contract).
            self.unfold(x, s, out, |from, table, run, dst| unsafe { gather(from, table, run, dst) })
        })
    }

    /// [`im2col`](Self::im2col) rounded to bf16 (their bits), for bf16 products: the products'
    /// packing then reads half the bytes and rounds nothing, and the forward's product and the
    /// weight gradient's share the one rounding.
    pub(super) fn im2col_bf16(&self, x: &[f32], s: Sizes) -> Halves {
        let mut patches = Halves::take(s.taps() * s.cols());
        // SAFETY: every offset is inside `from` (`unfold`'s contract).
        self.unfold(x, s, patches.bits_mut(), |from, table, run, dst| unsafe { gather_bf16(from, table, run, dst) });
        patches
    }

    /// Fills `out` (`[c*k*k, n*p]`) with the patches of `x`, its rows shared between the kernel
    /// threads: `read(from, table, (run, step), dst)` sets `dst[i * run + j]` from
    /// `from[table[i] + j * step]` for `j < run`, every run inside `from`.
    fn unfold<T: Copy + Send>(
        &self,
        x: &[f32],
        s: Sizes,
        out: &mut [T],
        read: impl Fn(&[f32], &[u32], (usize, usize), &mut [T]) + Sync,
    ) {
        let cols = s.cols();
        let (ph, pw) = self.padded(s);
        let padded = self.pad(x, s);
        let (column, tap, block) = self.offsets(s);
        let (starts, (run, step)) = self.runs(s, column);
        let row = |(row, dst): (usize, &mut [T])| {
            let (ch, t) = (row / (s.k * s.k), row % (s.k * s.k));
            let plane = &padded[ch * s.n * ph * pw..][..s.n * ph * pw];
            for (b, dst) in dst.chunks_mut(starts.len() * run).enumerate() {
                let from = &plane[b * block * ph * pw + tap[t]..];
                let table = &starts[..dst.len() / run];
                // `table` increases: its last run is the farthest read.
                let inside = table.last().is_none_or(|&l| l as usize + (run - 1) * step < from.len());
                assert!(inside, "im2col: a window outside the input");
                read(from, table, (run, step), dst);
            }
        };
        if out.len() >= PARALLEL_ELEMENTS {
            super::split_chunks_mut(out, cols, |i, r| row((i, r)));
        } else {
            out.chunks_exact_mut(cols).enumerate().for_each(row);
        }
        scratch::give(padded);
    }
}

/// Patch-matrix sizes from which unfolding and folding back are split between the kernel
/// threads (and a convolution's element-wise passes, batch norm's included, and transposes; the
/// team's own [`super::team::rows_mut`] line, a few thousand elements a part, applies too). An
/// earlier line of a million elements left every batch norm of xresnet18 at 28 pixels and every
/// pass of the lesson's CNN on one core; with the lower lines of the products (`conv.rs`,
/// `gemm.rs`) and of the team's parts, those models train 7% and 25% faster an epoch on two cores
/// (docs/speed.md, kernel choices).
pub(crate) const PARALLEL_ELEMENTS: usize = 1 << 11;

/// Multiply-adds from which a convolution's products are split between threads: about a tenth
/// of a millisecond of one core's work, against the microsecond it takes to hand a part to a team
/// thread that is watching (`team.rs`). Splitting only from 32 million (an earlier line, from
/// when the team slept between jobs) left the lesson's CNN and xresnet's later stages on one core
/// (docs/speed.md, kernel choices).
pub(super) const CONV_WORK: usize = 1 << 17;

/// A scratch vector of `len` floats that `fill` writes completely.
pub(super) fn filled_with(len: usize, fill: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut v = scratch::take(len);
    fill(&mut v);
    v
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::fast) fn random(seed: &mut u32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (*seed >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Geometries of the lesson's and xresnet's layers: strides 1 and 2, padding 0 to 2,
    /// dilation 2, batches that fill several blocks of columns and one that does not, rows of
    /// strides 1 and 2 longer than sixteen floats.
    pub(in crate::fast) fn cases() -> Vec<(ConvGeometry, [usize; 4], usize)> {
        let g = |stride, padding, dilation| ConvGeometry { stride, padding, dilation, channel_major: false };
        vec![
            (g(2, 2, 1), [5, 1, 28, 28], 5),
            (g(2, 1, 1), [3, 8, 14, 14], 3),
            (g(1, 1, 1), [7, 4, 9, 9], 3),
            (g(1, 0, 2), [2, 3, 11, 8], 3),
            (g(1, 0, 1), [40, 2, 3, 3], 1),
            (g(1, 1, 1), [2, 3, 5, 37], 3),
            (g(2, 1, 1), [3, 2, 9, 40], 3),
        ]
    }

    /// Each patch entry is the input float its window reads, or zero in the padding.
    #[test]
    fn im2col_reads_each_window() {
        let mut seed = 7;
        for (geometry, [n, c, h, w], k) in cases() {
            let x = random(&mut seed, n * c * h * w);
            let s = geometry.sizes(&[n, c, h, w], &[4, c, k, k]).unwrap();
            let (p, d) = (geometry.padding as isize, geometry.dilation);
            let mut want = vec![0f32; s.taps() * s.cols()];
            for (row, want) in want.chunks_exact_mut(s.cols()).enumerate() {
                let (ch, t) = (row / (k * k), row % (k * k));
                for (col, want) in want.iter_mut().enumerate() {
                    let (i, j) = (col / s.pixels(), col % s.pixels());
                    let y = ((j / s.ow) * geometry.stride + t / k * d) as isize - p;
                    let xx = ((j % s.ow) * geometry.stride + t % k * d) as isize - p;
                    if (0..h as isize).contains(&y) && (0..w as isize).contains(&xx) {
                        *want = x[((i * c + ch) * h + y as usize) * w + xx as usize];
                    }
                }
            }
            assert!(geometry.im2col(&x, s) == want, "{geometry:?} {n}x{c}x{h}x{w} k{k}");
        }
    }

    /// The bf16 patch matrix is the `f32` one rounded, value for value.
    #[test]
    fn bf16_patches_are_the_rounded_patches() {
        let mut seed = 3;
        for (geometry, [n, c, h, w], k) in cases() {
            let x = random(&mut seed, n * c * h * w);
            let s = geometry.sizes(&[n, c, h, w], &[4, c, k, k]).unwrap();
            let want: Vec<u16> = geometry.im2col(&x, s).iter().map(|&v| crate::precision::bf16_bits(v)).collect();
            assert!(geometry.im2col_bf16(&x, s).bits() == want.as_slice(), "{geometry:?} {n}x{c}x{h}x{w} k{k}");
        }
    }
}
