//! The Recorder: every batch's loss and rate, every epoch's figures.

use super::{Callback, Ctx, Flow};
use serde::Serialize;
use std::time::Instant;

/// One training step (a skipped batch, which takes none, is not recorded).
#[derive(Debug, Clone, Serialize)]
pub struct BatchRecord {
    /// Training step, from 0.
    pub iter: usize,
    /// Epoch, from 0.
    pub epoch: usize,
    /// The batch's loss.
    pub loss: f64,
    /// The learning rate it trained with.
    pub lr: f64,
}

/// One epoch.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Training steps done by its end.
    pub iter: usize,
    /// Mean training loss (batch-size weighted).
    pub train_loss: f64,
    /// Validation loss and metrics.
    pub metrics: Vec<(String, f64)>,
    /// Wall-clock seconds, training and validation.
    pub seconds: f64,
    /// Whether every batch of the epoch trained: `false` for an epoch that a callback
    /// (`StopFit`, `StopEpoch`) or Ctrl-C ended part-way, whose training loss is of the batches it
    /// ran and whose validation is of the weights it reached.
    pub complete: bool,
}

/// Records the loss and learning rate of every batch and the figures of every epoch (fastai's
/// Recorder). Every learner has one: `learn.recorder`.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Per batch.
    pub batches: Vec<BatchRecord>,
    /// Per epoch.
    pub epochs: Vec<EpochRecord>,
    started: Option<Instant>,
}

impl Callback for Recorder {
    fn before_epoch(&mut self, _cx: &mut Ctx) -> Flow {
        self.started = Some(Instant::now());
        Flow::Continue
    }
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        let s = cx.state;
        if s.skipped {
            return Flow::Continue;
        }
        self.batches.push(BatchRecord { iter: s.iter - 1, epoch: s.epoch, loss: s.loss, lr: s.lr });
        Flow::Continue
    }
    fn after_epoch(&mut self, cx: &mut Ctx) -> Flow {
        let s = cx.state;
        let seconds = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.epochs.push(EpochRecord {
            epoch: s.epoch,
            iter: s.iter,
            train_loss: s.train_loss,
            metrics: s.metrics.clone(),
            seconds,
            complete: s.epoch_complete(),
        });
        Flow::Continue
    }
}
