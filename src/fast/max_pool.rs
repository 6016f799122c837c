//! 2-d max pooling with its own backward: candle's gives a quarter of the gradient for 2x2
//! windows, none when the kernel differs from the stride, and maps windows back by nearest
//! upsampling. Here the gradient of each output goes to the input element that was its window's
//! maximum (the first one, in row-major order, on a tie; NaN counts as the maximum, and of
//! several NaNs the last takes the gradient), added up where windows overlap: PyTorch's rule.

use super::storage::{cpu_f32, with_f32};
use super::team::Disjoint;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape, Tensor};
use std::sync::Mutex;

/// One pooling window: its rows and columns `[from, to)` in a plane `w` pixels wide.
#[derive(Clone, Copy)]
struct Window {
    rows: (usize, usize),
    cols: (usize, usize),
    w: usize,
}

impl Window {
    /// The window's rows, each a slice of `plane`.
    fn rows(self, plane: &[f32]) -> impl Iterator<Item = &[f32]> {
        let Window { rows, cols, w } = self;
        (rows.0..rows.1).map(move |y| &plane[y * w + cols.0..y * w + cols.1])
    }

    /// The flat index of the first pixel (in row-major order) equal to `m`.
    fn first(self, plane: &[f32], m: f32) -> Option<usize> {
        for (r, row) in self.rows(plane).enumerate() {
            if let Some(c) = row.iter().position(|&v| v == m) {
                return Some((self.rows.0 + r) * self.w + self.cols.0 + c);
            }
        }
        None
    }

    /// The flat indices of the window's pixels, in row-major order.
    fn indices(self) -> impl Iterator<Item = usize> {
        let Window { rows, cols, w } = self;
        (rows.0..rows.1).flat_map(move |y| y * w + cols.0..y * w + cols.1)
    }
}

/// Window size, step and padding (positions that count as minus infinity) of a square max pooling.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaxPool {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl MaxPool {
    /// The output side for an input side `n`.
    fn out(&self, n: usize) -> usize {
        n.saturating_add(2 * self.padding).saturating_sub(self.kernel) / self.stride + 1
    }

    /// The rows (or columns) `[from, to)` of the input that output row (or column) `o` reads, the
    /// padding left out: never empty, as the padding is at most half the kernel.
    fn span(&self, o: usize, n: usize) -> (usize, usize) {
        let start = o * self.stride;
        (start.saturating_sub(self.padding), (start + self.kernel - self.padding).min(n))
    }

    /// Calls `f(output, window)` for each output element of one `h x w` plane with its window.
    fn windows(&self, (h, w): (usize, usize), mut f: impl FnMut(usize, Window)) {
        let ow = self.out(w);
        for oy in 0..self.out(h) {
            let rows = self.span(oy, h);
            for ox in 0..ow {
                f(oy * ow + ox, Window { rows, cols: self.span(ox, w), w });
            }
        }
    }

    /// The maximum of each window of one plane into `y`, and its flat index in the plane into
    /// `at`: the first one in row-major order, or the window's last NaN if it holds one, as
    /// PyTorch's. Selects rather than a branch per element: which one wins is data. Rows of the
    /// window as slices (an iterator over its indices cost most of the pooling's time).
    fn maxima(&self, plane: &[f32], (h, w): (usize, usize), y: &mut [f32], at: &mut [u32]) {
        self.windows((h, w), |o, window| {
            let mut best_at = window.rows.0 * w + window.cols.0;
            let (mut best, mut nan) = (f32::NEG_INFINITY, false);
            for (r, row) in window.rows(plane).enumerate() {
                let first = (window.rows.0 + r) * w + window.cols.0;
                for (c, &v) in row.iter().enumerate() {
                    let better = v > best;
                    best = if better { v } else { best };
                    best_at = if better { first + c } else { best_at };
                    nan |= v.is_nan();
                }
            }
            if nan {
                best_at = window.indices().filter(|&i| plane[i].is_nan()).last().unwrap_or(best_at);
                best = plane[best_at];
            }
            (y[o], at[o]) = (best, best_at as u32);
        });
    }

    /// Calls `f(output, at)` for each output element of one plane with the flat index of its
    /// window's maximum, found from the output `y`: the first element equal to it (the first in
    /// row-major order on a tie), or where the output is NaN the window's last NaN. PyTorch's rule.
    fn argmax(&self, plane: &[f32], y: &[f32], hw: (usize, usize), mut f: impl FnMut(usize, usize)) {
        self.windows(hw, |o, window| {
            let m = y[o];
            let at = if m.is_nan() {
                window.indices().filter(|&i| plane[i].is_nan()).last()
            } else {
                window.first(plane, m)
            };
            f(o, at.unwrap_or(window.rows.0 * window.w + window.cols.0));
        });
    }

    /// Runs `f(i, plane, part)` for each plane `i` of `x` and its `out`-long part of `data`, split
    /// between the kernel threads by whole planes (each plane is its own: the same bits).
    fn planes<T: Send>(
        x: &[f32],
        plane: usize,
        data: &mut [T],
        out: usize,
        f: impl Fn(usize, &[f32], &mut [T]) + Sync,
    ) {
        super::team::rows_mut(0, data, out, plane, |first, run| {
            for (i, dst) in run.chunks_mut(out).enumerate() {
                f(first + i, &x[(first + i) * plane..][..plane], dst);
            }
        });
    }

    fn dims(&self, dims: &[usize]) -> candle_core::Result<(usize, usize, usize, usize, usize)> {
        let &[n, c, h, w] = dims else {
            bail!("max_pool2d: expected [batch, channels, height, width], found {dims:?}")
        };
        if self.kernel == 0
            || self.stride == 0
            || self.padding > self.kernel / 2
            || h.saturating_add(2 * self.padding) < self.kernel
            || w.saturating_add(2 * self.padding) < self.kernel
        {
            bail!(
                "max_pool2d: kernel {} stride {} padding {} on {h}x{w}: needs a kernel and stride of at least 1, padding at most half the kernel, and the padded image at least the kernel",
                self.kernel,
                self.stride,
                self.padding
            );
        }
        Ok((n, c, h, w, n * c))
    }
}

impl MaxPool {
    /// The pooling as an op for one input, which keeps its maxima's places for its backward.
    pub(crate) fn op(self) -> MaxPoolOp {
        MaxPoolOp { pool: self, argmax: Mutex::new(None) }
    }
}

/// A max pooling of one input: the forward keeps each output's maximum's flat index in its
/// plane, and the backward sends each gradient there rather than searching the windows again.
pub(crate) struct MaxPoolOp {
    pool: MaxPool,
    argmax: Mutex<Option<Vec<u32>>>,
}

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let pool = self.pool;
        let (n, c, h, w, planes) = pool.dims(l.dims())?;
        if h * w > u32::MAX as usize {
            bail!("max_pool2d: planes of {h}x{w} pixels, more than 2^32");
        }
        let x = cpu_f32(s, l, "max_pool2d input")?;
        let out = pool.out(h) * pool.out(w);
        let mut y = vec![0f32; planes * out];
        let mut argmax = vec![0u32; planes * out];
        let at = Disjoint::new(argmax.as_mut_ptr());
        MaxPool::planes(x, h * w, &mut y, out, |p, plane, y| {
            // SAFETY: plane `p` writes its own `out` places, inside `argmax`.
            let at = unsafe { std::slice::from_raw_parts_mut(at.get().add(p * out), out) };
            pool.maxima(plane, (h, w), y, at)
        });
        *self.argmax.lock().unwrap_or_else(|e| e.into_inner()) = Some(argmax);
        Ok((CpuStorage::F32(y), Shape::from((n, c, pool.out(h), pool.out(w)))))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let pool = self.pool;
        let (_, _, h, w, planes) = pool.dims(arg.dims())?;
        let (arg, res, grad) = (arg.contiguous()?, res.contiguous()?, grad.contiguous()?);
        let out = pool.out(h) * pool.out(w);
        let kept = self.argmax.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut dx = vec![0f32; planes * h * w];
        with_f32(&arg, "max_pool2d input", |x| {
            with_f32(&grad, "max_pool2d gradient", |g| {
                with_f32(&res, "max_pool2d output", |y| {
                    if g.len() != planes * out || y.len() != planes * out {
                        bail!("max_pool2d: a gradient of {} values for an output of {}", g.len(), planes * out);
                    }
                    // Each plane's gradient goes where its windows' maxima were, added up in
                    // output order where windows overlap: the places the forward kept, or found
                    // again.
                    MaxPool::planes(x, h * w, &mut dx, h * w, |p, plane, dx| {
                        let g = &g[p * out..][..out];
                        match &kept {
                            Some(at) if at.len() == planes * out => {
                                at[p * out..][..out].iter().zip(g).for_each(|(&at, &g)| dx[at as usize] += g)
                            }
                            _ => pool.argmax(plane, &y[p * out..][..out], (h, w), |o, at| dx[at] += g[o]),
                        }
                    });
                    Ok(())
                })
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}
