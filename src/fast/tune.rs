//! Process-wide settings that training needs for its speed, applied once by the library itself
//! (at the first layer built or run), so that a user's code needs no set-up call:
//!
//! - **The system allocator keeps freed memory.** Every candle operation, and every fused
//!   kernel, allocates its output; a training step of the `deep` model allocates and frees
//!   megabytes in blocks of 256 kB to 3 MB. glibc's malloc serves blocks above its mmap threshold
//!   with fresh mappings, unmaps them when freed, and trims its heap back to the kernel: each step
//!   then pays a page fault per 4 kB it touches again (measured in a user's crate: 1.15 million
//!   page faults in three `deep` epochs, against 17,000 with both thresholds raised). Other
//!   allocators ignore this; a user who installs one (mimalloc, jemalloc) loses nothing.
//! - **candle's element-wise kernels run on one thread.** candle splits large element-wise
//!   operations over a pool of its own whose threads spin while waiting; beside the fused
//!   kernels' multiplies they take the cores the multiplies need (measured: 29% of a `deep`
//!   epoch's CPU time spinning on two cores). `CANDLE_NUM_THREADS` is set to 1 unless the user
//!   set it; nothing else (a user's rayon pool, `RAYON_NUM_THREADS`) is touched.

/// Applies both, once per process.
pub(crate) fn once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets allocator parameters; glibc takes its own lock. 32 MB is the
        // largest mmap threshold glibc accepts on 64-bit targets.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            // Read by candle when its pool starts, through std's environment lock.
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
    });
}
