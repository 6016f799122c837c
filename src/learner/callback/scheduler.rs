//! The schedule callback: the one way a learning rate follows a schedule.

use super::{Callback, Ctx, Flow};
use crate::schedule::Schedule;

/// Sets the learning rate (and momentum, if the schedule has one) before each batch from a
/// schedule of the training step.
pub struct ParamScheduler<S> {
    schedule: S,
    start: usize,
}

impl<S: Schedule> ParamScheduler<S> {
    /// Follows `schedule` from training step 0.
    pub fn new(schedule: S) -> Self {
        ParamScheduler { schedule, start: 0 }
    }

    /// Follows `schedule` from training step `start` (its step 0 is that one).
    pub fn starting_at(schedule: S, start: usize) -> Self {
        ParamScheduler { schedule, start }
    }
}

impl<S: Schedule + 'static> Callback for ParamScheduler<S> {
    fn before_batch(&mut self, cx: &mut Ctx) -> Flow {
        let step = cx.state.iter.saturating_sub(self.start);
        cx.opt.set_lr(self.schedule.lr_at(step));
        if let Some(m) = self.schedule.momentum_at(step) {
            cx.opt.set_momentum(m);
        }
        Flow::Continue
    }
}
