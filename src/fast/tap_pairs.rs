//! A convolution on a small map (an xresnet's 2x2 stage, and its step from 2x2 to 1x1 at stride
//! 2) as products of one kernel tap's weights with the input pixels it reads, and nothing of the
//! padding.
//!
//! Unfolded, a 3x3 kernel on a 2x2 map multiplies 9 taps for each output pixel, of which 4 read
//! the input and 5 the padding: 2.25 times the work (on 4x4 maps 1.44 times). Here the input
//! is stored pixel-major (`[c, pixel, n]`, each pixel's batch a contiguous block of columns) and
//! the weight tap-major (`[k*k, o, c]`), and each tap multiplies its `[o, c]` weights by the
//! blocks of the pixels it reads, adding into the blocks of the output pixels it writes: one
//! product per tap when its output rows span the whole map, else one per output row (one per
//! output pixel at a stride). The products' order is fixed by the shapes, and the kernel threads
//! take disjoint rows of each (output channels, input channels for the input gradient), so the
//! bits do not depend on the thread count.

use super::gemm::{matmul_alone, transpose_from, transposed, View, ViewMut};
use super::im2col::{ConvGeometry, Sizes, PARALLEL_ELEMENTS};
use super::scratch;
use super::team::{self, Disjoint};
use std::ops::Range;

/// Output and input pixels past which a convolution unfolds instead. On 4x4 maps (a 3x3 kernel
/// padded 1 multiplies 1.44 times the work) the forward gained, but the gradients' two dozen
/// short products per step each pack their operands, and ran slower than the unfolded ones.
const MOST_PIXELS: usize = 4;

/// Multiply-adds from which a convolution's products are shared between the threads, in panels of
/// rows (see `share_rows`).
const SHARED_WORK: usize = 1 << 21;

/// One product: tap `tap`'s weights times input pixels `inp..inp + len`, added into output
/// pixels `out..out + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pair {
    tap: usize,
    out: usize,
    inp: usize,
    len: usize,
}

/// A convolution's products, tap by tap.
pub(super) struct Pairs {
    pairs: Vec<Pair>,
    s: Sizes,
    /// Whether the input is stored channel-major (`[c, n, h, w]`).
    channel_major: bool,
    /// Shares of each product's rows at most: the team's width from [`SHARED_WORK`]
    /// multiply-adds, else 1.
    parts: usize,
}

impl Pairs {
    /// The products of a convolution of sizes `s`, if it runs as such: a kernel wider than one
    /// tap, at most [`MOST_PIXELS`] input and output pixels, fp32 products.
    pub fn of(geometry: &ConvGeometry, s: Sizes) -> Option<Pairs> {
        let small = s.pixels() <= MOST_PIXELS && s.h * s.w <= MOST_PIXELS;
        if s.k < 2 || !small || super::bf16_products() {
            return None;
        }
        let (pad, d, st) = (geometry.padding as isize, geometry.dilation as isize, geometry.stride as isize);
        let (h, w, oh, ow) = (s.h as isize, s.w as isize, s.oh as isize, s.ow as isize);
        let mut pairs = Vec::new();
        for tap in 0..s.k * s.k {
            let (dy, dx) = ((tap / s.k) as isize * d - pad, (tap % s.k) as isize * d - pad);
            // The output rows and columns whose window reads a pixel through this tap.
            let rows: Vec<isize> = (0..oh).filter(|i| (0..h).contains(&(i * st + dy))).collect();
            let cols: Vec<isize> = (0..ow).filter(|j| (0..w).contains(&(j * st + dx))).collect();
            let at = |i: isize, j: isize| ((i * ow + j) as usize, ((i * st + dy) * w + j * st + dx) as usize);
            let (Some(&first), Some(&left)) = (rows.first(), cols.first()) else { continue };
            if st == 1 && cols.len() == s.ow && ow == w {
                // Whole rows, read from whole rows: one block of pixels.
                let (out, inp) = at(first, 0);
                pairs.push(Pair { tap, out, inp, len: rows.len() * s.ow });
            } else if st == 1 {
                // A run of each row, read from a run of one row.
                rows.iter()
                    .map(|&i| at(i, left))
                    .for_each(|(out, inp)| pairs.push(Pair { tap, out, inp, len: cols.len() }));
            } else {
                // Strided: each output pixel on its own.
                for &i in &rows {
                    cols.iter().map(|&j| at(i, j)).for_each(|(out, inp)| pairs.push(Pair { tap, out, inp, len: 1 }));
                }
            }
        }
        let work = s.o * s.c * s.n * pairs.iter().map(|p| p.len).sum::<usize>();
        let parts = if work >= SHARED_WORK { team::width() } else { 1 };
        Some(Pairs { pairs, s, channel_major: geometry.channel_major, parts })
    }

    /// The input `x` (`[n, c, h, w]`, or `[c, n, h, w]` when channel-major) pixel-major: `[c,
    /// h*w, n]`, in a scratch buffer (for `scratch::give`).
    pub fn pixel_major(&self, x: &[f32]) -> Vec<f32> {
        let (s, p) = (self.s, self.s.h * self.s.w);
        // Every float is written: the planes are the `c * n` of the input.
        let mut out = scratch::take(s.c * p * s.n);
        for (i, plane) in x.chunks_exact(p).enumerate().take(s.c * s.n) {
            let (ch, image) = if self.channel_major { (i / s.n, i % s.n) } else { (i % s.c, i / s.c) };
            let dst = &mut out[ch * p * s.n + image..];
            plane.iter().enumerate().for_each(|(px, &v)| dst[px * s.n] = v);
        }
        out
    }

    /// The weight `[o, c, k, k]` tap-major: `[k*k, o, c]`, in a scratch buffer.
    pub fn tap_major(&self, w: &[f32]) -> Vec<f32> {
        let (s, kk) = (self.s, self.s.k * self.s.k);
        let mut out = scratch::take(kk * s.o * s.c);
        // `[o*c, k*k]` transposed, in blocks (one float of nine a time would scatter).
        transpose_from(PARALLEL_ELEMENTS, w, s.o * s.c, kk, &mut out, s.o * s.c);
        out
    }

    /// The output `[o, n*p]` (channel-major, the bias in it when `bias` is given) from the
    /// pixel-major input `xp` and the tap-major weight `wt`.
    pub fn forward(&self, wt: &[f32], xp: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (s, p) = (self.s, self.s.pixels());
        let mut yp = scratch::take(s.o * p * s.n);
        match bias {
            Some(b) => yp.chunks_exact_mut(p * s.n).zip(b).for_each(|(row, &b)| row.fill(b)),
            None => yp.fill(0.0),
        }
        let (pin, pout) = (s.h * s.w * s.n, p * s.n);
        self.shared((s.o, s.c), &mut yp, pout, &|rows, dst| {
            for pair in &self.pairs {
                let w = View::rows(&wt[pair.tap * s.o * s.c + rows.start * s.c..], s.c);
                let x = View::rows(&xp[pair.inp * s.n..], pin);
                let dst = ViewMut::new(&mut dst[pair.out * s.n..], pout, 1);
                matmul_alone(false, (rows.len(), pair.len * s.n, s.c), dst, true, w, x);
            }
        });
        let mut y = vec![0f32; s.o * p * s.n];
        for (dst, src) in y.chunks_exact_mut(p * s.n).zip(yp.chunks_exact(p * s.n)) {
            // One channel's few thousand floats: on this thread.
            transpose_from(usize::MAX, src, p, s.n, dst, p);
        }
        scratch::give(yp);
        y
    }

    /// The output gradient `gt` (`[o, n*p]`, channel-major) pixel-major: `[o, p, n]`, in a
    /// scratch buffer.
    pub fn grad_pixel_major(&self, gt: &[f32]) -> Vec<f32> {
        let (s, p) = (self.s, self.s.pixels());
        let mut out = scratch::take(s.o * p * s.n);
        for (dst, src) in out.chunks_exact_mut(p * s.n).zip(gt.chunks_exact(p * s.n)) {
            transpose_from(usize::MAX, src, s.n, p, dst, s.n);
        }
        out
    }

    /// The input gradient, in the input's own order, from the pixel-major output gradient `gp`.
    pub fn input_grad(&self, wt: &[f32], gp: &[f32]) -> Vec<f32> {
        let (s, pin) = (self.s, self.s.h * self.s.w);
        let mut dxp = scratch::take(s.c * pin * s.n);
        dxp.fill(0.0);
        let pout = s.pixels() * s.n;
        self.shared((s.c, s.o), &mut dxp, pin * s.n, &|rows, dst| {
            for pair in &self.pairs {
                // The tap's weights transposed, `[c, o]`, this share's rows of it.
                let w = View::transposed(&wt[pair.tap * s.o * s.c + rows.start..], s.c);
                let g = View::rows(&gp[pair.out * s.n..], pout);
                let dst = ViewMut::new(&mut dst[pair.inp * s.n..], pin * s.n, 1);
                matmul_alone(false, (rows.len(), pair.len * s.n, s.o), dst, true, w, g);
            }
        });
        let mut dx = vec![0f32; s.c * pin * s.n];
        for (ch, src) in dxp.chunks_exact(pin * s.n).enumerate() {
            for image in 0..s.n {
                let plane = if self.channel_major { ch * s.n + image } else { image * s.c + ch };
                let dst = &mut dx[plane * pin..][..pin];
                dst.iter_mut().enumerate().for_each(|(px, d)| *d = src[px * s.n + image]);
            }
        }
        scratch::give(dxp);
        dx
    }

    /// The weight gradient `[o, c, k, k]` from the pixel-major input `xp` and output gradient
    /// `gp`: each tap's `[o, c]` sums its products in order. Taps that only ever meet padding
    /// get zeros.
    pub fn weight_grad(&self, xp: &[f32], gp: &[f32]) -> Vec<f32> {
        let (s, kk) = (self.s, self.s.k * self.s.k);
        let (pin, pout) = (s.h * s.w * s.n, s.pixels() * s.n);
        let mut dwt = scratch::take(kk * s.o * s.c);
        if (0..kk).any(|t| !self.pairs.iter().any(|p| p.tap == t)) {
            // A tap that never reads the input: no product writes its gradient.
            dwt.fill(0.0);
        }
        let dst = Disjoint::new(dwt.as_mut_ptr());
        let run = |rows: Range<usize>| {
            let mut started = vec![false; kk];
            for pair in &self.pairs {
                // SAFETY: this share writes rows `rows` of tap `pair.tap`'s `[o, c]`, inside
                // `dwt`, and no other share writes them.
                let dw = unsafe {
                    std::slice::from_raw_parts_mut(dst.get().add((pair.tap * s.o + rows.start) * s.c), rows.len() * s.c)
                };
                let g = View::rows(&gp[rows.start * pout + pair.out * s.n..], pout);
                let x = View::transposed(&xp[pair.inp * s.n..], pin);
                let dw = ViewMut::new(dw, s.c, 1);
                matmul_alone(false, (rows.len(), s.c, pair.len * s.n), dw, started[pair.tap], g, x);
                started[pair.tap] = true;
            }
        };
        let deepest = self.pairs.iter().map(|p| p.len).max().unwrap_or(0) * s.n;
        let bounds = share_rows(s.o, self.parts, s.c > 64 || deepest <= 512);
        team::run(bounds.len() - 1, &|i| run(bounds[i]..bounds[i + 1]));
        let dw = transposed(PARALLEL_ELEMENTS, &dwt, kk, s.o * s.c);
        scratch::give(dwt);
        dw
    }

    /// Runs `f(rows, dst_rows)` on the kernel threads, each on its own rows of `dst` (`rows`
    /// rows of `ld` floats), for products of `k` deep and a pair's pixels wide.
    fn shared(
        &self,
        (rows, k): (usize, usize),
        dst: &mut [f32],
        ld: usize,
        f: &(dyn Fn(Range<usize>, &mut [f32]) + Sync),
    ) {
        let narrowest = self.pairs.iter().map(|p| p.len).min().unwrap_or(0) * self.s.n;
        let bounds = share_rows(rows, self.parts, k <= 512 || narrowest > 64);
        let at = Disjoint::new(dst.as_mut_ptr());
        team::run(bounds.len() - 1, &|i| {
            let range = bounds[i]..bounds[i + 1];
            // SAFETY: the shares' rows are disjoint and inside `dst` (`share_rows`).
            let part = unsafe { std::slice::from_raw_parts_mut(at.get().add(range.start * ld), range.len() * ld) };
            f(range, part)
        });
    }
}

/// Boundaries of the rows of at most `parts` shares: whole 64-row panels (the gemm kernels'
/// height). The gemm crate blocks a product's inner dimension `k` in an order that depends on
/// its other sides only past 512 and at most 64 rows and columns (see `gemm::split`), so where
/// a share of one panel could meet both (`narrow` false), each takes two.
fn share_rows(rows: usize, parts: usize, narrow: bool) -> Vec<usize> {
    let least = if narrow { 64 } else { 128 };
    let parts = parts.min(rows / least).max(1);
    let panels = rows / 64;
    let mut bounds: Vec<usize> = (0..parts).map(|i| i * panels / parts * 64).collect();
    bounds.push(rows);
    bounds
}

#[cfg(test)]
mod tests {
    use super::super::gemm::matmul;
    use super::super::im2col::tests::random;
    use super::*;

    /// A 3x3 kernel with padding 1 on a 2x2 map: each tap reads the pixels that lie inside.
    #[test]
    fn each_tap_reads_the_pixels_inside_the_map() {
        let geometry = ConvGeometry { stride: 1, padding: 1, dilation: 1, channel_major: false };
        let s = geometry.sizes(&[1, 1, 2, 2], &[1, 1, 3, 3]).unwrap();
        let pairs = Pairs::of(&geometry, s).unwrap().pairs;
        let live: usize = pairs.iter().map(|p| p.len).sum();
        assert_eq!(live, 16, "{pairs:?}");
        assert!(pairs.contains(&Pair { tap: 4, out: 0, inp: 0, len: 4 }), "the centre: every pixel");
        assert!(pairs.contains(&Pair { tap: 0, out: 3, inp: 0, len: 1 }), "top-left: pixel 0 for pixel 3");
        assert!(pairs.contains(&Pair { tap: 5, out: 2, inp: 3, len: 1 }));
    }

    /// Forward, input and weight gradients equal the unfolded convolution's, with the same bits
    /// however many threads share them.
    #[test]
    fn pairs_give_the_unfolded_products() {
        let mut seed = 9u32;
        for (channel_major, [n, c, h, w], o, (k, padding, dilation, stride)) in [
            (false, [5, 8, 2, 2], 16, (3, 1, 1, 1)),
            (true, [3, 130, 2, 2], 140, (3, 1, 1, 1)),
            (false, [160, 64, 2, 2], 128, (3, 1, 1, 1)),
            (false, [9, 600, 2, 2], 64, (3, 1, 1, 1)),
            (false, [2, 4, 2, 2], 6, (3, 2, 2, 1)),
            (true, [4, 3, 1, 4], 5, (5, 2, 1, 1)),
            (false, [3, 2, 2, 1], 4, (3, 1, 1, 1)),
            (false, [70, 130, 2, 2], 140, (3, 1, 1, 2)),
            (true, [5, 8, 2, 2], 6, (3, 1, 1, 2)),
            (false, [4, 3, 1, 4], 5, (3, 1, 1, 2)),
        ] {
            let geometry = ConvGeometry { stride, padding, dilation, channel_major };
            let dims = if channel_major { [c, n, h, w] } else { [n, c, h, w] };
            let s = geometry.sizes(&dims, &[o, c, k, k]).unwrap();
            let mut pairs = Pairs::of(&geometry, s).unwrap();
            pairs.parts = 1;
            let (taps, cols) = (s.taps(), s.cols());
            let (x, wt, gt) =
                (random(&mut seed, n * c * h * w), random(&mut seed, o * taps), random(&mut seed, o * cols));
            let b = random(&mut seed, o);
            let patches = geometry.im2col(&x, s);
            let mut want = vec![0f32; o * cols];
            matmul(
                o,
                cols,
                taps,
                ViewMut::new(&mut want, cols, 1),
                false,
                View::rows(&wt, taps),
                View::rows(&patches, cols),
            );
            want.chunks_exact_mut(cols).zip(&b).for_each(|(row, b)| row.iter_mut().for_each(|v| *v += b));
            let mut want_dw = vec![0f32; o * taps];
            let (g, pt) = (View::rows(&gt, cols), View::transposed(&patches, cols));
            matmul(o, taps, cols, ViewMut::new(&mut want_dw, taps, 1), false, g, pt);
            let mut dpatches = vec![0f32; taps * cols];
            let (wtv, g) = (View::transposed(&wt, taps), View::rows(&gt, cols));
            matmul(taps, cols, o, ViewMut::new(&mut dpatches, cols, 1), false, wtv, g);
            let folding = geometry.folding(s);
            let mut want_dx = vec![0f32; n * c * h * w];
            // SAFETY: `want_dx` holds the whole input.
            unsafe { geometry.fold(&folding, &dpatches, s, 0..n, Disjoint::new(want_dx.as_mut_ptr())) };

            let (xp, wtm, gp) = (pairs.pixel_major(&x), pairs.tap_major(&wt), pairs.grad_pixel_major(&gt));
            let got = (pairs.forward(&wtm, &xp, Some(&b)), pairs.input_grad(&wtm, &gp), pairs.weight_grad(&xp, &gp));
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs()));
            let case = format!("{dims:?} k{k} p{padding} d{dilation} s{stride}");
            assert!(close(&got.0, &want), "forward {case}");
            assert!(close(&got.1, &want_dx), "input gradient {case}");
            assert!(close(&got.2, &want_dw), "weight gradient {case}");
            for parts in [2, 3] {
                pairs.parts = parts;
                let shared =
                    (pairs.forward(&wtm, &xp, Some(&b)), pairs.input_grad(&wtm, &gp), pairs.weight_grad(&xp, &gp));
                assert!(shared == got, "{parts} shares {case}");
            }
        }
    }
}
