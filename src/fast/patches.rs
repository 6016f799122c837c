//! A convolution's patch matrix (its input unfolded, `im2col.rs`) as the products read it, and
//! the products that read it: the forward's and the weight gradient's.

use super::bf16::View16;
use super::gemm::{filled, matmul_bf16_rhs, matmul_from, transposed, View, ViewMut};
use super::im2col::{ConvGeometry, Sizes, CONV_WORK, PARALLEL_ELEMENTS};
use super::scratch::{self, Halves};

/// A convolution's patch matrix `[c*k*k, n*p]` as its products read it: in `f32`, or rounded to
/// bf16 once under bf16 products in hardware (the forward's product and the weight gradient's
/// then pack it without rounding, from half the bytes).
pub(super) enum Patches {
    F32(Vec<f32>),
    Bf16(Halves),
}

impl Patches {
    /// `x` unfolded as this thread's products read it.
    pub fn of(geometry: &ConvGeometry, x: &[f32], s: Sizes) -> Patches {
        if super::bf16_packing() {
            Patches::Bf16(geometry.im2col_bf16(x, s))
        } else {
            Patches::F32(geometry.im2col(x, s))
        }
    }

    /// Whether this thread's products read it, for a convolution of sizes `s`.
    pub fn fits(&self, s: Sizes) -> bool {
        let len = s.taps() * s.cols();
        match self {
            Patches::F32(p) => !super::bf16_packing() && p.len() == len,
            Patches::Bf16(p) => super::bf16_packing() && p.len() == len,
        }
    }

    /// Its memory, back to the scratch pool.
    pub fn give(self) {
        match self {
            Patches::F32(p) => scratch::give(p),
            Patches::Bf16(p) => p.give(),
        }
    }

    /// `dst = (accumulate ? dst : 0) + w · patches`, `w` `[o, c*k*k]`: the forward's product.
    pub fn forward(&self, s: Sizes, w: View, dst: ViewMut, accumulate: bool) {
        let (mnk, cols) = ((s.o, s.cols(), s.taps()), s.cols());
        match self {
            Patches::F32(p) => matmul_from(CONV_WORK, mnk, dst, accumulate, w, View::rows(p, cols)),
            Patches::Bf16(p) => {
                let p = View16 { data: p.bits(), rs: cols, cs: 1 };
                matmul_bf16_rhs(CONV_WORK, mnk, dst, accumulate, w, p)
            }
        }
    }

    /// `dst = g · patchesᵀ`, `g` `[o, n*p]`: the weight gradient's product.
    pub fn weight_product(&self, s: Sizes, g: View, dst: ViewMut) {
        let (mnk, cols) = ((s.o, s.taps(), s.cols()), s.cols());
        match self {
            Patches::F32(p) => matmul_from(CONV_WORK, mnk, dst, false, g, View::transposed(p, cols)),
            Patches::Bf16(p) => {
                let p = View16 { data: p.bits(), rs: 1, cs: cols };
                matmul_bf16_rhs(CONV_WORK, mnk, dst, false, g, p)
            }
        }
    }
}

/// The weight gradient `g · patchesᵀ` (`[o, c*k*k]`). Both operands are long along the product's
/// inner dimension (every output pixel of the batch). The gemm kernels run that layout 1.2 to 2
/// times as fast into a column-major destination (`[c*k*k, o]`) as into a row-major one, except
/// for products of at most 64 taps, so such a layer multiplies into a scratch `[c*k*k, o]` and
/// transposes that (the size of the weight) into place; a layer whose weight is larger than its
/// patches' rows (the last stages of a deep net, whose maps are 1x1 or 2x2) multiplies straight
/// into `[o, c*k*k]` (docs/speed.md, kernel choices). bf16 products take any layout alike.
pub(super) fn weight_grad(gt: &[f32], patches: &Patches, s: Sizes) -> Vec<f32> {
    let (taps, cols) = (s.taps(), s.cols());
    let product = |dst: ViewMut| patches.weight_product(s, View::rows(gt, cols), dst);
    if taps <= 64 || s.o >= cols || super::bf16_packing() {
        return filled(s.o * taps, |dw| product(ViewMut::uninit(dw, taps, 1)));
    }
    let mut dwt = scratch::take(taps * s.o);
    product(ViewMut::new(&mut dwt, 1, s.o));
    let dw = transposed(PARALLEL_ELEMENTS, &dwt, taps, s.o);
    scratch::give(dwt);
    dw
}
