//! The gradient of a convolution's input from its patches' gradient (col2im): each patch entry
//! added back where the forward read it, for one block of images at a time (`conv.rs`).
//!
//! Two ways, the same sums in the same order: every input float adds its entries in the order of
//! the taps, starting from zero.
//! - **Stride 1**: a row of input floats sums, sixteen at a time in registers, the taps that read
//!   it, each a shifted (masked) read of a row of the patch gradient; every float is written
//!   once. Adding each tap's entries into memory instead reads back, in the next window row, what
//!   the last masked store has not yet written, and waits for it: on AMD Zen 4 the folding cost
//!   a tenth of an xresnet's epoch that way.
//! - **Other strides**: each tap's entries are added into the images' padded planes through the
//!   window table (`gather.rs`'s scatter), then copied out without the padding.

use super::gather::scatter_add;
use super::im2col::{ConvGeometry, Sizes};
use super::scratch;
use super::team::Disjoint;
use std::ops::Range;

/// The tables of [`ConvGeometry::fold`] for strides above 1 (`im2col.rs`'s `offsets`): the
/// windows' offsets, each tap's place in a window, and the images a table covers.
pub(super) struct Folding {
    column: Vec<u32>,
    tap: Vec<usize>,
    block: usize,
}

impl ConvGeometry {
    /// The tables that fold a patch gradient back onto the input, made once per convolution for
    /// all its blocks of images.
    pub(super) fn folding(&self, s: Sizes) -> Folding {
        let (column, tap, block) = self.offsets(s);
        Folding { column, tap, block }
    }

    /// The input gradient of the images `images` from their patches' gradient `dcols`
    /// (`[c*k*k, images.len() * p]`, the patch matrix's columns of those images), written into
    /// `dx`, the gradient of the whole input in the input's order, at those images' places.
    ///
    /// # Safety
    /// `dx` points to `n * c * h * w` floats, and no other thread uses those images' places
    /// while this runs.
    pub(super) unsafe fn fold(&self, f: &Folding, dcols: &[f32], s: Sizes, images: Range<usize>, dx: Disjoint<f32>) {
        let (count, cols) = (images.len(), images.len() * s.pixels());
        assert!(dcols.len() == s.taps() * cols && images.end <= s.n, "col2im: {} values, {count} images", dcols.len());
        if self.stride == 1 {
            self.fold_rows(dcols, s, images, dx)
        } else {
            self.fold_windows(f, dcols, s, images, dx)
        }
    }

    /// Where plane `(image, ch)` of the input's gradient starts in `dx`.
    unsafe fn plane_at(&self, dx: Disjoint<f32>, s: Sizes, image: usize, ch: usize) -> *mut f32 {
        let i = if self.channel_major { ch * s.n + image } else { image * s.c + ch };
        dx.get().add(i * s.h * s.w)
    }

    /// [`fold`](Self::fold) for stride 1: each input row's sums made in registers.
    unsafe fn fold_rows(&self, dcols: &[f32], s: Sizes, images: Range<usize>, dx: Disjoint<f32>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512 (checked); the rest is the caller's contract.
            return self.fold_rows_avx512(dcols, s, images, dx);
        }
        self.fold_rows_scalar(dcols, s, images, dx)
    }

    /// [`fold_rows`](Self::fold_rows) one float at a time.
    unsafe fn fold_rows_scalar(&self, dcols: &[f32], s: Sizes, images: Range<usize>, dx: Disjoint<f32>) {
        let (cols, p) = (images.len() * s.pixels(), s.pixels());
        for ch in 0..s.c {
            let taps = &dcols[ch * s.k * s.k * cols..][..s.k * s.k * cols];
            for (j, image) in images.clone().enumerate() {
                let out = self.plane_at(dx, s, image, ch);
                for (y, x) in (0..s.h).flat_map(|y| (0..s.w).map(move |x| (y, x))) {
                    let mut sum = 0.0;
                    for (t, oy, ox) in self.readers(s, y, x as isize) {
                        sum += taps[t * cols + j * p + oy * s.ow + ox];
                    }
                    *out.add(y * s.w + x) = sum;
                }
            }
        }
    }

    /// The taps that read input float `(y, x)` of a stride-1 convolution, in order, each with
    /// the output pixel `(oy, ox)` whose window reads it there.
    fn readers(&self, s: Sizes, y: usize, x: isize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let (k, d, pad) = (s.k, self.dilation as isize, self.padding as isize);
        (0..k * k).filter_map(move |t| {
            let oy = y as isize + pad - (t / k) as isize * d;
            let ox = x + pad - (t % k) as isize * d;
            let inside = (0..s.oh as isize).contains(&oy) && (0..s.ow as isize).contains(&ox);
            inside.then_some((t, oy as usize, ox as usize))
        })
    }

    /// [`fold_rows`](Self::fold_rows) sixteen floats of a row at a time, each tap's entries one
    /// masked read of its output row, shifted by the tap's column.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fold_rows_avx512(&self, dcols: &[f32], s: Sizes, images: Range<usize>, dx: Disjoint<f32>) {
        use std::arch::x86_64::*;
        let (k, d, pad) = (s.k, self.dilation as isize, self.padding as isize);
        let (cols, p) = (images.len() * s.pixels(), s.pixels());
        let pieces = self.pieces(s);
        for ch in 0..s.c {
            let taps = dcols.as_ptr().add(ch * k * k * cols);
            for (j, image) in images.clone().enumerate() {
                let (out, first) = (self.plane_at(dx, s, image, ch), taps.add(j * p));
                for y in 0..s.h {
                    for Piece { x0, store, reads } in &pieces {
                        let mut acc = _mm512_setzero_ps();
                        for ki in 0..k {
                            let oy = y as isize + pad - ki as isize * d;
                            if !(0..s.oh as isize).contains(&oy) {
                                continue;
                            }
                            let line = first.add(ki * k * cols + oy as usize * s.ow);
                            for (kj, &(lanes, ox0)) in reads.iter().enumerate() {
                                // Lanes off `lanes` are never read, wherever they point.
                                let at = line.add(kj * cols).wrapping_offset(ox0);
                                acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(lanes, at));
                            }
                        }
                        _mm512_mask_storeu_ps(out.add(y * s.w + x0), *store, acc);
                    }
                }
            }
        }
    }

    /// The sixteen-float pieces of an input row of a stride-1 convolution (see [`Piece`]).
    fn pieces(&self, s: Sizes) -> Vec<Piece> {
        let (d, pad) = (self.dilation as isize, self.padding as isize);
        let span = |lo: isize, hi: isize| (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as u16;
        (0..s.w)
            .step_by(16)
            .map(|x0| {
                let lanes = (s.w - x0).min(16) as isize;
                let reads = (0..s.k)
                    .map(|kj| {
                        let ox0 = x0 as isize + pad - kj as isize * d;
                        let (lo, hi) = ((-ox0).max(0), lanes.min(s.ow as isize - ox0));
                        (if lo < hi { span(lo, hi) } else { 0 }, ox0)
                    })
                    .collect();
                Piece { x0, store: span(0, lanes), reads }
            })
            .collect()
    }

    /// [`fold`](Self::fold) for other strides: through the images' padded planes.
    unsafe fn fold_windows(&self, f: &Folding, dcols: &[f32], s: Sizes, images: Range<usize>, dx: Disjoint<f32>) {
        let (ph, pw) = self.padded(s);
        let (count, cols) = (images.len(), images.len() * s.pixels());
        let mut padded = scratch::zeros(s.c * count * ph * pw);
        for (ch, planes) in padded.chunks_exact_mut((count * ph * pw).max(1)).enumerate() {
            for (t, &offset) in f.tap.iter().enumerate() {
                let src = &dcols[(ch * s.k * s.k + t) * cols..][..cols];
                for (b, src) in src.chunks(f.column.len()).enumerate() {
                    let to = &mut planes[b * f.block * ph * pw + offset..];
                    let table = &f.column[..src.len()];
                    let inside = table.last().is_none_or(|&l| (l as usize) < to.len());
                    assert!(inside, "col2im: a window outside the input");
                    // SAFETY: `table` increases (so the assert keeps every write inside `to`, and
                    // its offsets are distinct).
                    scatter_add(src, table, to);
                }
            }
        }
        // Into the input's order, the padding cut off.
        for (j, image) in images.enumerate() {
            for ch in 0..s.c {
                let plane = &padded[(ch * count + j) * ph * pw..][..ph * pw];
                let out = self.plane_at(dx, s, image, ch);
                for r in 0..s.h {
                    let line = &plane[(r + self.padding) * pw + self.padding..][..s.w];
                    std::ptr::copy_nonoverlapping(line.as_ptr(), out.add(r * s.w), s.w);
                }
            }
        }
        scratch::give(padded);
    }

    /// The input gradient of the whole batch from the whole patch gradient, in one block.
    #[cfg(test)]
    fn col2im(&self, dcols: &[f32], s: Sizes) -> Vec<f32> {
        let mut dx = vec![0f32; s.n * s.c * s.h * s.w];
        // SAFETY: `dx` holds the whole input, and this thread alone writes it.
        unsafe { self.fold(&self.folding(s), dcols, s, 0..s.n, Disjoint::new(dx.as_mut_ptr())) };
        dx
    }
}

/// Sixteen floats of an input row, from column `x0`: the lanes stored, and for each kernel column
/// the lanes that read an output pixel (none: 0) and the output column lane 0 would read.
struct Piece {
    x0: usize,
    store: u16,
    reads: Vec<(u16, isize)>,
}

#[cfg(test)]
mod tests {
    use super::super::im2col::tests::{cases, random};
    use super::*;

    /// Folding back adds each patch entry where it was read, every input float's entries in the
    /// order of the taps, then of the output pixels: the bits of that loop written out.
    #[test]
    fn col2im_adds_in_a_fixed_order() {
        let mut seed = 5;
        for (geometry, [n, c, h, w], k) in cases() {
            let s = geometry.sizes(&[n, c, h, w], &[4, c, k, k]).unwrap();
            let dcols = random(&mut seed, s.taps() * s.cols());
            let mut want = vec![0f32; n * c * h * w];
            let (p, d) = (geometry.padding as isize, geometry.dilation);
            for ch in 0..c {
                for t in 0..k * k {
                    for col in 0..s.cols() {
                        let (i, j) = (col / s.pixels(), col % s.pixels());
                        let y = ((j / s.ow) * geometry.stride + t / k * d) as isize - p;
                        let xx = ((j % s.ow) * geometry.stride + t % k * d) as isize - p;
                        if (0..h as isize).contains(&y) && (0..w as isize).contains(&xx) {
                            want[((i * c + ch) * h + y as usize) * w + xx as usize] +=
                                dcols[(ch * k * k + t) * s.cols() + col];
                        }
                    }
                }
            }
            assert!(geometry.col2im(&dcols, s) == want, "{geometry:?} {n}x{c}x{h}x{w} k{k}");
        }
    }

    /// Stride 1 one float at a time (what a processor without AVX-512 runs) gives the bits of
    /// the sixteen-lane way.
    #[test]
    fn rows_fold_alike_in_lanes_and_alone() {
        let mut seed = 11;
        for (geometry, [n, c, h, w], k) in cases().into_iter().filter(|(g, ..)| g.stride == 1) {
            let s = geometry.sizes(&[n, c, h, w], &[4, c, k, k]).unwrap();
            let dcols = random(&mut seed, s.taps() * s.cols());
            let mut dx = vec![0f32; n * c * h * w];
            // SAFETY: `dx` holds the whole input, and this thread alone writes it.
            unsafe { geometry.fold_rows_scalar(&dcols, s, 0..n, Disjoint::new(dx.as_mut_ptr())) };
            assert!(geometry.col2im(&dcols, s) == dx, "{geometry:?} {n}x{c}x{h}x{w} k{k}");
        }
    }

    /// Folding block by block of images, in either order, gives the whole batch's gradient.
    #[test]
    fn blocks_fold_as_the_whole() {
        let mut seed = 9;
        for (geometry, [n, c, h, w], k) in cases() {
            let s = geometry.sizes(&[n, c, h, w], &[4, c, k, k]).unwrap();
            let dcols = random(&mut seed, s.taps() * s.cols());
            let (f, p) = (geometry.folding(s), s.pixels());
            let mut dx = vec![f32::NAN; n * c * h * w];
            for start in (0..n).step_by(2).rev() {
                let images = start..(start + 2).min(n);
                let block: Vec<f32> = (0..s.taps())
                    .flat_map(|t| dcols[t * s.cols() + images.start * p..][..images.len() * p].to_vec())
                    .collect();
                // SAFETY: `dx` holds the whole input, and this thread alone writes it.
                unsafe { geometry.fold(&f, &block, s, images, Disjoint::new(dx.as_mut_ptr())) };
            }
            assert!(geometry.col2im(&dcols, s) == dx, "{geometry:?} {n}x{c}x{h}x{w} k{k}");
        }
    }
}
