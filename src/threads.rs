//! The thread count for candle's CPU kernels.
//!
//! candle-core reads `RAYON_NUM_THREADS` on every matrix multiply; when it is unset it parses
//! `/proc/cpuinfo` each time (about 31 µs, a tenth of a training step of the notebook's model). For
//! the notebook's small matrices one thread is also the fastest: rayon's start-up costs more than
//! the second core gives back. The program calls [`set_num_threads`] first thing.

/// Sets the number of threads candle's kernels use. Call it at the start of `main`, before any other
/// thread runs (it sets an environment variable, which is not safe while other threads read it).
pub fn set_num_threads(n: usize) {
    std::env::set_var("RAYON_NUM_THREADS", n.max(1).to_string());
}

/// The thread count candle's kernels will use now.
pub fn num_threads() -> usize {
    candle_core::utils::get_num_threads()
}
