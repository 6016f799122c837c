//! The learning-rate finder (Smith; fastai's `lr_find`).

use super::fit::Borrowed;
use crate::error::{Error, Result};
use crate::learner::batches::{NoBatches, Passes};
use crate::learner::training_loop::fit;
use crate::learner::{Callback, Ctx, Flow, Learner};
use crate::module::{Module, Param};
use crate::optim::Optimizer;
use candle_core::Tensor;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;

/// How the finder sweeps.
#[derive(Debug, Clone, Copy)]
pub struct LrFindConfig {
    /// The first rate tried.
    pub start_lr: f64,
    /// The last rate tried.
    pub end_lr: f64,
    /// Steps in the sweep; past one epoch of batches it goes on into the next epochs.
    pub num_it: usize,
    /// Smoothing of the loss: an exponential moving average with this decay, debiased.
    pub beta: f64,
    /// Stop once the smoothed loss exceeds this many times its minimum.
    pub diverge: f64,
}

impl Default for LrFindConfig {
    fn default() -> Self {
        LrFindConfig { start_lr: 1e-7, end_lr: 10.0, num_it: 100, beta: 0.98, diverge: 4.0 }
    }
}

/// The sweep's curve and its suggestions.
#[derive(Debug, Clone, Serialize)]
pub struct LrFind {
    /// The rate of each step.
    pub lrs: Vec<f64>,
    /// The smoothed loss after each step.
    pub losses: Vec<f64>,
    /// The rate where the smoothed loss falls fastest against `log(lr)`; `None` when the sweep
    /// is too short to say (fewer than [`MIN_POINTS`] steps before it stopped).
    pub steepest: Option<f64>,
    /// The rate of the lowest smoothed loss, divided by 10 (a rate where the loss still falls);
    /// `None` as for `steepest`.
    pub minimum: Option<f64>,
}

/// The fewest steps from which the sweep suggests a rate: fastai leaves out the first tenth and
/// the last five points, and a slope needs two more.
pub const MIN_POINTS: usize = 8;

/// Trains with a rate growing exponentially from `start_lr` to `end_lr`, one batch per rate,
/// until the loss diverges or the sweep ends (going on into further epochs when `num_it` is more
/// than one epoch of batches); then puts the model's weights and the optimizer's state back as
/// they were. The sweep is the training loop itself, driven by a callback (fastai's `LRFinder`),
/// without validation.
pub fn lr_find<'a, L, T>(
    model: &dyn Module,
    loss_fn: L,
    opt: &mut dyn Optimizer,
    dl: &'a T,
    config: LrFindConfig,
) -> Result<LrFind>
where
    L: Fn(&Tensor, &Tensor) -> Result<Tensor>,
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
    T: ?Sized,
{
    let (sweep, curve) = Sweep::new(config)?;
    let params = model.parameters();
    let saved = Saved::take(&params, &model.named_buffers(), opt)?;
    let mut borrowed = Borrowed::new();
    borrowed.callbacks.push(Box::new(sweep));
    let result = fit(&mut borrowed.parts(model, &loss_fn, opt, &Passes(dl), &NoBatches), usize::MAX);
    saved.restore(&params, opt)?;
    result?;
    let found = curve.borrow().found(config.num_it);
    Ok(found)
}

impl Learner {
    /// [`lr_find`] on this learner's model, optimizer and training data, through
    /// its own loop and callbacks (as fastai's `learn.lr_find()`); the weights, the optimizer's
    /// state, the loop's position, the recorder and every callback's
    /// [`state`](crate::learner::Callback::state) (an early stopping's best score) are put back
    /// after.
    pub fn lr_find(&mut self, config: LrFindConfig) -> Result<LrFind> {
        let (sweep, curve) = Sweep::new(config)?;
        let params = self.model.parameters();
        let saved = Saved::take(&params, &self.model.named_buffers(), self.opt.as_ref())?;
        let states: Vec<_> = self.callbacks.iter().map(|c| c.state()).collect();
        let (state, recorded) = (self.state.clone(), (self.recorder.batches.len(), self.recorder.epochs.len()));
        self.callbacks.push(Box::new(sweep));
        let result = {
            let mut parts = self.parts();
            parts.valid_dl = &NoBatches;
            fit(&mut parts, usize::MAX)
        };
        self.callbacks.pop();
        for (cb, state) in self.callbacks.iter_mut().zip(&states) {
            if let Some(state) = state {
                cb.load_state(state)?;
            }
        }
        saved.restore(&params, self.opt.as_mut())?;
        self.state = state;
        self.recorder.batches.truncate(recorded.0);
        self.recorder.epochs.truncate(recorded.1);
        result?;
        let found = curve.borrow().found(config.num_it);
        Ok(found)
    }
}

/// The weights, the buffers (batch norm's running statistics), the optimizer's state and its
/// rate before a sweep.
struct Saved {
    weights: Vec<Tensor>,
    buffers: Vec<(crate::module::Buffer, Tensor)>,
    opt: std::collections::HashMap<String, Tensor>,
    lr: f64,
}

impl Saved {
    /// What to put back; an optimizer that holds none of the parameters would sweep nothing.
    fn take(params: &[Param], buffers: &[(String, crate::module::Buffer)], opt: &dyn Optimizer) -> Result<Self> {
        if opt.params().is_empty() {
            return Err(Error::invalid("lr_find optimizer", "one holding the model's parameters", "no parameters"));
        }
        let weights = params.iter().map(|p| p.tensor().detach().copy()).collect::<candle_core::Result<_>>()?;
        let buffers = buffers.iter().map(|(_, b)| Ok((b.clone(), b.snapshot()?))).collect::<Result<_>>()?;
        Ok(Saved { weights, buffers, opt: opt.state_dict(), lr: opt.lr() })
    }

    fn restore(&self, params: &[Param], opt: &mut dyn Optimizer) -> Result<()> {
        for (p, v) in params.iter().zip(&self.weights) {
            p.set(v)?;
        }
        for (b, v) in &self.buffers {
            b.set(v.clone());
        }
        params.iter().for_each(Param::zero_grad);
        opt.load_state_dict(&self.opt)?;
        opt.set_lr(self.lr);
        Ok(())
    }
}

/// The points of a sweep: each step's rate and smoothed loss.
#[derive(Default)]
struct Curve {
    lrs: Vec<f64>,
    losses: Vec<f64>,
    avg: f64,
    best: f64,
}

impl Curve {
    fn found(&self, num_it: usize) -> LrFind {
        let (steepest, minimum) = suggest(&self.lrs, &self.losses, num_it);
        LrFind { lrs: self.lrs.clone(), losses: self.losses.clone(), steepest, minimum }
    }
}

/// The sweep as a callback: sets each batch's rate, records its smoothed loss, and stops the loop
/// when the loss diverges, the sweep is done, or an epoch brings no batch.
struct Sweep {
    c: LrFindConfig,
    curve: Rc<RefCell<Curve>>,
    at_epoch_start: usize,
}

impl Sweep {
    fn new(c: LrFindConfig) -> Result<(Self, Rc<RefCell<Curve>>)> {
        if !(c.start_lr > 0.0 && c.end_lr > c.start_lr && c.num_it >= 2) {
            let found = format!("start_lr {}, end_lr {}, num_it {}", c.start_lr, c.end_lr, c.num_it);
            return Err(Error::invalid("lr_find range", "0 < start_lr < end_lr and num_it >= 2", found));
        }
        let curve = Rc::new(RefCell::new(Curve { best: f64::INFINITY, ..Default::default() }));
        Ok((Sweep { c, curve: curve.clone(), at_epoch_start: 0 }, curve))
    }
}

impl Callback for Sweep {
    fn before_epoch(&mut self, _: &mut Ctx) -> Flow {
        self.at_epoch_start = self.curve.borrow().lrs.len();
        Flow::Continue
    }
    fn before_batch(&mut self, cx: &mut Ctx) -> Flow {
        let (c, i) = (self.c, self.curve.borrow().lrs.len());
        cx.opt.set_lr(c.start_lr * (c.end_lr / c.start_lr).powf(i as f64 / (c.num_it - 1) as f64));
        Flow::Continue
    }
    fn after_loss(&mut self, cx: &mut Ctx) -> Flow {
        let (c, mut curve) = (self.c, self.curve.borrow_mut());
        let i = curve.lrs.len();
        curve.avg = c.beta * curve.avg + (1.0 - c.beta) * cx.state.loss;
        let smooth = curve.avg / (1.0 - c.beta.powi(i as i32 + 1));
        curve.lrs.push(cx.opt.lr());
        curve.losses.push(smooth);
        curve.best = curve.best.min(smooth);
        if !smooth.is_finite() || smooth > c.diverge * curve.best {
            return Flow::StopFit;
        }
        Flow::Continue
    }
    fn after_batch(&mut self, _: &mut Ctx) -> Flow {
        if self.curve.borrow().lrs.len() >= self.c.num_it {
            Flow::StopFit
        } else {
            Flow::Continue
        }
    }
    fn after_epoch(&mut self, _: &mut Ctx) -> Flow {
        if self.curve.borrow().lrs.len() == self.at_epoch_start {
            Flow::StopFit
        } else {
            Flow::Continue
        }
    }
}

/// fastai's suggestions, over the curve without its first tenth and last five points; `None`
/// when fewer than two points are left.
fn suggest(lrs: &[f64], losses: &[f64], num_it: usize) -> (Option<f64>, Option<f64>) {
    let lo = num_it / 10;
    let hi = lrs.len().saturating_sub(5).max(lo + 2).min(lrs.len());
    if lrs.len() < MIN_POINTS || hi < lo + 2 {
        return (None, None);
    }
    let (l, s) = (&lrs[lo..hi], &losses[lo..hi]);
    let slope = |i: usize| (s[i + 1] - s[i]) / (l[i + 1].ln() - l[i].ln());
    let steep = (0..l.len() - 1).min_by(|&a, &b| slope(a).total_cmp(&slope(b))).map(|i| l[i]);
    let min = (0..l.len()).min_by(|&a, &b| s[a].total_cmp(&s[b])).map(|i| l[i] / 10.0);
    (steep, min)
}
