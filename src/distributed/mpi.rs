//! [`Collective`] over MPI (rsmpi): OpenMPI or MPICH, started by `mpirun`.

use super::Collective;
use crate::error::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, Rank, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// The processes of an `mpirun` (MPI's world communicator). Creating it initialises MPI, and
/// dropping it finalises it: make one per process, at the start.
pub struct Mpi {
    world: SimpleCommunicator,
    /// Time spent in all-reduce calls (waiting for the slowest process included).
    reducing: RefCell<Duration>,
    _universe: mpi::environment::Universe,
}

impl Mpi {
    /// Initialises MPI. Only the calling thread makes MPI calls (the loader's workers make none).
    pub fn init() -> Result<Mpi> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| Error::Unsupported("MPI was already initialised in this process".into()))?;
        let world = universe.world();
        Ok(Mpi { world, reducing: RefCell::new(Duration::ZERO), _universe: universe })
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, data: &[f32], sum: &mut [f32]) -> Result<()> {
        if data.len() != sum.len() {
            return Err(Error::invalid("all-reduce buffers", format!("{} values", data.len()), sum.len()));
        }
        let start = Instant::now();
        self.world.all_reduce_into(data, sum, SystemOperation::sum());
        *self.reducing.borrow_mut() += start.elapsed();
        Ok(())
    }

    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<()> {
        let send = data.to_vec();
        self.world.all_reduce_into(&send[..], data, SystemOperation::sum());
        Ok(())
    }

    fn broadcast(&self, data: &mut [f64], root: usize) -> Result<()> {
        self.world.process_at_rank(root as Rank).broadcast_into(data);
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    fn reduce_seconds(&self) -> f64 {
        self.reducing.borrow().as_secs_f64()
    }
}
