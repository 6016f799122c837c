//! The callbacks that ship: early stopping, save-best, the divergence guard, schedules and
//! gradient clipping.

use super::{Callback, Ctx, Flow};
use crate::error::{Error, Result};
use crate::module::{save_state, Param};
use crate::optim::clip_grad_norm;
use crate::schedule::Schedule;
use candle_core::Tensor;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// A callback's saved state as JSON.
fn to_state(state: impl Serialize) -> Option<Value> {
    serde_json::to_value(state).ok()
}

/// A callback's state back from JSON; a checkpoint whose state does not fit is an error naming
/// the callback.
fn from_state<T: DeserializeOwned>(callback: &str, state: &Value) -> Result<T> {
    serde_json::from_value(state.clone()).map_err(|e| Error::BadFile {
        path: PathBuf::from("state.json"),
        format: "checkpoint state",
        reason: format!("the state of {callback}: {e}"),
    })
}

/// Checks in `before_fit` that the run produces the metric a callback watches; on failure, keeps
/// the message and asks the loop to stop.
fn check_monitor(cx: &Ctx, watcher: &str, monitor: &str, error: &mut Option<String>) -> Flow {
    match cx.state.check_metric(watcher, monitor) {
        Ok(()) => Flow::Continue,
        Err(e) => {
            *error = Some(e);
            Flow::StopFit
        }
    }
}

/// Whether `new` improves on `best` by more than `min_delta` (lower is better for losses,
/// higher for everything else).
fn improves(metric: &str, new: f64, best: Option<f64>, min_delta: f64) -> bool {
    match best {
        None => new.is_finite(),
        Some(b) if metric.ends_with("loss") => new < b - min_delta,
        Some(b) => new > b + min_delta,
    }
}

/// Stops training when `monitor` (`valid_loss`, `accuracy`...) has not improved by more than
/// `min_delta` for `patience` epochs.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    /// The figure watched.
    pub monitor: String,
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub min_delta: f64,
    /// The best value so far.
    pub best: Option<f64>,
    /// Epochs since it improved.
    pub waited: usize,
    reason: Option<String>,
    error: Option<String>,
}

/// What of [`EarlyStopping`] a checkpoint keeps.
#[derive(Serialize, Deserialize)]
struct EarlyStoppingState {
    best: Option<f64>,
    waited: usize,
}

impl EarlyStopping {
    /// Watches `monitor` with the given patience and a `min_delta` of 0.
    pub fn new(monitor: &str, patience: usize) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            patience,
            min_delta: 0.0,
            best: None,
            waited: 0,
            reason: None,
            error: None,
        }
    }

    /// The same with the smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }
}

impl Callback for EarlyStopping {
    fn before_fit(&mut self, cx: &mut Ctx) -> Flow {
        check_monitor(cx, "EarlyStopping", &self.monitor, &mut self.error)
    }
    fn after_epoch(&mut self, cx: &mut Ctx) -> Flow {
        let Some(v) = cx.state.metric(&self.monitor) else { return Flow::Continue };
        if improves(&self.monitor, v, self.best, self.min_delta) {
            self.best = Some(v);
            self.waited = 0;
            return Flow::Continue;
        }
        self.waited += 1;
        if self.waited >= self.patience {
            let best = self.best.unwrap_or(f64::NAN);
            self.reason = Some(format!(
                "early stopping: {} has not improved on {best:.4} for {} epochs",
                self.monitor, self.waited
            ));
            return Flow::StopFit;
        }
        Flow::Continue
    }
    fn stop_reason(&self) -> Option<String> {
        self.reason.clone()
    }
    fn failure(&self) -> Option<String> {
        self.error.clone()
    }
    fn state(&self) -> Option<Value> {
        to_state(EarlyStoppingState { best: self.best, waited: self.waited })
    }
    fn load_state(&mut self, state: &Value) -> Result<()> {
        let s: EarlyStoppingState = from_state("EarlyStopping", state)?;
        (self.best, self.waited) = (s.best, s.waited);
        Ok(())
    }
}

/// Saves the model's weights (safetensors) whenever `monitor` improves.
#[derive(Debug, Clone)]
pub struct SaveBest {
    /// The figure watched.
    pub monitor: String,
    /// Where the weights go.
    pub path: PathBuf,
    /// The best value so far.
    pub best: Option<f64>,
    /// The epoch of the best value.
    pub best_epoch: Option<usize>,
    error: Option<String>,
}

impl SaveBest {
    /// Saves to `path` when `monitor` improves.
    pub fn new(monitor: &str, path: impl Into<PathBuf>) -> Self {
        SaveBest { monitor: monitor.into(), path: path.into(), best: None, best_epoch: None, error: None }
    }
}

/// What of [`SaveBest`] a checkpoint keeps.
#[derive(Serialize, Deserialize)]
struct SaveBestState {
    best: Option<f64>,
    best_epoch: Option<usize>,
}

impl Callback for SaveBest {
    fn before_fit(&mut self, cx: &mut Ctx) -> Flow {
        check_monitor(cx, "SaveBest", &self.monitor, &mut self.error)
    }
    fn after_epoch(&mut self, cx: &mut Ctx) -> Flow {
        let Some(v) = cx.state.metric(&self.monitor) else { return Flow::Continue };
        if improves(&self.monitor, v, self.best, 0.0) {
            if let Err(e) = save_state(cx.model, &self.path) {
                self.error = Some(format!("saving the best model failed: {e}"));
                return Flow::StopFit;
            }
            self.best = Some(v);
            self.best_epoch = Some(cx.state.epoch);
        }
        Flow::Continue
    }
    fn failure(&self) -> Option<String> {
        self.error.clone()
    }
    fn state(&self) -> Option<Value> {
        to_state(SaveBestState { best: self.best, best_epoch: self.best_epoch })
    }
    fn load_state(&mut self, state: &Value) -> Result<()> {
        let s: SaveBestState = from_state("SaveBest", state)?;
        (self.best, self.best_epoch) = (s.best, s.best_epoch);
        Ok(())
    }
}

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
