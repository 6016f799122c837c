//! Notebook stage 10: random sampling. A sampler only decides the order; training data is
//! reshuffled every epoch (or the model would see the same batches in the same order), and
//! validation data is not (order does not change a loss). `collate` turns a batch of items into
//! tensors, and can be replaced.
//!
//! Run: `cargo run --release --example 10_sampler_collate`.
//!
//! The questions of this stage are answered in the guide: `guide/06-random-sampling.md` and `guide/07-pytorch-dataloader.md`.

use minibatch::candle_core::Tensor;
use minibatch::{
    BatchSampler, Collate, DataLoader, DefaultCollate, ImageItem, Mnist, RandomSampler, Result, Sampler,
    SequentialSampler,
};

fn main() -> Result<()> {
    let data = Mnist::load("data/mnist")?;
    let small = data.train.slice(0, 10)?;

    // arange against randperm: in order, and a fresh permutation every epoch.
    println!("sequential: {:?}", SequentialSampler::new(10).indices(0));
    let random = RandomSampler::new(10, 42);
    println!("random, epoch 0: {:?}", random.indices(0));
    println!("random, epoch 1: {:?}", random.indices(1));

    let batches = BatchSampler::new(RandomSampler::new(10, 42), 4, false)?;
    println!("batches of 4, epoch 0: {:?}", batches.batches(0));

    // The default collate stacks images into [bs, 784] f32 in [0, 1] and labels into [bs] u32.
    let dl = DataLoader::builder(small.clone()).batch_sampler(batches).build()?;
    for (i, b) in dl.iter().enumerate() {
        let (x, y) = b?;
        println!("batch {i}: x {:?}, y {:?}", x.dims(), y.to_vec1::<u32>()?);
    }

    // A collate of our own: images as [bs, 1, 28, 28] for a conv net.
    let as_images = |items: Vec<ImageItem>| -> Result<(Tensor, Tensor)> {
        let (x, y) = DefaultCollate.collate(items)?;
        Ok((x.reshape(((), 1, 28, 28))?, y))
    };
    let dl = DataLoader::builder_with_collate(small, as_images).batch_size(4).shuffle(42).build()?;
    let (x, _) = dl.iter().next().unwrap()?;
    println!("custom collate: x {:?}", x.dims());
    Ok(())
}
