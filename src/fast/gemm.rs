//! Matrix multiplies on `f32` slices through the `gemm` crate (the kernel candle itself uses).

use super::linear::{forward_product, input_product, weight_product, Dims, Order};
use super::mlp::orders;
use gemm::Parallelism;
use std::time::{Duration, Instant};

/// A strided matrix: element `(r, c)` is `data[r * rs + c * cs]`.
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
        fits(self.data.len(), self.rs, self.cs, rows, cols)
    }
}

/// A strided matrix that a multiply writes: element `(r, c)` is `data[r * rs + c * cs]`.
pub(crate) struct ViewMut<'a> {
    pub data: &'a mut [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> ViewMut<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a mut [f32], cols: usize) -> Self {
        ViewMut { data, rs: cols, cs: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns (a column-major matrix with
    /// `cols` rows).
    pub fn transposed(data: &'a mut [f32], cols: usize) -> Self {
        ViewMut { data, rs: 1, cs: cols }
    }
}

fn fits(len: usize, rs: usize, cs: usize, rows: usize, cols: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
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

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`. Runs on every core when the
/// product is large (the notebook's stays on one: 64x784x50 is below the line).
///
/// The layouts matter as much as the sizes: on the AVX-512 kernels with two threads a
/// 128x512x512 product runs at about 200 GFLOP/s when `lhs` is contiguous along `k` and `rhs`
/// along `n`, or the destination is column-major with `lhs` contiguous along `m`, but at 60-70
/// when both operands are contiguous along `k` (the layout of `x Wᵀ` on row-major data).
/// [`super::linear`] picks its layouts by that table.
pub(crate) fn matmul(m: usize, n: usize, k: usize, dst: ViewMut, accumulate: bool, lhs: View, rhs: View) {
    let ok = fits(dst.data.len(), dst.rs, dst.cs, m, n) && lhs.fits(m, k) && rhs.fits(k, n);
    assert!(ok, "matmul: operand too small");
    let par = match pool() {
        Some(pool) if m * n * k >= PARALLEL_WORK => Some(pool),
        _ => None,
    };
    // SAFETY: the assert above keeps every index gemm reads or writes inside the three slices;
    // `dst` is a unique borrow, so it aliases neither operand.
    let mut run = |par| unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.cs as isize,
            dst.rs as isize,
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
    };
    match par {
        Some(pool) => pool.install(|| run(Parallelism::Rayon(pool.current_num_threads()))),
        None => run(Parallelism::None),
    }
}

/// `dst[c * rows + r] = src[r * cols + c]`: the transpose of a row-major `rows x cols` matrix,
/// in tiles that stay in the first-level cache. Used on batches of activations (a few hundred
/// kilobytes, just written), never on weights: transposing a 3 MB weight each step costs more
/// than a slow layout.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const T: usize = 16;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose: operand too small");
    let (full_rows, full_cols) = (rows / T * T, cols / T * T);
    for r0 in (0..full_rows).step_by(T) {
        for c0 in (0..full_cols).step_by(T) {
            // A whole tile through registers: `T` contiguous reads, then `T` contiguous writes.
            let mut tile = [[0f32; T]; T];
            for (i, row) in tile.iter_mut().enumerate() {
                row.copy_from_slice(&src[(r0 + i) * cols + c0..][..T]);
            }
            for j in 0..T {
                let d = &mut dst[(c0 + j) * rows + r0..][..T];
                for (i, v) in d.iter_mut().enumerate() {
                    *v = tile[i][j];
                }
            }
        }
        for r in r0..r0 + T {
            for c in full_cols..cols {
                dst[c * rows + r] = src[r * cols + c];
            }
        }
    }
    for r in full_rows..rows {
        for c in 0..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

/// The time of the matrix multiplies alone of one training epoch of an MLP with these layer
/// sizes: per batch, each layer's forward product and its weight gradient, and the input
/// gradient of every layer but the first, each in the layouts [`super::Mlp`] multiplies in.
/// Buffers are allocated once: this is the floor that no training loop on this machine can beat
/// with these kernels.
pub fn matmul_floor(sizes: &[usize], n: usize, bs: usize) -> Duration {
    let bs = bs.max(1);
    let layers = sizes.len().saturating_sub(1);
    let acts: Vec<Vec<f32>> = sizes.iter().map(|&s| vec![0.5f32; bs * s]).collect();
    let mut outs: Vec<Vec<f32>> = sizes.iter().map(|&s| vec![0f32; bs * s]).collect();
    let weights: Vec<Vec<f32>> = sizes.windows(2).map(|w| vec![0.01f32; w[0] * w[1]]).collect();
    let mut wgrads = weights.clone();
    let start = Instant::now();
    for _ in 0..n / bs {
        for (l, w) in sizes.windows(2).enumerate() {
            let dims = Dims { batch: bs, inp: w[0], out: w[1] };
            let (input, output) = orders(l, layers);
            // Each operand already in the order the product reads it: the transposes the fast
            // path makes first are not multiplies.
            let input = if output == Order::Feature { Order::Feature } else { input };
            forward_product(&acts[l], input, &weights[l], &mut outs[l + 1], output, dims);
        }
        for (l, w) in sizes.windows(2).enumerate().rev() {
            let dims = Dims { batch: bs, inp: w[0], out: w[1] };
            let (input, output) = orders(l, layers);
            let g = &acts[l + 1];
            weight_product(g, output, &acts[l], Order::Batch, &mut wgrads[l], dims);
            if l > 0 {
                input_product(g, output, &weights[l], &mut outs[l], input, dims);
            }
        }
    }
    std::hint::black_box((&outs, &wgrads));
    start.elapsed()
}
