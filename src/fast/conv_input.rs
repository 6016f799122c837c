//! A convolution's input gradient: `Wᵀ · g` as patches, folded back onto the input (col2im,
//! `fold.rs`), block by block of images, each block's patch gradient folded while it is in the
//! cache. The whole batch's, as large as the patches, would be megabytes that a product writes
//! out and the folding reads back. The blocks are shared between the kernel threads; each
//! image's gradient comes from its own block, so the result does not depend on the thread
//! count.

use super::bf16::PackedLhs;
use super::gemm::{filled, matmul_alone, matmul_packed, View, ViewMut};
use super::im2col::{ConvGeometry, Sizes};
use super::scratch;
use super::team::{self, Disjoint};

/// Floats of a block's patch gradient: half a megabyte, which stays in the second-level cache
/// while it is folded.
const FOLD_BLOCK: usize = 1 << 17;

/// Images per block: as many as [`FOLD_BLOCK`] holds, and where a power of two of them makes a
/// multiple of 64 columns (maps of 1, 2x2, 4x4 or 8x8 pixels), such a multiple: the gemm kernels
/// compute 64 columns at a time, and a narrower rest runs on slower ones.
fn block_images(taps: usize, pixels: usize, n: usize) -> usize {
    let mut images = FOLD_BLOCK / (taps * pixels).max(1);
    if pixels > 0 && pixels <= 64 && 64 % pixels == 0 {
        let whole = 64 / pixels;
        images = (images / whole).max(1) * whole;
    }
    images.clamp(1, n.max(1))
}

/// The input gradient `fold(wᵀ · gt)` (`w` `[o, c*k*k]`, `gt` `[o, n*p]`), in the input's order,
/// block by block of images in at most `parts` shares on the kernel threads; `(bf16, packing)`
/// are the calling thread's precision (`bf16_products`, `bf16_packing`: the team's threads have
/// their own). The blocks do not depend on `parts`.
pub(super) fn input_grad(
    geometry: ConvGeometry,
    s: Sizes,
    w: View,
    gt: &[f32],
    parts: usize,
    (bf16, packing): (bool, bool),
) -> Vec<f32> {
    let (taps, cols, p) = (s.taps(), s.cols(), s.pixels());
    let images = block_images(taps, p, s.n);
    let blocks = s.n.div_ceil(images);
    let parts = parts.min(blocks).max(1);
    let folding = geometry.folding(s);
    filled(s.n * s.c * s.h * s.w, |dx| {
        let dx = Disjoint::new(dx.as_mut_ptr() as *mut f32);
        team::run(parts, &|part| {
            // bf16 products pack the weight once, not once a block.
            let mut packed = packing.then(|| PackedLhs::new(taps, s.o, w.flipped()));
            for block in part * blocks / parts..(part + 1) * blocks / parts {
                let images = block * images..((block + 1) * images).min(s.n);
                let (first, width) = (images.start * p, images.len() * p);
                let mut d = scratch::take(taps * width);
                let (dst, g) = (ViewMut::new(&mut d, width, 1), View::rows(&gt[first..], cols));
                match &mut packed {
                    Some(w) => matmul_packed(w, width, dst, false, g),
                    None => matmul_alone(bf16, (taps, width, s.o), dst, false, w.flipped(), g),
                }
                // SAFETY: `dx` holds the whole input (`filled`'s length), and each block writes
                // only its own images.
                unsafe { geometry.fold(&folding, &d, s, images, dx) };
                scratch::give(d);
            }
        });
    })
}

#[cfg(test)]
mod tests {
    use super::super::im2col::tests::random;
    use super::*;

    /// The input gradient has the same bits however many shares its blocks are split into, in
    /// fp32 and in bf16 (in hardware where the processor has it).
    #[test]
    fn input_gradients_do_not_depend_on_the_shares() {
        let mut seed = 1u32;
        for stride in [1, 2] {
            let geometry = ConvGeometry { stride, padding: 1, dilation: 1, channel_major: false };
            let s = geometry.sizes(&[40, 24, 20, 20], &[16, 24, 3, 3]).unwrap();
            let (w, gt) = (random(&mut seed, s.o * s.taps()), random(&mut seed, s.o * s.cols()));
            for precision in [(false, false), (true, super::super::bf16_in_hardware())] {
                let run = |parts| input_grad(geometry, s, View::rows(&w, s.taps()), &gt, parts, precision);
                let one = run(1);
                assert!(one.iter().any(|&v| v != 0.0));
                for parts in [2, 3, 7] {
                    assert!(run(parts) == one, "stride {stride}, {precision:?}, {parts} shares");
                }
            }
        }
    }
}
