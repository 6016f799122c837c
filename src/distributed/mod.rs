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
mod shared;

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
    /// `data` (of `sum`'s length). Every process must get the same bits: a sum made in another
    /// order on each (its own values first, say) lets the models drift apart unseen.
    fn all_reduce_sum(&self, data: &[f32], sum: &mut [f32]) -> Result<()>;

    /// The same sum in buffers the collective owns: `fill` writes this process's `len` values,
    /// then `read` is given the sums (the same on every process). The training loop exchanges
    /// gradients this way, so that a collective can sum where the processes' values already are
    /// (`Mpi` on one machine: in memory the processes share, with no copy through MPI's buffers).
    /// The default goes through [`all_reduce_sum`](Collective::all_reduce_sum) with two buffers
    /// kept from call to call.
    fn all_reduce_sum_with(&self, len: usize, fill: Fill<'_>, read: Read<'_>) -> Result<()> {
        sum_through_copies(self, len, fill, read)
    }

    /// [`all_reduce_sum`](Collective::all_reduce_sum) in `f64`: for validation's sums.
    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<()>;

    /// Replaces `data` on every process by process `root`'s.
    fn broadcast(&self, data: &mut [f64], root: usize) -> Result<()>;

    /// Ends every process at once with exit status `code`: what a process that fails must do,
    /// since the others would otherwise wait for it in the next collective call for ever.
    fn abort(&self, code: i32) -> !;

    /// Seconds this process has spent exchanging gradients so far (0 where it is not measured):
    /// the communication share of training, its waits for the others included.
    fn reduce_seconds(&self) -> f64 {
        0.0
    }

    /// The part of [`reduce_seconds`](Collective::reduce_seconds) spent waiting for the other
    /// processes to arrive (0 where it is not measured): idle time, not communication. (`Mpi`
    /// measures it at a barrier before each sum, whose own latency it then counts: across
    /// machines that barrier is an extra synchronisation a step.)
    fn wait_seconds(&self) -> f64 {
        0.0
    }

    /// How the exchange ran where that is worth telling a user (`Mpi`: that it fell back from
    /// shared memory to `MPI_Allreduce`, and why); `None` otherwise.
    fn exchange_note(&self) -> Option<String> {
        None
    }
}

/// [`Collective::all_reduce_sum_with`] through [`Collective::all_reduce_sum`], with two buffers
/// kept from call to call (on each thread, for its life): the default, for a collective that
/// overrides the method and wants it in some cases.
pub fn sum_through_copies<C: Collective + ?Sized>(c: &C, len: usize, fill: Fill<'_>, read: Read<'_>) -> Result<()> {
    thread_local! {
        static BUFFERS: std::cell::Cell<(Vec<f32>, Vec<f32>)> = const { std::cell::Cell::new((Vec::new(), Vec::new())) };
    }
    let (mut data, mut sum) = BUFFERS.with(|b| b.take());
    data.resize(len, 0.0);
    sum.resize(len, 0.0);
    let summed = fill(&mut data).and_then(|()| c.all_reduce_sum(&data, &mut sum)).and_then(|()| read(&sum));
    BUFFERS.with(|b| b.set((data, sum)));
    summed
}

/// What [`Collective::all_reduce_sum_with`] calls, once, to write this process's values: the
/// slice (of the call's `len`) holds whatever was there before, and all of it must be written.
/// An error it returns is the call's (an implementation passes it on, and need not sum).
pub type Fill<'a> = &'a mut dyn FnMut(&mut [f32]) -> Result<()>;

/// What [`Collective::all_reduce_sum_with`] calls, once, after [`Fill`], with the sums (the same
/// bits on every process). An implementation that does not call it leaves the gradients as
/// they were: unaveraged, and different on each process.
pub type Read<'a> = &'a mut dyn FnMut(&[f32]) -> Result<()>;

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
    fn all_reduce_sum_with(&self, len: usize, fill: Fill<'_>, read: Read<'_>) -> Result<()> {
        (**self).all_reduce_sum_with(len, fill, read)
    }
    fn reduce_seconds(&self) -> f64 {
        (**self).reduce_seconds()
    }
    fn wait_seconds(&self) -> f64 {
        (**self).wait_seconds()
    }
    fn exchange_note(&self) -> Option<String> {
        (**self).exchange_note()
    }
}
