//! 2-d average pooling with any kernel, stride and padding, forward and backward: PyTorch's
//! `avg_pool2d` rules for the windows (`ceil_mode`, and `count_include_pad` for the divisor),
//! which candle's `avg_pool2d` (no padding, and a backward by nearest upsampling) does not have.

use super::storage::{cpu_f32, with_f32};
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape, Tensor};

/// Window size, step and padding of a square average pooling, and PyTorch's two switches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AvgPool {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

/// One output's window, clipped to the input (`y0..y1`, `x0..x1`), and what its sum is divided by.
struct Window {
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
    div: f32,
}

impl AvgPool {
    /// The output side for an input side `n` (PyTorch's `pooling_output_shape`); 0 when the
    /// input is too small for one window (with `ceil_mode`, a window needs only one pixel of it).
    pub fn out(&self, n: usize) -> usize {
        let (k, s, p, n) = (self.kernel as i64, self.stride.max(1) as i64, self.padding as i64, n as i64);
        let last = n + 2 * p - k + if self.ceil_mode { s - 1 } else { 0 };
        let mut out = last.div_euclid(s) + 1;
        // A last window that would start in the right padding is dropped.
        if self.ceil_mode && (out - 1) * s >= n + p {
            out -= 1;
        }
        out.max(0) as usize
    }

    fn window(&self, (oy, ox): (usize, usize), (h, w): (usize, usize)) -> Window {
        let (k, s, p) = (self.kernel as isize, self.stride as isize, self.padding as isize);
        let side = |o: usize, n: usize| {
            let start = o as isize * s - p;
            let end = (start + k).min(n as isize + p);
            (start, end, start.max(0) as usize, end.min(n as isize) as usize)
        };
        let (ys, ye, y0, y1) = side(oy, h);
        let (xs, xe, x0, x1) = side(ox, w);
        let div = if self.count_include_pad { (ye - ys) * (xe - xs) } else { ((y1 - y0) * (x1 - x0)) as isize };
        Window { y0, y1, x0, x1, div: div.max(1) as f32 }
    }

    /// `(planes, h, w, (n, c))` of an input of dimensions `dims`, checked.
    fn dims(&self, dims: &[usize]) -> candle_core::Result<(usize, usize, usize, (usize, usize))> {
        let &[n, c, h, w] = dims else {
            bail!("avg_pool2d: expected [batch, channels, height, width], found {dims:?}")
        };
        let (k, p) = (self.kernel, self.padding);
        // PyTorch takes sizes that fit in an `int`; within them nothing below can overflow.
        let most = i32::MAX as usize;
        if k > most || self.stride > most || p > most || h > most || w > most {
            bail!("avg_pool2d: kernel {k} stride {} padding {p} on {h}x{w}: sizes above {most}", self.stride);
        }
        if c == 0 || h == 0 || w == 0 {
            bail!("avg_pool2d: expected non-empty channels, height and width (a batch may be empty), found {dims:?}");
        }
        if k == 0 || self.stride == 0 || p * 2 > k || self.out(h) == 0 || self.out(w) == 0 {
            bail!(
                "avg_pool2d: kernel {k} stride {} padding {p} on {h}x{w}: needs a kernel and stride of at least 1, padding at most half the kernel, and the padded image at least the kernel (with ceil_mode, at least one pixel)",
                self.stride
            );
        }
        Ok((n * c, h, w, (n, c)))
    }

    /// The windows of one plane's outputs, in order.
    fn windows(&self, (h, w): (usize, usize)) -> Vec<Window> {
        let (oh, ow) = (self.out(h), self.out(w));
        (0..oh * ow).map(|i| self.window((i / ow, i % ow), (h, w))).collect()
    }
}

/// Runs `f(plane, plane's rows)` over `data`, `row` elements a plane, split between the kernel
/// threads by whole planes (each plane's values are its own: the same bits however split).
fn by_plane(data: &mut [f32], row: usize, work: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    super::team::rows_mut(0, data, row, work, |first, part| {
        part.chunks_mut(row.max(1)).enumerate().for_each(|(j, plane)| f(first + j, plane))
    });
}

impl CustomOp1 for AvgPool {
    fn name(&self) -> &'static str {
        "avg-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (planes, h, w, (n, c)) = self.dims(l.dims())?;
        let x = cpu_f32(s, l, "avg_pool2d input")?;
        let windows = self.windows((h, w));
        let mut y = vec![0f32; planes * windows.len()];
        by_plane(&mut y, windows.len(), h * w, |plane, y| {
            let x = &x[plane * h * w..];
            for (y, win) in y.iter_mut().zip(&windows) {
                let sum: f32 = (win.y0..win.y1).map(|r| x[r * w + win.x0..r * w + win.x1].iter().sum::<f32>()).sum();
                *y = sum / win.div;
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((n, c, self.out(h), self.out(w)))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (planes, h, w, _) = self.dims(arg.dims())?;
        let grad = grad.contiguous()?;
        let windows = self.windows((h, w));
        let mut dx = vec![0f32; planes * h * w];
        with_f32(&grad, "avg_pool2d gradient", |g| {
            if g.len() != planes * windows.len() {
                bail!("avg_pool2d: a gradient of {} values for an output of {}", g.len(), planes * windows.len());
            }
            by_plane(&mut dx, h * w, h * w, |plane, dx| {
                let g = &g[plane * windows.len()..];
                for (&g, win) in g.iter().zip(&windows) {
                    let share = g / win.div;
                    for r in win.y0..win.y1 {
                        dx[r * w + win.x0..r * w + win.x1].iter_mut().for_each(|d| *d += share);
                    }
                }
            });
            Ok(())
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}
