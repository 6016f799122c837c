//! Collate functions: from a batch of items to the tensors a model takes.

use crate::error::{Error, Result};
use candle_core::Tensor;

/// Turns the items of one batch into a batch. Any `Fn(Vec<Item>) -> Result<Batch>` is one, so a
/// closure replaces the default (to pad sequences, add a channel dimension, one-hot the targets...).
///
/// ```
/// use minibatch::{Collate, DefaultCollate, ImageItem};
/// let items = vec![ImageItem { pixels: vec![0, 255].into(), label: 3 }, ImageItem { pixels: vec![51, 0].into(), label: 1 }];
/// let (x, y) = DefaultCollate.collate(items)?;
/// assert_eq!(x.to_vec2::<f32>()?, vec![vec![0.0, 1.0], vec![0.2, 0.0]]);
/// assert_eq!(y.to_vec1::<u32>()?, vec![3, 1]);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub trait Collate<I> {
    /// What a batch becomes.
    type Batch;

    /// Collates the items of one batch, in order.
    fn collate(&self, items: Vec<I>) -> Result<Self::Batch>;
}

impl<I, B, F: Fn(Vec<I>) -> Result<B>> Collate<I> for F {
    type Batch = B;
    fn collate(&self, items: Vec<I>) -> Result<B> {
        self(items)
    }
}

/// PyTorch's default: stacks inputs and targets along a new first dimension. (For MNIST's
/// [`ImageItem`](crate::ImageItem)s, whose collate lives with them, pixels become `f32` scaled to
/// `[0, 1]` and labels `u32`.)
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultCollate;

impl Collate<(Tensor, Tensor)> for DefaultCollate {
    type Batch = (Tensor, Tensor);
    fn collate(&self, items: Vec<(Tensor, Tensor)>) -> Result<(Tensor, Tensor)> {
        if items.is_empty() {
            return Err(Error::invalid("batch", "at least one item", 0));
        }
        let (xs, ys): (Vec<Tensor>, Vec<Tensor>) = items.into_iter().unzip();
        Ok((Tensor::stack(&xs, 0)?, Tensor::stack(&ys, 0)?))
    }
}
