//! The callback trait, the loop's state and what a hook may tell the loop.

mod freeze;
mod guard;
mod loss_scale;
mod mixup;
mod scheduler;
mod tracker;

pub use freeze::FreezeBody;
pub use guard::{DivergenceGuard, GradientClip};
pub use loss_scale::LossScaler;
pub use mixup::{mix_batch, MixUp};
pub use scheduler::ParamScheduler;
pub use tracker::{EarlyStopping, SaveBest};

use crate::error::Result;
use crate::module::Module;
use crate::optim::Optimizer;
use candle_core::Tensor;
use serde::Serialize;
use serde_json::Value;

/// A callback's state back from JSON; a checkpoint whose state does not fit is an error naming
/// the callback.
pub(crate) fn from_state<T: serde::de::DeserializeOwned>(callback: &str, state: &Value) -> Result<T> {
    serde_json::from_value(state.clone()).map_err(|e| crate::error::Error::BadFile {
        path: std::path::PathBuf::from("state.json"),
        format: "checkpoint state",
        reason: format!("the state of {callback}: {e}"),
    })
}

/// What a hook tells the loop to do next. The variants are ordered by strength, so `a.max(b)`
/// (from `Ord`) is the stronger request: `StopFit` over `StopEpoch` over `SkipBatch` over
/// `Continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Flow {
    /// Go on.
    #[default]
    Continue,
    /// Skip the rest of this batch (no backward, no step).
    SkipBatch,
    /// End this epoch's training now and validate.
    StopEpoch,
    /// End training after this batch (or epoch).
    StopFit,
}

/// Where the loop is, passed to every hook. Read-only for hooks: they change the run through
/// their return value and the optimizer they are handed, never through this.
#[derive(Debug, Clone, Default, Serialize)]
pub struct State {
    /// The current epoch, from 0.
    pub epoch: usize,
    /// Epochs in this `fit`.
    pub epochs: usize,
    /// The batch within the epoch, from 0.
    pub batch: usize,
    /// Training batches per epoch.
    pub batches_per_epoch: usize,
    /// Training steps taken since the first epoch (across resumes).
    pub iter: usize,
    /// Whether the loop is training (false while validating).
    pub training: bool,
    /// The last training batch's loss.
    pub loss: f64,
    /// Whether the last training batch was skipped (a hook returned [`Flow::SkipBatch`]): no
    /// step was taken, and `iter` did not move.
    pub skipped: bool,
    /// Its size.
    pub batch_size: usize,
    /// The learning rate of the last step.
    pub lr: f64,
    /// Mean training loss of the epoch so far (batch-size weighted).
    pub train_loss: f64,
    /// The sum behind that mean (each batch's loss times its size) and its examples: what a
    /// checkpoint keeps, so that a resumed epoch's mean has the bits of one never interrupted.
    pub train_loss_sum: f64,
    /// Examples trained so far this epoch (skipped batches not counted).
    pub train_examples: usize,
    /// Validation loss and metrics of the last epoch: `("valid_loss", ..), ("accuracy", ..)`.
    pub metrics: Vec<(String, f64)>,
    /// Examples in the last validation.
    pub valid_count: usize,
    /// Every name [`metric`](State::metric) answers in this run (`train_loss`, `valid_loss` and
    /// the learner's metrics), known from `before_fit` on: a callback watching a metric checks
    /// its name there.
    pub metric_names: Vec<String>,
}

impl State {
    /// Whether the current epoch's every batch has trained: `false` for one a callback
    /// (`StopFit`, `StopEpoch`) or Ctrl-C ended part-way, whose figures are of the batches it ran.
    pub fn epoch_complete(&self) -> bool {
        self.batch >= self.batches_per_epoch
    }

    /// The last epoch's value of a metric (or `valid_loss`, `train_loss`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        if name == "train_loss" {
            return Some(self.train_loss);
        }
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// An error unless this run produces the metric `name` (what a callback watching a metric
    /// says in `before_fit`, rather than waiting for ever on a misspelt name).
    pub fn check_metric(&self, watcher: &str, name: &str) -> std::result::Result<(), String> {
        if self.metric_names.iter().any(|n| n == name) {
            return Ok(());
        }
        Err(format!(
            "{watcher} watches `{name}`, which this run does not produce (it has {})",
            self.metric_names.join(", ")
        ))
    }
}

/// Any `'static` value as [`std::any::Any`]: what lets [`Learner::callback`](super::Learner::callback)
/// find a callback by its type. Implemented for every type; nothing to write.
pub trait AsAny {
    /// `self` as `Any`.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A callback's saved state, by the callback's [`name`](Callback::name): what a checkpoint
/// stores so that a resumed run behaves as the uninterrupted one.
pub type CallbackState = (String, Value);

/// What a hook can see and touch: the loop's state, the model (to read or save its weights) and
/// the optimizer (to set its rate, clip gradients...). `preds` and `loss` are there from
/// `after_forward` and `after_loss` on.
pub struct Ctx<'a> {
    /// Where the loop is.
    pub state: &'a State,
    /// The model.
    pub model: &'a dyn Module,
    /// The optimizer.
    pub opt: &'a mut dyn Optimizer,
    /// This batch's predictions.
    pub preds: Option<&'a Tensor>,
    /// This batch's loss.
    pub loss: Option<&'a Tensor>,
}

/// Hooks into the training loop (lesson 10's callbacks). Every hook does nothing by default and
/// returns [`Flow`]: a callback implements the few it needs.
///
/// ```
/// use minibatch::learner::{Callback, Ctx, Flow};
/// /// Stops after `n` batches.
/// struct StopAfter(usize);
/// impl Callback for StopAfter {
///     fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
///         if cx.state.iter >= self.0 { Flow::StopFit } else { Flow::Continue }
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait Callback: AsAny {
    /// Before the first epoch.
    fn before_fit(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// After the last epoch (also after a stop).
    fn after_fit(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// At the start of each epoch.
    fn before_epoch(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// At the end of each epoch, validation done (`state.metrics` holds its figures).
    fn after_epoch(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// Before the training part of an epoch.
    fn before_train(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// After the training part of an epoch.
    fn after_train(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// Before validation.
    fn before_validate(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// After validation.
    fn after_validate(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// Before each training batch (set the learning rate here).
    fn before_batch(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// The training batch as the model will see it, after `before_batch`: a callback that
    /// changes the data (lesson 10b's [`MixUp`]) returns its own inputs and targets. Each
    /// callback gets what the one before it returned; the default returns the batch unchanged.
    fn transform_batch(&mut self, state: &State, batch: (Tensor, Tensor)) -> Result<(Tensor, Tensor)> {
        Ok(batch)
    }
    /// After the forward pass (`cx.preds`).
    fn after_forward(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// After the loss (`cx.loss`; `state.loss` holds its value: in a data-parallel run, this
    /// process's own).
    fn after_loss(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// The factor the loss is multiplied by before the backward (1 by default; the product of
    /// every callback's). [`LossScaler`](super::LossScaler)'s dynamic loss scale; a callback that
    /// returns another factor must divide the gradients by it again in `after_backward`.
    fn loss_scale(&mut self) -> f64 {
        1.0
    }

    /// After backward: the gradients are there (clip them here). In a data-parallel run they are
    /// already averaged over the processes, and `state.loss` is the whole batch's, so what a hook
    /// decides from them is decided alike on every process (and a request one process makes
    /// alone still holds for all). `StopFit` or `StopEpoch` from here ends training before the
    /// step, as `SkipBatch` skips it.
    fn after_backward(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// After the optimizer's step.
    fn after_step(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// At the end of each training batch.
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// After `after_epoch` (and so also after an interrupted epoch), with the state of every
    /// callback that has one: where a callback that saves the run ([`Checkpoint`](super::Checkpoint))
    /// does so, once every other callback has seen the epoch.
    fn checkpoint(&mut self, cx: &mut Ctx, states: &[CallbackState]) -> Flow {
        Flow::Continue
    }
    /// Why this callback stopped training, if it did (read after `fit`).
    fn stop_reason(&self) -> Option<String> {
        None
    }
    /// Whether this callback stopped training because the run diverged (the program then exits
    /// with a failure status).
    fn diverged(&self) -> bool {
        false
    }
    /// The name its state is saved under: the type's name by default.
    fn name(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }
    /// What must survive a checkpoint for a resumed run to behave as the uninterrupted one (a
    /// best score, a patience count, a reference loss); `None` for a callback without such state.
    fn state(&self) -> Option<Value> {
        None
    }
    /// Takes back what [`state`](Callback::state) returned, when a run resumes.
    fn load_state(&mut self, state: &Value) -> Result<()> {
        Ok(())
    }
    /// What failed, if this callback stopped training because it could not do its job (a log
    /// or checkpoint that could not be written): `fit` then returns an error rather than a report.
    fn failure(&self) -> Option<String> {
        None
    }
}
