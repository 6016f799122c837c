//! Learning-rate (and momentum) schedules, applied per batch.
//!
//! A [`Schedule`] gives the learning rate of each training step, counted from 0: step `i` trains
//! with `lr_at(i)`, as PyTorch's schedulers do when `scheduler.step()` follows `opt.step()`.
//! The [`ParamScheduler`](crate::learner::ParamScheduler) callback applies one to the optimizer
//! before each batch (fastai's answer; the step counted is the learner's, saved with its
//! checkpoints, so a resumed run goes on at the right point). [`Phases`] chains schedules
//! (warmup, then cosine).

mod curves;
mod one_cycle;

pub use curves::{Constant, Cosine, Exponential, Linear, StepDecay};
pub use one_cycle::OneCycle;

/// A learning rate for every training step.
pub trait Schedule {
    /// The learning rate of step `step` (from 0).
    fn lr_at(&self, step: usize) -> f64;

    /// The momentum of step `step`, for schedules that cycle it (one-cycle); `None` leaves the
    /// optimizer's own.
    fn momentum_at(&self, _step: usize) -> Option<f64> {
        None
    }
}

impl<F: Fn(usize) -> f64> Schedule for F {
    fn lr_at(&self, step: usize) -> f64 {
        self(step)
    }
}

impl Schedule for Box<dyn Schedule + Send> {
    fn lr_at(&self, step: usize) -> f64 {
        (**self).lr_at(step)
    }
    fn momentum_at(&self, step: usize) -> Option<f64> {
        (**self).momentum_at(step)
    }
}

/// Schedules one after the other, each for a number of steps and counting its steps from 0; the
/// last one continues past its length.
///
/// ```
/// use minibatch::schedule::{Cosine, Linear, Phases, Schedule};
/// // 10 steps of linear warmup to 0.1, then cosine annealing to 0 over 90 steps.
/// let s = Phases::new().then(10, Linear { from: 0.0, to: 0.1, steps: 10 }).then(90, Cosine { lr: 0.1, t_max: 90, eta_min: 0.0 });
/// assert_eq!((s.lr_at(0), s.lr_at(5), s.lr_at(10)), (0.0, 0.05, 0.1));
/// assert!(s.lr_at(99) < 1e-3);
/// ```
#[derive(Default)]
pub struct Phases {
    phases: Vec<(usize, Box<dyn Schedule + Send>)>,
}

impl Phases {
    /// No phase yet.
    pub fn new() -> Self {
        Phases::default()
    }

    /// Appends `schedule` for `steps` steps.
    pub fn then(mut self, steps: usize, schedule: impl Schedule + Send + 'static) -> Self {
        self.phases.push((steps, Box::new(schedule)));
        self
    }

    fn locate(&self, mut step: usize) -> Option<(&dyn Schedule, usize)> {
        let last = self.phases.len().checked_sub(1)?;
        for (i, (len, s)) in self.phases.iter().enumerate() {
            if step < *len || i == last {
                return Some((s.as_ref(), step));
            }
            step -= len;
        }
        None
    }
}

impl Schedule for Phases {
    fn lr_at(&self, step: usize) -> f64 {
        self.locate(step).map_or(f64::NAN, |(s, i)| s.lr_at(i))
    }
    fn momentum_at(&self, step: usize) -> Option<f64> {
        self.locate(step).and_then(|(s, i)| s.momentum_at(i))
    }
}
