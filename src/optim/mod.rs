//! Optimizers, the notebook's step 4: what updates the parameters from their gradients.

mod sgd;

pub use sgd::{Sgd, SgdConfig};

use crate::error::Result;
use crate::module::{backward, Param};
use candle_core::Tensor;

/// Updates a set of parameters from their accumulated gradients.
///
/// `step` and `zero_grad` change parameters and gradients without recording any operation for
/// backward (an update is not part of the model's computation, and recording it would chain each
/// step's graph to the next). Gradients accumulate until [`zero_grad`](Optimizer::zero_grad), as
/// in PyTorch, so the usual loop is `backward`, `step`, `zero_grad`.
pub trait Optimizer {
    /// Applies one update to every parameter that has a gradient.
    fn step(&mut self) -> Result<()>;

    /// The parameters updated.
    fn params(&self) -> &[Param];

    /// Forgets every parameter's gradient.
    fn zero_grad(&mut self) {
        self.params().iter().for_each(Param::zero_grad);
    }

    /// `backward(loss)`, `step()`, `zero_grad()`: one training step.
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        backward(loss, self.params())?;
        self.step()?;
        self.zero_grad();
        Ok(())
    }
}
