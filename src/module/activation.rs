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
}

super::repr::impl_display_as_repr!(ReLU);

/// The lesson's `GeneralRelu` (notebook `06_cuda_cnn_hooks_init`): a leaky ReLU with slope
/// `leak` below zero (a plain ReLU without one), then `sub` subtracted (bringing the mean of the
/// activations back towards 0), then clamped at `maxv`. No parameters.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{GeneralRelu, Module};
/// let act = GeneralRelu { leak: Some(0.25), sub: Some(0.5), maxv: Some(6.0) };
/// let y = act.forward(&Tensor::new(&[-2f32, 0.75, 10.0], &Device::Cpu)?)?;
/// assert_eq!(y.to_vec1::<f32>()?, [-1.0, 0.25, 6.0]);
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
        // One pass each way on the fused kernels; candle's operations otherwise (the reference).
        if crate::fast::fits(&[xs]) {
            if let Some(y) = crate::fast::general_relu(xs, self.leak, self.sub, self.maxv)? {
                return Ok(y);
            }
        }
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

super::repr::impl_display_as_repr!(GeneralRelu);

/// Zeroes each element with probability `p` while training, scaling the others by `1 / (1 - p)`
/// so that the expected output is the input (PyTorch's `nn.Dropout`); the identity in evaluation
/// mode ([`Module::eval`]), which the training loop switches to while validating. The masks come
/// from a seeded generator: the same seed gives the same run.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{Dropout, Module};
/// let drop = Dropout::new(0.5, 0)?;
/// let x = Tensor::ones(1000, candle_core::DType::F32, &Device::Cpu)?;
/// let kept: Vec<f32> = drop.forward(&x)?.to_vec1()?;
/// assert!(kept.iter().all(|&v| v == 0.0 || v == 2.0));
/// drop.eval();
/// assert_eq!(drop.forward(&x)?.to_vec1::<f32>()?, vec![1.0; 1000]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    training: std::sync::atomic::AtomicBool,
    rng: std::sync::Mutex<crate::rng::Rng>,
}

impl Dropout {
    /// Dropout with probability `p` (in `[0, 1)`), its masks drawn from `seed`.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(crate::error::Error::invalid("dropout probability", "in [0, 1)", p));
        }
        let rng = std::sync::Mutex::new(crate::rng::Rng::new(seed));
        Ok(Dropout { p, training: std::sync::atomic::AtomicBool::new(true), rng })
    }
}

impl Registered for Dropout {
    fn extra_repr(&self) -> String {
        format!("p={}, inplace=False", self.p)
    }
    fn set_training(&self, training: bool) {
        self.training.store(training, std::sync::atomic::Ordering::Relaxed);
    }
    fn is_training(&self) -> Option<bool> {
        Some(self.training.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Module for Dropout {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if self.p == 0.0 || !self.training.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(xs.clone());
        }
        let scale = (1.0 / (1.0 - self.p)) as f32;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mask: Vec<f32> = (0..xs.elem_count()).map(|_| if rng.next_f64() < self.p { 0.0 } else { scale }).collect();
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
        Ok((xs * mask)?)
    }
}

super::repr::impl_display_as_repr!(Dropout);
