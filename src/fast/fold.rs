//! The gradient of a convolution's input from its patches' gradient (col2im): each patch entry
//! added back where the forward read it, for one block of images at a time (`conv.rs`).
//!
//! Every input float sums, in the order of the taps and starting from zero, the entries of the
//! windows that read it: sixteen floats of a row at a time in registers, each tap's entries one
//! read of a row of the patch gradient (masked to the output pixels whose windows reach the
//! row, and spread over every `stride`-th lane by a permute), so that every float is written
//! once. Adding each tap's entries into memory instead (a scatter, or masked stores) reads back,
//! in the next window row, what the last store has not yet written, and waits for it: on AMD
//! Zen 4 the folding cost a tenth of an xresnet's epoch and a sixth of the lesson's CNN's that
//! way.

use super::im2col::{ConvGeometry, Sizes};
use super::team::Disjoint;
use std::ops::Range;

/// The tables [`ConvGeometry::fold`] reads sixteen floats at a time by, made once per
/// convolution for all its blocks of images: each input row's pieces, and for each input row the
/// kernel rows that read it with their output row.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) struct Folding {
    pieces: Vec<Piece>,
    rows: Vec<Vec<(usize, usize)>>,
}

impl ConvGeometry {
    /// The tables of [`fold`](Self::fold) for a convolution of sizes `s`.
    pub(super) fn folding(&self, s: Sizes) -> Folding {
        let rows = (0..s.h).map(|y| (0..s.k).filter_map(|ki| Some((ki, self.reader(y, ki, s.oh)?))).collect());
        Folding { pieces: self.pieces(s), rows: rows.collect() }
    }

    /// The input gradient of the images `images` from their patches' gradient `dcols`
    /// (`[c*k*k, images.len() * p]`, the patch matrix's columns of those images), written into
    /// `dx`, the gradient of the whole input in the input's order, at those images' places.
    ///
    /// # Safety
    /// `dx` points to `n * c * h * w` floats, no other thread uses those images' places while
    /// this runs, and `f` is [`folding`](Self::folding)'s for `s`.
    pub(super) unsafe fn fold(&self, f: &Folding, dcols: &[f32], s: Sizes, images: Range<usize>, dx: Disjoint<f32>) {
        let (count, cols) = (images.len(), images.len() * s.pixels());
        assert!(dcols.len() == s.taps() * cols && images.end <= s.n, "col2im: {} values, {count} images", dcols.len());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512 (checked); the rest is the caller's contract.
            return self.fold_avx512(f, dcols, s, images, dx);
        }
        self.fold_scalar(dcols, s, images, dx)
    }

    /// Where plane `(image, ch)` of the input's gradient starts in `dx`.
    unsafe fn plane_at(&self, dx: Disjoint<f32>, s: Sizes, image: usize, ch: usize) -> *mut f32 {
        let i = if self.channel_major { ch * s.n + image } else { image * s.c + ch };
        dx.get().add(i * s.h * s.w)
    }

    /// The output row or column whose windows read input row or column `at` through kernel row
    /// or column `kt`, if any.
    fn reader(&self, at: usize, kt: usize, out: usize) -> Option<usize> {
        let o = (at + self.padding).checked_sub(kt * self.dilation)?;
        (o % self.stride == 0 && o / self.stride < out).then_some(o / self.stride)
    }

    /// [`fold`](Self::fold) one float at a time.
    unsafe fn fold_scalar(&self, dcols: &[f32], s: Sizes, images: Range<usize>, dx: Disjoint<f32>) {
        let (cols, p, k) = (images.len() * s.pixels(), s.pixels(), s.k);
        for ch in 0..s.c {
            let taps = &dcols[ch * k * k * cols..][..k * k * cols];
            for (j, image) in images.clone().enumerate() {
                let out = self.plane_at(dx, s, image, ch);
                for (y, x) in (0..s.h).flat_map(|y| (0..s.w).map(move |x| (y, x))) {
                    let mut sum = 0.0;
                    for (ki, kj) in (0..k).flat_map(|ki| (0..k).map(move |kj| (ki, kj))) {
                        if let (Some(oy), Some(ox)) = (self.reader(y, ki, s.oh), self.reader(x, kj, s.ow)) {
                            sum += taps[(ki * k + kj) * cols + j * p + oy * s.ow + ox];
                        }
                    }
                    *out.add(y * s.w + x) = sum;
                }
            }
        }
    }

    /// [`fold`](Self::fold) sixteen floats of a row at a time (see [`Piece`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fold_avx512(&self, f: &Folding, dcols: &[f32], s: Sizes, images: Range<usize>, dx: Disjoint<f32>) {
        use std::arch::x86_64::*;
        let (cols, p, k) = (images.len() * s.pixels(), s.pixels(), s.k);
        for ch in 0..s.c {
            let taps = dcols.as_ptr().add(ch * k * k * cols);
            for (j, image) in images.clone().enumerate() {
                let (out, first) = (self.plane_at(dx, s, image, ch), taps.add(j * p));
                for (y, rows) in f.rows.iter().enumerate() {
                    for piece in &f.pieces {
                        let mut acc = _mm512_setzero_ps();
                        for &(ki, oy) in rows {
                            let line = first.add(ki * k * cols + oy * s.ow);
                            for (kj, read) in piece.reads.iter().enumerate() {
                                // Lanes off `read.span` are never read, wherever they point.
                                let at = line.add(kj * cols).wrapping_offset(read.first);
                                let v = _mm512_maskz_loadu_ps(read.span, at);
                                let idx = _mm512_loadu_si512(read.index.as_ptr() as *const __m512i);
                                acc = _mm512_add_ps(acc, _mm512_maskz_permutexvar_ps(read.lanes, idx, v));
                            }
                        }
                        _mm512_mask_storeu_ps(out.add(y * s.w + piece.x0), piece.store, acc);
                    }
                }
            }
        }
    }

    /// The sixteen-float pieces of an input row (see [`Piece`]).
    fn pieces(&self, s: Sizes) -> Vec<Piece> {
        let span = |n: usize| if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
        (0..s.w)
            .step_by(16)
            .map(|x0| {
                let lanes = (s.w - x0).min(16);
                let reads = (0..s.k)
                    .map(|kj| {
                        let ox: Vec<Option<usize>> = (0..lanes).map(|l| self.reader(x0 + l, kj, s.ow)).collect();
                        let first = ox.iter().flatten().min().copied().unwrap_or(0);
                        let last = ox.iter().flatten().max().map_or(0, |&o| o + 1 - first);
                        let mut read = Read { lanes: 0, span: span(last), first: first as isize, index: [0; 16] };
                        for (l, o) in ox.iter().enumerate() {
                            if let Some(o) = o {
                                read.lanes |= 1 << l;
                                read.index[l] = (o - first) as i32;
                            }
                        }
                        read
                    })
                    .collect();
                Piece { x0, store: span(lanes), reads }
            })
            .collect()
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

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// Sixteen floats of an input row, from column `x0`: the lanes stored, and for each kernel
/// column how they read an output row of the patch gradient.
struct Piece {
    x0: usize,
    store: u16,
    reads: Vec<Read>,
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// How the lanes of a [`Piece`] read one kernel column's entries from an output row: the
/// `span` of pixels from `first` loaded, then lane `l` of `lanes` takes loaded pixel `index[l]`
/// (with stride 1 the identity; with stride 2 every other lane, each pixel once).
struct Read {
    lanes: u16,
    span: u16,
    first: isize,
    index: [i32; 16],
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

    /// One float at a time (what a processor without AVX-512 runs) gives the bits of the
    /// sixteen-lane way.
    #[test]
    fn folds_alike_in_lanes_and_alone() {
        let mut seed = 11;
        for (geometry, [n, c, h, w], k) in cases() {
            let s = geometry.sizes(&[n, c, h, w], &[4, c, k, k]).unwrap();
            let dcols = random(&mut seed, s.taps() * s.cols());
            let mut dx = vec![0f32; n * c * h * w];
            // SAFETY: `dx` holds the whole input, and this thread alone writes it.
            unsafe { geometry.fold_scalar(&dcols, s, 0..n, Disjoint::new(dx.as_mut_ptr())) };
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
            let (p, f) = (s.pixels(), geometry.folding(s));
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
