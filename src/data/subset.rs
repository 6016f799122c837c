//! Datasets made of other datasets: a subset, a random split, a concatenation.

use super::dataset::out_of_range;
use super::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::sync::Arc;

/// The items of `dataset` at `indices`, in that order: PyTorch's `Subset`.
#[derive(Debug, Clone)]
pub struct Subset<D> {
    dataset: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// The items at `indices`, each below `dataset.len()`.
    pub fn new(dataset: D, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= dataset.len()) {
            return Err(out_of_range(bad, dataset.len()));
        }
        Ok(Subset { dataset, indices })
    }

    /// The indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<D::Item> {
        let &i = self.indices.get(index).ok_or_else(|| out_of_range(index, self.indices.len()))?;
        self.dataset.get(i)
    }
    fn get_batch(&self, indices: &[usize]) -> Result<Vec<D::Item>> {
        let inner = indices
            .iter()
            .map(|&i| self.indices.get(i).copied().ok_or_else(|| out_of_range(i, self.indices.len())))
            .collect::<Result<Vec<_>>>()?;
        self.dataset.get_batch(&inner)
    }
    fn prefetch(&self, indices: &[usize]) {
        let inner: Vec<usize> = indices.iter().filter_map(|&i| self.indices.get(i).copied()).collect();
        self.dataset.prefetch(&inner)
    }
}

/// Splits `dataset` into random disjoint subsets of the given lengths (which must add up to its
/// length), from `seed`: PyTorch's `random_split`. The dataset is shared, not copied.
///
/// ```
/// use minibatch::data::random_split;
/// use minibatch::{Dataset, TensorDataset};
/// use candle_core::{Device, Tensor};
/// let ds = TensorDataset::new(Tensor::zeros((10, 2), candle_core::DType::F32, &Device::Cpu)?, Tensor::zeros(10, candle_core::DType::U32, &Device::Cpu)?)?;
/// let parts = random_split(ds, &[8, 2], 0)?;
/// assert_eq!((parts[0].len(), parts[1].len()), (8, 2));
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn random_split<D: Dataset>(dataset: D, lengths: &[usize], seed: u64) -> Result<Vec<Subset<Arc<D>>>> {
    let total: usize = lengths.iter().sum();
    if total != dataset.len() {
        return Err(Error::invalid("split lengths", format!("adding up to {}", dataset.len()), total));
    }
    let perm = Rng::new(seed).permutation(total);
    let dataset = Arc::new(dataset);
    let mut start = 0;
    lengths
        .iter()
        .map(|&n| {
            let part = Subset { dataset: dataset.clone(), indices: perm[start..start + n].to_vec() };
            start += n;
            Ok(part)
        })
        .collect()
}

/// Datasets one after the other: PyTorch's `ConcatDataset`.
#[derive(Debug, Clone)]
pub struct ConcatDataset<D> {
    parts: Vec<D>,
    ends: Vec<usize>,
}

impl<D: Dataset> ConcatDataset<D> {
    /// The concatenation of `parts`.
    pub fn new(parts: Vec<D>) -> Self {
        let ends = parts
            .iter()
            .scan(0, |s, d| {
                *s += d.len();
                Some(*s)
            })
            .collect();
        ConcatDataset { parts, ends }
    }

    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        let part = self.ends.partition_point(|&e| e <= index);
        let start = if part == 0 { 0 } else { self.ends[part - 1] };
        (part < self.parts.len()).then_some((part, index - start))
    }
}

impl<D: Dataset> Dataset for ConcatDataset<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }
    fn get(&self, index: usize) -> Result<D::Item> {
        let (part, i) = self.locate(index).ok_or_else(|| out_of_range(index, self.len()))?;
        self.parts[part].get(i)
    }
}
