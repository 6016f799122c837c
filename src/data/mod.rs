//! The data pipeline, the notebook's step 5: a [`Dataset`] gives items, a [`Sampler`] gives their
//! order, a [`BatchSampler`] cuts the order into batches, [`Collate`] turns a batch of items into
//! tensors, and a [`DataLoader`] runs all of it, epoch after epoch, in the caller's thread or in
//! persistent workers. A [`StreamLoader`] does the same for data that comes as a stream.

pub mod block;
mod builder;
mod collate;
mod dataset;
#[cfg(feature = "images")]
pub mod images;
mod loader;
mod sampler;
mod shard;
mod stream;
mod subset;
mod transform;
mod weighted;
mod workers;

pub use builder::{Batched, DataLoaderBuilder, Ordered, SizedBatches, Unordered};
pub use collate::{Collate, DefaultCollate};
pub use dataset::{Dataset, TensorDataset, VecDataset};
pub use loader::{get_dls, get_dls_with, Batches, DataLoader, DlsOptions};
pub use sampler::{BatchSampler, RandomSampler, Sampler, SequentialSampler};
pub use shard::{DistributedSampler, ShardSampler};
pub use stream::{IterableDataset, StreamLoader};
pub use subset::{random_split, ConcatDataset, Subset};
pub use transform::{normalize, BatchTransform, ItemTransform};
pub use weighted::{SubsetRandomSampler, WeightedRandomSampler};
