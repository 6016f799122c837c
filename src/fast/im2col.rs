//! 2-d convolution (then ReLU, optionally) as one custom op: the input unfolded into patches
//! (im2col), one matrix multiply for the whole batch, and a backward of its own that computes the
//! input's gradient only when the input needs one (never for the first layer's batch of images).
//!
//! Layouts, for a batch of `n` images of `c` channels, `k x k` kernels and `p` output pixels per
//! image: the patches are `[c*k*k, n*p]` (a row per kernel tap, a column per output pixel), so
//! the forward product `W [o, c*k*k] · patches` and the input gradient `Wᵀ · g` each read one
//! operand along the product's inner dimension and the other along the output's, the layouts the
//! gemm kernels are fastest on. The output stays channel-major (`[o, n, oh, ow]`, the bias in it
//! before the product is added, the ReLU applied in place): the next of the library's layers
//! reads it as stored, and everything else an `[n, o, oh, ow]` view or copy of it (`stored.rs`).

use super::dense::GradSink;
use super::gemm::{filled, matmul_from, transpose_from, View, ViewMut};
use super::live_taps::{ConvShape, Cut};
use super::passes::{bias_rows, relu_grad_into, relu_in_place, row_sums};
use super::scratch;
use super::storage::{cpu_f32, with_f32};
use crate::error::Result;
use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};
use std::sync::Mutex;

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
struct Sizes {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
    oh: usize,
    ow: usize,
}

impl Sizes {
    /// Rows of the patch matrix: one per (channel, kernel row, kernel column).
    fn taps(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Output pixels per image.
    fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// Columns of the patch matrix: one per output pixel of the batch.
    fn cols(&self) -> usize {
        self.n * self.pixels()
    }
}

impl ConvGeometry {
    fn sizes(&self, x: &[usize], w: &[usize]) -> candle_core::Result<Sizes> {
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
    fn plan(&self, s: Sizes) -> (ConvGeometry, Sizes, Option<Cut>) {
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

    /// Where input plane `i` (in the input's own order) sits among the channel-major planes.
    fn plane(&self, i: usize, s: Sizes) -> usize {
        if self.channel_major {
            i
        } else {
            i % s.c * s.n + i / s.c
        }
    }

    /// The sides of an input plane with its padding.
    fn padded(&self, s: Sizes) -> (usize, usize) {
        (s.h + 2 * self.padding, s.w + 2 * self.padding)
    }

    /// Where the columns of a block of images (output pixels, `block` images at a time) start
    /// reading in a channel's padded planes (`[n][ph][pw]`, see [`pad`](Self::pad)), and where each
    /// kernel tap sits in a window. Column `i` of block `b` reads tap `t` at
    /// `b * block * ph * pw + tap[t] + column[i]`: with the padding made real every read is inside
    /// the input, and a row of the patch matrix is a few long gathers (at least 256 columns each)
    /// rather than one per image (short rows of 2 to 16 pixels per image made those loops cost
    /// more than the gathers), through a table that stays in the first-level cache.
    fn offsets(&self, s: Sizes) -> (Vec<u32>, Vec<usize>, usize) {
        let (ph, pw) = self.padded(s);
        let p = s.pixels().max(1);
        let block = 256usize.div_ceil(p).clamp(1, s.n.max(1));
        let window = |j: usize| (j / s.ow * pw + j % s.ow) * self.stride;
        let column = (0..block * p).map(|i| (i / p * ph * pw + window(i % p)) as u32).collect();
        let tap = (0..s.k * s.k).map(|t| (t / s.k * pw + t % s.k) * self.dilation).collect();
        (column, tap, block)
    }

    /// `x` (`[n][c][h][w]`, or already `[c][n][h][w]`) channel-major (`[c][n][ph][pw]`) with
    /// `padding` zeros around every plane.
    fn pad(&self, x: &[f32], s: Sizes) -> Vec<f32> {
        let (ph, pw) = self.padded(s);
        let mut out =
            if self.padding == 0 { scratch::take(s.c * s.n * ph * pw) } else { scratch::zeros(s.c * s.n * ph * pw) };
        for (i, src) in x.chunks_exact(s.h * s.w).enumerate() {
            let dst = &mut out[self.plane(i, s) * ph * pw..][..ph * pw];
            for (r, line) in src.chunks_exact(s.w).enumerate() {
                let at = (r + self.padding) * pw + self.padding;
                dst[at..at + s.w].copy_from_slice(line);
            }
        }
        out
    }

    /// The patch matrix `[c*k*k, n*p]` of `x`, its rows shared between the kernel threads.
    fn im2col(&self, x: &[f32], s: Sizes) -> Vec<f32> {
        let cols = s.cols();
        let (ph, pw) = self.padded(s);
        let padded = self.pad(x, s);
        let (column, tap, block) = self.offsets(s);
        let patches = filled_with(s.taps() * cols, |out| {
            let row = |(row, dst): (usize, &mut [f32])| {
                let (ch, t) = (row / (s.k * s.k), row % (s.k * s.k));
                let plane = &padded[ch * s.n * ph * pw..][..s.n * ph * pw];
                for (b, dst) in dst.chunks_mut(column.len()).enumerate() {
                    let from = &plane[b * block * ph * pw + tap[t]..];
                    let table = &column[..dst.len()];
                    assert!(
                        table.last().is_none_or(|&l| (l as usize) < from.len()),
                        "im2col: a window outside the input"
                    );
                    // SAFETY: `table` increases, so the assert keeps every read inside `from`.
                    dst.iter_mut().zip(table).for_each(|(d, &at)| *d = unsafe { *from.get_unchecked(at as usize) });
                }
            };
            if out.len() >= PARALLEL_ELEMENTS {
                super::split_chunks_mut(out, cols, |i, r| row((i, r)));
            } else {
                out.chunks_exact_mut(cols).enumerate().for_each(row);
            }
        });
        scratch::give(padded);
        patches
    }

    /// The input gradient from the patches' gradient: each patch entry added back where it was
    /// read. Channels are shared between the kernel threads (a channel's taps all write its own
    /// planes, in a fixed order), so the result does not depend on the thread count.
    fn col2im(&self, dcols: &[f32], s: Sizes) -> Vec<f32> {
        let cols = s.cols();
        let (ph, pw) = self.padded(s);
        let (column, tap, block) = self.offsets(s);
        let mut padded = scratch::zeros(s.c * s.n * ph * pw);
        let channel = |(ch, planes): (usize, &mut [f32])| {
            for (t, &offset) in tap.iter().enumerate() {
                let src = &dcols[(ch * s.k * s.k + t) * cols..][..cols];
                for (b, src) in src.chunks(column.len()).enumerate() {
                    let to = &mut planes[b * block * ph * pw + offset..];
                    let table = &column[..src.len()];
                    assert!(
                        table.last().is_none_or(|&l| (l as usize) < to.len()),
                        "col2im: a window outside the input"
                    );
                    // SAFETY: `table` increases, so the assert keeps every write inside `to`.
                    src.iter().zip(table).for_each(|(g, &at)| unsafe { *to.get_unchecked_mut(at as usize) += g });
                }
            }
        };
        if dcols.len() >= PARALLEL_ELEMENTS {
            super::split_chunks_mut(&mut padded, s.n * ph * pw, |i, planes| channel((i, planes)));
        } else {
            padded.chunks_exact_mut(s.n * ph * pw).enumerate().for_each(channel);
        }
        // Back to the input's order, the padding cut off.
        let mut dx = Vec::with_capacity(s.n * s.c * s.h * s.w);
        for i in 0..s.n * s.c {
            let plane = &padded[self.plane(i, s) * ph * pw..][..ph * pw];
            for r in 0..s.h {
                let at = (r + self.padding) * pw + self.padding;
                dx.extend_from_slice(&plane[at..at + s.w]);
            }
        }
        scratch::give(padded);
        dx
    }
}

/// The weight gradient `g · patchesᵀ` (`[o, c*k*k]`). Both operands are long along the product's
/// inner dimension (every output pixel of the batch). The gemm kernels run that layout 1.2 to 2
/// times as fast into a column-major destination (`[c*k*k, o]`) as into a row-major one, except
/// for products of at most 64 taps, so such a layer multiplies into a scratch `[c*k*k, o]` and
/// transposes that (the size of the weight) into place; a layer whose weight is larger than its
/// patches' rows (the last stages of a deep net, whose maps are 1x1 or 2x2) multiplies straight
/// into `[o, c*k*k]` (docs/speed.md, kernel choices). bf16 products take any layout alike.
fn weight_grad(gt: &[f32], patches: &[f32], s: Sizes) -> Vec<f32> {
    let (taps, cols) = (s.taps(), s.cols());
    let (g, p) = (View::rows(gt, cols), View::transposed(patches, cols));
    if taps <= 64 || s.o >= cols || super::bf16_packing() {
        return filled(s.o * taps, |dw| {
            matmul_from(CONV_WORK, (s.o, taps, cols), ViewMut::uninit(dw, taps, 1), false, g, p)
        });
    }
    let mut dwt = scratch::take(taps * s.o);
    matmul_from(CONV_WORK, (s.o, taps, cols), ViewMut::new(&mut dwt, 1, s.o), false, g, p);
    let mut dw = vec![0f32; s.o * taps];
    transpose_from(PARALLEL_ELEMENTS, &dwt, taps, s.o, &mut dw, taps);
    scratch::give(dwt);
    dw
}

/// Multiply-adds from which a convolution's products are split between threads, and
/// patch-matrix sizes from which unfolding and folding back are (and its element-wise passes,
/// batch norm's included, and transposes). Every split wakes the other threads and waits for
/// them, a dozen times a step: on the lesson's CNN (batches of 128, at most 9 million
/// multiply-adds and 630,000 patch values a layer) two cores were slower an epoch than one
/// (docs/speed.md, kernel choices), and passes from 512K elements still were, so such shapes stay
/// on one thread. Passes from a million elements (an xresnet's first stages) gain from the split.
const CONV_WORK: usize = 1 << 25;
/// See [`CONV_WORK`].
pub(crate) const PARALLEL_ELEMENTS: usize = 1 << 20;

/// A scratch vector of `len` floats that `fill` writes completely.
fn filled_with(len: usize, fill: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut v = scratch::take(len);
    fill(&mut v);
    v
}

struct ConvOp {
    geometry: ConvGeometry,
    relu: bool,
    /// Whether the layer has a bias (without one, `b` is zeros: nothing to add, no gradient).
    bias: bool,
    input_grad: bool,
    /// The forward's patch matrix, kept for the weight gradient when there will be a backward.
    patches: Option<Mutex<Vec<f32>>>,
    sink: Option<GradSink>,
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        if self.relu {
            "conv2d-relu"
        } else {
            "conv2d"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w, b) = (cpu_f32(s1, l1, "input")?, cpu_f32(s2, l2, "weight")?, cpu_f32(s3, l3, "bias")?);
        let (geometry, s, cut) = self.geometry.plan(self.geometry.sizes(l1.dims(), l2.dims())?);
        if b.len() != s.o {
            bail!("conv2d: {} output channels, bias of {}", s.o, b.len());
        }
        let (taps, cols) = (s.taps(), s.cols());
        let w = cut.map_or(View::rows(w, taps), |cut| cut.weight_view(w, s.c));
        let patches = geometry.im2col(x, s);
        // Channel-major output (`[o, n, oh, ow]`) with the bias in it, then the product added:
        // the order the next of the library's layers reads (see `stored.rs`). Without a bias,
        // the product alone.
        let product = |dst: ViewMut, accumulate: bool| {
            matmul_from(CONV_WORK, (s.o, cols, taps), dst, accumulate, w, View::rows(&patches, cols))
        };
        let mut y = if self.bias {
            let mut y = bias_rows(b, cols, PARALLEL_ELEMENTS);
            product(ViewMut::new(&mut y, cols, 1), true);
            y
        } else {
            filled(s.o * cols, |y| product(ViewMut::uninit(y, cols, 1), false))
        };
        if self.relu {
            relu_in_place(&mut y, PARALLEL_ELEMENTS);
        }
        match &self.patches {
            Some(slot) => *slot.lock().unwrap_or_else(|e| e.into_inner()) = patches,
            None => scratch::give(patches),
        }
        Ok((CpuStorage::F32(y), Shape::from((s.o, s.n, s.oh, s.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (geometry, s, cut) = self.geometry.plan(self.geometry.sizes(x.dims(), w.dims())?);
        let len = s.o * s.cols();
        let grad = grad.contiguous()?;
        let (dx, dw, db) = if self.relu {
            // The gradient before the ReLU: zero where it cut.
            let mut gt = scratch::take(len);
            with_f32(&grad, "gradient", |g| {
                with_f32(res, "output", |r| {
                    if g.len() != len || r.len() != len {
                        bail!("conv2d: a gradient of {} values for an output of {}", g.len(), r.len());
                    }
                    relu_grad_into(&mut gt, g, r, PARALLEL_ELEMENTS);
                    Ok(())
                })
            })?;
            let grads = self.grads(geometry, x, w, &gt, (s, cut));
            scratch::give(gt);
            grads?
        } else {
            // Without a ReLU the gradient is read as it comes.
            with_f32(&grad, "gradient", |g| {
                if g.len() != len {
                    bail!("conv2d: a gradient of {} values for an output of {len}", g.len());
                }
                self.grads(geometry, x, w, g, (s, cut))
            })?
        };
        let (dw, db) = (Tensor::from_vec(dw, w.shape(), &Device::Cpu)?, Tensor::from_vec(db, s.o, &Device::Cpu)?);
        if let Some(sink) = &self.sink {
            sink(dw, db)?;
            return Ok((dx, None, None));
        }
        Ok((dx, Some(dw), Some(db)))
    }
}

/// The input's, weight's and bias's gradients of a convolution.
type ConvGrads = (Option<Tensor>, Vec<f32>, Vec<f32>);

impl ConvOp {
    /// The gradients from `gt`, the gradient of the output before the ReLU (channel-major like
    /// the output), in the products' terms (`geometry`, `s`: the 1x1 convolution's with a `cut`).
    fn grads(
        &self,
        geometry: ConvGeometry,
        x: &Tensor,
        w: &Tensor,
        gt: &[f32],
        (s, cut): (Sizes, Option<Cut>),
    ) -> candle_core::Result<ConvGrads> {
        let cols = s.cols();
        // One sum per output channel, each in its fixed order: split between threads, the same
        // bits. A convolution without a bias has none to sum.
        let db = if self.bias { row_sums(gt, s.o, cols, PARALLEL_ELEMENTS) } else { vec![0.0; s.o] };
        let patches = self.patches(geometry, x, s)?;
        let dw = match cut {
            Some(cut) => cut.weight_grad((s.o, s.c), |dst| {
                let (g, p) = (View::rows(gt, cols), View::transposed(&patches, cols));
                matmul_from(CONV_WORK, (s.o, s.taps(), cols), dst, false, g, p);
            }),
            None => weight_grad(gt, &patches, s),
        };
        scratch::give(patches);
        let dx = if self.input_grad { Some(self.input_grad(geometry, x, w, gt, (s, cut))?) } else { None };
        Ok((dx, dw, db))
    }

    /// The forward's patch matrix when it kept one, else the input unfolded again.
    fn patches(&self, geometry: ConvGeometry, x: &Tensor, s: Sizes) -> candle_core::Result<Vec<f32>> {
        let kept = match &self.patches {
            Some(slot) => std::mem::take(&mut *slot.lock().unwrap_or_else(|e| e.into_inner())),
            None => Vec::new(),
        };
        if kept.len() == s.taps() * s.cols() {
            return Ok(kept);
        }
        with_f32(&x.contiguous()?, "input", |x| Ok(geometry.im2col(x, s)))
    }

    /// The input's gradient: `Wᵀ · g` as patches, folded back onto the input (col2im), in the
    /// 1x1 convolution's terms when the kernel is cut.
    fn input_grad(
        &self,
        geometry: ConvGeometry,
        x: &Tensor,
        w: &Tensor,
        gt: &[f32],
        (s, cut): (Sizes, Option<Cut>),
    ) -> candle_core::Result<Tensor> {
        let (taps, cols) = (s.taps(), s.cols());
        let dcols = with_f32(w, "weight", |w| {
            let w = cut.map_or(View::rows(w, taps), |cut| cut.weight_view(w, s.c));
            Ok(filled_with(taps * cols, |d| {
                let dst = ViewMut::new(d, cols, 1);
                matmul_from(CONV_WORK, (taps, cols, s.o), dst, false, w.flipped(), View::rows(gt, cols));
            }))
        })?;
        let dx = geometry.col2im(&dcols, s);
        scratch::give(dcols);
        Tensor::from_vec(dx, x.shape(), &Device::Cpu)
    }
}

/// The convolution of `x` `[n, c, h, w]` by `w` `[o, c, k, k]` plus `b` `[o]` if any (then ReLU if
/// `relu`), one group, `f32` on the CPU: an `[n, o, oh, ow]` tensor whose channel-major original
/// the next of the library's layers reads (a permuted view of it when `chained`, see
/// `stored.rs`). The backward hands the weight and bias gradients to `sink`; the caller gives
/// none when it records no gradients (`no_grad`), and then no backward is prepared.
pub(crate) fn conv2d(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    geometry: ConvGeometry,
    (relu, chained): (bool, bool),
    sink: Option<GradSink>,
) -> Result<Tensor> {
    let (x, channel_major) = match super::stored::channel_major(x) {
        Some(original) => (original, true),
        None => (x.contiguous()?, false),
    };
    let geometry = ConvGeometry { channel_major, ..geometry };
    let backward = sink.is_some() && (x.track_op() || w.track_op() || b.is_some_and(|b| b.track_op()));
    let patches = backward.then(|| Mutex::new(Vec::new()));
    let op = ConvOp { geometry, relu, bias: b.is_some(), input_grad: x.track_op(), patches, sink };
    let b = match b {
        Some(b) => b.contiguous()?,
        None => Tensor::zeros(w.dim(0)?, w.dtype(), w.device())?,
    };
    let y = x.apply_op3_arc(&w.contiguous()?, &b, std::sync::Arc::new(Box::new(op)))?;
    Ok(super::stored::channel_major_copy(&y, chained)?)
}
