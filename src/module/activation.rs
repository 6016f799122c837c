//! Activation functions as modules.

use super::{Module, Registered};
use crate::error::Result;
use candle_core::Tensor;

/// `max(x, 0)`, element-wise, keeping NaN as NaN as PyTorch does (so a poisoned input yields a
/// NaN loss that the loop reports, not a finite one). No parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReLU;

impl Registered for ReLU {}

impl Module for ReLU {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if crate::fast::fused() {
            Ok(crate::fast::relu(xs)?)
        } else {
            Ok(xs.maximum(0.0)?)
        }
    }

    fn is_relu(&self) -> bool {
        true
    }
}

crate::impl_display_as_repr!(ReLU);

/// The lesson's `GeneralRelu` (notebook `06_cuda_cnn_hooks_init`): a leaky ReLU with slope
/// `leak` below zero (a plain ReLU without one), then `sub` subtracted (bringing the mean of the
/// activations back towards 0), then clamped at `maxv`. No parameters.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{GeneralRelu, Module};
/// let act = GeneralRelu { leak: Some(0.1), sub: Some(0.4), maxv: Some(6.0) };
/// let y = act.forward(&Tensor::new(&[-2f32, 0.5, 10.0], &Device::Cpu)?)?;
/// assert_eq!(y.to_vec1::<f32>()?, [-0.6, 0.1, 6.0]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GeneralRelu {
    /// The slope below zero (`None`: 0, a plain ReLU).
    pub leak: Option<f64>,
    /// Subtracted after the activation.
    pub sub: Option<f64>,
    /// The largest output.
    pub maxv: Option<f64>,
}

impl Registered for GeneralRelu {
    fn extra_repr(&self) -> String {
        let show = |v: Option<f64>| v.map_or("None".to_string(), |v| v.to_string());
        format!("leak={}, sub={}, maxv={}", show(self.leak), show(self.sub), show(self.maxv))
    }
}

impl Module for GeneralRelu {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        // max(x, leak * x) is the leaky ReLU for a slope in [0, 1], and keeps NaN.
        let y = match self.leak {
            Some(leak) => xs.maximum(&(xs * leak)?)?,
            None => ReLU.forward(xs)?,
        };
        let y = match self.sub {
            Some(sub) => (y - sub)?,
            None => y,
        };
        Ok(match self.maxv {
            Some(maxv) => y.minimum(maxv)?,
            None => y,
        })
    }
}

crate::impl_display_as_repr!(GeneralRelu);
