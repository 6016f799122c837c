//! Matrix multiplies on `f32` slices through the `gemm` crate (the kernel candle itself uses).

use gemm::Parallelism;
use std::time::{Duration, Instant};

/// A row-major view: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        View { data, rs: cols, cs: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        View { data, rs: 1, cs: cols }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// Work (multiply-adds) above which a multiply is split between threads: below it, the
/// threads' start costs more than they give back (measured on the notebook's 64x784x50).
const PARALLEL_WORK: usize = 1 << 23;

/// The kernels' own thread pool ([`crate::threads::kernel_threads`]): candle's pool is kept at one thread
/// (fastest for its many small operations), while a large multiply is worth splitting.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = crate::threads::kernel_threads();
        (threads > 1).then(|| rayon::ThreadPoolBuilder::new().num_threads(threads).build().ok()).flatten()
    })
    .as_ref()
}

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`, `dst` row-major. Runs on every
/// core when the product is large (the notebook's stays on one: 64x784x50 is below the line).
pub(crate) fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, lhs: View, rhs: View) {
    assert!(dst.len() >= m * n && lhs.fits(m, k) && rhs.fits(k, n), "matmul: operand too small");
    match pool() {
        Some(pool) if m * n * k >= PARALLEL_WORK => {
            let threads = pool.current_num_threads();
            pool.install(|| gemm_raw(m, n, k, dst, accumulate, lhs, rhs, Parallelism::Rayon(threads)))
        }
        _ => gemm_raw(m, n, k, dst, accumulate, lhs, rhs, Parallelism::None),
    }
}

#[allow(clippy::too_many_arguments)]
fn gemm_raw(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, lhs: View, rhs: View, par: Parallelism) {
    assert!(dst.len() >= m * n && lhs.fits(m, k) && rhs.fits(k, n), "matmul: operand too small");
    // SAFETY: the assert above keeps every index gemm reads or writes inside the three slices;
    // `dst` is a unique borrow, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// The time of the matrix multiplies alone of one training epoch of an MLP with these layer
/// sizes: per batch, each layer's forward product and its weight gradient, and the input
/// gradient of every layer but the first. Buffers are allocated once: this is the floor that no
/// training loop on this machine can beat with these kernels.
pub fn matmul_floor(sizes: &[usize], n: usize, bs: usize) -> Duration {
    let bs = bs.max(1);
    let acts: Vec<Vec<f32>> = sizes.iter().map(|&s| vec![0.5f32; bs * s]).collect();
    let mut outs: Vec<Vec<f32>> = sizes.iter().map(|&s| vec![0f32; bs * s]).collect();
    let weights: Vec<Vec<f32>> = sizes.windows(2).map(|w| vec![0.01f32; w[0] * w[1]]).collect();
    let mut wgrads = weights.clone();
    let start = Instant::now();
    for _ in 0..n / bs {
        for (l, w) in sizes.windows(2).enumerate() {
            let (i, o) = (w[0], w[1]);
            matmul(bs, o, i, &mut outs[l + 1], false, View::rows(&acts[l], i), View::transposed(&weights[l], i));
        }
        for (l, w) in sizes.windows(2).enumerate().rev() {
            let (i, o) = (w[0], w[1]);
            let g = &acts[l + 1];
            matmul(o, i, bs, &mut wgrads[l], false, View::transposed(g, o), View::rows(&acts[l], i));
            if l > 0 {
                matmul(bs, i, o, &mut outs[l], false, View::rows(g, o), View::rows(&weights[l], i));
            }
        }
    }
    std::hint::black_box((&outs, &wgrads));
    start.elapsed()
}
