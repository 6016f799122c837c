//! The classic schedules, as PyTorch defines them.

use super::Schedule;

/// The same rate at every step.
#[derive(Debug, Clone, Copy)]
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn lr_at(&self, _: usize) -> f64 {
        self.0
    }
}

/// `lr * gamma^(step / step_size)` (integer division): PyTorch's `StepLR`.
#[derive(Debug, Clone, Copy)]
pub struct StepDecay {
    /// Starting rate.
    pub lr: f64,
    /// Steps between decays.
    pub step_size: usize,
    /// Factor at each decay.
    pub gamma: f64,
}

impl Schedule for StepDecay {
    fn lr_at(&self, step: usize) -> f64 {
        self.lr * self.gamma.powi((step / self.step_size.max(1)) as i32)
    }
}

/// `lr * gamma^step`: PyTorch's `ExponentialLR`.
#[derive(Debug, Clone, Copy)]
pub struct Exponential {
    /// Starting rate.
    pub lr: f64,
    /// Factor per step.
    pub gamma: f64,
}

impl Schedule for Exponential {
    fn lr_at(&self, step: usize) -> f64 {
        self.lr * self.gamma.powi(step as i32)
    }
}

/// `eta_min + (lr - eta_min) * (1 + cos(pi * step / t_max)) / 2`: PyTorch's `CosineAnnealingLR`
/// (past `t_max` the curve rises again, as PyTorch's does).
#[derive(Debug, Clone, Copy)]
pub struct Cosine {
    /// Starting rate.
    pub lr: f64,
    /// Steps to the minimum.
    pub t_max: usize,
    /// The minimum.
    pub eta_min: f64,
}

impl Schedule for Cosine {
    fn lr_at(&self, step: usize) -> f64 {
        let t = step as f64 / self.t_max.max(1) as f64;
        self.eta_min + (self.lr - self.eta_min) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
    }
}

/// From `from` to `to` in a straight line over `steps`, then `to`: linear warmup.
#[derive(Debug, Clone, Copy)]
pub struct Linear {
    /// Rate at step 0.
    pub from: f64,
    /// Rate at `steps` and after.
    pub to: f64,
    /// Length of the ramp.
    pub steps: usize,
}

impl Schedule for Linear {
    fn lr_at(&self, step: usize) -> f64 {
        let t = (step as f64 / self.steps.max(1) as f64).min(1.0);
        self.from + (self.to - self.from) * t
    }
}
