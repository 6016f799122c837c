//! The 2-d convolution layer of the course's CNN (lesson 06).

use super::{Module, Param, Registered};
use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::Tensor;

/// How a [`Conv2d`] slides: PyTorch's `nn.Conv2d` arguments beyond the sizes, square kernels and
/// strides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Step between windows.
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
    /// Spacing of the kernel's taps.
    pub dilation: usize,
    /// Channel groups (input and output channels each split into this many).
    pub groups: usize,
    /// Whether the layer adds a bias (batch norm after it makes one redundant).
    pub bias: bool,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig { stride: 1, padding: 0, dilation: 1, groups: 1, bias: true }
    }
}

/// A 2-d convolution over `[batch, channels, height, width]` inputs, with PyTorch's parameter
/// names (`weight` `[out, in / groups, k, k]`, `bias` `[out]`), default initialisation
/// (`U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for both, `fan_in = in / groups * k * k`) and repr, so
/// that weights move between the two. Runs on the library's fused convolution (patches and one
/// matrix multiply per batch, the ReLU folded in inside a [`Sequential`](crate::Sequential)), or on
/// candle's for grouped convolutions.
///
/// ```
/// use minibatch::{Conv2d, Conv2dConfig, Module, Rng};
/// let conv = Conv2d::new(1, 8, 5, Conv2dConfig { stride: 2, padding: 2, ..Default::default() }, &mut Rng::new(0))?;
/// assert_eq!(conv.to_string(), "Conv2d(1, 8, kernel_size=(5, 5), stride=(2, 2), padding=(2, 2))");
/// let x = candle_core::Tensor::zeros((4, 1, 28, 28), candle_core::DType::F32, &candle_core::Device::Cpu)?;
/// assert_eq!(conv.forward(&x)?.dims(), &[4, 8, 14, 14]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Param,
    bias: Option<Param>,
    config: Conv2dConfig,
}

impl Conv2d {
    /// A layer from `inp` to `out` channels with a `kernel` x `kernel` window, PyTorch's default
    /// initialisation drawn from `rng`. An error for zero sizes, channels that do not divide into
    /// the groups, or a weight too large to hold.
    pub fn new(inp: usize, out: usize, kernel: usize, config: Conv2dConfig, rng: &mut Rng) -> Result<Self> {
        let groups = config.groups.max(1);
        let found = || format!("{inp} -> {out} channels, kernel {kernel}, {groups} groups");
        if inp == 0 || out == 0 || kernel == 0 || !inp.is_multiple_of(groups) || !out.is_multiple_of(groups) {
            return Err(Error::invalid("conv2d sizes", "non-zero sizes, channels divisible by groups", found()));
        }
        if !super::room::can_hold(&[out, inp / groups, kernel, kernel], 4) {
            return Err(Error::invalid("conv2d sizes", "a weight that fits in memory", found()));
        }
        let fan_in = inp / groups * kernel * kernel;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let mut draw = |shape: &[usize]| -> Result<Tensor> {
            let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.uniform(-bound, bound) as f32).collect();
            Ok(Tensor::from_vec(v, shape, &candle_core::Device::Cpu)?)
        };
        let weight = draw(&[out, inp / groups, kernel, kernel])?;
        let bias = if config.bias { Some(draw(&[out])?) } else { None };
        Self::from_tensors(weight, bias, config)
    }

    /// A layer with the given weight `[out, in / groups, k, k]` and bias `[out]` (copied).
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>, config: Conv2dConfig) -> Result<Self> {
        let &[out, _, kh, kw] = weight.dims() else {
            return Err(Error::invalid(
                "conv2d weight shape",
                "[out, in / groups, k, k]",
                format!("{:?}", weight.dims()),
            ));
        };
        if kh != kw || config.stride == 0 || config.dilation == 0 || config.groups == 0 || out % config.groups != 0 {
            return Err(Error::invalid(
                "conv2d",
                "a square kernel, stride, dilation and groups >= 1, output channels divisible by groups",
                format!("{out} output channels, {kh}x{kw} kernel, {config:?}"),
            ));
        }
        if bias.as_ref().is_some_and(|b| b.dims() != [out]) {
            return Err(Error::invalid(
                "conv2d bias shape",
                format!("[{out}]"),
                format!("{:?}", bias.map(|b| b.dims().to_vec())),
            ));
        }
        let config = Conv2dConfig { bias: bias.is_some(), ..config };
        Ok(Conv2d { weight: Param::new(&weight)?, bias: bias.as_ref().map(Param::new).transpose()?, config })
    }

    /// The weight, `[out, in / groups, k, k]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The bias, `[out]`, if the layer has one.
    pub fn bias(&self) -> Option<&Param> {
        self.bias.as_ref()
    }

    /// `(in_channels, out_channels, kernel)`.
    fn sizes(&self) -> (usize, usize, usize) {
        let d = self.weight.dims();
        (d[1] * self.config.groups, d[0], d[2])
    }
}

impl Registered for Conv2d {
    fn own_parameters(&self) -> Vec<(String, Param)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }

    fn extra_repr(&self) -> String {
        let (inp, out, k) = self.sizes();
        let c = self.config;
        let mut s = format!("{inp}, {out}, kernel_size=({k}, {k}), stride=({0}, {0})", c.stride);
        if c.padding != 0 {
            s += &format!(", padding=({0}, {0})", c.padding);
        }
        if c.dilation != 1 {
            s += &format!(", dilation=({0}, {0})", c.dilation);
        }
        if c.groups != 1 {
            s += &format!(", groups={}", c.groups);
        }
        if self.bias.is_none() {
            s += ", bias=False";
        }
        s
    }
}

impl Conv2d {
    /// The convolution, then ReLU if `relu`: on the fused kernel (see [`crate::fast`]) for one
    /// group of `f32` on the CPU, on candle's convolution otherwise.
    fn apply(&self, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor> {
        let (inp, out, _) = self.sizes();
        if xs.rank() != 4 || xs.dims()[1] != inp {
            return Err(Error::Shape {
                layer: crate::module::repr(self),
                expected: format!("[batch, {inp}, height, width]"),
                found: format!("{:?}", xs.dims()),
            });
        }
        let c = self.config;
        let w = self.weight.tensor();
        if xs.dtype() != w.dtype() {
            return Err(Error::Shape {
                layer: crate::module::repr(self),
                expected: format!("{:?}, as its weight", w.dtype()),
                found: format!("{:?} {:?}", xs.dtype(), xs.dims()),
            });
        }
        let (batch, h, wd) = self.output_size(xs)?;
        if xs.elem_count() == 0 {
            // An empty batch gives an empty output (as in PyTorch), without running a kernel.
            return Ok(Tensor::zeros((batch, out, h, wd), w.dtype(), w.device())?);
        }
        if c.groups == 1 && crate::fast::fits(&[xs, &w]) {
            let b = self.bias.as_ref().map(Param::tensor);
            let geometry = crate::fast::ConvGeometry {
                stride: c.stride,
                padding: c.padding,
                dilation: c.dilation,
                channel_major: false,
            };
            let sink = super::is_grad_enabled().then(|| self.grad_sink());
            return crate::fast::conv2d(xs, &w, b.as_ref(), geometry, (relu, chained), sink);
        }
        let y = by_candle(xs, &w, c, c.dilation * (self.sizes().2 - 1) + 1)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(&b.tensor().reshape((1, (), 1, 1))?)?,
            None => y,
        };
        Ok(if relu { crate::fast::relu(&y)? } else { y })
    }

    /// The output's batch, height and width for this input, or an error when the padded input is
    /// smaller than the kernel's span or the output or its unfolded patches could not be held.
    fn output_size(&self, xs: &Tensor) -> Result<(usize, usize, usize)> {
        let (inp, out, k) = self.sizes();
        let c = self.config;
        let span = c.dilation.saturating_mul(k - 1).saturating_add(1);
        let padded = |n: usize| c.padding.checked_mul(2).and_then(|p| p.checked_add(n));
        let error = |expected: String| Error::Shape {
            layer: crate::module::repr(self),
            expected,
            found: format!("{:?}", xs.dims()),
        };
        let (h, w) = match (padded(xs.dims()[2]), padded(xs.dims()[3])) {
            (Some(h), Some(w)) if h >= span && w >= span => (h, w),
            (Some(_), Some(_)) => return Err(error(format!("an image at least {span}x{span} with its padding"))),
            _ => return Err(error(format!("padding {} that fits in memory", c.padding))),
        };
        let side = |n: usize| (n - span) / c.stride + 1;
        let (batch, oh, ow) = (xs.dims()[0], side(h), side(w));
        let fits = |sizes: [usize; 4]| super::room::can_hold(&sizes, xs.dtype().size_in_bytes());
        // The output, the unfolded patches and the padded input.
        let patch = (inp / c.groups).saturating_mul(k.saturating_mul(k));
        if !fits([batch, out, oh, ow]) || !fits([batch, patch, oh, ow]) || !fits([batch, inp, h, w]) {
            return Err(error(format!("an output of {oh}x{ow} pixels that fits in memory")));
        }
        Ok((batch, oh, ow))
    }

    /// The fused kernel's backward adds the weight and bias gradients to these parameters.
    fn grad_sink(&self) -> crate::fast::GradSink {
        let (w, b) = (self.weight.clone(), self.bias.clone());
        std::sync::Arc::new(move |dw, db| {
            let into = |p: &Param, g| p.accumulate_grad(g).map_err(|e| candle_core::Error::Msg(e.to_string()));
            into(&w, dw)?;
            b.as_ref().map_or(Ok(()), |b| into(b, db))
        })
    }
}

/// Candle's convolution, for groups and for what the fused kernel does not take. Strided, it gets
/// the input padded here and cut to the rows and columns its windows read: candle's backward
/// gives both sides one output padding, wrong when the two sides leave different remainders.
fn by_candle(xs: &Tensor, w: &Tensor, c: Conv2dConfig, span: usize) -> Result<Tensor> {
    if c.stride == 1 {
        return Ok(xs.conv2d(w, c.padding, 1, c.dilation, c.groups)?);
    }
    let mut x = xs.clone();
    for dim in [2, 3] {
        let padded = x.dims()[dim] + 2 * c.padding;
        let read = (padded - span) / c.stride * c.stride + span;
        x = x.pad_with_zeros(dim, c.padding, c.padding)?.narrow(dim, 0, read)?;
    }
    Ok(x.conv2d(w, 0, c.stride, c.dilation, c.groups)?)
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, false, false)
    }
}

impl super::fusion::Fused for Conv2d {
    /// The convolution, and the ReLU, in one pass of the fused kernel.
    fn forward_fused(&self, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor> {
        self.apply(xs, relu, chained)
    }
}

super::repr::impl_display_as_repr!(Conv2d);
