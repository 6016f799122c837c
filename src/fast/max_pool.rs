//! 2-d max pooling with its own backward: candle's gives a quarter of the gradient for 2x2
//! windows, none when the kernel differs from the stride, and maps windows back by nearest
//! upsampling. Here the gradient of each output goes to the input element that was its window's
//! maximum (the first one, in row-major order, on a tie; NaN counts as the maximum), added up
//! where windows overlap: PyTorch's rule.

use super::storage::{cpu_f32, with_f32};
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape, Tensor};

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

    /// For each output element, the flat index (within its `[h, w]` plane) of its window's maximum.
    fn argmax(&self, x: &[f32], (planes, h, w): (usize, usize, usize)) -> (Vec<f32>, Vec<u32>) {
        let (oh, ow) = (self.out(h), self.out(w));
        let mut values = Vec::with_capacity(planes * oh * ow);
        let mut at = Vec::with_capacity(planes * oh * ow);
        for plane in x.chunks_exact(h * w) {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut best_at) = (f32::NEG_INFINITY, u32::MAX);
                    for ky in 0..self.kernel {
                        let Some(y) = (oy * self.stride + ky).checked_sub(self.padding).filter(|&y| y < h) else {
                            continue;
                        };
                        for kx in 0..self.kernel {
                            let Some(x) = (ox * self.stride + kx).checked_sub(self.padding).filter(|&x| x < w) else {
                                continue;
                            };
                            let v = plane[y * w + x];
                            if v > best || v.is_nan() || best_at == u32::MAX {
                                (best, best_at) = (v, (y * w + x) as u32);
                                if v.is_nan() {
                                    break;
                                }
                            }
                        }
                        if best.is_nan() {
                            break;
                        }
                    }
                    values.push(best);
                    at.push(best_at);
                }
            }
        }
        (values, at)
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
        let (values, _) = self.argmax(cpu_f32(s, l, "max_pool2d input")?, (planes, h, w));
        Ok((CpuStorage::F32(values), Shape::from((n, c, self.out(h), self.out(w)))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (_, _, h, w, planes) = self.dims(arg.dims())?;
        let (arg, grad) = (arg.contiguous()?, grad.contiguous()?);
        let (_, at) = with_f32(&arg, "max_pool2d input", |x| Ok(self.argmax(x, (planes, h, w))))?;
        let per_plane = self.out(h) * self.out(w);
        let mut dx = vec![0f32; planes * h * w];
        with_f32(&grad, "max_pool2d gradient", |g| {
            for (i, (&g, &a)) in g.iter().zip(&at).enumerate() {
                dx[i / per_plane * h * w + a as usize] += g;
            }
            Ok(())
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}
