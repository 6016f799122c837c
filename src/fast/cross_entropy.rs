//! `nll(log_softmax(x), t)` in one pass, with its backward.

use super::storage::{cpu_f32, with_f32};
use crate::error::Result;
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, Device, Layout, Shape, Tensor};
use std::sync::Mutex;

struct CrossEntropyOp {
    /// `softmax(x)`, kept by the forward for the backward when there will be one: the
    /// exponentials are most of the op's time (1,920 a step for the notebook's 64x10 logits
    /// when the backward recomputes them, 640 when it reuses these).
    probs: Option<Mutex<Vec<f32>>>,
}

/// The targets as indices, checked against the number of classes.
fn targets(s: &CpuStorage, l: &Layout, classes: usize) -> candle_core::Result<Vec<usize>> {
    let Some((a, b)) = l.contiguous_offsets() else { bail!("cross_entropy: targets not contiguous") };
    let t: Vec<i64> = match s {
        CpuStorage::U32(v) => v[a..b].iter().map(|&x| x as i64).collect(),
        CpuStorage::I64(v) => v[a..b].to_vec(),
        CpuStorage::U8(v) => v[a..b].iter().map(|&x| x as i64).collect(),
        other => bail!("cross_entropy: targets must be integers, found {:?}", other.dtype()),
    };
    match t.iter().find(|&&x| x < 0 || x as usize >= classes) {
        Some(bad) => bail!("cross_entropy: target class {bad} is out of range 0..{classes}"),
        None => Ok(t.into_iter().map(|x| x as usize).collect()),
    }
}

/// `log Σ exp(row)`, shifted by the row's maximum, with `exp(row - max)` appended to `exps`.
fn logsumexp(row: &[f32], exps: &mut Vec<f32>) -> f32 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let start = exps.len();
    exps.extend(row.iter().map(|&v| (v - m).exp()));
    m + exps[start..].iter().sum::<f32>().ln()
}

/// The softmax of each row of `c` values.
fn softmax_rows(x: &[f32], c: usize) -> Vec<f32> {
    let mut p = Vec::with_capacity(x.len());
    for row in x.chunks_exact(c) {
        logsumexp(row, &mut p);
        normalise_last(&mut p, c);
    }
    p
}

/// Divides the last `c` values by their sum: `exp(v - m) / Σ exp(v - m)` is the softmax.
fn normalise_last(p: &mut [f32], c: usize) {
    let last = p.len() - c;
    let sum: f32 = p[last..].iter().sum();
    p[last..].iter_mut().for_each(|e| *e /= sum);
}

impl CustomOp2 for CrossEntropyOp {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let &[n, c] = l1.dims() else { bail!("cross_entropy: logits must be [batch, classes]") };
        let x = cpu_f32(s1, l1, "logits")?;
        let t = targets(s2, l2, c)?;
        if t.len() != n {
            bail!("cross_entropy: {n} rows of logits but {} targets", t.len());
        }
        let mut exps = Vec::with_capacity(n * c);
        let mut total = 0f64;
        for (row, &t) in x.chunks_exact(c).zip(&t) {
            let lse = logsumexp(row, &mut exps);
            total += (lse - row[t]) as f64;
            if self.probs.is_some() {
                normalise_last(&mut exps, c);
            }
        }
        if let Some(probs) = &self.probs {
            *probs.lock().unwrap_or_else(|e| e.into_inner()) = exps;
        }
        Ok((CpuStorage::F32(vec![(total / n as f64) as f32]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        target: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, c) = logits.dims2()?;
        let scale = grad.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()? / n as f32;
        let (ts, tl) = target.storage_and_layout();
        let candle_core::Storage::Cpu(ts) = &*ts else { bail!("cross_entropy: the fast path runs on the CPU") };
        let t = targets(ts, tl, c)?;
        let kept = self.probs.as_ref().map(|p| std::mem::take(&mut *p.lock().unwrap_or_else(|e| e.into_inner())));
        let mut d = match kept {
            Some(p) if p.len() == n * c => p,
            // No forward kept them (or this backward runs twice): the softmax again.
            _ => with_f32(&logits.contiguous()?, "logits", |x| Ok(softmax_rows(x, c)))?,
        };
        for (row, &t) in d.chunks_exact_mut(c).zip(&t) {
            row.iter_mut().for_each(|v| *v *= scale);
            row[t] -= scale;
        }
        Ok((Some(Tensor::from_vec(d, (n, c), &Device::Cpu)?), None))
    }
}

/// Cross-entropy of logits `[batch, classes]` (`f32`, CPU) against class indices `[batch]`, in
/// one pass: the same value as [`crate::cross_entropy`] (the LogSumExp trick included, so huge
/// logits stay finite) and a backward of `(softmax(x) - onehot(t)) / batch`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let logits = Tensor::new(&[[0f32, 0.], [1e4, -1e4]], &Device::Cpu)?;
/// let target = Tensor::new(&[0u32, 0], &Device::Cpu)?;
/// let loss = minibatch::fast::cross_entropy(&logits, &target)?.to_scalar::<f32>()?;
/// assert!((loss - 2f32.ln() / 2.0).abs() < 1e-6);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    let logits = logits.contiguous()?;
    let op = CrossEntropyOp { probs: logits.track_op().then(|| Mutex::new(Vec::new())) };
    Ok(logits.apply_op2_arc(&target.contiguous()?, std::sync::Arc::new(Box::new(op)))?)
}
