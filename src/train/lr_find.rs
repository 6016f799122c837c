//! The learning-rate finder (Smith; fastai's `lr_find`).

use crate::error::{Error, Result};
use crate::module::{Module, Param};
use crate::optim::Optimizer;
use candle_core::Tensor;
use serde::Serialize;

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
/// they were.
pub fn lr_find<'a, M, L, O, T>(model: &M, loss_fn: L, opt: &mut O, dl: &'a T, config: LrFindConfig) -> Result<LrFind>
where
    M: Module + ?Sized,
    L: Fn(&Tensor, &Tensor) -> Result<Tensor>,
    O: Optimizer,
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
{
    let c = config;
    if !(c.start_lr > 0.0 && c.end_lr > c.start_lr && c.num_it >= 2) {
        let found = format!("start_lr {}, end_lr {}, num_it {}", c.start_lr, c.end_lr, c.num_it);
        return Err(Error::invalid("lr_find range", "0 < start_lr < end_lr and num_it >= 2", found));
    }
    let params = model.parameters();
    let saved: Vec<Tensor> = params.iter().map(|p| p.tensor().detach().copy()).collect::<candle_core::Result<_>>()?;
    let (saved_state, saved_lr) = (opt.state_dict(), opt.lr());
    let result = sweep(model, loss_fn, opt, dl, c);
    for (p, v) in params.iter().zip(&saved) {
        p.set(v)?;
    }
    params.iter().for_each(Param::zero_grad);
    opt.load_state_dict(&saved_state)?;
    opt.set_lr(saved_lr);
    let (lrs, losses) = result?;
    let (steepest, minimum) = suggest(&lrs, &losses, c.num_it);
    Ok(LrFind { lrs, losses, steepest, minimum })
}

type Curve = (Vec<f64>, Vec<f64>);

fn sweep<'a, M, L, O, T>(model: &M, loss_fn: L, opt: &mut O, dl: &'a T, c: LrFindConfig) -> Result<Curve>
where
    M: Module + ?Sized,
    L: Fn(&Tensor, &Tensor) -> Result<Tensor>,
    O: Optimizer,
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
{
    model.train();
    let (mut lrs, mut losses) = (vec![], vec![]);
    let (mut avg, mut best) = (0.0, f64::INFINITY);
    let mut i = 0;
    // Each pass over `dl` is an epoch; an epoch that yields nothing ends the sweep.
    while i < c.num_it {
        let before = i;
        for batch in dl.into_iter().take(c.num_it - i) {
            let (xb, yb) = batch?;
            let lr = c.start_lr * (c.end_lr / c.start_lr).powf(i as f64 / (c.num_it - 1) as f64);
            opt.set_lr(lr);
            let loss = loss_fn(&model.forward(&xb)?, &yb)?;
            opt.backward_step(&loss)?;
            let l = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            avg = c.beta * avg + (1.0 - c.beta) * l;
            let smooth = avg / (1.0 - c.beta.powi(i as i32 + 1));
            lrs.push(lr);
            losses.push(smooth);
            best = best.min(smooth);
            i += 1;
            if !smooth.is_finite() || smooth > c.diverge * best {
                return Ok((lrs, losses));
            }
        }
        if i == before {
            break;
        }
    }
    Ok((lrs, losses))
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
