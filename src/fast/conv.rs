//! 2-d convolution (then ReLU, optionally) as one custom op: the input unfolded into patches
//! (im2col, `im2col.rs`), one matrix multiply for the whole batch, and a backward of its own that
//! computes the input's gradient only when the input needs one (never for the first layer's batch
//! of images), block by block of images (`conv_input.rs`). A convolution on maps of at most four
//! pixels, where unfolding would multiply mostly padding, runs by tap pairs instead
//! (`tap_pairs.rs`), and a 3x3 convolution at stride 1 padded 1 straight from its input, with no
//! patches at all (`direct/`).
//!
//! The forward product `W [o, c*k*k] · patches` and the input gradient `Wᵀ · g` each read one
//! operand along the product's inner dimension and the other along the output's, the layouts the
//! gemm kernels are fastest on. The output stays channel-major (`[o, n, oh, ow]`, the bias in it
//! before the product is added, the ReLU applied in place): the next of the library's layers
//! reads it as stored, and everything else an `[n, o, oh, ow]` view or copy of it (`stored.rs`).

use super::conv_input::input_grad;
use super::dense::GradSink;
use super::direct::{as_uninit, Direct};
use super::gemm::{filled, View, ViewMut};
use super::im2col::{ConvGeometry, Sizes, CONV_WORK, PARALLEL_ELEMENTS};
use super::live_taps::Cut;
use super::passes::{bias_rows, relu_grad_into, relu_in_place, row_sums};
use super::patches::{weight_grad, Patches};
use super::scratch;
use super::storage::{cpu_f32, with_f32};
use super::tap_pairs::Pairs;
use super::team;
use crate::error::Result;
use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// Shares worth making of a convolution's pass of `work` multiply-adds: the team's width from
/// [`CONV_WORK`], else 1.
fn parts(work: usize) -> usize {
    if work >= CONV_WORK {
        team::width()
    } else {
        1
    }
}

struct ConvOp {
    geometry: ConvGeometry,
    relu: bool,
    /// Whether the layer has a bias (without one, `b` is zeros: nothing to add, no gradient).
    bias: bool,
    input_grad: bool,
    /// The forward's patch matrix, kept for the weight gradient when there will be a backward.
    patches: Option<Mutex<Option<Patches>>>,
    /// A cut kernel's live tap's weights, copied once by the forward and kept for the input
    /// gradient (read in place, one float in `k * k`, each product's packing would read every
    /// line of the whole weight's memory).
    live: Mutex<Option<Vec<f32>>>,
    /// The pixel-major input and tap-major weight of a convolution run by tap pairs
    /// (`tap_pairs.rs`), kept by the forward for the backward.
    pairs: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
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
        if let Some(pairs) = cut.is_none().then(|| Pairs::of(&geometry, s)).flatten() {
            let (xp, wt) = (pairs.pixel_major(x), pairs.tap_major(w));
            let mut y = pairs.forward(&wt, &xp, self.bias.then_some(b));
            if self.relu {
                relu_in_place(&mut y, PARALLEL_ELEMENTS);
            }
            if self.patches.is_some() {
                *self.pairs.lock().unwrap_or_else(|e| e.into_inner()) = Some((xp, wt));
            } else {
                [xp, wt].into_iter().for_each(scratch::give);
            }
            return Ok((CpuStorage::F32(y), Shape::from((s.o, s.n, s.oh, s.ow))));
        }
        if let Some(direct) = cut.is_none().then(|| Direct::of(&geometry, s)).flatten() {
            let y = self.direct_forward(&direct, (x, w, b), s);
            return Ok((CpuStorage::F32(y), Shape::from((s.o, s.n, s.oh, s.ow))));
        }
        let (taps, cols) = (s.taps(), s.cols());
        let live = cut.map(|cut| cut.weight_copy(w, (s.o, s.c)));
        let w = live.as_deref().map_or(View::rows(w, taps), |live| View::rows(live, s.c));
        let patches = Patches::of(&geometry, x, s);
        // Channel-major output (`[o, n, oh, ow]`) with the bias in it, then the product added:
        // the order the next of the library's layers reads (see `stored.rs`). Without a bias,
        // the product alone.
        let product = |dst: ViewMut, accumulate: bool| patches.forward(s, w, dst, accumulate);
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
            Some(slot) => *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(patches),
            None => patches.give(),
        }
        match live {
            Some(live) if self.input_grad && self.patches.is_some() => {
                *self.live.lock().unwrap_or_else(|e| e.into_inner()) = Some(live)
            }
            Some(live) => scratch::give(live),
            None => {}
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
        if let Some(pairs) = cut.is_none().then(|| Pairs::of(&geometry, s)).flatten() {
            let (dx, dw) = self.pair_grads(&pairs, x, w, gt)?;
            return Ok((dx, dw, db));
        }
        if let Some(direct) = cut.is_none().then(|| Direct::of(&geometry, s)).flatten() {
            let (dx, dw) = self.direct_grads(&direct, x, w, gt)?;
            return Ok((dx, dw, db));
        }
        let patches = self.patches(geometry, x, s)?;
        let dw = match cut {
            Some(cut) => cut.weight_grad((s.o, s.c), |dst| patches.weight_product(s, View::rows(gt, cols), dst)),
            None => weight_grad(gt, &patches, s),
        };
        patches.give();
        let dx = if self.input_grad { Some(self.input_grad(geometry, x, w, gt, (s, cut))?) } else { None };
        Ok((dx, dw, db))
    }

    /// The input's and weight's gradients of a convolution run by tap pairs, from the forward's
    /// pixel-major input and tap-major weight when it kept them.
    fn pair_grads(
        &self,
        pairs: &Pairs,
        x: &Tensor,
        w: &Tensor,
        gt: &[f32],
    ) -> candle_core::Result<(Option<Tensor>, Vec<f32>)> {
        let kept = self.pairs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (xp, wt) = match kept {
            Some(kept) => kept,
            None => {
                let xp = with_f32(&x.contiguous()?, "input", |x| Ok(pairs.pixel_major(x)))?;
                (xp, with_f32(w, "weight", |w| Ok(pairs.tap_major(w)))?)
            }
        };
        let gp = pairs.grad_pixel_major(gt);
        let dw = pairs.weight_grad(&xp, &gp);
        let dx = self.input_grad.then(|| pairs.input_grad(&wt, &gp));
        [xp, wt, gp].into_iter().for_each(scratch::give);
        Ok((dx.map(|dx| Tensor::from_vec(dx, x.shape(), &Device::Cpu)).transpose()?, dw))
    }

    /// The forward of a convolution run directly: the bias, then the sum, then the ReLU, into
    /// a channel-major output. A channel-major input (a layer's stored output) is read where it
    /// lies, a batch-major one through a copy.
    fn direct_forward(&self, direct: &Direct, (x, w, b): (&[f32], &[f32], &[f32]), s: Sizes) -> Vec<f32> {
        let cols = s.cols();
        let copy = (!self.geometry.channel_major).then(|| direct.copy(x, s.c, false));
        let input = copy.as_deref().map_or(direct.in_place(x), |copy| direct.through_copy(copy));
        let (w, parts) = (direct.packed(w, false), parts(s.o * s.taps() * cols));
        let run =
            |y: &mut [MaybeUninit<f32>], accumulate| direct.run(input, (s.c, s.o), &w, y, (true, accumulate), parts);
        let mut y = if self.bias {
            let mut y = bias_rows(b, cols, PARALLEL_ELEMENTS);
            run(as_uninit(&mut y), true);
            y
        } else {
            filled(s.o * cols, |y| run(y, false))
        };
        if let Some(copy) = copy {
            scratch::give(copy);
        }
        if self.relu {
            relu_in_place(&mut y, PARALLEL_ELEMENTS);
        }
        y
    }

    /// The input's and weight's gradients of a convolution run directly: the weight's through a
    /// copy of the input, the input's from the output's gradient `gt` where it lies.
    fn direct_grads(
        &self,
        direct: &Direct,
        x: &Tensor,
        w: &Tensor,
        gt: &[f32],
    ) -> candle_core::Result<(Option<Tensor>, Vec<f32>)> {
        let s = direct.sizes();
        let copy = with_f32(&x.contiguous()?, "input", |x| Ok(direct.copy(x, s.c, self.geometry.channel_major)))?;
        let parts = parts(s.o * s.taps() * s.cols());
        let dw = direct.weight_grad(&copy, gt, parts);
        scratch::give(copy);
        if !self.input_grad {
            return Ok((None, dw));
        }
        let flipped = with_f32(w, "weight", |w| Ok(direct.packed(w, true)))?;
        let dx = filled(s.n * s.c * s.h * s.w, |dx| {
            direct.run(direct.in_place(gt), (s.o, s.c), &flipped, dx, (self.geometry.channel_major, false), parts)
        });
        Ok((Some(Tensor::from_vec(dx, x.shape(), &Device::Cpu)?), dw))
    }

    /// The forward's patches when it kept them as this thread's products read them, else the
    /// input unfolded again.
    fn patches(&self, geometry: ConvGeometry, x: &Tensor, s: Sizes) -> candle_core::Result<Patches> {
        let kept = self.patches.as_ref().and_then(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).take());
        match kept {
            Some(kept) if kept.fits(s) => return Ok(kept),
            Some(other) => other.give(),
            None => {}
        }
        with_f32(&x.contiguous()?, "input", |x| Ok(Patches::of(&geometry, x, s)))
    }

    /// The input's gradient: `Wᵀ · g` as patches, folded back onto the input (col2im), in the
    /// 1x1 convolution's terms when the kernel is cut (see `conv_input.rs`).
    fn input_grad(
        &self,
        geometry: ConvGeometry,
        x: &Tensor,
        w: &Tensor,
        gt: &[f32],
        (s, cut): (Sizes, Option<Cut>),
    ) -> candle_core::Result<Tensor> {
        let (taps, cols) = (s.taps(), s.cols());
        let whole = taps * cols >= PARALLEL_ELEMENTS || taps * cols * s.o >= CONV_WORK;
        let parts = if whole { team::width() } else { 1 };
        let precision = (super::bf16_products(), super::bf16_packing());
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner()).take();
        let dx = with_f32(w, "weight", |w| {
            let w = match (cut, live.as_deref()) {
                (Some(_), Some(live)) if live.len() == s.o * s.c => View::rows(live, s.c),
                (Some(cut), _) => cut.weight_view(w, s.c),
                (None, _) => View::rows(w, taps),
            };
            Ok(input_grad(geometry, s, w, gt, parts, precision))
        })?;
        if let Some(live) = live {
            scratch::give(live);
        }
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
    let patches = backward.then(|| Mutex::new(None));
    let live = Mutex::new(None);
    let pairs = Mutex::new(None);
    let op = ConvOp { geometry, relu, bias: b.is_some(), input_grad: x.track_op(), patches, live, pairs, sink };
    let b = match b {
        Some(b) => b.contiguous()?,
        None => Tensor::zeros(w.dim(0)?, w.dtype(), w.device())?,
    };
    let y = x.apply_op3_arc(&w.contiguous()?, &b, std::sync::Arc::new(Box::new(op)))?;
    Ok(super::stored::channel_major_copy(&y, chained)?)
}
