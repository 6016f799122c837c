//! Thread counts: candle's kernels on one thread, the fused kernels' large multiplies on several.
//!
//! Training needs no call here: the layers multiply with the fused kernels ([`crate::fast`]), which
//! split only large multiplies (and large element-wise passes) between the calling thread and a
//! team of their own whose size [`set_kernel_threads`] sets (all cores by default), and the library
//! runs candle's element-wise pool on one thread by itself. [`set_num_threads`] is for code that
//! multiplies with candle directly: candle-core reads `RAYON_NUM_THREADS` on every matrix multiply,
//! and when it is unset parses `/proc/cpuinfo` each time (about 31 µs). Results do not depend on
//! either count: a split multiply computes each output element in the same order.

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
