//! Pooling layers: average and maximum over windows, and the adaptive average before the
//! classifier (lessons 06 and 07).

use super::{Module, Registered};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// Averages each channel over windows that tile the image into `size` cells (PyTorch's
/// `nn.AdaptiveAvgPool2d`): cell `i` of `n` along a side of length `l` covers
/// `floor(i * l / n) .. ceil((i + 1) * l / n)`, so sizes that do not divide overlap as
/// PyTorch's do. `AdaptiveAvgPool2d::new(1, 1)` is the lesson's global average before the
/// classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    size: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// Pooling to `height` x `width` cells.
    pub fn new(height: usize, width: usize) -> Self {
        AdaptiveAvgPool2d { size: (height, width) }
    }
}

/// The windows of an adaptive pooling of `len` into `cells`, as `(start, length)`.
fn windows(len: usize, cells: usize) -> Vec<(usize, usize)> {
    (0..cells).map(|i| (i * len / cells, ((i + 1) * len).div_ceil(cells) - i * len / cells)).collect()
}

impl Registered for AdaptiveAvgPool2d {
    fn extra_repr(&self) -> String {
        match self.size {
            (h, w) if h == w => format!("output_size={h}"),
            (h, w) => format!("output_size=({h}, {w})"),
        }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let &[_, _, h, w] = xs.dims() else {
            return Err(Error::invalid(
                "adaptive pooling input",
                "[batch, channels, height, width]",
                format!("{:?}", xs.dims()),
            ));
        };
        let (oh, ow) = self.size;
        let found = || format!("{:?} to {:?}", xs.dims(), self.size);
        if oh == 0 || ow == 0 || h == 0 || w == 0 {
            return Err(Error::invalid("adaptive pooling", "non-zero sizes", found()));
        }
        let (n, c) = (xs.dims()[0].max(1), xs.dims()[1].max(1));
        if !super::room::can_hold(&[n, c, oh, ow], xs.dtype().size_in_bytes()) {
            return Err(Error::invalid("adaptive pooling", "an output that fits in memory", found()));
        }
        if (oh, ow) == (1, 1) {
            // A convolution's channel-major original, when there is one, is averaged as it is
            // stored, rather than through candle's means over a permuted view of it.
            if let Some(original) = crate::fast::channel_major(xs) {
                let (c, n) = (original.dims()[0], original.dims()[1]);
                let means = original.reshape((c, n, h * w))?.mean(2)?;
                return Ok(means.t()?.contiguous()?.reshape((n, c, 1, 1))?);
            }
            return Ok(xs.mean_keepdim(3)?.mean_keepdim(2)?);
        }
        let rows = windows(h, oh)
            .into_iter()
            .map(|(r, rl)| {
                let band = xs.narrow(2, r, rl)?;
                let cells = windows(w, ow)
                    .into_iter()
                    .map(|(c, cl)| Ok(band.narrow(3, c, cl)?.mean_keepdim(3)?.mean_keepdim(2)?))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Tensor::cat(&cells, 3)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&rows, 2)?)
    }
}

super::repr::impl_display_as_repr!(AdaptiveAvgPool2d);

/// The largest value of each window (PyTorch's `nn.MaxPool2d` with square windows), with a
/// backward of its own: the gradient goes to each window's maximum (the first on a tie, the last
/// NaN if there are NaNs, as in PyTorch), added up where windows overlap (candle's gives a quarter of it for 2x2 windows and none when the kernel differs from
/// the stride). Padding counts as minus infinity; sizes that do not divide drop the last partial
/// window, as PyTorch's default (`ceil_mode=False`).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{MaxPool2d, Module};
/// let x = Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
/// let y = MaxPool2d::new(2, 2, 0).forward(&x)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [5., 7., 13., 15.]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d {
    op: crate::fast::MaxPool,
}

impl MaxPool2d {
    /// Windows of `kernel` x `kernel`, `stride` apart, over the input padded by `padding` (at
    /// most half the kernel, as PyTorch requires).
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        MaxPool2d { op: crate::fast::MaxPool { kernel, stride, padding } }
    }
}

impl Registered for MaxPool2d {
    fn extra_repr(&self) -> String {
        let o = self.op;
        format!("kernel_size={}, stride={}, padding={}, dilation=1, ceil_mode=False", o.kernel, o.stride, o.padding)
    }
}

impl Module for MaxPool2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        crate::fast::pool2d("max_pool2d input", xs, self.op.op())
    }
}

super::repr::impl_display_as_repr!(MaxPool2d);

/// The mean of each window (PyTorch's `nn.AvgPool2d` with square windows), forward and backward
/// written here for any kernel, stride and padding: each output's gradient is shared equally by
/// the inputs of its window, added up where windows overlap. `count_include_pad` (on by default,
/// as in PyTorch) divides by the window's size including padding; `ceil_mode` keeps a last
/// partial window.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{AvgPool2d, Module};
/// let x = Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
/// let y = AvgPool2d::new(2, 2, 0).forward(&x)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [2.5, 4.5, 10.5, 12.5]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AvgPool2d {
    op: crate::fast::AvgPool,
}

impl AvgPool2d {
    /// Windows of `kernel` x `kernel`, `stride` apart, over the input padded by `padding` (at
    /// most half the kernel, as PyTorch requires) with zeros that count in the mean.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        let op = crate::fast::AvgPool { kernel, stride, padding, ceil_mode: false, count_include_pad: true };
        AvgPool2d { op }
    }

    /// The same pooling keeping (`true`) or dropping a last window that does not fit.
    pub fn ceil_mode(mut self, ceil: bool) -> Self {
        self.op.ceil_mode = ceil;
        self
    }

    /// The same pooling dividing by the whole window (`true`) or only by the inputs it covers.
    pub fn count_include_pad(mut self, include: bool) -> Self {
        self.op.count_include_pad = include;
        self
    }
}

impl Registered for AvgPool2d {
    fn extra_repr(&self) -> String {
        let o = self.op;
        // PyTorch's repr leaves out `ceil_mode` and `count_include_pad`.
        format!("kernel_size={}, stride={}, padding={}", o.kernel, o.stride, o.padding)
    }
}

impl Module for AvgPool2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        crate::fast::pool2d("avg_pool2d input", xs, self.op)
    }
}

super::repr::impl_display_as_repr!(AvgPool2d);
