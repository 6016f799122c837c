//! Callbacks that keep a run sound: the divergence guard and gradient clipping.

use super::{from_state, Callback, Ctx, Flow};
use crate::error::Result;
use crate::module::Param;
use crate::optim::clip_grad_norm;
use candle_core::Tensor;
use serde::Deserialize;
use serde_json::Value;

/// Stops a diverging run before the step that would make it worse, and puts back the weights
/// of the last good step (kept every `every` steps). A loss diverges when it is not finite, or
/// when it exceeds `factor` (default 10) times the first loss of the run: with LogSumExp the
/// cross-entropy of exploding weights stays finite (at learning rate 100 on MNIST it climbs to
/// about 30,000), so waiting for a NaN would wait for ever. The first loss is the run's, not the
/// resumed process's: it travels in checkpoints.
#[derive(Debug)]
pub struct DivergenceGuard {
    every: usize,
    /// A loss above this many times the first one is divergence.
    pub factor: f64,
    first: Option<f64>,
    snapshot: Vec<(Param, Tensor)>,
    reason: Option<String>,
}

impl DivergenceGuard {
    /// A guard that copies the weights after every `every` steps (1: exactly the last good
    /// ones; more: cheaper, and up to `every - 1` steps older).
    pub fn new(every: usize) -> Self {
        DivergenceGuard { every: every.max(1), factor: 10.0, first: None, snapshot: Vec::new(), reason: None }
    }

    fn keep(&mut self, cx: &Ctx) {
        let params = cx.model.parameters();
        let copies: Option<Vec<Tensor>> = params.iter().map(|p| p.tensor().detach().copy().ok()).collect();
        if let Some(copies) = copies {
            self.snapshot = params.into_iter().zip(copies).collect();
        }
    }
}

impl Callback for DivergenceGuard {
    fn before_fit(&mut self, cx: &mut Ctx) -> Flow {
        self.keep(cx);
        Flow::Continue
    }
    // Judged after the backward, where a data-parallel run has the whole batch's loss: every
    // process then stops at the same step and puts back the same weights.
    fn after_backward(&mut self, cx: &mut Ctx) -> Flow {
        let loss = cx.state.loss;
        let first = *self.first.get_or_insert(loss);
        if loss.is_finite() && loss <= self.factor * first.abs() {
            return Flow::Continue;
        }
        for (p, v) in &self.snapshot {
            let _ = p.set(v);
        }
        let s = cx.state;
        self.reason = Some(format!(
            "diverged: the loss is {loss} at step {} (epoch {}, batch {}); the weights are those of step {}",
            s.iter + 1,
            s.epoch + 1,
            s.batch + 1,
            (s.iter / self.every) * self.every
        ));
        Flow::StopFit
    }
    fn after_step(&mut self, cx: &mut Ctx) -> Flow {
        if cx.state.iter.is_multiple_of(self.every) {
            self.keep(cx);
        }
        Flow::Continue
    }
    fn stop_reason(&self) -> Option<String> {
        self.reason.clone()
    }
    fn diverged(&self) -> bool {
        self.reason.is_some()
    }
    fn state(&self) -> Option<Value> {
        Some(serde_json::json!({ "first_loss": self.first }))
    }
    fn load_state(&mut self, state: &Value) -> Result<()> {
        #[derive(Deserialize)]
        struct S {
            first_loss: Option<f64>,
        }
        self.first = from_state::<S>("DivergenceGuard", state)?.first_loss;
        Ok(())
    }
}

/// Clips the gradients' global norm to `max_norm` after backward.
#[derive(Debug, Clone, Copy)]
pub struct GradientClip(pub f64);

impl Callback for GradientClip {
    fn after_backward(&mut self, cx: &mut Ctx) -> Flow {
        match clip_grad_norm(cx.opt.params(), self.0) {
            Ok(_) => Flow::Continue,
            Err(_) => Flow::SkipBatch,
        }
    }
}
