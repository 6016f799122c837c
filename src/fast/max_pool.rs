//! 2-d max pooling with its own backward: candle's gives a quarter of the gradient for 2x2
//! windows, none when the kernel differs from the stride, and maps windows back by nearest
//! upsampling. Here the gradient of each output goes to the input element that was its window's
//! maximum (the first one, in row-major order, on a tie; NaN counts as the maximum, and of
//! several NaNs the last takes the gradient), added up where windows overlap: PyTorch's rule.

use super::storage::{cpu_f32, with_f32};
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape, Tensor};

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
        (n + 2 * self.padding).saturating_sub(self.kernel) / self.stride + 1
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

    /// The maximum of each window of one plane into `y`: the window's last NaN if it holds one,
    /// as PyTorch's. Selects rather than a branch per element: which one wins is data. Rows of
    /// the window as slices (an iterator over its indices cost most of the pooling's time).
    fn maxima(&self, plane: &[f32], hw: (usize, usize), y: &mut [f32]) {
        self.windows(hw, |o, window| {
            let (mut best, mut nan) = (f32::NEG_INFINITY, false);
            for row in window.rows(plane) {
                for &v in row {
                    best = if v > best { v } else { best };
                    nan |= v.is_nan();
                }
            }
            y[o] = if nan {
                window.indices().map(|i| plane[i]).filter(|v| v.is_nan()).last().unwrap_or(best)
            } else {
                best
            };
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
            || self.padding * 2 > self.kernel
            || h + 2 * self.padding < self.kernel
            || w + 2 * self.padding < self.kernel
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

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w, planes) = self.dims(l.dims())?;
        let x = cpu_f32(s, l, "max_pool2d input")?;
        let out = self.out(h) * self.out(w);
        let mut y = vec![0f32; planes * out];
        Self::planes(x, h * w, &mut y, out, |_, plane, y| self.maxima(plane, (h, w), y));
        Ok((CpuStorage::F32(y), Shape::from((n, c, self.out(h), self.out(w)))))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (_, _, h, w, planes) = self.dims(arg.dims())?;
        let (arg, res, grad) = (arg.contiguous()?, res.contiguous()?, grad.contiguous()?);
        let out = self.out(h) * self.out(w);
        let mut dx = vec![0f32; planes * h * w];
        with_f32(&arg, "max_pool2d input", |x| {
            with_f32(&grad, "max_pool2d gradient", |g| {
                with_f32(&res, "max_pool2d output", |y| {
                    if g.len() != planes * out || y.len() != planes * out {
                        bail!("max_pool2d: a gradient of {} values for an output of {}", g.len(), planes * out);
                    }
                    // Each plane's gradient goes where its windows' maxima were, added up in a
                    // fixed order where windows overlap.
                    Self::planes(x, h * w, &mut dx, h * w, |p, plane, dx| {
                        let (g, y) = (&g[p * out..][..out], &y[p * out..][..out]);
                        self.argmax(plane, y, (h, w), |o, at| dx[at] += g[o]);
                    });
                    Ok(())
                })
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}
