//! The notebook's `fit` and `evaluate`, on the one training loop (`learner/training_loop.rs`).

use crate::error::Result;
use crate::learner::batches::{NoBatches, Passes};
use crate::learner::training_loop::{validate, Parts};
use crate::learner::{Accuracy, Callback, CallbackState, Loader, Metric, Recorder, State};
use crate::module::Module;
use crate::optim::Optimizer;
use candle_core::Tensor;
use serde::Serialize;

/// A loss or metric averaged over a data set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evaluation {
    /// Mean loss per example.
    pub loss: f64,
    /// Fraction of examples classified correctly.
    pub accuracy: f64,
    /// Examples seen.
    pub count: usize,
}

/// What one epoch of [`fit`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EpochStats {
    /// The epoch, counted from 1.
    pub epoch: usize,
    /// Mean training loss per example over the epoch (the model changed during it, so this is
    /// the loss of a moving model, usually above its end-of-epoch loss).
    pub train_loss: f64,
    /// Mean validation loss per example at the end of the epoch.
    pub valid_loss: f64,
    /// Validation accuracy at the end of the epoch.
    pub valid_accuracy: f64,
    /// Wall-clock seconds of the epoch, training and validation.
    pub seconds: f64,
    /// Whether every batch of the epoch trained (`false` for one a callback or Ctrl-C ended
    /// part-way: its figures are of the batches it ran).
    pub complete: bool,
}

/// The loop's pieces for a model, loss and optimizer borrowed from the caller, with accuracy as
/// the metric and no callback but the recorder and those pushed here: what the notebook's
/// functions run.
pub(crate) struct Borrowed {
    pub callbacks: Vec<Box<dyn Callback>>,
    metrics: Vec<Box<dyn Metric>>,
    recorder: Recorder,
    state: State,
    restored: Vec<CallbackState>,
}

impl Borrowed {
    pub fn new() -> Self {
        Borrowed {
            callbacks: Vec::new(),
            metrics: vec![Box::new(Accuracy)],
            recorder: Recorder::default(),
            state: State::default(),
            restored: Vec::new(),
        }
    }

    pub fn parts<'a>(
        &'a mut self,
        model: &'a dyn Module,
        loss_fn: &'a dyn Fn(&Tensor, &Tensor) -> Result<Tensor>,
        opt: &'a mut dyn Optimizer,
        train_dl: &'a dyn Loader,
        valid_dl: &'a dyn Loader,
    ) -> Parts<'a> {
        Parts {
            model,
            loss_fn,
            opt,
            train_dl,
            valid_dl,
            metrics: &self.metrics,
            callbacks: &mut self.callbacks,
            recorder: &mut self.recorder,
            state: &mut self.state,
            restored: &mut self.restored,
            collective: None,
            stop_agreed: false,
            precision: crate::precision::current(),
        }
    }
}

/// Loss and accuracy of `model` on every batch of `dl`, in evaluation mode and without recording
/// gradients: the training loop's own validation.
///
/// The averages are weighted by batch size: each batch's mean counts as many times as it has
/// examples. The notebook sums the batch means and divides by the number of batches, which is
/// right only when every batch has the same size; with 10,000 validation images in batches of 128
/// the last batch has 16, and unweighted it would count as much as a full one.
pub fn evaluate<'a, L, T>(model: &dyn Module, loss_fn: L, dl: &'a T) -> Result<Evaluation>
where
    L: Fn(&Tensor, &Tensor) -> Result<Tensor>,
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
    T: ?Sized,
{
    let mut opt = NoStep;
    let mut b = Borrowed::new();
    let metrics = validate(&mut b.parts(model, &loss_fn, &mut opt, &NoBatches, &Passes(dl)))?;
    let value = |name: &str| metrics.iter().find(|(n, _)| n == name).map_or(f64::NAN, |(_, v)| *v);
    Ok(Evaluation { loss: value("valid_loss"), accuracy: value("accuracy"), count: b.state.valid_count })
}

/// Trains for `epochs` epochs, validating after each, and returns each epoch's figures: the
/// notebook's `fit`, in three lines. It runs the loop every [`Learner`](crate::learner::Learner)
/// runs, with no callback: the same steps, the same numbers. Any model is taken as it is: `&model`
/// of a struct, `&boxed` of a `Box<dyn Module>`, or a `&dyn Module`; the optimizer likewise.
///
/// ```no_run
/// use minibatch::{cross_entropy, fit, get_dls, get_model, Mnist};
/// let data = Mnist::load("data/mnist")?;
/// let (train_dl, valid_dl) = get_dls(data.train, data.valid, 64)?;
/// let (model, mut opt) = get_model(784, 50, 10, 0.5, 0)?;
/// let stats = fit(5, &model, cross_entropy, &mut opt, &train_dl, &valid_dl)?;
/// assert!(stats[4].valid_accuracy > 0.96);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn fit<'a, 'b, L, T, V>(
    epochs: usize,
    model: &dyn Module,
    loss_fn: L,
    opt: &mut dyn Optimizer,
    train_dl: &'a T,
    valid_dl: &'b V,
) -> Result<Vec<EpochStats>>
where
    L: Fn(&Tensor, &Tensor) -> Result<Tensor>,
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
    &'b V: IntoIterator<Item = Result<(Tensor, Tensor)>>,
    T: ?Sized,
    V: ?Sized,
{
    let mut b = Borrowed::new();
    crate::learner::training_loop::fit(
        &mut b.parts(model, &loss_fn, opt, &Passes(train_dl), &Passes(valid_dl)),
        epochs,
    )?;
    let stats = b.recorder.epochs.iter().map(|e| {
        let value = |name: &str| e.metrics.iter().find(|(n, _)| n == name).map_or(f64::NAN, |(_, v)| *v);
        EpochStats {
            epoch: e.epoch + 1,
            train_loss: e.train_loss,
            valid_loss: value("valid_loss"),
            valid_accuracy: value("accuracy"),
            seconds: e.seconds,
            complete: e.complete,
        }
    });
    Ok(stats.collect())
}

/// The optimizer of a loop that only validates.
struct NoStep;

impl Optimizer for NoStep {
    fn step(&mut self) -> Result<()> {
        Ok(())
    }
    fn params(&self) -> &[crate::module::Param] {
        &[]
    }
}
