//! ReLU as one pass that keeps NaN (PyTorch's `relu(nan)` is `nan`; `f32::max(nan, 0)` is 0, which
//! would turn a poisoned batch into a finite loss that no guard can see).

use super::passes;
use super::storage::{cpu_f32, with_f32};
use super::stored::{batch_major_copy, channel_major, channel_major_copy, feature_major};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "relu-nan"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_f32(s, l, "relu input")?;
        let y = passes::relu(x, 0);
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    /// PyTorch's `threshold_backward`: the gradient passes where the input was not `<= 0`.
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (arg, grad) = (arg.contiguous()?, grad.contiguous()?);
        let g = with_f32(&arg, "relu input", |x| with_f32(&grad, "relu gradient", |g| Ok(passes::relu_grad(g, x, 0))))?;
        Ok(Some(Tensor::from_vec(g, arg.shape(), arg.device())?))
    }
}

/// `max(x, 0)` element-wise, NaN kept as NaN, as PyTorch's `relu` (`minibatch::relu`, the
/// notebook's `F.relu`). One pass on `f32` CPU tensors (on the feature-major original of a wide
/// layer's output, which the next layer then reads; see `fast/stored.rs`); other tensors go
/// through candle's `maximum`, which keeps NaN too. In a model's own `forward`, prefer it to
/// candle's `.relu()`, which computes on a batch-major copy with candle's own backward (a
/// `deep` epoch 1.3x slower) and maps NaN to 0.
pub fn relu(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.dtype() != DType::F32 || !x.device().is_cpu() {
        return x.maximum(0.0);
    }
    if let Some(stored) = feature_major(x) {
        return batch_major_copy(&stored.apply_op1(Relu)?, false);
    }
    match channel_major(x) {
        Some(stored) => channel_major_copy(&stored.apply_op1(Relu)?, false),
        None => x.contiguous()?.apply_op1(Relu),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn keeps_nan_and_cuts_negatives_with_their_gradient() {
        let x = Var::new(&[-2f32, -0.5, 0.0, 1.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY], &Device::Cpu).unwrap();
        let y = relu(x.as_tensor()).unwrap();
        let v: Vec<f32> = y.to_vec1().unwrap();
        assert_eq!(&v[..4], &[0.0, 0.0, 0.0, 1.5]);
        assert!(v[4].is_nan());
        assert_eq!(&v[5..], &[f32::INFINITY, 0.0]);
        let grads = (y * 3.0).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        assert_eq!(g, [0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 0.0]);
    }
}
