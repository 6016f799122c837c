//! The data pipeline, the notebook's step 5: a [`Dataset`] gives items, a [`Sampler`] gives their
//! order, a [`BatchSampler`] cuts the order into batches, [`Collate`] turns a batch of items into
//! tensors, and a [`DataLoader`] runs all of it, epoch after epoch.

mod collate;
mod dataset;
mod loader;
mod sampler;

pub use collate::{Collate, DefaultCollate};
pub use dataset::{Dataset, TensorDataset};
pub use loader::{get_dls, Batches, DataLoader};
pub use sampler::{BatchSampler, RandomSampler, Sampler, SequentialSampler};
