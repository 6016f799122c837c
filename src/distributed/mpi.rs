//! [`Collective`] over MPI (rsmpi): OpenMPI or MPICH, started by `mpirun`.

use super::shared::SharedSum;
use super::{Collective, Fill, Read};
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
    /// Whether gradients are summed in shared memory: every process shares this one's memory
    /// (all run on one machine), and [`all_reduce_through_mpi`](Mpi::all_reduce_through_mpi)
    /// was not asked for.
    shared_memory: bool,
    /// The shared-memory window of the gradient sums, made at the first exchange.
    shared: RefCell<Option<SharedSum>>,
    /// Time spent exchanging gradients (waiting for the slowest process included).
    reducing: RefCell<Duration>,
    /// The part of it spent waiting for the others to arrive.
    waiting: RefCell<Duration>,
    /// Why gradients went through `MPI_Allreduce` although shared memory was asked for.
    fallback: RefCell<Option<String>>,
    _universe: mpi::environment::Universe,
}

impl Mpi {
    /// Initialises MPI. Only the calling thread makes MPI calls (the loader's workers make none).
    pub fn init() -> Result<Mpi> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| Error::Unsupported("MPI was already initialised in this process".into()))?;
        let world = universe.world();
        let shared_memory = world.split_shared(0).size() == world.size();
        Ok(Mpi {
            world,
            shared_memory,
            shared: RefCell::new(None),
            reducing: RefCell::new(Duration::ZERO),
            waiting: RefCell::new(Duration::ZERO),
            fallback: RefCell::new(None),
            _universe: universe,
        })
    }

    /// Sums gradients through `MPI_Allreduce` even when all processes run on one machine, where
    /// they would otherwise sum in memory they share (an MPI shared-memory window, in `/dev/shm`
    /// with OpenMPI: a copy of the gradients per process and one of their sums). The window is
    /// not made where `/dev/shm` has too little room for it (then MPI sums anyway); this is to
    /// compare, or for a shared-memory file system that claims room it does not have (the two
    /// are compared in docs/distributed.md).
    pub fn all_reduce_through_mpi(mut self) -> Mpi {
        self.shared_memory = false;
        self
    }

    /// The shared-memory sum of `len` floats: the one made before if it has that length, else a
    /// new one; `None` (on every process) where some process's shared-memory folder lacks the
    /// room, since a write past a full `tmpfs` would kill the process with SIGBUS (and OpenMPI
    /// refuses a window that leaves it under about 5% of the folder free).
    fn shared_sum(&self, len: usize) -> Result<Option<std::cell::RefMut<'_, SharedSum>>> {
        let mut shared = self.shared.borrow_mut();
        if shared.as_ref().is_none_or(|s| s.len() != len) {
            // Every process exchanges the same lengths in the same order, so they all decide and
            // remake the window together.
            *shared = None;
            let (folder, free) = shm_room();
            // With an eighth of the folder to spare, and a megabyte for MPI's own state.
            let need = (SharedSum::bytes(len, self.world.size() as usize) + (1 << 20)) / 7 * 8;
            let room = i32::from(free >= need);
            let mut everywhere = 0;
            self.world.all_reduce_into(&room, &mut everywhere, SystemOperation::min());
            if everywhere == 0 {
                *self.fallback.borrow_mut() = Some(format!(
                    "gradients summed through MPI_Allreduce: summing them in shared memory wants {} MB free in {folder} (an eighth to spare included), which has {} MB",
                    need >> 20,
                    free >> 20
                ));
                return Ok(None);
            }
            *shared = Some(SharedSum::new(&self.world, len)?);
        }
        Ok(Some(std::cell::RefMut::map(shared, |s| s.as_mut().expect("made above"))))
    }
}

/// The folder MPI places shared-memory windows in (OpenMPI's `osc_sm_backing_directory` when set,
/// else `/dev/shm`) and its free bytes (unbounded where it cannot be asked).
fn shm_room() -> (String, u64) {
    let folder = std::env::var("OMPI_MCA_osc_sm_backing_directory").unwrap_or_else(|_| "/dev/shm".into());
    let Ok(path) = std::ffi::CString::new(folder.clone()) else { return (folder, u64::MAX) };
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: the path is a NUL-terminated string and `stat` is valid for writes.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return (folder, u64::MAX);
    }
    // SAFETY: statvfs succeeded, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    // The fields' types vary with the platform (64 bits on 64-bit Linux).
    #[allow(clippy::unnecessary_cast)]
    (folder, (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
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
        self.world.all_reduce_into(data, sum, SystemOperation::sum());
        Ok(())
    }

    /// On one machine the processes sum in memory they share (an MPI-3 shared-memory window: each
    /// writes its values there, each sums one slice over the processes in their order, each reads
    /// the sums); across machines through `MPI_Allreduce`.
    fn all_reduce_sum_with(&self, len: usize, fill: Fill<'_>, read: Read<'_>) -> Result<()> {
        let start = Instant::now();
        let shared = if self.shared_memory { self.shared_sum(len)? } else { None };
        let summed = if let Some(mut shared) = shared {
            shared.sum(&self.world, fill, read, &mut self.waiting.borrow_mut())
        } else {
            // Across machines: a barrier first, so that the wait for the slowest process is
            // measured apart from the transfer.
            let mut barrier = |data: &mut [f32]| {
                fill(data)?;
                let arrived = Instant::now();
                self.world.barrier();
                *self.waiting.borrow_mut() += arrived.elapsed();
                Ok(())
            };
            super::sum_through_copies(self, len, &mut barrier, read)
        };
        *self.reducing.borrow_mut() += start.elapsed();
        summed
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

    fn wait_seconds(&self) -> f64 {
        self.waiting.borrow().as_secs_f64()
    }

    fn exchange_note(&self) -> Option<String> {
        self.fallback.borrow().clone()
    }
}
