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

/// Rows of `f32` inputs, all of one length, and their labels, as `[n, len]` and `[n]` tensors.
fn rows_and_labels<'a>(rows: impl Iterator<Item = &'a [f32]>, labels: Vec<u32>) -> Result<(Tensor, Tensor)> {
    let mut data = Vec::new();
    let mut width = None;
    for row in rows {
        match width {
            None => width = Some(row.len()),
            Some(w) if w != row.len() => {
                return Err(Error::invalid("batch", format!("inputs of {w} values each"), row.len()));
            }
            Some(_) => {}
        }
        data.extend_from_slice(row);
    }
    let n = labels.len();
    if n == 0 {
        return Err(Error::invalid("batch", "at least one item", 0));
    }
    let device = candle_core::Device::Cpu;
    Ok((Tensor::from_vec(data, (n, width.unwrap_or(0)), &device)?, Tensor::from_vec(labels, n, &device)?))
}

/// A class label as the `u32` a batch holds; a negative or too large one is an error.
fn label_u32<L: TryInto<u32> + Copy + std::fmt::Display>(label: L) -> Result<u32> {
    label.try_into().map_err(|_| Error::invalid("label", "a class index from 0", label))
}

/// Items of plain numbers collate without hand-written tensors: an input as a `Vec<f32>` or an
/// `[f32; N]`, and an integer label, become an `[n, len]` `f32` batch and `u32` labels.
macro_rules! collate_plain_items {
    ($($label:ty),*) => {$(
        impl Collate<(Vec<f32>, $label)> for DefaultCollate {
            type Batch = (Tensor, Tensor);
            fn collate(&self, items: Vec<(Vec<f32>, $label)>) -> Result<(Tensor, Tensor)> {
                let labels = items.iter().map(|(_, y)| label_u32(*y)).collect::<Result<_>>()?;
                rows_and_labels(items.iter().map(|(x, _)| x.as_slice()), labels)
            }
        }

        impl<const N: usize> Collate<([f32; N], $label)> for DefaultCollate {
            type Batch = (Tensor, Tensor);
            fn collate(&self, items: Vec<([f32; N], $label)>) -> Result<(Tensor, Tensor)> {
                let labels = items.iter().map(|(_, y)| label_u32(*y)).collect::<Result<_>>()?;
                rows_and_labels(items.iter().map(|(x, _)| x.as_slice()), labels)
            }
        }
    )*};
}

collate_plain_items!(u8, u16, u32, u64, usize, i32, i64);
