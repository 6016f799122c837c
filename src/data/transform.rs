//! Transforms applied by the loader (in its workers, when it has some): per item before
//! collation, per batch after. Each gets a random generator seeded from the loader's seed, the
//! epoch and the item's index (or the batch's number), so augmentation is the same on every run
//! and whatever the number of workers.

use crate::error::Result;
use crate::rng::Rng;
use candle_core::Tensor;

/// A transform of one item: augmentation goes here.
pub type ItemTransform<I> = dyn Fn(I, &mut Rng) -> Result<I> + Send + Sync;

/// A transform of one collated batch: normalisation goes here.
pub type BatchTransform<B> = dyn Fn(B, &mut Rng) -> Result<B> + Send + Sync;

/// A batch transform for `(x, y)` batches: `x = (x - mean) / std`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::data::normalize;
/// let f = normalize(0.5, 0.25);
/// let (x, _) = f((Tensor::new(&[1f32, 0.5], &Device::Cpu)?, Tensor::new(&[0u32, 1], &Device::Cpu)?), &mut minibatch::Rng::new(0))?;
/// assert_eq!(x.to_vec1::<f32>()?, vec![2.0, 0.0]);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn normalize(mean: f64, std: f64) -> impl Fn((Tensor, Tensor), &mut Rng) -> Result<(Tensor, Tensor)> + Send + Sync {
    move |(x, y), _| Ok((x.affine(1.0 / std, -mean / std)?, y))
}

/// The generator for item `index` (or batch `index`) of epoch `epoch`.
pub(crate) fn rng_for(seed: u64, epoch: u64, index: usize, batch: bool) -> Rng {
    let stream = (epoch << 32) ^ (index as u64) ^ if batch { 1 << 63 } else { 0 };
    Rng::with_stream(seed ^ 0x7f4a_7c15, stream)
}
