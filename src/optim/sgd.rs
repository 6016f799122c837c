//! Stochastic gradient descent, with PyTorch's momentum, dampening, nesterov and weight decay.

use super::Optimizer;
use crate::error::{Error, Result};
use crate::module::{no_grad, Param};
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

/// Stochastic gradient descent: `p -= lr * grad`, with PyTorch's options:
/// `g = grad + weight_decay * p`; with momentum, `buf = momentum * buf + (1 - dampening) * g`
/// (the first step sets `buf = g`) and `g = buf`, or `g + momentum * buf` with nesterov.
#[derive(Debug)]
pub struct Sgd {
    params: Vec<Param>,
    config: SgdConfig,
    momentum: Vec<Option<Tensor>>,
}

impl Sgd {
    /// SGD with learning rate `lr` and nothing else, the notebook's optimizer.
    pub fn new(params: Vec<Param>, lr: f64) -> Result<Self> {
        Self::with_config(params, SgdConfig { lr, ..Default::default() })
    }

    /// SGD with every option.
    pub fn with_config(params: Vec<Param>, config: SgdConfig) -> Result<Self> {
        let c = &config;
        for (name, v) in [("learning rate", c.lr), ("momentum", c.momentum), ("weight decay", c.weight_decay)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(name, "a finite number >= 0", v));
            }
        }
        if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
            return Err(Error::invalid(
                "nesterov",
                "momentum > 0 and dampening 0",
                format!("momentum {}, dampening {}", c.momentum, c.dampening),
            ));
        }
        let momentum = vec![None; params.len()];
        Ok(Sgd { params, config, momentum })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.config.lr
    }

    /// Sets the learning rate (for schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn update(&mut self, i: usize, grad: Tensor) -> Result<()> {
        let c = self.config;
        let p = &self.params[i];
        let value = p.tensor();
        let mut g = if c.weight_decay != 0.0 { (grad + value.affine(c.weight_decay, 0.0)?)? } else { grad };
        if c.momentum != 0.0 {
            let buf = match self.momentum[i].take() {
                None => g.copy()?,
                Some(b) => (b.affine(c.momentum, 0.0)? + g.affine(1.0 - c.dampening, 0.0)?)?,
            };
            g = if c.nesterov { (g + buf.affine(c.momentum, 0.0)?)? } else { buf.clone() };
            self.momentum[i] = Some(buf);
        }
        p.set(&(value - g.affine(c.lr, 0.0)?)?)
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<()> {
        no_grad(|| {
            for i in 0..self.params.len() {
                if let Some(g) = self.params[i].grad() {
                    self.update(i, g)?;
                }
            }
            Ok(())
        })
    }

    fn params(&self) -> &[Param] {
        &self.params
    }
}
