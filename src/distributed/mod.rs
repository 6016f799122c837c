//! Data-parallel training across processes: each process trains on its share of every epoch
//! ([`DistributedSampler`](crate::DistributedSampler)), and after each backward the gradients of
//! all processes are summed and averaged, so that every process takes the same step and the
//! models stay equal. The processes talk through a [`Collective`]: `Mpi` with the `mpi` feature
//! (one process per machine or socket, started by `mpirun`), or any other implementation.
//!
//! A [`Learner`](crate::learner::Learner) trains this way after
//! [`data_parallel`](crate::learner::Learner::data_parallel):
//!
//! ```text
//! let world = minibatch::distributed::Mpi::init()?;
//! let (rank, size) = (world.rank(), world.size());
//! let train = DataLoader::builder(data.train).sampler(DistributedSampler::new(n, size, rank, 0)?).batch_size(32).drop_last(true).build()?;
//! let valid = DataLoader::builder(data.valid).sampler(ShardSampler::new(nv, size, rank)?).batch_size(256).build()?;
//! let mut learn = Learner::new(model, cross_entropy, opt, train, valid).data_parallel(world);
//! learn.fit(3)?;   // the same model on every process; validation figures over the whole set
//! ```

#[cfg(feature = "mpi")]
mod mpi;
mod reduce;

#[cfg(feature = "mpi")]
pub use self::mpi::Mpi;
pub(crate) use reduce::{broadcast_buffers, broadcast_model, reduce_step, StepShare};

use crate::error::Result;

/// The operations data-parallel training needs between its processes. Every process must make
/// the same calls in the same order (they are collective): the training loop guarantees it.
pub trait Collective {
    /// This process's number, from 0.
    fn rank(&self) -> usize;

    /// The number of processes.
    fn size(&self) -> usize;

    /// Writes into `sum`, on every process, the element-wise sum over all processes of their
    /// `data` (of `sum`'s length).
    fn all_reduce_sum(&self, data: &[f32], sum: &mut [f32]) -> Result<()>;

    /// [`all_reduce_sum`](Collective::all_reduce_sum) in `f64`: for validation's sums.
    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<()>;

    /// Replaces `data` on every process by process `root`'s.
    fn broadcast(&self, data: &mut [f64], root: usize) -> Result<()>;

    /// Ends every process at once with exit status `code`: what a process that fails must do,
    /// since the others would otherwise wait for it in the next collective call for ever.
    fn abort(&self, code: i32) -> !;

    /// Seconds this process has spent in [`all_reduce_sum`](Collective::all_reduce_sum) so far,
    /// waiting for the others included (0 where it is not measured): the communication share of
    /// training.
    fn reduce_seconds(&self) -> f64 {
        0.0
    }
}

/// One process alone: every collective call leaves the data as it is. The same training code
/// then runs with or without `mpirun`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, data: &[f32], sum: &mut [f32]) -> Result<()> {
        sum.copy_from_slice(data);
        Ok(())
    }
    fn all_reduce_sum_f64(&self, _data: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&self, _data: &mut [f64], _root: usize) -> Result<()> {
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// A shared collective is one: the program keeps one handle (to abort on an error, to read the
/// rank) while the learner holds another.
impl<T: Collective + ?Sized> Collective for std::rc::Rc<T> {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn all_reduce_sum(&self, data: &[f32], sum: &mut [f32]) -> Result<()> {
        (**self).all_reduce_sum(data, sum)
    }
    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<()> {
        (**self).all_reduce_sum_f64(data)
    }
    fn broadcast(&self, data: &mut [f64], root: usize) -> Result<()> {
        (**self).broadcast(data, root)
    }
    fn abort(&self, code: i32) -> ! {
        (**self).abort(code)
    }
    fn reduce_seconds(&self) -> f64 {
        (**self).reduce_seconds()
    }
}
