//! Optimizers, the notebook's step 4, and what the next lessons add to them.
//!
//! Every optimizer here is a [`RuleOptimizer`] over an update [`Rule`]: the rule is the formula for one
//! parameter (SGD's momentum, Adam's moments...), and `RuleOptimizer` does the rest once for all of them:
//! parameter groups with their own hyperparameters, per-parameter state, saving and loading that
//! state, and running the update without recording gradients. A new optimizer is a config struct
//! and a `Rule` of a few lines, as in fastai's optimizer built of composable steps; the shared
//! pieces (weight decay, moving averages) live in `steps`.

mod accumulate;
mod adam;
mod clip;
mod optimizer;
mod rmsprop;
mod rule;
mod sgd;
mod steps;

pub use accumulate::Accumulate;
pub use adam::{Adam, AdamConfig, AdamRule, AdamW, AdamWRule};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use optimizer::{Group, IntoNamedParams, RuleOptimizer};
pub use rmsprop::{RmsProp, RmsPropConfig, RmsPropRule};
pub use rule::{Hyper, Rule, Slot};
pub use sgd::{Sgd, SgdConfig, SgdRule};

use crate::error::Result;
use crate::module::{backward, Param};
use candle_core::Tensor;
use std::collections::HashMap;

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

    /// The learning rate (of the first group). `NaN` for an optimizer without one.
    fn lr(&self) -> f64 {
        f64::NAN
    }

    /// Sets the learning rate, keeping each group's ratio to the first (schedules call this
    /// every batch). The default ignores it.
    fn set_lr(&mut self, _lr: f64) {}

    /// Sets the momentum (SGD's and RMSprop's momentum, Adam's `beta1`), for one-cycle training.
    /// The default ignores it.
    fn set_momentum(&mut self, _momentum: f64) {}

    /// The momentum (of the first group) that [`set_momentum`](Optimizer::set_momentum) sets, for
    /// a recorder to log as fastai's does; `None` for an optimizer without one (the default).
    fn momentum(&self) -> Option<f64> {
        None
    }

    /// The optimizer's state (moving averages, step counts) by name, to save beside the model: a
    /// snapshot, which later steps leave as it is.
    fn state_dict(&self) -> HashMap<String, Tensor> {
        HashMap::new()
    }

    /// Restores a state saved by [`state_dict`](Optimizer::state_dict).
    fn load_state_dict(&mut self, _state: &HashMap<String, Tensor>) -> Result<()> {
        Ok(())
    }
}

impl<O: Optimizer + ?Sized> Optimizer for Box<O> {
    fn step(&mut self) -> Result<()> {
        (**self).step()
    }
    fn params(&self) -> &[Param] {
        (**self).params()
    }
    fn zero_grad(&mut self) {
        (**self).zero_grad()
    }
    fn lr(&self) -> f64 {
        (**self).lr()
    }
    fn set_lr(&mut self, lr: f64) {
        (**self).set_lr(lr)
    }
    fn set_momentum(&mut self, momentum: f64) {
        (**self).set_momentum(momentum)
    }
    fn momentum(&self) -> Option<f64> {
        (**self).momentum()
    }
    fn state_dict(&self) -> HashMap<String, Tensor> {
        (**self).state_dict()
    }
    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        (**self).load_state_dict(state)
    }
}
