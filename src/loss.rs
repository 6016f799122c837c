//! Losses, the notebook's step 2: softmax, log_softmax through LogSumExp, nll and cross-entropy.
//!
//! softmax turns a row of scores into probabilities, `exp(x_i) / Σ_j exp(x_j)`; it goes at the
//! last layer because its outputs are positive and sum to one, one per class. Cross-entropy is
//! `-Σ_i y_i log p_i`, which for a one-hot target `y` is `-log p_target`: the less probability the
//! right class gets, the larger the loss, and nothing else matters, which is what a categorical
//! target needs. We take the log because it turns the products of probabilities into sums and
//! keeps tiny probabilities representable, and the negative because the log of a probability is
//! below zero while a loss should go down as the model improves.
//!
//! All of these work along the last dimension and stay finite for logits of any size.

use crate::error::{Error, Result};
use candle_core::{DType, Tensor, D};

/// `log Σ_j exp(x_j)` along the last dimension, computed as `m + log Σ_j exp(x_j - m)` with `m`
/// the row's maximum: the LogSumExp trick. Without it, `exp(1000.)` overflows `f32` to infinity
/// and the result is `inf` (or `NaN`); with it the largest term is `exp(0) = 1`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[[1000f32, 1000.]], &Device::Cpu)?;
/// assert!(x.exp()?.sum(1)?.log()?.to_vec1::<f32>()?[0].is_infinite()); // the naive way
/// let lse = minibatch::logsumexp(&x)?.to_vec1::<f32>()?[0];
/// assert!((lse - (1000.0 + 2f32.ln())).abs() < 1e-3);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn logsumexp(x: &Tensor) -> Result<Tensor> {
    // The shift is a constant for the gradient: d/dx of m + log Σ exp(x - m) is softmax(x)
    // whatever m is, so it is detached (which also avoids max's gradient at ties).
    let m = x.max_keepdim(D::Minus1)?.detach();
    let s = x.broadcast_sub(&m)?.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok((s + m)?.squeeze(D::Minus1)?)
}

/// `x - logsumexp(x)` along the last dimension: the log of softmax without computing softmax.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_sub(&logsumexp(x)?.unsqueeze(D::Minus1)?)?)
}

/// `exp(x_i) / Σ_j exp(x_j)` along the last dimension (as `exp(log_softmax(x))`, so that it stays
/// finite for huge logits).
///
/// ```
/// use candle_core::{Device, Tensor};
/// let p = minibatch::softmax(&Tensor::new(&[[0f32, 0., 2f32.ln()]], &Device::Cpu)?)?;
/// assert_eq!(p.to_vec2::<f32>()?, vec![vec![0.25, 0.25, 0.5]]);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    Ok(log_softmax(x)?.exp()?)
}

/// Negative log likelihood: `-mean_i input[i, target[i]]`, for log-probabilities `input` of
/// shape `[n, classes]` and class indices `target` of shape `[n]` (any integer dtype).
pub fn nll(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    let (n, classes) = input.dims2()?;
    check_target(target, n, classes)?;
    let picked = input.gather(&index_tensor(target)?.unsqueeze(1)?, 1)?;
    Ok(picked.mean_all()?.neg()?)
}

/// `nll(log_softmax(logits), target)`: the loss of classification, PyTorch's `F.cross_entropy`.
/// A float `target` of the logits' shape is taken as class probabilities
/// ([`soft_cross_entropy`]), as PyTorch takes it.
/// For `f32` logits on the CPU it runs as one fused pass ([`crate::fast::cross_entropy`]), whose
/// backward reuses the forward's softmax.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let logits = Tensor::new(&[[0f32, 0.], [1e4, -1e4]], &Device::Cpu)?;
/// let target = Tensor::new(&[0u32, 0], &Device::Cpu)?;
/// let loss = minibatch::cross_entropy(&logits, &target)?.to_scalar::<f32>()?;
/// assert!((loss - 2f32.ln() / 2.0).abs() < 1e-6); // finite even for 1e4
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    if target.dtype().is_float() {
        // Class probabilities (MixUp's mixed labels), as PyTorch takes them.
        return soft_cross_entropy(logits, target);
    }
    // The fused kernel checks the classes itself; the shape is checked here for its message.
    let indices = matches!(target.dtype(), DType::U8 | DType::U32 | DType::I64);
    if let (Ok((n, _)), true, true) = (logits.dims2(), indices, crate::fast::fits(&[logits])) {
        if target.dims() != [n] {
            return Err(Error::invalid("target shape", format!("[{n}]"), format!("{:?}", target.dims())));
        }
        return crate::fast::cross_entropy(logits, target);
    }
    nll(&log_softmax(logits)?, target)
}

/// Cross-entropy of `logits` `[n, classes]` against class probabilities `probs` `[n, classes]`
/// (float, each row summing to one; as in PyTorch that is not checked): `-mean_i Σ_c probs[i, c] log_softmax(logits)[i, c]`, PyTorch's
/// `F.cross_entropy` with a probability target. [`cross_entropy`] takes such a target as well.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let logits = Tensor::new(&[[0f32, 0.]], &Device::Cpu)?;
/// let probs = Tensor::new(&[[0.3f32, 0.7]], &Device::Cpu)?;
/// let loss = minibatch::soft_cross_entropy(&logits, &probs)?.to_scalar::<f32>()?;
/// assert!((loss - 2f32.ln()).abs() < 1e-6); // equal logits: log 2 whatever the mix
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn soft_cross_entropy(logits: &Tensor, probs: &Tensor) -> Result<Tensor> {
    check_probs(logits, probs)?;
    if logits.elem_count() == 0 {
        // The mean of no loss, as with class indices (and in PyTorch).
        return Ok(Tensor::new(f32::NAN, logits.device())?.to_dtype(logits.dtype())?);
    }
    let picked = (log_softmax(logits)? * probs.to_dtype(logits.dtype())?)?.sum(D::Minus1)?;
    Ok(picked.mean_all()?.neg()?)
}

pub(crate) fn check_probs(logits: &Tensor, probs: &Tensor) -> Result<()> {
    if logits.rank() != 2 {
        let found = format!("{:?}", logits.dims());
        return Err(Error::invalid("logits shape", "[n, classes] (rank 2)", found));
    }
    if probs.dims() != logits.dims() {
        let expected = format!("{:?} (class probabilities, as the logits)", logits.dims());
        return Err(Error::invalid("target shape", expected, format!("{:?}", probs.dims())));
    }
    if !probs.dtype().is_float() {
        return Err(Error::invalid("target dtype", "float class probabilities", format!("{:?}", probs.dtype())));
    }
    Ok(())
}

/// The fraction of rows whose largest score is at the target class, as a scalar `f32` tensor.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let scores = Tensor::new(&[[0.1f32, 0.9], [0.8, 0.2], [0.3, 0.7]], &Device::Cpu)?;
/// let target = Tensor::new(&[1u32, 1, 1], &Device::Cpu)?;
/// let acc = minibatch::accuracy(&scores, &target)?.to_scalar::<f32>()?;
/// assert!((acc - 2.0 / 3.0).abs() < 1e-6);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn accuracy(out: &Tensor, target: &Tensor) -> Result<Tensor> {
    let (n, classes) = out.dims2()?;
    check_target(target, n, classes)?;
    let hits = out.argmax(D::Minus1)?.eq(&index_tensor(target)?)?;
    Ok(hits.to_dtype(DType::F32)?.mean_all()?)
}

/// Targets as `u32` or `i64` indices (what `gather` takes).
fn index_tensor(target: &Tensor) -> Result<Tensor> {
    Ok(match target.dtype() {
        DType::U32 | DType::I64 => target.clone(),
        _ => target.to_dtype(DType::U32)?,
    })
}

fn check_target(target: &Tensor, n: usize, classes: usize) -> Result<()> {
    if target.dims() != [n] {
        return Err(Error::invalid("target shape", format!("[{n}]"), format!("{:?}", target.dims())));
    }
    if !target.dtype().is_int() {
        return Err(Error::invalid("target dtype", "integer class indices", format!("{:?}", target.dtype())));
    }
    let labels: Vec<i64> = target.to_dtype(DType::I64)?.to_vec1()?;
    match labels.iter().find(|&&t| t < 0 || t as u64 >= classes as u64) {
        Some(&bad) => Err(Error::invalid("target class", format!("in 0..{classes}"), bad)),
        None => Ok(()),
    }
}
