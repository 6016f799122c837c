//! Building a `DataLoader`: every option, and none that contradicts another.

use super::loader::{spawn_pool, Shared};
use super::transform::{BatchTransform, ItemTransform};
use super::{BatchSampler, Collate, DataLoader, Dataset, DefaultCollate, RandomSampler, Sampler, SequentialSampler};
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Builder state: no order chosen yet (in order unless `shuffle` or `sampler` is called).
pub struct Unordered;
/// Builder state: the order is set (`shuffle` or `sampler`); batch size and `drop_last` remain.
pub struct Ordered;
/// Builder state: a batch sampler decides the batches; order and batch size are its.
pub struct Batched;

/// Builds a [`DataLoader`] (`DataLoader::builder(dataset)`). The type tracks what has been set,
/// so that PyTorch's run-time conflicts cannot be written: after `shuffle` there is no
/// `sampler`, and after `batch_sampler` no `shuffle`, `sampler`, `batch_size` or `drop_last`.
///
/// ```
/// use minibatch::{DataLoader, Mnist};
/// # let data = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))?;
/// let dl = DataLoader::builder(data.train)
///     .batch_size(64)
///     .shuffle(42)
///     .drop_last(true)
///     .num_workers(2)
///     .prefetch(4)
///     .batch_transform(minibatch::data::normalize(0.1307, 0.3081))
///     .build()?;
/// assert_eq!(dl.len(), 781);
/// # Ok::<(), minibatch::Error>(())
/// ```
///
/// A sampler after `shuffle` does not compile (PyTorch raises at run time):
///
/// ```compile_fail
/// # use minibatch::{DataLoader, RandomSampler, TensorDataset};
/// # fn f(ds: TensorDataset) {
/// let b = DataLoader::builder(ds).shuffle(1).sampler(RandomSampler::new(10, 2));
/// # }
/// ```
///
/// nor does a batch size after a batch sampler:
///
/// ```compile_fail
/// # use minibatch::{BatchSampler, DataLoader, SequentialSampler, TensorDataset};
/// # fn f(ds: TensorDataset, bs: BatchSampler) {
/// let b = DataLoader::builder(ds).batch_sampler(bs).batch_size(64);
/// # }
/// ```
pub struct DataLoaderBuilder<D: Dataset, C: Collate<D::Item>, S> {
    dataset: D,
    collate: C,
    sampler: Option<Box<dyn Sampler + Send + Sync>>,
    batch_sampler: Option<BatchSampler>,
    batch_size: usize,
    drop_last: bool,
    seed: u64,
    workers: usize,
    prefetch: usize,
    spawn: Option<super::loader::SpawnFn<D, C>>,
    item_tf: Option<Box<ItemTransform<D::Item>>>,
    batch_tf: Option<Box<BatchTransform<C::Batch>>>,
    state: PhantomData<S>,
}

impl<D: Dataset> DataLoader<D>
where
    DefaultCollate: Collate<D::Item>,
{
    /// A builder with [`DefaultCollate`]: batches of 1 in order, in the caller's thread, until
    /// told otherwise.
    pub fn builder(dataset: D) -> DataLoaderBuilder<D, DefaultCollate, Unordered> {
        DataLoader::builder_with_collate(dataset, DefaultCollate)
    }
}

impl<D: Dataset, C: Collate<D::Item>> DataLoader<D, C> {
    /// A builder with a collate function of your own (any `Fn(Vec<Item>) -> Result<Batch>`).
    pub fn builder_with_collate(dataset: D, collate: C) -> DataLoaderBuilder<D, C, Unordered> {
        DataLoaderBuilder {
            dataset,
            collate,
            sampler: None,
            batch_sampler: None,
            batch_size: 1,
            drop_last: false,
            seed: 0,
            workers: 0,
            prefetch: 2,
            spawn: None,
            item_tf: None,
            batch_tf: None,
            state: PhantomData,
        }
    }
}

impl<D: Dataset, C: Collate<D::Item>, S> DataLoaderBuilder<D, C, S> {
    fn to<T>(self) -> DataLoaderBuilder<D, C, T> {
        DataLoaderBuilder {
            dataset: self.dataset,
            collate: self.collate,
            sampler: self.sampler,
            batch_sampler: self.batch_sampler,
            batch_size: self.batch_size,
            drop_last: self.drop_last,
            seed: self.seed,
            workers: self.workers,
            prefetch: self.prefetch,
            spawn: self.spawn,
            item_tf: self.item_tf,
            batch_tf: self.batch_tf,
            state: PhantomData,
        }
    }

    /// Seed of the transforms' random generators (`shuffle` sets it too).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Makes batches in `n` persistent worker threads (0: in the caller's thread). Batches still
    /// come out in the sampler's order, identical to those of 0 workers.
    pub fn num_workers(mut self, n: usize) -> Self
    where
        D: Send + Sync + 'static,
        C: Send + Sync + 'static,
        C::Batch: Send + 'static,
    {
        self.workers = n;
        self.spawn = Some(spawn_pool::<D, C>);
        self
    }

    /// Batches each worker prepares ahead (at least 1; default 2).
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }

    /// Transforms each item before collation (augmentation), with a generator seeded from the
    /// seed, the epoch and the item's index.
    pub fn item_transform(mut self, f: impl Fn(D::Item, &mut Rng) -> Result<D::Item> + Send + Sync + 'static) -> Self {
        self.item_tf = Some(Box::new(f));
        self
    }

    /// Transforms each collated batch (normalisation), with a generator seeded from the seed,
    /// the epoch and the batch's number.
    pub fn batch_transform(
        mut self,
        f: impl Fn(C::Batch, &mut Rng) -> Result<C::Batch> + Send + Sync + 'static,
    ) -> Self {
        self.batch_tf = Some(Box::new(f));
        self
    }

    /// The loader. Fails on a zero batch size or prefetch.
    pub fn build(self) -> Result<DataLoader<D, C>> {
        if self.prefetch == 0 {
            return Err(Error::invalid("prefetch", "at least 1", 0));
        }
        let batches = match self.batch_sampler {
            Some(b) => b,
            None => {
                let n = self.dataset.len();
                let sampler = self.sampler.unwrap_or_else(|| Box::new(SequentialSampler::new(n)));
                BatchSampler::boxed(sampler, self.batch_size, self.drop_last)?
            }
        };
        let shared = Shared {
            dataset: self.dataset,
            collate: self.collate,
            item_tf: self.item_tf,
            batch_tf: self.batch_tf,
            seed: self.seed,
        };
        Ok(DataLoader {
            shared: Arc::new(shared),
            batches,
            epoch: AtomicU64::new(0),
            workers: self.workers,
            prefetch: self.prefetch,
            spawn: self.spawn,
            pool: Mutex::new(None),
        })
    }
}

/// The states in which batch size and `drop_last` can still be set.
pub trait SizedBatches {}
impl SizedBatches for Unordered {}
impl SizedBatches for Ordered {}

impl<D: Dataset, C: Collate<D::Item>, S: SizedBatches> DataLoaderBuilder<D, C, S> {
    /// Items per batch (at least 1; default 1, as in PyTorch).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Drops the last batch of an epoch when it is short.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }
}

impl<D: Dataset, C: Collate<D::Item>> DataLoaderBuilder<D, C, Unordered> {
    /// Shuffles afresh every epoch, from `seed` (which also seeds the transforms).
    pub fn shuffle(mut self, seed: u64) -> DataLoaderBuilder<D, C, Ordered> {
        self.sampler = Some(Box::new(RandomSampler::new(self.dataset.len(), seed)));
        self.seed = seed;
        self.to()
    }

    /// Draws indices from `sampler`.
    pub fn sampler(mut self, sampler: impl Sampler + Send + Sync + 'static) -> DataLoaderBuilder<D, C, Ordered> {
        self.sampler = Some(Box::new(sampler));
        self.to()
    }

    /// Takes whole batches from `batches` (its own order, batch size and `drop_last`).
    pub fn batch_sampler(mut self, batches: BatchSampler) -> DataLoaderBuilder<D, C, Batched> {
        self.batch_sampler = Some(batches);
        self.to()
    }
}
