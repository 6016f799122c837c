//! Data-parallel training: each process trains on its share of every epoch and the gradients are
//! averaged after each backward, so all processes take the same steps (PyTorch's
//! DistributedDataParallel).
//!
//! With MPI: `cargo build --release --features mpi --example 13_data_parallel`, then
//! `mpirun -n 2 target/release/examples/13_data_parallel`. Built without the feature it runs as
//! one process through the same code (`SingleProcess`).
//!
//! The questions this answers are in docs/distributed.md.
//!
//! Run: `cargo run --release --example 13_data_parallel [N_TRAIN] [EPOCHS]`.

use minibatch::data::ShardSampler;
use minibatch::distributed::Collective;
use minibatch::learner::Learner;
use minibatch::{cross_entropy, mlp, DataLoader, DistributedSampler, Mnist, Module, Result, Sgd};
use std::rc::Rc;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(50_000);
    let epochs = args.next().flatten().unwrap_or(2);
    #[cfg(feature = "mpi")]
    let world: Rc<dyn Collective> = Rc::new(minibatch::distributed::Mpi::init()?);
    #[cfg(not(feature = "mpi"))]
    let world: Rc<dyn Collective> = Rc::new(minibatch::distributed::SingleProcess);
    let (rank, size) = (world.rank(), world.size());

    let data = Mnist::load("data/mnist")?;
    let (train, valid) = (data.train.slice(0, n)?, data.valid);
    let (nt, nv) = (train.len(), valid.len());
    // This process's share of each epoch, and of the validation set; 64 images a process a batch.
    let train_dl = DataLoader::builder(train).sampler(DistributedSampler::new(nt, size, rank, 0)?).batch_size(64);
    let valid_dl = DataLoader::builder(valid).sampler(ShardSampler::new(nv, size, rank)?).batch_size(256);

    let model = mlp(&[784, 50, 10], 0)?;
    let opt = Sgd::new(model.parameters(), 0.5)?;
    let mut learn = Learner::new(model, cross_entropy, opt, train_dl.drop_last(true).build()?, valid_dl.build()?)
        .data_parallel(world.clone());
    learn.fit(epochs)?;
    if rank == 0 {
        let accuracy = learn.state.metric("accuracy").unwrap_or(f64::NAN);
        println!("{size} process(es), global batch {}: valid accuracy {accuracy:.4} (the whole set)", 64 * size);
    }
    Ok(())
}
