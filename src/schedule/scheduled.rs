//! An optimizer whose rate follows a schedule.

use super::Schedule;
use crate::error::Result;
use crate::module::Param;
use crate::optim::Optimizer;
use candle_core::{Device, Tensor};
use std::collections::HashMap;

/// An optimizer that sets its learning rate (and momentum, if the schedule has one) from a
/// schedule before each step. It is an [`Optimizer`] itself, so `fit` and every training loop
/// take it unchanged, and its step count is saved with its state so that training resumes at
/// the right point of the schedule.
///
/// ```
/// use minibatch::schedule::{OneCycle, Scheduled};
/// use minibatch::{get_model, Optimizer};
/// let (_, sgd) = get_model(4, 8, 3, 0.1, 0)?;
/// let mut opt = Scheduled::new(sgd, OneCycle::new(0.1, 100));
/// opt.step()?; // step 0 at lr 0.004; no gradients yet, so nothing moves
/// assert!((opt.lr() - 0.004).abs() < 1e-12);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub struct Scheduled<O, S> {
    inner: O,
    schedule: S,
    step: usize,
}

impl<O: Optimizer, S: Schedule> Scheduled<O, S> {
    /// `inner` following `schedule` from step 0.
    pub fn new(inner: O, schedule: S) -> Self {
        Scheduled { inner, schedule, step: 0 }
    }

    /// Steps taken so far.
    pub fn steps_taken(&self) -> usize {
        self.step
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The schedule.
    pub fn schedule(&self) -> &S {
        &self.schedule
    }
}

impl<O: Optimizer, S: Schedule> Optimizer for Scheduled<O, S> {
    fn step(&mut self) -> Result<()> {
        self.inner.set_lr(self.schedule.lr_at(self.step));
        if let Some(m) = self.schedule.momentum_at(self.step) {
            self.inner.set_momentum(m);
        }
        self.step += 1;
        self.inner.step()
    }

    fn params(&self) -> &[Param] {
        self.inner.params()
    }

    fn lr(&self) -> f64 {
        self.inner.lr()
    }

    fn set_lr(&mut self, lr: f64) {
        self.inner.set_lr(lr);
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.inner.set_momentum(momentum);
    }

    fn state_dict(&self) -> HashMap<String, Tensor> {
        let mut s = self.inner.state_dict();
        if let Ok(t) = Tensor::new(self.step as i64, &Device::Cpu) {
            s.insert("schedule.step".into(), t);
        }
        s
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let mut state = state.clone();
        if let Some(t) = state.remove("schedule.step") {
            self.step = t.to_dtype(candle_core::DType::I64)?.to_scalar::<i64>()?.max(0) as usize;
        }
        self.inner.load_state_dict(&state)
    }
}
