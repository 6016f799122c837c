//! Lesson 10b's MixUp: each training batch mixed with a shuffle of itself, inputs and labels
//! alike, with a weight drawn per example.

use super::{Callback, State};
use crate::error::{Error, Result};
use crate::label_smoothing::one_hot;
use crate::rng::Rng;
use candle_core::{DType, Tensor};

/// Mixes every training batch with a shuffled copy of itself (lesson 10b): example `i` becomes
/// `λ_i x_i + (1 - λ_i) x_s(i)`, and its label the class probabilities `λ_i` on its own class and
/// `1 - λ_i` on its partner's, for a shuffle `s` of the batch and `λ_i` drawn from
/// `Beta(alpha, alpha)` and taken as the larger of `λ_i` and `1 - λ_i` (so that the example stays
/// mostly itself and no two examples of a pair are the same mix). Validation batches are left
/// as they are.
///
/// The loss must take class probabilities: [`cross_entropy`](crate::cross_entropy) and
/// [`LabelSmoothingCrossEntropy`](crate::LabelSmoothingCrossEntropy) do, and since both are linear
/// in the target this is the lesson's mixed loss `λ loss(y) + (1 - λ) loss(y_s)`. The draws come
/// from `(seed, epoch, batch)`, so a resumed run mixes as the uninterrupted one did.
///
/// ```
/// use minibatch::learner::{Callback, MixUp, State};
/// use candle_core::{Device, Tensor};
/// let mut mixup = MixUp::new(0.4, 3, 0)?;
/// let x = Tensor::new(&[[1f32, 1.], [0., 0.]], &Device::Cpu)?;
/// let y = Tensor::new(&[0u32, 2], &Device::Cpu)?;
/// let state = State { training: true, ..Default::default() };
/// let (mx, my) = mixup.transform_batch(&state, (x, y))?;
/// let probs = my.to_vec2::<f32>()?;
/// // Each label row is a mix of at most two classes and sums to one, at least half its own.
/// assert!(probs.iter().all(|row| (row.iter().sum::<f32>() - 1.0).abs() < 1e-6 && row[1] == 0.0));
/// assert!(probs[0][0] >= 0.5 && probs[1][2] >= 0.5);
/// assert_eq!(mx.dims(), &[2, 2]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MixUp {
    alpha: f64,
    classes: usize,
    seed: u64,
}

impl MixUp {
    /// MixUp with `Beta(alpha, alpha)` weights (the lesson uses 0.4; larger mixes more) for
    /// labels in `0..classes`, its draws seeded by `seed`.
    pub fn new(alpha: f64, classes: usize, seed: u64) -> Result<Self> {
        if !(alpha > 0.0 && alpha.is_finite()) {
            return Err(Error::invalid("mixup alpha", "a positive number", alpha));
        }
        if classes == 0 {
            return Err(Error::invalid("mixup classes", "at least one", classes));
        }
        Ok(MixUp { alpha, classes, seed })
    }

    /// The weights (each the larger of a draw and one minus it) and the shuffle for a batch of
    /// `n` at this point of the run.
    fn draws(&self, state: &State, n: usize) -> (Vec<f64>, Vec<usize>) {
        let stream = (state.epoch as u64) << 32 | state.batch as u64;
        let mut rng = Rng::with_stream(self.seed, stream);
        let lambdas = (0..n).map(|_| rng.beta(self.alpha, self.alpha)).map(|l| l.max(1.0 - l)).collect();
        (lambdas, rng.permutation(n))
    }
}

/// Lesson 10b's mixing step with given weights and shuffle: `x` `[n, ...]` becomes
/// `λ_i x_i + (1 - λ_i) x_shuffle[i]` and the class indices `y` `[n]` become class probabilities
/// `[n, classes]`. The weights (each in `[0, 1]`) are used as given: MixUp passes the larger of
/// each draw and one minus it.
pub fn mix_batch(
    x: &Tensor,
    y: &Tensor,
    lambdas: &[f64],
    shuffle: &[usize],
    classes: usize,
) -> Result<(Tensor, Tensor)> {
    let n = x.dim(0)?;
    if !x.dtype().is_float() {
        return Err(Error::invalid("mixup inputs", "floats (a mix of pixels)", format!("{:?}", x.dtype())));
    }
    if let Some(bad) = lambdas.iter().find(|l| !(0.0..=1.0).contains(*l)) {
        return Err(Error::invalid("mixup weight", "in [0, 1]", bad));
    }
    if lambdas.len() != n || shuffle.len() != n || y.dims() != [n] || shuffle.iter().any(|&s| s >= n) {
        let found = format!("{n} inputs, labels {:?}, {} weights, {} shuffle", y.dims(), lambdas.len(), shuffle.len());
        return Err(Error::invalid("mixup batch", "one label, weight and shuffle index per input", found));
    }
    let device = x.device();
    let order = Tensor::from_vec(shuffle.iter().map(|&s| s as u32).collect::<Vec<_>>(), n, device)?;
    let mut shape = vec![1usize; x.rank()];
    shape[0] = n;
    let lam = Tensor::from_vec(lambdas.iter().map(|&l| l as f32).collect::<Vec<_>>(), shape, device)?;
    let lam = lam.to_dtype(x.dtype())?;
    let partner = x.index_select(&order, 0)?;
    let mixed = (x.broadcast_mul(&lam)? + partner.broadcast_mul(&(lam.affine(-1.0, 1.0))?)?)?;
    let labels: Vec<i64> = y.to_dtype(DType::I64)?.to_vec1()?;
    if let Some(&bad) = labels.iter().find(|&&l| l < 0 || l as u64 >= classes as u64) {
        return Err(Error::invalid("mixup label", format!("in 0..{classes}"), bad));
    }
    let labels: Vec<u32> = labels.into_iter().map(|l| l as u32).collect();
    let own = one_hot(&labels, classes, device)?;
    let other = one_hot(&shuffle.iter().map(|&s| labels[s]).collect::<Vec<_>>(), classes, device)?;
    let lam = lam.reshape((n, 1))?.to_dtype(DType::F32)?;
    let probs = (own.broadcast_mul(&lam)? + other.broadcast_mul(&lam.affine(-1.0, 1.0)?)?)?;
    Ok((mixed, probs))
}

impl Callback for MixUp {
    fn transform_batch(&mut self, state: &State, batch: (Tensor, Tensor)) -> Result<(Tensor, Tensor)> {
        if !state.training {
            return Ok(batch);
        }
        let (x, y) = batch;
        if y.dtype().is_float() {
            return Err(Error::invalid("mixup labels", "class indices", format!("{:?}", y.dtype())));
        }
        let (lambdas, shuffle) = self.draws(state, x.dim(0)?);
        mix_batch(&x, &y, &lambdas, &shuffle, self.classes)
    }
}
