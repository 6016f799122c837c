//! Samplers over a chosen subset or with chosen weights.

use super::Sampler;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The given indices in a fresh random order each epoch: PyTorch's `SubsetRandomSampler` (a
/// validation split drawn from one dataset, say).
///
/// ```
/// use minibatch::data::SubsetRandomSampler;
/// use minibatch::Sampler;
/// let s = SubsetRandomSampler::new(vec![10, 20, 30], 1);
/// let mut e = s.indices(0);
/// e.sort();
/// assert_eq!(e, vec![10, 20, 30]);
/// ```
#[derive(Debug, Clone)]
pub struct SubsetRandomSampler {
    indices: Vec<usize>,
    seed: u64,
}

impl SubsetRandomSampler {
    /// A sampler of `indices`, shuffled from `seed`.
    pub fn new(indices: Vec<usize>, seed: u64) -> Self {
        SubsetRandomSampler { indices, seed }
    }
}

impl Sampler for SubsetRandomSampler {
    fn indices(&self, epoch: u64) -> Vec<usize> {
        let p = Rng::with_stream(self.seed, epoch).permutation(self.indices.len());
        p.into_iter().map(|i| self.indices[i]).collect()
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// `num_samples` indices drawn with probability proportional to `weights`: PyTorch's
/// `WeightedRandomSampler`, for balancing classes. With replacement, each draw is independent
/// (binary search over the cumulative weights); without, it is a weighted permutation (the
/// Efraimidis-Spirakis keys `u^(1/w)`), cut to `num_samples`.
///
/// ```
/// use minibatch::data::WeightedRandomSampler;
/// use minibatch::Sampler;
/// // Index 1 has all the weight.
/// let s = WeightedRandomSampler::new(vec![0.0, 1.0, 0.0], 4, true, 7)?;
/// assert_eq!(s.indices(0), vec![1, 1, 1, 1]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WeightedRandomSampler {
    cumulative: Vec<f64>,
    weights: Vec<f64>,
    num_samples: usize,
    replacement: bool,
    seed: u64,
}

impl WeightedRandomSampler {
    /// Draws from `weights` (finite, at least 0, not all 0). Without replacement, `num_samples`
    /// can be at most the number of positive weights.
    pub fn new(weights: Vec<f64>, num_samples: usize, replacement: bool, seed: u64) -> Result<Self> {
        if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(Error::invalid("sampling weight", "a finite number >= 0", w));
        }
        let positive = weights.iter().filter(|&&w| w > 0.0).count();
        if positive == 0 || (!replacement && num_samples > positive) {
            let expected = if replacement {
                "a positive weight".to_string()
            } else {
                format!("at least {num_samples} positive weights")
            };
            return Err(Error::invalid("sampling weights", expected, format!("{positive} positive")));
        }
        let cumulative = weights.iter().scan(0.0, |s, &w| {
            *s += w;
            Some(*s)
        });
        Ok(WeightedRandomSampler { cumulative: cumulative.collect(), weights, num_samples, replacement, seed })
    }
}

impl Sampler for WeightedRandomSampler {
    fn indices(&self, epoch: u64) -> Vec<usize> {
        let mut rng = Rng::with_stream(self.seed, epoch);
        if self.replacement {
            let total = *self.cumulative.last().unwrap_or(&0.0);
            let last = self.cumulative.len() - 1;
            (0..self.num_samples)
                .map(|_| {
                    let u = rng.next_f64() * total;
                    self.cumulative.partition_point(|&c| c <= u).min(last)
                })
                .collect()
        } else {
            let mut keyed: Vec<(f64, usize)> = (0..self.weights.len())
                .filter(|&i| self.weights[i] > 0.0)
                .map(|i| (rng.next_f64().max(f64::MIN_POSITIVE).powf(1.0 / self.weights[i]), i))
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            keyed.into_iter().take(self.num_samples).map(|(_, i)| i).collect()
        }
    }
    fn len(&self) -> usize {
        self.num_samples
    }
}
