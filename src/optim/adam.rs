//! Adam (with L2 weight decay and amsgrad) and AdamW (decoupled weight decay).

use super::sgd::non_negative;
use super::steps::{div_scalar, l2, lerp_avg, scale, square_avg};
use super::{Hyper, IntoNamedParams, Rule, RuleOptimizer, Slot};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// Adam's hyperparameters, PyTorch's `optim.Adam` arguments (and `AdamW`'s, whose
/// `weight_decay` PyTorch defaults to 0.01 and is decoupled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the gradient's moving average.
    pub beta1: f64,
    /// Decay of the squared gradient's moving average.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Weight decay: L2 in the gradient for Adam, decoupled for AdamW.
    pub weight_decay: f64,
    /// Divide by the largest squared average seen so far (Reddi et al.).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, amsgrad: false }
    }
}

impl Hyper for AdamConfig {
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn set_momentum(&mut self, momentum: f64) {
        self.beta1 = momentum;
    }
    fn momentum(&self) -> Option<f64> {
        Some(self.beta1)
    }
    fn validate(&self) -> Result<()> {
        non_negative(&[("learning rate", self.lr), ("eps", self.eps), ("weight decay", self.weight_decay)])?;
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::invalid(name, "in [0, 1)", b));
            }
        }
        Ok(())
    }
}

/// Adam's step on an already decayed gradient: moving averages of the gradient and its square,
/// bias-corrected, `p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`.
fn adam_step(c: &AdamConfig, slot: &mut Slot, p: &Tensor, g: &Tensor) -> Result<Tensor> {
    let m = lerp_avg(slot, "exp_avg", g, 1.0 - c.beta1)?;
    let mut v = square_avg(slot, "exp_avg_sq", g, c.beta2)?;
    if c.amsgrad {
        v = match slot.take("max_exp_avg_sq") {
            None => v,
            Some(max) => max.maximum(&v)?,
        };
        slot.put("max_exp_avg_sq", v.clone());
    }
    let t = slot.step as i32;
    let step_size = c.lr / (1.0 - c.beta1.powi(t));
    let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
    let denom = (div_scalar(&v.sqrt()?, bc2_sqrt)? + c.eps)?;
    Ok((p - scale(&(m / denom)?, step_size)?)?)
}

/// Adam with weight decay as an L2 term in the gradient, PyTorch's `optim.Adam`.
#[derive(Debug)]
pub struct AdamRule;

impl Rule for AdamRule {
    type Config = AdamConfig;
    fn update(c: &AdamConfig, slot: &mut Slot, p: &Tensor, grad: Tensor) -> Result<Tensor> {
        adam_step(c, slot, p, &l2(grad, p, c.weight_decay)?)
    }

    fn buffers() -> Option<&'static [&'static str]> {
        Some(&["exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
    }
}

/// Adam with weight decay decoupled from the gradient (`p *= 1 - lr * wd` first), PyTorch's
/// `optim.AdamW` (Loshchilov and Hutter): the decay no longer passes through Adam's scaling.
#[derive(Debug)]
pub struct AdamWRule;

impl Rule for AdamWRule {
    type Config = AdamConfig;
    fn update(c: &AdamConfig, slot: &mut Slot, p: &Tensor, grad: Tensor) -> Result<Tensor> {
        let decayed = if c.weight_decay == 0.0 { p.clone() } else { scale(p, 1.0 - c.lr * c.weight_decay)? };
        adam_step(c, slot, &decayed, &grad)
    }

    fn buffers() -> Option<&'static [&'static str]> {
        Some(&["exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
    }
}

/// Adam, PyTorch's `optim.Adam`.
pub type Adam = RuleOptimizer<AdamRule>;

impl RuleOptimizer<AdamRule> {
    /// Adam with learning rate `lr` and PyTorch's other defaults (betas 0.9 and 0.999, eps 1e-8).
    pub fn new(params: impl IntoNamedParams, lr: f64) -> Result<Self> {
        Self::with_config(params, AdamConfig { lr, ..Default::default() })
    }
}

impl RuleOptimizer<AdamWRule> {
    /// AdamW with learning rate `lr` and PyTorch's other defaults (weight decay 0.01).
    pub fn new(params: impl IntoNamedParams, lr: f64) -> Result<Self> {
        Self::with_config(params, AdamConfig { lr, weight_decay: 0.01, ..Default::default() })
    }
}

/// AdamW, PyTorch's `optim.AdamW` (set `weight_decay`; PyTorch's default is 0.01).
pub type AdamW = RuleOptimizer<AdamWRule>;
