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

/// Batches that can be gone over again and again (`&T: IntoIterator`, as a [`DataLoader`] or a
/// `Vec` of batches), each pass an epoch: how the notebook's `fit` and `evaluate` hand theirs to
/// the loop. A pass starts from its beginning (a resumed epoch skips the batches before), and the
/// number of batches is not known ahead (`len` is 0).
pub(crate) struct Passes<'a, T: ?Sized>(pub &'a T);

impl<'a, T: ?Sized> Loader for Passes<'a, T>
where
    &'a T: IntoIterator<Item = Result<(Tensor, Tensor)>>,
{
    fn batches(&self, _epoch: u64, start: usize) -> Box<dyn Iterator<Item = Result<(Tensor, Tensor)>> + '_> {
        Box::new(self.0.into_iter().skip(start))
    }
    fn len(&self) -> usize {
        0
    }
}

/// No batches: the validation set of a loop that does not validate (the learning-rate finder).
pub(crate) struct NoBatches;

impl Loader for NoBatches {
    fn batches(&self, _: u64, _: usize) -> Box<dyn Iterator<Item = Result<(Tensor, Tensor)>> + '_> {
        Box::new(std::iter::empty())
    }
    fn len(&self) -> usize {
        0
    }
}

impl Loader for Box<dyn Loader> {
    fn batches(&self, epoch: u64, start: usize) -> Box<dyn Iterator<Item = Result<(Tensor, Tensor)>> + '_> {
        (**self).batches(epoch, start)
    }
    fn len(&self) -> usize {
        (**self).len()
    }
}
