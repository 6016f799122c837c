//! ReLU as one pass that keeps NaN (PyTorch's `relu(nan)` is `nan`; `f32::max(nan, 0)` is 0, which
//! would turn a poisoned batch into a finite loss that no guard can see).

use super::relu_op::Relu;
use super::stored::{batch_major_copy, channel_major, channel_major_copy, feature_major};
use candle_core::{DType, Tensor};

/// `max(x, 0)` element-wise, NaN kept as NaN, as PyTorch's `relu`. One pass on `f32` CPU tensors
/// (on the feature-major original of a wide layer's output, which the next layer then reads; see
/// `fast/stored.rs`); other tensors go through candle's `maximum`, which keeps NaN too.
pub fn relu(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.dtype() != DType::F32 || !x.device().is_cpu() {
        return x.maximum(0.0);
    }
    if let Some(stored) = feature_major(x)? {
        return batch_major_copy(&stored.apply_op1(Relu)?, false);
    }
    match channel_major(x)? {
        Some(stored) => channel_major_copy(&stored.apply_op1(Relu)?, false),
        None => x.contiguous()?.apply_op1(Relu),
    }
}
