//! The one process-wide setting that training needs for its speed, applied by the library itself
//! (at the first layer built or run), so that a user's code needs no set-up call: **the system
//! allocator keeps freed memory.** Every candle operation, and every fused kernel, allocates its
//! output; a training step allocates and frees megabytes in blocks of 256 kB to 3 MB. glibc's
//! malloc serves blocks above its mmap threshold with fresh mappings, unmaps them when freed, and
//! trims its heap back to the kernel: each step then pays a page fault per 4 kB it touches again.
//! `mallopt` raises both thresholds through glibc's own interface. Other allocators ignore this;
//! a user who installs one (mimalloc, jemalloc) loses nothing.
//!
//! Nothing here writes the environment, which is unsound while other threads read it. candle's
//! own thread pools (its element-wise pool, sized from `CANDLE_NUM_THREADS` when it starts, and
//! its multiplies, from `RAYON_NUM_THREADS`) are candle's, and candle offers no other way to size
//! them. The layers, losses and SGD run on the kernels and their own team (see `team.rs`); what
//! still reaches candle's element-wise pool is candle's backward summing large activation
//! gradients, where its spinning threads compete with the team's on few cores (docs/speed.md:
//! the program starts with `CANDLE_NUM_THREADS=1` for that reason).

/// Applies the setting, once per process.
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
    });
}
