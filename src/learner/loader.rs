//! What the learner needs of a data loader.

use crate::data::{Collate, DataLoader, Dataset};
use crate::error::Result;
use candle_core::Tensor;

/// Batches of `(x, y)` for an epoch, from any position: a [`DataLoader`] is one.
pub trait Loader {
    /// The batches of epoch `epoch` from batch `start` on.
    fn batches(&self, epoch: u64, start: usize) -> Box<dyn Iterator<Item = Result<(Tensor, Tensor)>> + '_>;

    /// Batches per epoch.
    fn len(&self) -> usize;

    /// Whether an epoch has no batch.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<D: Dataset, C: Collate<D::Item, Batch = (Tensor, Tensor)>> Loader for DataLoader<D, C> {
    fn batches(&self, epoch: u64, start: usize) -> Box<dyn Iterator<Item = Result<(Tensor, Tensor)>> + '_> {
        Box::new(self.iter_epoch_from(epoch, start))
    }
    fn len(&self) -> usize {
        DataLoader::len(self)
    }
}
