//! Datasets that come as a stream: no length, or too large to hold.

use super::{Collate, DefaultCollate};
use crate::error::Result;

/// Data read in order, for example from files too large for memory: PyTorch's
/// `IterableDataset`. Each epoch asks for a fresh iterator.
pub trait IterableDataset {
    /// One example.
    type Item;

    /// The items of epoch `epoch`, in order.
    fn iter(&self, epoch: u64) -> Box<dyn Iterator<Item = Result<Self::Item>> + '_>;
}

/// Batches of consecutive items of an [`IterableDataset`], collated; the last batch is short
/// unless `drop_last`. It runs in the caller's thread, reading as it goes, so memory holds one
/// batch at a time.
///
/// ```
/// use minibatch::data::{IterableDataset, StreamLoader};
/// use candle_core::{Device, Tensor};
/// struct Counter(u32);
/// impl IterableDataset for Counter {
///     type Item = (Tensor, Tensor);
///     fn iter(&self, _: u64) -> Box<dyn Iterator<Item = minibatch::Result<(Tensor, Tensor)>> + '_> {
///         Box::new((0..self.0).map(|i| Ok((Tensor::new(&[i as f32], &Device::Cpu)?, Tensor::new(i, &Device::Cpu)?))))
///     }
/// }
/// let dl = StreamLoader::new(Counter(5), 2, false);
/// let sizes: Vec<usize> = dl.iter(0).map(|b| b.unwrap().1.dims()[0]).collect();
/// assert_eq!(sizes, vec![2, 2, 1]);
/// ```
pub struct StreamLoader<D, C = DefaultCollate> {
    dataset: D,
    batch_size: usize,
    drop_last: bool,
    collate: C,
}

impl<D: IterableDataset> StreamLoader<D> {
    /// Batches of `batch_size` (at least 1) with [`DefaultCollate`].
    pub fn new(dataset: D, batch_size: usize, drop_last: bool) -> Self {
        StreamLoader { dataset, batch_size: batch_size.max(1), drop_last, collate: DefaultCollate }
    }
}

impl<D: IterableDataset, C: Collate<D::Item>> StreamLoader<D, C> {
    /// The same loader with another collate function.
    pub fn with_collate<C2: Collate<D::Item>>(self, collate: C2) -> StreamLoader<D, C2> {
        StreamLoader { dataset: self.dataset, batch_size: self.batch_size, drop_last: self.drop_last, collate }
    }

    /// The batches of epoch `epoch`.
    pub fn iter(&self, epoch: u64) -> impl Iterator<Item = Result<C::Batch>> + '_ {
        let mut items = self.dataset.iter(epoch);
        std::iter::from_fn(move || {
            let mut batch = Vec::with_capacity(self.batch_size);
            for item in items.by_ref() {
                match item {
                    Ok(i) => batch.push(i),
                    Err(e) => return Some(Err(e)),
                }
                if batch.len() == self.batch_size {
                    break;
                }
            }
            if batch.is_empty() || (self.drop_last && batch.len() < self.batch_size) {
                return None;
            }
            Some(self.collate.collate(batch))
        })
    }
}
