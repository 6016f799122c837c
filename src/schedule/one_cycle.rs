//! The one-cycle policy (Smith; fastai's `fit_one_cycle`), as PyTorch's `OneCycleLR` computes it.

use super::Schedule;

/// Learning rate up from `max_lr / div_factor` to `max_lr` over the first `pct_start` of the
/// steps, then down to `max_lr / div_factor / final_div_factor`, along cosines; momentum the
/// other way, from `max_momentum` down to `base_momentum` and back.
///
/// ```
/// use minibatch::schedule::{OneCycle, Schedule};
/// let s = OneCycle::new(0.1, 100);
/// assert!((s.lr_at(0) - 0.004).abs() < 1e-12 && s.lr_at(29) == 0.1);
/// assert_eq!((s.momentum_at(0), s.momentum_at(29)), (Some(0.95), Some(0.85)));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct OneCycle {
    /// The peak rate.
    pub max_lr: f64,
    /// Steps in the whole cycle.
    pub total_steps: usize,
    /// Fraction of the steps spent rising.
    pub pct_start: f64,
    /// `max_lr / div_factor` is the starting rate.
    pub div_factor: f64,
    /// The final rate is the starting rate over this.
    pub final_div_factor: f64,
    /// Momentum at the peak rate.
    pub base_momentum: f64,
    /// Momentum at the start and the end.
    pub max_momentum: f64,
}

impl OneCycle {
    /// PyTorch's defaults: `pct_start` 0.3, `div_factor` 25, `final_div_factor` 1e4, momentum
    /// between 0.85 and 0.95.
    pub fn new(max_lr: f64, total_steps: usize) -> Self {
        OneCycle {
            max_lr,
            total_steps,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// The phase of `step`: (start step, end step, value at start, value at end) for the rate
    /// (`lr = true`) or the momentum.
    fn phase(&self, step: usize, lr: bool) -> (f64, f64, f64, f64) {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let up_end = self.pct_start * self.total_steps as f64 - 1.0;
        let last = self.total_steps as f64 - 1.0;
        let (m_hi, m_lo) = (self.max_momentum, self.base_momentum);
        if step as f64 <= up_end {
            if lr {
                (0.0, up_end, initial, self.max_lr)
            } else {
                (0.0, up_end, m_hi, m_lo)
            }
        } else if lr {
            (up_end, last, self.max_lr, min)
        } else {
            (up_end, last, m_lo, m_hi)
        }
    }

    fn value(&self, step: usize, lr: bool) -> f64 {
        let (start, end, from, to) = self.phase(step, lr);
        let pct = (step as f64 - start) / (end - start);
        to + (from - to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
    }
}

impl Schedule for OneCycle {
    fn lr_at(&self, step: usize) -> f64 {
        self.value(step, true)
    }
    fn momentum_at(&self, step: usize) -> Option<f64> {
        Some(self.value(step, false))
    }
}
