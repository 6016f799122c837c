//! The update rule of one optimizer, for one parameter.

use crate::error::Result;
use candle_core::Tensor;
use std::collections::BTreeMap;

/// The learning rate and momentum of a config, as schedules see them.
pub trait Hyper: Clone {
    /// The learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate.
    fn set_lr(&mut self, lr: f64);
    /// Sets the momentum-like hyperparameter (momentum, or Adam's `beta1`); by default there is
    /// none.
    fn set_momentum(&mut self, _momentum: f64) {}
    /// The momentum-like hyperparameter, `None` for a rule without one (the default).
    fn momentum(&self) -> Option<f64> {
        None
    }
    /// Checks the values, naming the first that is out of range.
    fn validate(&self) -> Result<()>;
}

/// An optimizer's update of one parameter.
pub trait Rule {
    /// The hyperparameters (one per parameter group).
    type Config: Hyper;

    /// The new value of a parameter `p` with gradient `g`, given its state (`slot.step` already
    /// counts this step, from 1).
    fn update(config: &Self::Config, slot: &mut Slot, p: &Tensor, g: Tensor) -> Result<Tensor>;

    /// The same update written into `p`'s storage, when the rule has an in-place kernel for
    /// this case; returns `false` (having done nothing) when it has not, and
    /// [`update`](Rule::update) runs instead. The result must equal `update`'s to the bit.
    fn update_in_place(_config: &Self::Config, _slot: &mut Slot, _p: &Tensor, _g: &Tensor) -> Result<bool> {
        Ok(false)
    }

    /// The names of every buffer the rule may keep in a [`Slot`] (PyTorch's: `exp_avg`, ...), so
    /// that a saved state holding another optimizer's buffers is refused on loading rather than
    /// trained on without them; `None` (the default) accepts any name.
    fn buffers() -> Option<&'static [&'static str]> {
        None
    }
}

/// The state an optimizer keeps for one parameter: how many updates it had, and named buffers
/// (`momentum_buffer`, `exp_avg`, ...), PyTorch's names.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    /// Updates applied so far, this one included.
    pub step: u64,
    /// Buffers by name.
    pub buffers: BTreeMap<String, Tensor>,
}

impl Slot {
    /// The buffer `name`, or `None` before it is first set.
    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        self.buffers.remove(name)
    }

    /// Stores buffer `name`.
    pub fn put(&mut self, name: &str, t: Tensor) {
        self.buffers.insert(name.to_string(), t);
    }
}
