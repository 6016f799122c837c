//! The Learner: the notebook's `fit` grown into fastai's training loop, open to extension through
//! callbacks (lesson 10), with metrics, progress, logs, plots and checkpoints.
//!
//! ```
//! use minibatch::learner::{Callback, Ctx, Flow, Learner};
//! use minibatch::{cross_entropy, get_dls, get_model, Mnist};
//! # let data = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))?;
//! # let (train, valid) = (data.train.slice(0, 2000)?, data.valid.slice(0, 500)?);
//! let (train_dl, valid_dl) = get_dls(train, valid, 64)?;
//! let (model, opt) = get_model(784, 50, 10, 0.5, 0)?;
//! let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl);
//! learn.fit(2)?;
//! assert_eq!(learn.recorder.epochs.len(), 2);
//! assert!(learn.state.metric("accuracy").unwrap() > 0.8);
//! # Ok::<(), minibatch::Error>(())
//! ```

pub(crate) mod batches;
mod callback;
mod checkpoint;
mod log;
mod metrics;
mod progress;
mod recorder;
mod summary;
pub(crate) mod training_loop;

pub use batches::Loader;
pub use callback::{
    mix_batch, AsAny, Callback, CallbackState, Ctx, DivergenceGuard, EarlyStopping, Flow, FreezeBody, GradientClip,
    LossScaler, MixUp, ParamScheduler, SaveBest, State,
};
pub use checkpoint::{check_position, latest_checkpoint, parse_checkpoint_state, Checkpoint, CheckpointInfo};
#[cfg(feature = "plot")]
pub(crate) use log::LOG_FORMAT;
pub use log::{parse_log, JsonlLogger};
pub use metrics::{Accuracy, Metric, TopK};
pub use progress::Progress;
pub use recorder::{BatchRecord, EpochRecord, Recorder};
pub use summary::summary;

use crate::error::Result;
use crate::module::{no_grad, Module};
use crate::optim::Optimizer;
use candle_core::Tensor;
use std::sync::atomic::{AtomicBool, Ordering};

/// A loss function of predictions and targets.
pub type LossFn = Box<dyn Fn(&Tensor, &Tensor) -> Result<Tensor>>;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks every running `fit` to stop after its current batch (what Ctrl-C does in the program:
/// the [`Checkpoint`] callback saves, then the loop ends cleanly).
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How a `fit` ended.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Epochs completed, in total (across resumes).
    pub epochs_done: usize,
    /// Why training stopped early, if it did (a callback's reason).
    pub stopped: Option<String>,
    /// Whether it stopped because the run diverged ([`DivergenceGuard`]): a failed run, whose
    /// weights are the last good ones.
    pub diverged: bool,
}

/// The model, its loss, its optimizer, its data, its metrics and its callbacks.
pub struct Learner {
    /// The model.
    pub model: Box<dyn Module>,
    /// The loss function.
    pub loss_fn: LossFn,
    /// The optimizer.
    pub opt: Box<dyn Optimizer>,
    /// Training batches.
    pub train_dl: Box<dyn Loader>,
    /// Validation batches.
    pub valid_dl: Box<dyn Loader>,
    /// Metrics computed at each validation (accuracy by default).
    pub metrics: Vec<Box<dyn Metric>>,
    /// The callbacks, called in order at each hook.
    pub callbacks: Vec<Box<dyn Callback>>,
    /// Every batch's loss and rate, every epoch's figures.
    pub recorder: Recorder,
    /// Where training is: `fit` continues from here (epoch and batch), so a learner restored
    /// from a checkpoint resumes where it stopped.
    pub state: State,
    /// Callback states read from a checkpoint, handed to the callbacks when `fit` starts.
    restored: Vec<CallbackState>,
    /// The other processes of a data-parallel run.
    collective: Option<Box<dyn crate::distributed::Collective>>,
    /// The precision of the layers' products (see [`Learner::precision`]); `None`: the caller's.
    precision: Option<crate::precision::Precision>,
}

impl Learner {
    /// A learner with accuracy as its metric and no callback but the recorder.
    pub fn new(
        model: impl Module + 'static,
        loss_fn: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + 'static,
        opt: impl Optimizer + 'static,
        train_dl: impl Loader + 'static,
        valid_dl: impl Loader + 'static,
    ) -> Self {
        Learner {
            model: Box::new(model),
            loss_fn: Box::new(loss_fn),
            opt: Box::new(opt),
            train_dl: Box::new(train_dl),
            valid_dl: Box::new(valid_dl),
            metrics: vec![Box::new(Accuracy)],
            callbacks: Vec::new(),
            recorder: Recorder::default(),
            state: State::default(),
            restored: Vec::new(),
            collective: None,
            precision: None,
        }
    }

    /// The learner with its layers' products in `precision` while it trains and validates
    /// (lesson 10c's mixed precision; see [`Precision`](crate::precision::Precision)). The parameters, the
    /// optimizer's update and the loss stay `f32`: with [`Precision::Bf16`](crate::precision::Precision::Bf16)
    /// the fp32 weights are the master copy that each product rounds to bf16. Without this call
    /// a learner trains in the precision it is called in (fp32, or that of an enclosing
    /// [`autocast`](crate::autocast)), or in its checkpoint's after
    /// [`load_checkpoint`](Learner::load_checkpoint).
    ///
    /// ```
    /// # use minibatch::learner::Learner;
    /// # use minibatch::{cross_entropy, get_dls, get_model, Mnist, Precision};
    /// # let data = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))?;
    /// # let (train_dl, valid_dl) = get_dls(data.train.slice(0, 640)?, data.valid.slice(0, 200)?, 64)?;
    /// # let (model, opt) = get_model(784, 50, 10, 0.5, 0)?;
    /// let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl).precision(Precision::Bf16);
    /// learn.fit(1)?;
    /// assert_eq!(learn.model.parameters()[0].tensor().dtype(), minibatch::candle_core::DType::F32);
    /// # Ok::<(), minibatch::Error>(())
    /// ```
    pub fn precision(mut self, precision: crate::precision::Precision) -> Self {
        self.precision = Some(precision);
        self
    }

    /// The precision the learner's products run in, called here (see [`Learner::precision`]).
    pub fn products_precision(&self) -> crate::precision::Precision {
        self.precision.unwrap_or_else(crate::precision::current)
    }

    /// Trains data-parallel with the other processes of `collective` (PyTorch's
    /// DistributedDataParallel): the model is copied from process 0 when `fit` starts, the
    /// gradients are averaged over the processes after every backward (so every process takes the
    /// same step and its optimizer keeps the same state), the batch's loss is the mean over all
    /// processes, batch norm's statistics are copied from process 0 before each validation, and
    /// validation's loss and metrics are summed over the processes' shards and their counts: the
    /// exact means over the whole validation set. Give each process its share of the training data
    /// ([`DistributedSampler`](crate::DistributedSampler), with `drop_last` or equal shares, so that
    /// all run the same number of batches) and of the validation data
    /// ([`ShardSampler`](crate::data::ShardSampler)). Every process must run `fit` alike; one that
    /// fails must [`abort`](crate::distributed::Collective::abort) them all.
    pub fn data_parallel(mut self, collective: impl crate::distributed::Collective + 'static) -> Self {
        self.collective = Some(Box::new(collective));
        self
    }

    /// The collective of a data-parallel learner.
    pub fn collective(&self) -> Option<&dyn crate::distributed::Collective> {
        self.collective.as_deref()
    }

    /// Adds a callback (called after those added before it).
    pub fn add_callback(&mut self, cb: impl Callback + 'static) {
        self.callbacks.push(Box::new(cb));
    }

    /// The learner with `cb` added.
    pub fn with_callback(mut self, cb: impl Callback + 'static) -> Self {
        self.add_callback(cb);
        self
    }

    /// Replaces the metrics.
    pub fn with_metrics(mut self, metrics: Vec<Box<dyn Metric>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Trains `epochs` more epochs, validating after each, as fastai's `fit(n)`: called twice
    /// with 2, it trains 4. (An epoch stopped part-way, as a resumed checkpoint's, counts as one
    /// when finished.)
    pub fn fit(&mut self, epochs: usize) -> Result<FitReport> {
        self.fit_until(self.state.epoch.saturating_add(epochs))
    }

    /// Trains until `epochs` epochs are done in total, from where [`state`](Learner::state) is
    /// (what a run resumed from a checkpoint wants: the rest of its planned epochs).
    pub fn fit_until(&mut self, epochs: usize) -> Result<FitReport> {
        training_loop::fit(&mut self.parts(), epochs)
    }

    /// `epochs` more epochs with the one-cycle policy peaking at `max_lr` over their steps (rate
    /// and momentum, as fastai's `fit_one_cycle`). A `max_lr` that is not a finite number above 0
    /// is an error, as an optimizer's rate is. As in fastai, the momentum is cycled (0.95, 0.85,
    /// 0.95) whatever the optimizer was built with, and the optimizer keeps the schedule's last
    /// rate and momentum afterwards; a later `fit` trains at those.
    pub fn fit_one_cycle(&mut self, epochs: usize, max_lr: f64) -> Result<FitReport> {
        if !(max_lr.is_finite() && max_lr > 0.0) {
            return Err(crate::error::Error::invalid("max_lr", "a finite number above 0", max_lr));
        }
        let steps = epochs * self.train_dl.len();
        let start = self.state.iter;
        let one_cycle = crate::schedule::OneCycle::new(max_lr, steps.max(1));
        // First, so that every other callback's hooks see this step's rate and momentum.
        self.callbacks.insert(0, Box::new(ParamScheduler::starting_at(one_cycle, start)));
        let report = self.fit(epochs);
        self.callbacks.remove(0);
        report
    }

    /// The first callback of type `T`, to read its state after `fit` (an `EarlyStopping`'s best
    /// score, a user's own record).
    ///
    /// ```
    /// # use minibatch::learner::{EarlyStopping, Learner};
    /// # use minibatch::{cross_entropy, get_dls, get_model, Mnist};
    /// # let data = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))?;
    /// # let (train_dl, valid_dl) = get_dls(data.train.slice(0, 640)?, data.valid.slice(0, 200)?, 64)?;
    /// # let (model, opt) = get_model(784, 50, 10, 0.5, 0)?;
    /// let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl)
    ///     .with_callback(EarlyStopping::new("valid_loss", 3));
    /// learn.fit(2)?;
    /// let best = learn.callback::<EarlyStopping>().unwrap().best.unwrap();
    /// assert_eq!(best, learn.recorder.epochs.iter().map(|e| e.metrics[0].1).fold(f64::INFINITY, f64::min));
    /// # Ok::<(), minibatch::Error>(())
    /// ```
    pub fn callback<T: Callback + 'static>(&self) -> Option<&T> {
        // `(**c)`: the callback inside the box, not the box (which is `Any` too).
        self.callbacks.iter().find_map(|c| (**c).as_any().downcast_ref::<T>())
    }

    /// Loss and metrics on the validation set (evaluation mode, no gradients, batch-size
    /// weighted, the learner's precision), as `("valid_loss", ..)` then each metric.
    pub fn validate(&mut self) -> Result<Vec<(String, f64)>> {
        training_loop::validate(&mut self.parts())
    }

    /// The model's output for `x`, in evaluation mode, without recording gradients and in the
    /// learner's precision.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.model.eval();
        let out = crate::precision::autocast(self.products_precision(), || no_grad(|| self.model.forward(x)));
        self.model.train();
        out
    }

    /// The model's layers with their output shapes for an input of `input_shape` (batch first)
    /// and parameter counts, like fastai's `summary`.
    pub fn summary(&self, input_shape: &[usize]) -> Result<String> {
        summary(self.model.as_ref(), input_shape)
    }
}
