//! Callbacks that watch a metric: early stopping and saving the best weights (fastai's
//! `TrackerCallback`s).

use super::{from_state, Callback, Ctx, Flow};
use crate::error::Result;
use crate::module::save_state;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// A callback's saved state as JSON.
fn to_state(state: impl Serialize) -> Option<Value> {
    serde_json::to_value(state).ok()
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
