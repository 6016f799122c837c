//! The training loop with validation.

use crate::error::Result;
use crate::loss::accuracy;
use crate::module::{no_grad, Module};
use crate::optim::Optimizer;
use candle_core::Tensor;
use serde::Serialize;
use std::time::Instant;

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
}

/// One epoch of training: for each batch, the four steps the loop repeats: compute the
/// predictions, compute the loss, compute the gradients (backward), update the parameters (step)
/// and zero the gradients. Returns the mean loss per example.
pub fn train_epoch<'a, M, L, O, T>(model: &M, loss_fn: L, opt: &mut O, train_dl: &'a T) -> Result<f64>
where
    M: Module + ?Sized,
    L: Fn(&Tensor, &Tensor) -> Result<Tensor>,
    O: Optimizer,
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
{
    model.train();
    let (mut total, mut count) = (0.0, 0usize);
    for batch in train_dl {
        let (xb, yb) = batch?;
        let loss = loss_fn(&model.forward(&xb)?, &yb)?;
        opt.backward_step(&loss)?;
        let n = batch_len(&xb);
        total += loss.to_scalar::<f32>()? as f64 * n as f64;
        count += n;
    }
    Ok(if count == 0 { f64::NAN } else { total / count as f64 })
}

/// Loss and accuracy of `model` on every batch of `dl`, in evaluation mode and without recording
/// gradients.
///
/// The averages are weighted by batch size: each batch's mean counts as many times as it has
/// examples. The notebook sums the batch means and divides by the number of batches, which is
/// right only when every batch has the same size; with 10,000 validation images in batches of 128
/// the last batch has 16, and unweighted it would count as much as a full one.
pub fn evaluate<'a, M, L, T>(model: &M, loss_fn: L, dl: &'a T) -> Result<Evaluation>
where
    M: Module + ?Sized,
    L: Fn(&Tensor, &Tensor) -> Result<Tensor>,
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
{
    model.eval();
    let (mut loss, mut acc, mut count) = (0.0, 0.0, 0usize);
    no_grad(|| {
        for batch in dl {
            let (xb, yb) = batch?;
            let out = model.forward(&xb)?;
            let n = batch_len(&xb) as f64;
            loss += loss_fn(&out, &yb)?.to_scalar::<f32>()? as f64 * n;
            acc += accuracy(&out, &yb)?.to_scalar::<f32>()? as f64 * n;
            count += batch_len(&xb);
        }
        Ok::<_, crate::Error>(())
    })?;
    let c = count as f64;
    Ok(Evaluation { loss: loss / c, accuracy: acc / c, count })
}

/// Trains for `epochs` epochs, validating after each, and returns each epoch's figures: the
/// notebook's `fit`.
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
pub fn fit<'a, 'b, M, L, O, T, V>(
    epochs: usize,
    model: &M,
    loss_fn: L,
    opt: &mut O,
    train_dl: &'a T,
    valid_dl: &'b V,
) -> Result<Vec<EpochStats>>
where
    M: Module + ?Sized,
    L: Fn(&Tensor, &Tensor) -> Result<Tensor> + Copy,
    O: Optimizer,
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
    &'b V: IntoIterator<Item = Result<(Tensor, Tensor)>>,
{
    (1..=epochs)
        .map(|epoch| {
            let start = Instant::now();
            let train_loss = train_epoch(model, loss_fn, opt, train_dl)?;
            let valid = evaluate(model, loss_fn, valid_dl)?;
            let seconds = start.elapsed().as_secs_f64();
            Ok(EpochStats { epoch, train_loss, valid_loss: valid.loss, valid_accuracy: valid.accuracy, seconds })
        })
        .collect()
}

/// The number of examples in a batch: its first dimension (1 for a scalar input).
pub(crate) fn batch_len(x: &Tensor) -> usize {
    x.dims().first().copied().unwrap_or(1)
}
