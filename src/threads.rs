//! Thread counts: candle's kernels on one thread, the fused kernels' large multiplies on several.
//!
//! candle-core reads `RAYON_NUM_THREADS` on every matrix multiply; when it is unset it parses
//! `/proc/cpuinfo` each time (about 31 µs, a tenth of a training step of the notebook's model).
//! For the notebook's small matrices one thread is also the fastest: rayon's start-up costs more
//! than the second core gives back. The program calls [`set_num_threads`] first thing. The fused
//! kernels ([`crate::fast`]) split only large multiplies, over a pool of their own whose size
//! [`set_kernel_threads`] sets (all cores by default). Results do not depend on either count: a
//! split multiply computes each output element in the same order.

use std::sync::atomic::{AtomicUsize, Ordering};

static KERNEL_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the number of threads candle's kernels use. Call it at the start of `main`, before any other
/// thread runs (it sets an environment variable, which is not safe while other threads read it).
pub fn set_num_threads(n: usize) {
    std::env::set_var("RAYON_NUM_THREADS", n.max(1).to_string());
}

/// The thread count candle's kernels will use now.
pub fn num_threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// Sets the threads of the fused kernels' large multiplies (0: one per core). Takes effect if
/// called before the first such multiply.
pub fn set_kernel_threads(n: usize) {
    KERNEL_THREADS.store(n, Ordering::Relaxed);
}

/// The threads the fused kernels' large multiplies use.
pub fn kernel_threads() -> usize {
    match KERNEL_THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}
