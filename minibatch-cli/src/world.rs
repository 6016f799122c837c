//! `train --distributed`: the processes of an `mpirun`, when the program is built with the `mpi`
//! feature.

use crate::args::AllReduce;
use minibatch::distributed::Collective;
use std::rc::Rc;

/// The processes this run trains with: `None` without `--distributed`.
pub type World = Option<Rc<dyn Collective>>;

/// Whether this is the process that prints and writes (process 0, or the only one).
pub fn first(world: &World) -> bool {
    world.as_ref().is_none_or(|w| w.rank() == 0)
}

/// Joins the `mpirun` this process was started by.
#[cfg(feature = "mpi")]
pub fn join(distributed: bool, how: AllReduce) -> anyhow::Result<World> {
    if !distributed {
        return Ok(None);
    }
    let world = minibatch::distributed::Mpi::init()?;
    Ok(Some(Rc::new(match how {
        AllReduce::Shared => world,
        AllReduce::Mpi => world.all_reduce_through_mpi(),
    })))
}

/// Without MPI built in, `--distributed` says how to get it.
#[cfg(not(feature = "mpi"))]
pub fn join(distributed: bool, _how: AllReduce) -> anyhow::Result<World> {
    if distributed {
        anyhow::bail!(
            "--distributed needs MPI, which this build of minibatch leaves out: \
             build with `cargo build --release --features minibatch-cli/mpi` (see docs/distributed.md)"
        );
    }
    Ok(None)
}

/// Kernel threads per process when `--threads` is not given: the machine's cores shared by the
/// processes `mpirun` started on it (OpenMPI's and MPICH's local size), at least one.
pub fn default_threads(distributed: bool) -> usize {
    if !distributed {
        return 0;
    }
    let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / local).max(1)
}
