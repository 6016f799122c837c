//! The fused CPU kernels behind the layers, as candle custom ops.
//!
//! candle runs a linear layer as a dozen small operations, each allocating its output, and its
//! backward also computes the gradient of the input batch, which nothing needs (a matrix multiply
//! as large as the layer's own). These kernels do each layer in one pass, and every model built
//! from the library's modules runs on them, whatever its shape: [`Linear`](crate::Linear) is
//! `x Wᵀ + b` in one matrix multiply with the bias folded in (and the ReLU, when a
//! [`Sequential`](crate::Sequential) puts a [`ReLU`](crate::ReLU) after it), whose backward skips
//! the input's gradient when the input needs none; [`cross_entropy`](crate::cross_entropy) is
//! `log_softmax` and `nll` in one pass over the logits; [`relu`] keeps NaN as PyTorch does.
//!
//! A wide layer computes its output feature-major (`[features, batch]`) and hands back an
//! ordinary batch-major copy; the next of the library's layers reads the feature-major original
//! (see `stored.rs`), so every product of a layer between two such activations runs in a layout
//! the AVX-512 kernels are fast on (several times faster than `x Wᵀ` on row-major data), whether the
//! layers sit in a `Sequential`, a `ModuleList` or a user's own struct.
//!
//! [`with_candle_ops`] runs a closure on candle's own operations instead: the reference the
//! kernels are tested against (fused against plain against PyTorch's numbers), and the `plain`
//! column of `minibatch bench`.

mod avg_pool;
mod batch_norm;
mod bf16;
mod conv;
mod conv_input;
mod cross_entropy;
mod dense;
mod direct;
mod floor;
mod fold;
mod gather;
mod gemm;
mod general_relu;
mod im2col;
mod layout;
mod live_taps;
mod max_pool;
mod passes;
mod patches;
mod relu;
mod residual;
mod scratch;
mod sgd_step;
mod storage;
mod stored;
mod tap_pairs;
mod team;
mod tune;

pub(crate) use tune::once as tune;

pub(crate) use avg_pool::AvgPool;
pub(crate) use batch_norm::{batch_norm, Stats};
pub(crate) use conv::conv2d;
pub use cross_entropy::cross_entropy;
pub use dense::linear;
pub(crate) use dense::{layer, GradSink};
pub use floor::matmul_floor;
pub(crate) use general_relu::general_relu;
pub(crate) use im2col::ConvGeometry;
pub(crate) use max_pool::MaxPool;
pub use relu::relu;
pub(crate) use residual::add_relu;
pub(crate) use sgd_step::{sgd_in_place, SgdStepConfig};
pub(crate) use storage::with_f32;
pub(crate) use stored::channel_major;
pub(crate) use team::chunks_mut as split_chunks_mut;

use std::cell::Cell;

thread_local! {
    static CANDLE_OPS: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread's products are bf16 ones (under [`crate::autocast`]).
#[inline]
pub(crate) fn bf16_products() -> bool {
    crate::precision::current() == crate::precision::Precision::Bf16
}

/// Whether this thread's products are bf16 ones that pack their operands from any layout (in
/// hardware): the f32 kernel's layout transposes buy them nothing.
#[inline]
pub(crate) fn bf16_packing() -> bool {
    bf16_products() && bf16::hardware()
}

/// Whether this processor multiplies bf16 in hardware (Intel AMX, or AVX512-BF16). Without it,
/// [`Precision::Bf16`](crate::precision::Precision::Bf16) rounds the same way, so it trains the
/// same run up to the order of each product's sums, at fp32's speed or below.
pub fn bf16_in_hardware() -> bool {
    bf16::hardware()
}

/// Runs `f` with every layer and loss on candle's own operations rather than the fused kernels
/// (on this thread): the reference path, for tests and benchmarks. The maths is the same; the
/// float rounding and the speed differ.
///
/// ```
/// use minibatch::{mlp, Module};
/// use candle_core::{Device, Tensor};
/// let model = mlp(&[4, 32, 3], 0)?;
/// let x = Tensor::new(&[[0.5f32, -1., 2., 0.]], &Device::Cpu)?;
/// let fused = model.forward(&x)?.to_vec2::<f32>()?;
/// let plain = minibatch::fast::with_candle_ops(|| model.forward(&x))?.to_vec2::<f32>()?;
/// assert!(fused[0].iter().zip(&plain[0]).all(|(a, b)| (a - b).abs() < 1e-6));
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn with_candle_ops<R>(f: impl FnOnce() -> R) -> R {
    let before = CANDLE_OPS.with(|c| c.replace(true));
    let out = f();
    CANDLE_OPS.with(|c| c.set(before));
    out
}

/// Whether the fused kernels are in use on this thread (see [`with_candle_ops`]).
pub(crate) fn fused() -> bool {
    !CANDLE_OPS.with(Cell::get)
}

/// Whether the fused kernels can take these tensors: `f32` on the CPU. (The first call also
/// applies the process-wide settings of `tune.rs`.)
pub(crate) fn fits(ts: &[&candle_core::Tensor]) -> bool {
    tune();
    fused() && ts.iter().all(|t| t.dtype() == candle_core::DType::F32 && t.device().is_cpu())
}

/// A pooling kernel ([`MaxPool`], [`AvgPool`]) on `xs`, which must be `f32` on the CPU (the
/// kernels' only case; `what` names the input in the error otherwise).
pub(crate) fn pool2d(
    what: &'static str,
    xs: &candle_core::Tensor,
    op: impl candle_core::CustomOp1 + Send + Sync + 'static,
) -> crate::error::Result<candle_core::Tensor> {
    if xs.dtype() != candle_core::DType::F32 || !xs.device().is_cpu() {
        return Err(crate::error::Error::invalid(what, "f32 on the CPU", format!("{:?}", xs.dtype())));
    }
    // A pooling works plane by plane: on the channel-major original of the layer before, it
    // pools that in place of a batch-major copy, and hands its own output on the same way.
    Ok(match stored::channel_major(xs) {
        Some(original) => stored::channel_major_copy(&original.apply_op1(op)?, false)?,
        None => xs.contiguous()?.apply_op1(op)?,
    })
}
