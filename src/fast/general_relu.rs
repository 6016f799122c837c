//! The lesson's `GeneralRelu` (leaky ReLU, minus `sub`, clamped at `maxv`) as one pass forward and
//! one backward (split between the kernel team when large, as ReLU's), on the storage the layer before left (a wide layer's feature-major output, a
//! convolution's channel-major one), as [`relu`](super::relu) runs: on candle's operations it was
//! five passes each way, each with a fresh buffer.

use super::passes;
use super::storage::{cpu_f32, with_f32};
use super::stored::{batch_major_copy, channel_major, channel_major_copy, feature_major};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

/// The activation's settings, as `f32`.
#[derive(Debug, Clone, Copy)]
struct GeneralReluOp {
    leak: f32,
    sub: f32,
    maxv: f32,
}

impl GeneralReluOp {
    /// The leaky ReLU (a slope of 0 gives 0 below zero, also for -inf).
    fn leaky(self, x: f32) -> f32 {
        match x < 0.0 {
            true if self.leak == 0.0 => 0.0,
            true => x * self.leak,
            false => x,
        }
    }

    /// `min(leaky(x) - sub, maxv)`, NaN kept as NaN.
    fn value(self, x: f32) -> f32 {
        let y = self.leaky(x) - self.sub;
        if y > self.maxv {
            self.maxv
        } else {
            y
        }
    }

    /// The gradient at input `x`: PyTorch's `leaky_relu_backward` (1 above 0, the slope
    /// elsewhere), cut where the output was clamped.
    fn grad(self, g: f32, x: f32) -> f32 {
        let slope = if x > 0.0 { 1.0 } else { self.leak };
        let below = self.leaky(x) - self.sub <= self.maxv;
        if below {
            g * slope
        } else {
            0.0
        }
    }
}

impl CustomOp1 for GeneralReluOp {
    fn name(&self) -> &'static str {
        "general-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_f32(s, l, "GeneralRelu input")?;
        Ok((CpuStorage::F32(passes::map(x, 0, |v| self.value(v))), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (arg, grad) = (arg.contiguous()?, grad.contiguous()?);
        let g = with_f32(&arg, "GeneralRelu input", |x| {
            with_f32(&grad, "GeneralRelu gradient", |g| Ok(passes::map2(g, x, 0, |g, x| self.grad(g, x))))
        })?;
        Ok(Some(Tensor::from_vec::<_, f32>(g, arg.shape(), arg.device())?))
    }
}

/// `GeneralRelu` of `x` in one pass for `f32` CPU tensors and a slope in `[0, 1]`; `None` for
/// the others (the layer then runs on candle's operations).
pub(crate) fn general_relu(
    x: &Tensor,
    leak: Option<f64>,
    sub: Option<f64>,
    maxv: Option<f64>,
) -> candle_core::Result<Option<Tensor>> {
    let leak = leak.unwrap_or(0.0);
    if x.dtype() != DType::F32 || !x.device().is_cpu() || !(0.0..=1.0).contains(&leak) {
        return Ok(None);
    }
    let op = GeneralReluOp {
        leak: leak as f32,
        sub: sub.unwrap_or(0.0) as f32,
        maxv: maxv.map_or(f32::INFINITY, |m| m as f32),
    };
    if let Some(stored) = feature_major(x) {
        return Ok(Some(batch_major_copy(&stored.apply_op1(op)?, false)?));
    }
    Ok(Some(match channel_major(x) {
        Some(stored) => channel_major_copy(&stored.apply_op1(op)?, false)?,
        None => x.contiguous()?.apply_op1(op)?,
    }))
}

#[cfg(test)]
mod tests {
    use crate::module::{GeneralRelu, Module};
    use candle_core::{Device, Tensor, Var};

    /// Values and gradients against the same activation on candle's operations.
    #[test]
    fn matches_candles_operations_values_and_gradients() {
        let mut rng = crate::rng::Rng::new(3);
        let mut values: Vec<f32> = (0..1000).map(|_| (rng.normal() * 4.0) as f32).collect();
        values.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 6.0, 5.6]);
        let settings = [
            (Some(0.1), Some(0.4), Some(6.0)),
            (None, None, None),
            (None, Some(0.5), None),
            (Some(1.0), None, Some(2.0)),
        ];
        for (leak, sub, maxv) in settings {
            let act = GeneralRelu { leak, sub, maxv };
            let x = Var::new(values.as_slice(), &Device::Cpu).unwrap();
            let run = || -> (Vec<f32>, Vec<f32>) {
                let y = act.forward(x.as_tensor()).unwrap();
                let w = Tensor::from_vec(
                    (0..values.len()).map(|i| i as f32 / 100.0).collect::<Vec<_>>(),
                    values.len(),
                    &Device::Cpu,
                );
                let grads = (&y * w.unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
                (y.to_vec1().unwrap(), grads.get(x.as_tensor()).unwrap().to_vec1().unwrap())
            };
            let (fused, plain) = (run(), crate::fast::with_candle_ops(run));
            for (i, (a, b)) in fused.0.iter().zip(&plain.0).enumerate() {
                assert!(
                    a == b || (a.is_nan() && b.is_nan()),
                    "{leak:?} {sub:?} {maxv:?} at {}: {a} against {b}",
                    values[i]
                );
            }
            // The gradients agree but at the kinks (0, and maxv itself), where candle's maximum
            // and minimum pick a side of their own.
            for (i, (a, b)) in fused.1.iter().zip(&plain.1).enumerate() {
                let kink = values[i] == 0.0
                    || act
                        .forward(&Tensor::new(&[values[i]], &Device::Cpu).unwrap())
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()[0]
                        == maxv.unwrap_or(f64::NAN) as f32;
                assert!(
                    a == b || kink || !values[i].is_finite(),
                    "{leak:?} {sub:?} {maxv:?} at {}: {a} against {b}",
                    values[i]
                );
            }
        }
    }
}
