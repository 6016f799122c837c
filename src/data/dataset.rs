//! The `Dataset` trait and a dataset over two tensors.

use crate::error::{Error, Result};
use candle_core::Tensor;

/// Something that has a length and gives an item for each index below it: the notebook's three
/// requirements of a dataset (`__len__`, `__getitem__`, and items that pair an input with its
/// target).
///
/// Contract: `get(i)` for `i < len()` gives item `i`, the same item every time; for `i >= len()`
/// it returns an error ([`Error::Item`]), never panics.
pub trait Dataset {
    /// One example, typically an `(input, target)` pair.
    type Item;

    /// The number of items.
    fn len(&self) -> usize;

    /// Item `index`.
    fn get(&self, index: usize) -> Result<Self::Item>;

    /// Whether the dataset has no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items of a batch of indices. The default calls [`get`](Dataset::get) for each and names
    /// the failing index in the error; a dataset that can gather a batch faster overrides it.
    fn get_batch(&self, indices: &[usize]) -> Result<Vec<Self::Item>> {
        indices
            .iter()
            .map(|&index| {
                self.get(index).map_err(|e| match e {
                    e @ Error::Item { .. } => e,
                    e => Error::Item { index, source: Box::new(e) },
                })
            })
            .collect()
    }

    /// A hint that the items at `indices` will be asked for soon: a dataset whose items live in
    /// memory can start loading them into the cache while the model works on the batch before.
    /// The default does nothing; [`crate::ImageDataset`] prefetches its images' bytes, which
    /// the loader asks for one batch ahead.
    fn prefetch(&self, indices: &[usize]) {
        let _ = indices;
    }
}

/// A list of items as a dataset (the notebook's list of `(x, y)` pairs), each cloned out. Items of
/// plain numbers (`(Vec<f32>, u32)`, `([f32; N], usize)`...) collate by default.
///
/// ```
/// use minibatch::{DataLoader, Dataset, VecDataset};
/// let items = VecDataset(vec![([0.0f32, 1.0], 1u32), ([1.0, 0.0], 0), ([0.5, 0.5], 1)]);
/// assert_eq!(items.len(), 3);
/// let dl = DataLoader::new(items, 2)?;
/// let (x, y) = dl.iter().next().unwrap()?;
/// assert_eq!((x.dims(), y.to_vec1::<u32>()?), (&[2usize, 2][..], vec![1, 0]));
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct VecDataset<T>(pub Vec<T>);

impl<T: Clone> Dataset for VecDataset<T> {
    type Item = T;
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> Result<T> {
        self.0.get(index).cloned().ok_or_else(|| Error::invalid("index", format!("below {}", self.0.len()), index))
    }
}

impl<D: Dataset + ?Sized> Dataset for std::sync::Arc<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Self::Item> {
        (**self).get(index)
    }
    fn get_batch(&self, indices: &[usize]) -> Result<Vec<Self::Item>> {
        (**self).get_batch(indices)
    }
    fn prefetch(&self, indices: &[usize]) {
        (**self).prefetch(indices)
    }
}

impl<D: Dataset + ?Sized> Dataset for &D {
    type Item = D::Item;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Self::Item> {
        (**self).get(index)
    }
    fn get_batch(&self, indices: &[usize]) -> Result<Vec<Self::Item>> {
        (**self).get_batch(indices)
    }
    fn prefetch(&self, indices: &[usize]) {
        (**self).prefetch(indices)
    }
}

/// The notebook's `Dataset(x, y)`: row `i` of `x` with row `i` of `y`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{Dataset, TensorDataset};
/// let x = Tensor::new(&[[1f32, 2.], [3., 4.], [5., 6.]], &Device::Cpu)?;
/// let y = Tensor::new(&[0u32, 1, 0], &Device::Cpu)?;
/// let ds = TensorDataset::new(x, y)?;
/// let (xi, yi) = ds.get(1)?;
/// assert_eq!((ds.len(), xi.to_vec1::<f32>()?, yi.to_scalar::<u32>()?), (3, vec![3., 4.], 1));
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TensorDataset {
    x: Tensor,
    y: Tensor,
}

impl TensorDataset {
    /// A dataset of the rows of `x` and `y`, which must have as many rows as each other.
    pub fn new(x: Tensor, y: Tensor) -> Result<Self> {
        let (nx, ny) = (x.dims().first().copied(), y.dims().first().copied());
        if nx.is_none() || nx != ny {
            return Err(Error::invalid(
                "dataset tensors",
                format!("equal row counts ({nx:?} inputs)"),
                format!("{ny:?} targets"),
            ));
        }
        Ok(TensorDataset { x, y })
    }

    /// The inputs and targets.
    pub fn tensors(&self) -> (&Tensor, &Tensor) {
        (&self.x, &self.y)
    }
}

impl Dataset for TensorDataset {
    type Item = (Tensor, Tensor);

    fn len(&self) -> usize {
        self.x.dims()[0]
    }

    fn get(&self, index: usize) -> Result<(Tensor, Tensor)> {
        if index >= self.len() {
            return Err(out_of_range(index, self.len()));
        }
        Ok((self.x.get(index)?, self.y.get(index)?))
    }
}

/// The error for an index past the end of a dataset of `len` items.
pub(crate) fn out_of_range(index: usize, len: usize) -> Error {
    Error::Item { index, source: Box::new(Error::invalid("index", format!("below {len}"), index)) }
}
