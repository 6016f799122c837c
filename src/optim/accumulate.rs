//! Gradient accumulation: one update from several batches.

use super::steps::scale;
use super::Optimizer;
use crate::error::{Error, Result};
use crate::module::{no_grad, Param};
use candle_core::Tensor;
use std::collections::HashMap;

/// Updates once every `n` calls of `step`, with the mean of the `n` batches' gradients, and keeps
/// the gradients until then: `n` batches of 32 train as one batch of `32 n` would (when every
/// loss is a mean, as `cross_entropy`'s is), in the memory of one batch of 32. The training loop
/// does not change: `backward`, `step`, `zero_grad` on every batch.
///
/// ```
/// use minibatch::{get_model, optim::Accumulate, Optimizer};
/// let (_, sgd) = get_model(4, 8, 3, 0.1, 0)?;
/// let opt = Accumulate::new(sgd, 4)?;
/// assert_eq!(opt.every(), 4);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub struct Accumulate<O> {
    inner: O,
    every: usize,
    pending: usize,
}

impl<O: Optimizer> Accumulate<O> {
    /// `inner`, stepping every `every` (at least 1) batches.
    pub fn new(inner: O, every: usize) -> Result<Self> {
        if every == 0 {
            return Err(Error::invalid("accumulation steps", "at least 1", 0));
        }
        Ok(Accumulate { inner, every, pending: 0 })
    }

    /// Batches per update.
    pub fn every(&self) -> usize {
        self.every
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }
}

impl<O: Optimizer> Optimizer for Accumulate<O> {
    fn step(&mut self) -> Result<()> {
        self.pending += 1;
        if self.pending < self.every {
            return Ok(());
        }
        if self.every > 1 {
            no_grad(|| {
                for p in self.inner.params() {
                    if let Some(g) = p.grad() {
                        p.zero_grad();
                        p.accumulate_grad(scale(&g, 1.0 / self.every as f64)?)?;
                    }
                }
                Ok::<_, Error>(())
            })?;
        }
        self.inner.step()
    }

    /// Zeroes the gradients only after an update; between updates they keep accumulating.
    fn zero_grad(&mut self) {
        if self.pending >= self.every {
            self.pending = 0;
            self.inner.zero_grad();
        }
    }

    fn params(&self) -> &[Param] {
        self.inner.params()
    }
    fn lr(&self) -> f64 {
        self.inner.lr()
    }
    fn set_lr(&mut self, lr: f64) {
        self.inner.set_lr(lr)
    }
    fn set_momentum(&mut self, momentum: f64) {
        self.inner.set_momentum(momentum)
    }
    fn momentum(&self) -> Option<f64> {
        self.inner.momentum()
    }
    fn state_dict(&self) -> HashMap<String, Tensor> {
        self.inner.state_dict()
    }
    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.inner.load_state_dict(state)
    }
}
