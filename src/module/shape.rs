//! Layers that only change a tensor's shape: the lesson's `view(-1, 1, 28, 28)` and `Flatten`.

use super::{Module, Registered};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// Flattens every dimension from the second on (PyTorch's `nn.Flatten()`): `[n, c, h, w]` becomes
/// `[n, c * h * w]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flatten;

impl Registered for Flatten {
    fn extra_repr(&self) -> String {
        "start_dim=1, end_dim=-1".into()
    }
}

impl Module for Flatten {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(xs.flatten_from(1)?)
    }
}

/// Reshapes to `dims`, one of which may be `-1` (inferred from the others), as PyTorch's
/// `x.view(-1, 1, 28, 28)` does: the lesson's first layer of its CNN, turning a batch of
/// 784-pixel rows into `[n, 1, 28, 28]` images.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{Module, View};
/// let x = Tensor::zeros((5, 784), candle_core::DType::F32, &Device::Cpu)?;
/// assert_eq!(View::new(&[-1, 1, 28, 28]).forward(&x)?.dims(), &[5, 1, 28, 28]);
/// assert!(View::new(&[-1, 3, 28, 28]).forward(&x).is_err());
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    dims: Vec<i64>,
}

impl View {
    /// A reshape to `dims` (at most one `-1`).
    pub fn new(dims: &[i64]) -> Self {
        View { dims: dims.to_vec() }
    }

    /// The shape for an input of `count` elements.
    fn shape(&self, count: usize) -> Result<Vec<usize>> {
        let bad = || {
            let dims: Vec<String> = self.dims.iter().map(i64::to_string).collect();
            let rule =
                format!("an input that fills view({}) (at most one -1, no other negative size)", dims.join(", "));
            Error::invalid("view input", rule, format!("{count} elements"))
        };
        let known: i64 = self.dims.iter().filter(|&&d| d != -1).product();
        let free = self.dims.iter().filter(|&&d| d == -1).count();
        if free > 1 || self.dims.iter().any(|&d| d < -1) || known <= 0 && count > 0 {
            return Err(bad());
        }
        let rest = if known > 0 && count as i64 % known == 0 { count as i64 / known } else { return Err(bad()) };
        if free == 0 && rest != 1 {
            return Err(bad());
        }
        Ok(self.dims.iter().map(|&d| if d == -1 { rest as usize } else { d as usize }).collect())
    }
}

impl Registered for View {
    fn extra_repr(&self) -> String {
        self.dims.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    }
}

impl Module for View {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(xs.reshape(self.shape(xs.elem_count())?)?)
    }
}

crate::impl_display_as_repr!(Flatten, View);

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
        if oh == 0 || ow == 0 || h == 0 || w == 0 {
            return Err(Error::invalid(
                "adaptive pooling",
                "non-zero sizes",
                format!("{:?} to {:?}", xs.dims(), self.size),
            ));
        }
        if (oh, ow) == (1, 1) {
            // A convolution's channel-major original, when there is one, is averaged as it is
            // stored: candle's means over the permuted view cost 3% of the lesson CNN's epoch.
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

crate::impl_display_as_repr!(AdaptiveAvgPool2d);

/// The largest value of each window (PyTorch's `nn.MaxPool2d` with square windows), with a
/// backward of its own: the gradient goes to each window's maximum, added up where windows
/// overlap (candle's gives a quarter of it for 2x2 windows and none when the kernel differs from
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
        pooled("max_pool2d input", xs, self.op)
    }
}

crate::impl_display_as_repr!(MaxPool2d);

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
        pooled("avg_pool2d input", xs, self.op)
    }
}

crate::impl_display_as_repr!(AvgPool2d);

/// `op` (a pooling kernel) on `xs`, which must be `f32` on the CPU (the kernel's only case).
fn pooled(what: &'static str, xs: &Tensor, op: impl candle_core::CustomOp1 + Send + Sync + 'static) -> Result<Tensor> {
    if xs.dtype() != candle_core::DType::F32 || !xs.device().is_cpu() {
        return Err(Error::invalid(what, "f32 on the CPU", format!("{:?}", xs.dtype())));
    }
    Ok(xs.contiguous()?.apply_op1(op)?)
}
