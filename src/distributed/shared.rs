//! The gradient sum of processes on one machine, in memory they share (an MPI-3 shared-memory
//! window): each process writes its values into its own part of the window, each sums one slice
//! of everybody's values into the window's sums, and each reads the sums from there. Two barriers
//! a call and no copy through MPI's buffers (against `MPI_Allreduce`: docs/distributed.md).

use crate::error::{Error, Result};
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::CommunicatorCollectives;
use std::time::{Duration, Instant};

/// A shared-memory window for sums of `len` floats over the processes of a communicator whose
/// processes all share memory.
pub(super) struct SharedSum {
    win: ffi::MPI_Win,
    len: usize,
    /// Where each process writes its values, by rank.
    inputs: Vec<*mut f32>,
    /// The sums (in process 0's part of the window, after its values).
    sums: *mut f32,
    rank: usize,
}

/// Floats in a cache line: the slices the processes sum start on one, so that no two processes
/// write the same line.
const LINE: usize = 16;

impl SharedSum {
    /// The bytes of shared memory a sum of `len` floats over `size` processes takes.
    pub(super) fn bytes(len: usize, size: usize) -> u64 {
        ((size + 1) * len.max(1).next_multiple_of(LINE) * 4) as u64
    }

    /// Allocates the window (collective: every process of `comm` calls it with the same `len`).
    pub(super) fn new(comm: &SimpleCommunicator, len: usize) -> Result<SharedSum> {
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        let stride = len.max(1).next_multiple_of(LINE);
        let own = if rank == 0 { 2 * stride } else { stride };
        let mut base: *mut f32 = std::ptr::null_mut();
        // SAFETY: reads a constant the MPI library defines.
        let mut win: ffi::MPI_Win = unsafe { ffi::RSMPI_WIN_NULL };
        // SAFETY: the out-pointers are valid for writes; the window's memory stays allocated
        // until `MPI_Win_free` in `drop`, and the pointers into it are only used before then.
        unsafe {
            check(
                "MPI_Win_allocate_shared",
                ffi::MPI_Win_allocate_shared(
                    (own * 4) as ffi::MPI_Aint,
                    4,
                    ffi::RSMPI_INFO_NULL,
                    comm.as_raw(),
                    &mut base as *mut *mut f32 as *mut std::ffi::c_void,
                    &mut win,
                ),
            )?;
            let mut inputs = Vec::with_capacity(size);
            for r in 0..size {
                let (mut bytes, mut unit, mut at): (ffi::MPI_Aint, i32, *mut f32) = (0, 0, std::ptr::null_mut());
                check(
                    "MPI_Win_shared_query",
                    ffi::MPI_Win_shared_query(
                        win,
                        r as i32,
                        &mut bytes,
                        &mut unit,
                        &mut at as *mut *mut f32 as *mut std::ffi::c_void,
                    ),
                )?;
                inputs.push(at);
            }
            // A passive epoch over the whole window, so that `MPI_Win_sync` may order its memory.
            check("MPI_Win_lock_all", ffi::MPI_Win_lock_all(0, win))?;
            let sums = inputs[0].add(stride);
            Ok(SharedSum { win, len, inputs, sums, rank })
        }
    }

    /// The number of floats it sums.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// `fill` writes this process's values; once every process has, each sums its slice over the
    /// processes in their order; once all have, `read` gets the sums. Adds the time spent waiting
    /// at the first barrier (for the slowest process to arrive) to `waited`.
    pub(super) fn sum(
        &mut self,
        comm: &SimpleCommunicator,
        fill: super::Fill<'_>,
        read: super::Read<'_>,
        waited: &mut Duration,
    ) -> Result<()> {
        let (len, size) = (self.len, self.inputs.len());
        // SAFETY: only this process writes its input part, and only between the previous call's
        // second barrier (after which nobody reads the inputs) and this call's first.
        fill(unsafe { std::slice::from_raw_parts_mut(self.inputs[self.rank], len) })?;
        let arrived = Instant::now();
        self.fence(comm);
        *waited += arrived.elapsed();
        let chunk = len.div_ceil(size).next_multiple_of(LINE);
        let (start, end) = ((self.rank * chunk).min(len), ((self.rank + 1) * chunk).min(len));
        // SAFETY: between the two barriers nobody writes the inputs, and each process writes only
        // its own slice of the sums (slices start on distinct cache lines).
        unsafe {
            let out = std::slice::from_raw_parts_mut(self.sums.add(start), end - start);
            let part = |r: usize| std::slice::from_raw_parts(self.inputs[r].add(start), end - start);
            match size {
                1 => out.copy_from_slice(part(0)),
                _ => {
                    out.iter_mut().zip(part(0).iter().zip(part(1))).for_each(|(o, (a, b))| *o = a + b);
                    for r in 2..size {
                        out.iter_mut().zip(part(r)).for_each(|(o, v)| *o += v);
                    }
                }
            }
        }
        self.fence(comm);
        // SAFETY: nobody writes the sums until every process has reached the next call's first
        // barrier, which this process does only after `read`.
        read(unsafe { std::slice::from_raw_parts(self.sums, len) })
    }

    /// A barrier with the window's memory ordered on both sides of it.
    fn fence(&self, comm: &SimpleCommunicator) {
        // SAFETY: the window is alive and in the passive epoch opened in `new`.
        unsafe { ffi::MPI_Win_sync(self.win) };
        comm.barrier();
        // SAFETY: as above.
        unsafe { ffi::MPI_Win_sync(self.win) };
    }
}

impl Drop for SharedSum {
    fn drop(&mut self) {
        // SAFETY: the window was made in `new`; nothing uses its pointers after this.
        unsafe {
            ffi::MPI_Win_unlock_all(self.win);
            ffi::MPI_Win_free(&mut self.win);
        }
    }
}

/// An MPI return code as a result.
fn check(call: &str, code: i32) -> Result<()> {
    if code == ffi::MPI_SUCCESS as i32 {
        Ok(())
    } else {
        Err(Error::Unsupported(format!("{call} failed with MPI error code {code}")))
    }
}
