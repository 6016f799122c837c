//! Stochastic gradient descent, with PyTorch's momentum, dampening, nesterov and weight decay.

use super::steps::{l2, scale};
use super::{Hyper, IntoNamedParams, Rule, RuleOptimizer, Slot};
use crate::error::{Error, Result};
use crate::fast::SgdStepConfig;
use candle_core::Tensor;

/// SGD's hyperparameters, PyTorch's `optim.SGD` arguments.
///
/// ```
/// let c = minibatch::SgdConfig { lr: 0.5, momentum: 0.9, ..Default::default() };
/// assert_eq!((c.dampening, c.nesterov, c.weight_decay), (0.0, false, 0.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor; 0 for plain SGD.
    pub momentum: f64,
    /// Dampening of the gradient's share of the momentum buffer.
    pub dampening: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 0.01, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

/// Checks that each named value is finite and at least 0.
pub(crate) fn non_negative(values: &[(&'static str, f64)]) -> Result<()> {
    match values.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
        Some(&(name, v)) => Err(Error::invalid(name, "a finite number >= 0", v)),
        None => Ok(()),
    }
}

impl Hyper for SgdConfig {
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
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("weight decay", self.weight_decay),
        ])?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            let found = format!("momentum {}, dampening {}", self.momentum, self.dampening);
            return Err(Error::invalid("nesterov", "momentum > 0 and dampening 0", found));
        }
        Ok(())
    }
}

/// SGD's update: `g = grad + weight_decay * p`; with momentum, `buf = momentum * buf +
/// (1 - dampening) * g` (the first step sets `buf = g`) and `g = buf`, or `g + momentum * buf` with
/// nesterov; then `p -= lr * g`.
#[derive(Debug)]
pub struct SgdRule;

impl Rule for SgdRule {
    type Config = SgdConfig;

    fn update(c: &SgdConfig, slot: &mut Slot, p: &Tensor, grad: Tensor) -> Result<Tensor> {
        let mut g = l2(grad, p, c.weight_decay)?;
        if c.momentum != 0.0 {
            let buf = match slot.take("momentum_buffer") {
                None => g.copy()?,
                Some(b) => (scale(&b, c.momentum)? + scale(&g, 1.0 - c.dampening)?)?,
            };
            g = if c.nesterov { (g + scale(&buf, c.momentum)?)? } else { buf.clone() };
            slot.put("momentum_buffer", buf);
        }
        Ok((p - scale(&g, c.lr)?)?)
    }

    /// Plain SGD (no momentum, no weight decay) on contiguous `f32` CPU tensors: `p -= lr * g`
    /// in place, with no allocation.
    fn update_in_place(c: &SgdConfig, slot: &mut Slot, p: &Tensor, g: &Tensor) -> Result<bool> {
        // With momentum, the first step (which makes the buffer from the gradient) is `update`'s.
        let buffer = slot.buffers.get("momentum_buffer");
        if c.momentum != 0.0 && buffer.is_none() {
            return Ok(false);
        }
        let config = SgdStepConfig {
            lr: c.lr,
            momentum: c.momentum,
            dampening: c.dampening,
            nesterov: c.nesterov,
            weight_decay: c.weight_decay,
        };
        Ok(crate::fast::sgd_in_place(p, g, buffer, config)?)
    }

    fn buffers() -> Option<&'static [&'static str]> {
        Some(&["momentum_buffer"])
    }
}

/// Stochastic gradient descent, PyTorch's `optim.SGD`.
pub type Sgd = RuleOptimizer<SgdRule>;

impl RuleOptimizer<SgdRule> {
    /// SGD with learning rate `lr` and nothing else, the notebook's optimizer.
    pub fn new(params: impl IntoNamedParams, lr: f64) -> Result<Self> {
        Self::with_config(params, SgdConfig { lr, ..Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Three steps of the in-place kernels against three of `update` (candle's operations), on
    /// a small tensor and on one large enough to be split between threads.
    #[test]
    fn the_in_place_step_has_the_bits_of_the_plain_one() {
        let configs = [
            SgdConfig { lr: 0.1, ..Default::default() },
            SgdConfig { lr: 0.1, weight_decay: 0.01, ..Default::default() },
            SgdConfig { lr: 0.05, momentum: 0.9, ..Default::default() },
            SgdConfig { lr: 0.05, momentum: 0.85, dampening: 0.1, weight_decay: 0.003, ..Default::default() },
            SgdConfig { lr: 0.3, momentum: 0.9, nesterov: true, weight_decay: 1e-4, ..Default::default() },
        ];
        for len in [37, 300_001] {
            let random = |seed: u64| {
                let mut rng = crate::rng::Rng::new(seed);
                let v: Vec<f32> = (0..len).map(|_| rng.normal() as f32).collect();
                Tensor::from_vec(v, len, &Device::Cpu).unwrap()
            };
            for c in configs {
                let (mut plain, mut plain_slot) = (random(1), Slot::default());
                let (mut fast, mut fast_slot) = (random(1), Slot::default());
                for step in 0..3 {
                    let g = random(10 + step);
                    plain = SgdRule::update(&c, &mut plain_slot, &plain, g.clone()).unwrap();
                    if !SgdRule::update_in_place(&c, &mut fast_slot, &fast, &g).unwrap() {
                        assert!(step == 0 && c.momentum != 0.0, "{c:?}: no in-place step {step}");
                        fast = SgdRule::update(&c, &mut fast_slot, &fast, g).unwrap();
                    }
                    let bits = |t: &Tensor| t.to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert!(bits(&plain) == bits(&fast), "{c:?}, {len} values, step {step}");
                    if c.momentum != 0.0 {
                        let buffer = |s: &Slot| bits(&s.buffers["momentum_buffer"]);
                        assert!(buffer(&plain_slot) == buffer(&fast_slot), "{c:?}: buffer, step {step}");
                    }
                }
            }
        }
    }
}
