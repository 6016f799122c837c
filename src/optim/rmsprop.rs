//! RMSprop.

use super::sgd::non_negative;
use super::steps::{l2, lerp_avg, scale, square_avg};
use super::{Hyper, Rule, RuleOptimizer, Slot};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// RMSprop's hyperparameters, PyTorch's `optim.RMSprop` arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the squared gradient's moving average.
    pub alpha: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Divide by the variance rather than the second moment.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false }
    }
}

impl Hyper for RmsPropConfig {
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn set_momentum(&mut self, momentum: f64) {
        self.momentum = momentum;
    }
    fn momentum(&self) -> Option<f64> {
        Some(self.momentum)
    }
    fn validate(&self) -> Result<()> {
        non_negative(&[
            ("learning rate", self.lr),
            ("eps", self.eps),
            ("weight decay", self.weight_decay),
            ("momentum", self.momentum),
        ])?;
        if !(0.0..1.0).contains(&self.alpha) {
            return Err(Error::invalid("alpha", "in [0, 1)", self.alpha));
        }
        Ok(())
    }
}

/// RMSprop's update: `v = alpha * v + (1 - alpha) * g²`, `p -= lr * g / (sqrt(v) + eps)`, with
/// optional centring and momentum.
#[derive(Debug)]
pub struct RmsPropRule;

impl Rule for RmsPropRule {
    type Config = RmsPropConfig;
    fn update(c: &RmsPropConfig, slot: &mut Slot, p: &Tensor, grad: Tensor) -> Result<Tensor> {
        let g = l2(grad, p, c.weight_decay)?;
        let v = square_avg(slot, "square_avg", &g, c.alpha)?;
        let avg = if c.centered {
            let mean = lerp_avg(slot, "grad_avg", &g, 1.0 - c.alpha)?;
            (v - mean.sqr()?)?.sqrt()?
        } else {
            v.sqrt()?
        };
        let step = (g / (avg + c.eps)?)?;
        let step = if c.momentum > 0.0 {
            let buf = match slot.take("momentum_buffer") {
                None => step,
                Some(b) => (scale(&b, c.momentum)? + step)?,
            };
            slot.put("momentum_buffer", buf.clone());
            buf
        } else {
            step
        };
        Ok((p - scale(&step, c.lr)?)?)
    }

    fn buffers() -> Option<&'static [&'static str]> {
        Some(&["square_avg", "grad_avg", "momentum_buffer"])
    }
}

/// RMSprop, PyTorch's `optim.RMSprop`.
pub type RmsProp = RuleOptimizer<RmsPropRule>;

impl RuleOptimizer<RmsPropRule> {
    /// RMSprop with learning rate `lr` and PyTorch's other defaults (alpha 0.99, eps 1e-8).
    pub fn new(params: impl super::IntoNamedParams, lr: f64) -> Result<Self> {
        Self::with_config(params, RmsPropConfig { lr, ..Default::default() })
    }
}
