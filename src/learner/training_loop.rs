//! The training loop: the only one. [`Learner::fit`](super::Learner::fit), the notebook's
//! [`fit`](crate::fit) and the benchmark all run it, on the pieces they borrow ([`Parts`]).

use super::{interrupted, Callback, CallbackState, Ctx, FitReport, Flow, Learner, Loader, Metric, Recorder, State};
use crate::distributed::{reduce_step, Collective, StepShare};
use crate::error::{Error, Result};
use crate::module::Module;
use crate::module::{backward, no_grad};
use crate::optim::Optimizer;
use candle_core::Tensor;

type Hook = fn(&mut dyn Callback, &mut Ctx) -> Flow;

/// What the loop runs on, borrowed: from a [`Learner`]'s fields, or from the arguments of the
/// notebook's `fit`.
pub(crate) struct Parts<'a> {
    pub model: &'a dyn Module,
    pub loss_fn: &'a dyn Fn(&Tensor, &Tensor) -> Result<Tensor>,
    pub opt: &'a mut dyn Optimizer,
    pub train_dl: &'a dyn Loader,
    pub valid_dl: &'a dyn Loader,
    pub metrics: &'a [Box<dyn Metric>],
    pub callbacks: &'a mut [Box<dyn Callback>],
    pub recorder: &'a mut Recorder,
    pub state: &'a mut State,
    pub restored: &'a mut Vec<CallbackState>,
    /// The other processes of a data-parallel run, if any.
    pub collective: Option<&'a dyn Collective>,
    /// Whether a process asked to stop in the last batch's exchange (data-parallel runs: every
    /// process stops at the same batch, or the others would wait for it for ever).
    pub stop_agreed: bool,
    /// The precision of the layers' products, training and validating.
    pub precision: crate::precision::Precision,
}

impl Learner {
    pub(crate) fn parts(&mut self) -> Parts<'_> {
        let precision = self.products_precision();
        Parts {
            model: self.model.as_ref(),
            loss_fn: &self.loss_fn,
            opt: self.opt.as_mut(),
            train_dl: self.train_dl.as_ref(),
            valid_dl: self.valid_dl.as_ref(),
            metrics: &self.metrics,
            callbacks: &mut self.callbacks,
            recorder: &mut self.recorder,
            state: &mut self.state,
            restored: &mut self.restored,
            collective: self.collective.as_deref(),
            stop_agreed: false,
            precision,
        }
    }
}

/// Calls `hook` on the recorder and every callback; the strongest request wins.
fn call(l: &mut Parts, hook: Hook, preds: Option<&Tensor>, loss: Option<&Tensor>) -> Flow {
    let Parts { model, opt, callbacks, recorder, state, .. } = l;
    let mut cx = Ctx { state, model: *model, opt: &mut **opt, preds, loss };
    let mut flow = hook(&mut **recorder, &mut cx);
    for cb in callbacks.iter_mut() {
        flow = flow.max(hook(cb.as_mut(), &mut cx));
    }
    flow
}

pub(crate) fn fit(l: &mut Parts, epochs: usize) -> Result<FitReport> {
    crate::precision::autocast(l.precision, || fit_in_precision(l, epochs))
}

fn fit_in_precision(l: &mut Parts, epochs: usize) -> Result<FitReport> {
    l.state.epochs = epochs;
    l.state.batches_per_epoch = l.train_dl.len();
    l.state.metric_names = ["train_loss", "valid_loss"].map(String::from).into();
    l.state.metric_names.extend(l.metrics.iter().map(|m| m.name()));
    restore_states(l)?;
    if let Some(c) = l.collective {
        crate::distributed::broadcast_model(c, l.model)?;
    }
    let mut stop = call(l, |c, x| c.before_fit(x), None, None) == Flow::StopFit;
    while !stop && l.state.epoch < epochs {
        if call(l, |c, x| c.before_epoch(x), None, None) == Flow::StopFit {
            stop = true;
            break;
        }
        stop = train_epoch(l)? == Flow::StopFit;
        validate(l)?;
        // after_epoch sees the epoch that ran and the batch where it stopped.
        stop |= call(l, |c, x| c.after_epoch(x), None, None) == Flow::StopFit;
        stop |= checkpoint(l) == Flow::StopFit;
        stop = agree(l, stop)?;
        // Stopped mid-epoch (Ctrl-C): stay there, so that `fit` resumes at the next batch.
        if !stop || l.state.epoch_complete() {
            l.state.epoch += 1;
            l.state.batch = 0;
        }
    }
    call(l, |c, x| c.after_fit(x), None, None);
    if let Some(failure) = l.callbacks.iter().find_map(|c| c.failure()) {
        return Err(crate::error::Error::Callback(failure));
    }
    let reason = l.callbacks.iter().find_map(|c| c.stop_reason());
    let stopped = match (stop, reason) {
        (_, Some(r)) => Some(r),
        (true, None) if interrupted() => Some("interrupted".into()),
        (true, None) => Some("stopped by a callback".into()),
        (false, None) => None,
    };
    let diverged = l.callbacks.iter().any(|c| c.diverged());
    Ok(FitReport { epochs_done: l.state.epoch, stopped, diverged })
}

/// Whether any process wants to stop, in a data-parallel run (a callback of one process alone,
/// such as a failed checkpoint write, must stop them all); `stop` otherwise.
fn agree(l: &Parts, stop: bool) -> Result<bool> {
    let Some(c) = l.collective else { return Ok(stop) };
    let mut any = [0f32];
    c.all_reduce_sum(&[if stop { 1.0 } else { 0.0 }], &mut any)?;
    Ok(any[0] > 0.0)
}

/// In a data-parallel run, the strongest request any process's hooks made (`flow` is this
/// process's): one process that skipped a step or left the loop alone would leave the others
/// with other weights, or waiting for it in the next exchange for ever. `flow` otherwise.
fn agree_flow(l: &Parts, flow: Flow) -> Result<Flow> {
    let Some(c) = l.collective else { return Ok(flow) };
    let levels = [Flow::SkipBatch, Flow::StopEpoch, Flow::StopFit];
    let mine = levels.map(|f| if flow == f { 1f32 } else { 0f32 });
    let mut all = [0f32; 3];
    c.all_reduce_sum(&mine, &mut all)?;
    Ok(levels.iter().zip(all).filter(|(_, n)| *n > 0.0).fold(flow, |f, (level, _)| f.max(*level)))
}

/// The state of every callback that has one, by name.
fn callback_states(l: &Parts) -> Vec<CallbackState> {
    l.callbacks.iter().filter_map(|c| Some((c.name(), c.state()?))).collect()
}

/// Calls the `checkpoint` hook with every callback's state, once all have seen the epoch.
fn checkpoint(l: &mut Parts) -> Flow {
    let states = callback_states(l);
    let Parts { model, opt, callbacks, state, .. } = l;
    let mut cx = Ctx { state, model: *model, opt: &mut **opt, preds: None, loss: None };
    callbacks.iter_mut().fold(Flow::Continue, |flow, cb| flow.max(cb.checkpoint(&mut cx, &states)))
}

/// Gives each callback the state a checkpoint kept for it (by name, in order), once.
fn restore_states(l: &mut Parts) -> Result<()> {
    let mut pending = std::mem::take(l.restored);
    for cb in l.callbacks.iter_mut().filter(|c| c.state().is_some()) {
        let name = cb.name();
        if let Some(i) = pending.iter().position(|(n, _)| *n == name) {
            cb.load_state(&pending.remove(i).1)?;
        }
    }
    Ok(())
}

/// The training part of one epoch, from `state.batch` on; returns `StopFit` if training must end.
fn train_epoch(l: &mut Parts) -> Result<Flow> {
    l.model.train();
    l.state.training = true;
    if call(l, |c, x| c.before_train(x), None, None) == Flow::StopFit {
        return Ok(Flow::StopFit);
    }
    let train_dl = l.train_dl;
    let result = run_batches(l, train_dl)?;
    call(l, |c, x| c.after_train(x), None, None);
    Ok(if result == Flow::StopFit { Flow::StopFit } else { Flow::Continue })
}

/// The batches of the current epoch from `state.batch` on; returns the request that ended them.
fn run_batches(l: &mut Parts, train_dl: &dyn Loader) -> Result<Flow> {
    let (epoch, start) = (l.state.epoch, l.state.batch);
    if start == 0 {
        (l.state.train_loss, l.state.train_loss_sum, l.state.train_examples) = (0.0, 0.0, 0);
    }
    // Resuming mid-epoch, the batches already trained count in the epoch's mean through the
    // sum and count the checkpoint kept.
    let mut batches = train_dl.batches(epoch as u64, start).peekable();
    if start == 0 && batches.peek().is_none() {
        // Else every epoch would report a training loss of 0 without a step taken.
        let found = "0 batches (a data set smaller than one batch, its short last batch dropped?)";
        return Err(Error::invalid("training loader", "at least one batch", found));
    }
    for batch in batches {
        let (xb, yb) = batch?;
        l.state.batch_size = batch_len(&xb);
        let flow = step(l, &xb, &yb)?;
        if flow != Flow::SkipBatch {
            l.state.train_loss_sum += l.state.loss * l.state.batch_size as f64;
            l.state.train_examples += l.state.batch_size;
            l.state.train_loss = l.state.train_loss_sum / l.state.train_examples.max(1) as f64;
        }
        l.state.batch += 1;
        let after = call(l, |c, x| c.after_batch(x), None, None);
        // What `after_step` and `after_batch` asked on any process holds for all.
        let after = agree_flow(l, flow.max(after))?;
        let asked = if l.collective.is_some() { l.stop_agreed } else { interrupted() };
        let stop = after.max(if asked { Flow::StopFit } else { Flow::Continue });
        if matches!(stop, Flow::StopEpoch | Flow::StopFit) {
            return Ok(stop);
        }
    }
    Ok(Flow::Continue)
}

/// One batch: forward, loss, backward, step, with their hooks. `SkipBatch` from a hook skips the
/// rest; `StopEpoch`/`StopFit` are passed up after the batch (from `after_backward` on, before
/// the step). In a data-parallel run the gradients are averaged over the processes before
/// `after_backward`; a process that skips still takes part in that exchange, and the requests
/// of every process's earlier hooks (skip, stop) and a SIGINT hold for all of them.
fn step(l: &mut Parts, xb: &Tensor, yb: &Tensor) -> Result<Flow> {
    l.state.skipped = true;
    let (flow, out) = forward_backward(l, xb, yb)?;
    let (flow, step_skipped) = match l.collective {
        Some(c) => exchange(l, c, flow, out.is_none())?,
        None => (flow, false),
    };
    let (Some((preds, loss)), false) = (out, step_skipped) else { return Ok(flow) };
    let flow = flow.max(call(l, |c, x| c.after_backward(x), Some(&preds), Some(&loss)));
    let flow = agree_flow(l, flow)?;
    if flow != Flow::Continue {
        // Skipped, or training ends here: no step with these gradients.
        l.opt.zero_grad();
        return Ok(flow);
    }
    l.opt.step()?;
    l.state.skipped = false;
    l.state.lr = l.opt.lr();
    l.state.iter += 1;
    let after = call(l, |c, x| c.after_step(x), Some(&preds), Some(&loss));
    l.opt.zero_grad();
    Ok(flow.max(after))
}

/// The data-parallel exchange after this process's backward (`skipped`: a hook ended its batch
/// before the backward): the gradients averaged over the processes, and the batch's loss and
/// every process's requests (skip, stop, SIGINT) made every process's. Returns `flow` with the
/// others' requests added, and whether some process skipped the step (then every process does:
/// the gradients are cleared and the flow is at least `SkipBatch`).
fn exchange(l: &mut Parts, c: &dyn Collective, flow: Flow, skipped: bool) -> Result<(Flow, bool)> {
    let mine = StepShare {
        loss: l.state.loss,
        count: l.state.batch_size,
        skip: skipped,
        interrupt: interrupted(),
        stop_fit: flow == Flow::StopFit,
        stop_epoch: flow == Flow::StopEpoch,
    };
    let all = reduce_step(c, l.opt.params(), mine)?;
    (l.state.loss, l.stop_agreed) = (all.loss, all.interrupt);
    if all.interrupt {
        // A SIGINT that reached one process counts for every process (its message, its exit).
        super::interrupt();
    }
    // A request one process's hooks made before the exchange holds for all of them: the others
    // would otherwise wait for it in the next exchange for ever.
    let flow = flow.max(if all.stop_fit {
        Flow::StopFit
    } else if all.stop_epoch {
        Flow::StopEpoch
    } else {
        Flow::Continue
    });
    if all.skip {
        l.opt.zero_grad();
        return Ok((flow.max(Flow::SkipBatch), true));
    }
    Ok((flow, false))
}

/// Forward, loss and backward with their hooks: the predictions and the loss, or `None` when a
/// hook ended the batch early (its request is returned).
fn forward_backward(l: &mut Parts, xb: &Tensor, yb: &Tensor) -> Result<(Flow, Option<(Tensor, Tensor)>)> {
    let flow = call(l, |c, x| c.before_batch(x), None, None);
    if flow != Flow::Continue {
        return Ok((flow, None));
    }
    let (xb, yb) = &transform(l, (xb.clone(), yb.clone()))?;
    let preds = l.model.forward(xb)?;
    let flow = call(l, |c, x| c.after_forward(x), Some(&preds), None);
    if flow != Flow::Continue {
        return Ok((flow, None));
    }
    let loss = (l.loss_fn)(&preds, yb)?;
    l.state.loss = scalar_loss(&loss)?;
    if !l.state.loss.is_finite() && !all_finite(xb)? {
        return Err(Error::NonFiniteInput { epoch: l.state.epoch + 1, batch: l.state.batch + 1 });
    }
    let flow = call(l, |c, x| c.after_loss(x), Some(&preds), Some(&loss));
    if flow != Flow::Continue {
        return Ok((flow, None));
    }
    let scale = l.callbacks.iter_mut().fold(1.0, |scale, cb| scale * cb.loss_scale());
    if scale == 1.0 {
        backward(&loss, l.opt.params())?;
    } else {
        backward(&loss.affine(scale, 0.0)?, l.opt.params())?;
    }
    Ok((flow, Some((preds, loss))))
}

/// The batch through each callback's `transform_batch`, in order.
fn transform(l: &mut Parts, batch: (Tensor, Tensor)) -> Result<(Tensor, Tensor)> {
    let state = &*l.state;
    l.callbacks.iter_mut().try_fold(batch, |batch, cb| cb.transform_batch(state, batch))
}

/// The value of a loss function's result, which must be one number (a mean over the batch).
fn scalar_loss(loss: &Tensor) -> Result<f64> {
    if loss.rank() != 0 {
        let found = format!("a tensor of shape {:?}", loss.dims());
        return Err(Error::invalid("loss", "one number (a tensor of shape [], as `cross_entropy` returns)", found));
    }
    Ok(loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

/// Loss and metrics on the validation set, in the run's precision (also when called alone, as
/// `Learner::validate` does).
pub(crate) fn validate(l: &mut Parts) -> Result<Vec<(String, f64)>> {
    crate::precision::autocast(l.precision, || validate_in_precision(l))
}

fn validate_in_precision(l: &mut Parts) -> Result<Vec<(String, f64)>> {
    l.model.eval();
    l.state.training = false;
    if let Some(c) = l.collective {
        crate::distributed::broadcast_buffers(c, l.model)?;
    }
    call(l, |c, x| c.before_validate(x), None, None);
    let mut sums = vec![0.0; l.metrics.len() + 1];
    let mut count = 0usize;
    no_grad(|| -> Result<()> {
        for batch in l.valid_dl.batches(0, 0) {
            let (xb, yb) = batch?;
            let n = batch_len(&xb);
            let preds = l.model.forward(&xb)?;
            sums[0] += scalar_loss(&(l.loss_fn)(&preds, &yb)?)? * n as f64;
            for (s, m) in sums[1..].iter_mut().zip(l.metrics) {
                *s += m.batch(&preds, &yb)? * n as f64;
            }
            count += n;
        }
        Ok(())
    })?;
    if let Some(c) = l.collective {
        // Each process validated its shard: the sums and counts of all give the exact means.
        (sums, count) = reduce_sums(c, &sums, count)?;
    }
    let names = std::iter::once("valid_loss".to_string()).chain(l.metrics.iter().map(|m| m.name()));
    // No examples, no figures: NaN, never a perfect-looking 0 that a callback would believe.
    let out: Vec<(String, f64)> = names.zip(sums.iter().map(|s| s / count as f64)).collect();
    l.state.metrics = out.clone();
    l.state.valid_count = count;
    call(l, |c, x| c.after_validate(x), None, None);
    l.model.train();
    l.state.training = true;
    Ok(out)
}

/// Sums over the processes of per-process sums and counts.
fn reduce_sums(c: &dyn Collective, sums: &[f64], count: usize) -> Result<(Vec<f64>, usize)> {
    let mut values: Vec<f64> = sums.iter().copied().chain(std::iter::once(count as f64)).collect();
    c.all_reduce_sum_f64(&mut values)?;
    let count = values.pop().unwrap_or(0.0);
    Ok((values, count.round() as usize))
}

/// Whether a float batch holds only finite values (integer batches always do). Looked at only
/// when a loss comes out non-finite, to tell bad data from a diverging model.
fn all_finite(xb: &Tensor) -> Result<bool> {
    if !xb.dtype().is_float() {
        return Ok(true);
    }
    let values = xb.flatten_all()?.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
    Ok(values.iter().all(|v| v.is_finite()))
}

/// The number of examples in a batch: its first dimension (1 for a scalar input).
pub(crate) fn batch_len(x: &Tensor) -> usize {
    x.dims().first().copied().unwrap_or(1)
}
