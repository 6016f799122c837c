//! Metrics computed on the validation set, averaged by batch size.

use crate::error::{Error, Result};
use candle_core::{DType, Tensor, D};

/// A figure computed per batch and averaged over the validation set, each batch weighted by its
/// size (so a short last batch counts for what it holds).
pub trait Metric {
    /// Its name in logs and tables.
    fn name(&self) -> String;

    /// The batch's mean value.
    fn batch(&self, preds: &Tensor, targets: &Tensor) -> Result<f64>;
}

/// The fraction of predictions whose largest score is the target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Accuracy;

impl Metric for Accuracy {
    fn name(&self) -> String {
        "accuracy".into()
    }
    fn batch(&self, preds: &Tensor, targets: &Tensor) -> Result<f64> {
        Ok(crate::loss::accuracy(preds, targets)?.to_scalar::<f32>()? as f64)
    }
}

/// The fraction of predictions whose `k` largest scores include the target.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::learner::{Metric, TopK};
/// let preds = Tensor::new(&[[0.1f32, 0.5, 0.4], [0.8, 0.15, 0.05]], &Device::Cpu)?;
/// let targets = Tensor::new(&[2u32, 2], &Device::Cpu)?;
/// assert_eq!(TopK(2).batch(&preds, &targets)?, 0.5);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TopK(pub usize);

impl Metric for TopK {
    fn name(&self) -> String {
        format!("top{}_accuracy", self.0)
    }
    fn batch(&self, preds: &Tensor, targets: &Tensor) -> Result<f64> {
        let (n, c) = preds.dims2()?;
        let k = self.0;
        if k == 0 || k > c {
            return Err(Error::invalid("top-k", format!("1..={c}"), k));
        }
        // The target is in the top k when fewer than k scores beat it.
        let t = targets.to_dtype(DType::U32)?.unsqueeze(1)?;
        let target_score = preds.gather(&t, 1)?;
        let beaten = preds.broadcast_gt(&target_score)?.to_dtype(DType::F32)?.sum(D::Minus1)?;
        let hits: Vec<f32> = beaten.to_vec1()?;
        Ok(hits.iter().filter(|&&b| (b as usize) < k).count() as f64 / n.max(1) as f64)
    }
}
