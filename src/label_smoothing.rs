//! Lesson 10b's label smoothing (cross-entropy against class probabilities, what MixUp's mixed
//! labels are, is [`soft_cross_entropy`]).
//!
//! Label smoothing trains against `1 - eps` on the right class and `eps / classes` spread over
//! every class. With a one-hot target the loss only falls as the right logit grows past the
//! others, for ever; with a smoothed one it is smallest at a finite gap, so the logits stay of a
//! moderate size and the model is less sure of labels that may be wrong.

use crate::error::{Error, Result};
use crate::loss::{check_probs, cross_entropy, log_softmax, nll, soft_cross_entropy};
use candle_core::{DType, Tensor, D};

/// Lesson 10b's `LabelSmoothingCrossEntropy`: cross-entropy against a target that puts `1 - eps`
/// on the labelled class and `eps / classes` on every class, which is
/// `(1 - eps) * nll + eps * mean_i(-Σ_c log_softmax(logits)[i, c]) / classes`. It equals PyTorch's
/// `F.cross_entropy(logits, target, label_smoothing=eps)`, for class indices and for class
/// probabilities (which are smoothed the same way), and is plain cross-entropy at `eps = 0`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::LabelSmoothingCrossEntropy;
/// let logits = Tensor::new(&[[10f32, 0.]], &Device::Cpu)?;
/// let target = Tensor::new(&[0u32], &Device::Cpu)?;
/// let plain = minibatch::cross_entropy(&logits, &target)?.to_scalar::<f32>()?;
/// let smoothed = LabelSmoothingCrossEntropy::new(0.1)?.forward(&logits, &target)?.to_scalar::<f32>()?;
/// // Sure of the right class: tiny plain loss, but smoothing charges the 0.05 put on the other.
/// assert!(plain < 1e-4 && (smoothed - 0.5000454).abs() < 1e-5);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSmoothingCrossEntropy {
    eps: f64,
}

impl LabelSmoothingCrossEntropy {
    /// Smoothing `eps` in `[0, 1]` (the lesson's default is 0.1).
    pub fn new(eps: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&eps) {
            return Err(Error::invalid("label smoothing", "in [0, 1]", eps));
        }
        Ok(LabelSmoothingCrossEntropy { eps })
    }

    /// The smoothing.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The loss of `logits` `[n, classes]` against class indices `[n]` or class probabilities
    /// `[n, classes]`.
    pub fn forward(&self, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
        if self.eps == 0.0 {
            return cross_entropy(logits, target);
        }
        let classes = logits.dim(D::Minus1)? as f64;
        if target.dtype().is_float() {
            check_probs(logits, target)?;
            let smoothed = ((target.to_dtype(logits.dtype())? * (1.0 - self.eps))? + self.eps / classes)?;
            return soft_cross_entropy(logits, &smoothed);
        }
        let log_probs = log_softmax(logits)?;
        let nll = nll(&log_probs, target)?;
        let spread = (log_probs.sum(D::Minus1)?.mean_all()?.neg()? / classes)?;
        Ok(((nll * (1.0 - self.eps))? + (spread * self.eps)?)?)
    }

    /// The loss as a function, for [`Learner::new`](crate::learner::Learner::new) or [`fit`](crate::fit).
    pub fn into_fn(self) -> impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Clone + Send + Sync + 'static {
        move |logits, target| self.forward(logits, target)
    }
}

impl Default for LabelSmoothingCrossEntropy {
    /// The lesson's `eps = 0.1`.
    fn default() -> Self {
        LabelSmoothingCrossEntropy { eps: 0.1 }
    }
}

/// `f32` one-hot rows `[n, classes]` of class indices `labels`.
pub(crate) fn one_hot(labels: &[u32], classes: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mut v = vec![0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        let l = l as usize;
        if l >= classes {
            return Err(Error::invalid("target class", format!("in 0..{classes}"), l));
        }
        v[i * classes + l] = 1.0;
    }
    Ok(Tensor::from_vec(v, (labels.len(), classes), device)?.to_dtype(DType::F32)?)
}
