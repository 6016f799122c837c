//! The fused kernels' threads.
//!
//! Training needs no call here: the layers multiply with the fused kernels ([`crate::fast`]), which
//! split only large multiplies (and large element-wise passes) between the calling thread and a
//! team of their own whose size [`set_kernel_threads`] sets (all cores by default). Results do not
//! depend on the count: a split multiply computes each output element in the same order. candle's
//! own operations use candle's pools, which its environment variables size (`RAYON_NUM_THREADS`
//! for its multiplies, `CANDLE_NUM_THREADS` for its element-wise pool), set before the program
//! starts: the library writes no environment variable.

use std::sync::atomic::{AtomicUsize, Ordering};

static KERNEL_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the threads of the fused kernels' large multiplies and passes (0: one per core). Takes
/// effect if called before the first fused kernel runs.
pub fn set_kernel_threads(n: usize) {
    KERNEL_THREADS.store(n, Ordering::Relaxed);
}

/// The threads the fused kernels' large multiplies and passes use: the count set (or one per
/// core). The kernels make their team once, when the first of them runs, and keep its size: a
/// count set after that is reported here but not used.
pub fn kernel_threads() -> usize {
    match KERNEL_THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}
