//! Normalisation layers of lesson 07: batch norm (1-d and 2-d) and layer norm.

use super::{Buffer, Module, Param, Registered};
use crate::error::{Error, Result};
use crate::fast::Stats;
use candle_core::{DType, Device, Tensor};

/// The settings of a batch norm layer beyond its channel count: PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance before its square root.
    pub eps: f64,
    /// Weight of each batch's statistics in the running ones:
    /// `running = (1 - momentum) * running + momentum * batch`.
    pub momentum: f64,
    /// Whether the layer learns a scale (`weight`) and shift (`bias`) per channel.
    pub affine: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig { eps: 1e-5, momentum: 0.1, affine: true }
    }
}

/// Batch normalisation over the channel dimension (dimension 1): PyTorch's `nn.BatchNorm2d` for
/// `[batch, channels, height, width]` and `nn.BatchNorm1d` for `[batch, channels]` or
/// `[batch, channels, length]`, with their parameter and buffer names (`weight`, `bias`,
/// `running_mean`, `running_var`, `num_batches_tracked`), so that a `state_dict` moves between the
/// two.
///
/// In training mode each channel is normalised with the batch's own mean and (biased) variance,
/// and the running statistics move towards the batch's by `momentum`, the running variance
/// taking the unbiased batch variance, as PyTorch's does. In evaluation mode
/// ([`Module::eval`], which the training loop switches to while validating) the running
/// statistics are used, so a prediction does not depend on the rest of its batch.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{BatchNorm, Module};
/// let bn = BatchNorm::new_2d(1)?;
/// let x = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu)?.reshape((4, 1, 1, 1))?;
/// let y: Vec<f32> = bn.forward(&x)?.flatten_all()?.to_vec1()?;
/// assert!((y[0] + 1.3416).abs() < 1e-4 && (y[3] - 1.3416).abs() < 1e-4);
/// // The running mean moved a tenth of the way from 0 to the batch mean 2.5.
/// assert_eq!(bn.running_mean().to_vec1::<f32>()?, [0.25]);
/// assert_eq!(bn.to_string(), "BatchNorm2d(1, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)");
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug)]
pub struct BatchNorm {
    weight: Option<Param>,
    bias: Option<Param>,
    running_mean: Buffer,
    running_var: Buffer,
    num_batches_tracked: Buffer,
    config: BatchNormConfig,
    ranks: &'static [usize],
    training: std::sync::atomic::AtomicBool,
}

impl BatchNorm {
    /// `BatchNorm2d(channels)` with PyTorch's defaults: weight 1, bias 0, running mean 0 and
    /// variance 1.
    pub fn new_2d(channels: usize) -> Result<Self> {
        Self::with_config(channels, &[4], BatchNormConfig::default())
    }

    /// `BatchNorm1d(channels)` with PyTorch's defaults, for `[batch, channels]` or
    /// `[batch, channels, length]` inputs.
    pub fn new_1d(channels: usize) -> Result<Self> {
        Self::with_config(channels, &[2, 3], BatchNormConfig::default())
    }

    /// `BatchNorm2d` with the given settings.
    pub fn new_2d_with(channels: usize, config: BatchNormConfig) -> Result<Self> {
        Self::with_config(channels, &[4], config)
    }

    /// `BatchNorm1d` with the given settings.
    pub fn new_1d_with(channels: usize, config: BatchNormConfig) -> Result<Self> {
        Self::with_config(channels, &[2, 3], config)
    }

    fn with_config(channels: usize, ranks: &'static [usize], config: BatchNormConfig) -> Result<Self> {
        if channels == 0
            || config.eps.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || !(0.0..=1.0).contains(&config.momentum)
        {
            let found = format!("{channels} channels, {config:?}");
            return Err(Error::invalid("batch norm", "channels >= 1, eps > 0, momentum in [0, 1]", found));
        }
        if !super::room::can_hold(&[channels, 4], 4) {
            return Err(Error::invalid("batch norm", "channels that fit in memory", channels));
        }
        let cpu = &Device::Cpu;
        let (ones, zeros) = (Tensor::ones(channels, DType::F32, cpu)?, Tensor::zeros(channels, DType::F32, cpu)?);
        let affine = |t: &Tensor| if config.affine { Param::new(t).map(Some) } else { Ok(None) };
        Ok(BatchNorm {
            weight: affine(&ones)?,
            bias: affine(&zeros)?,
            running_mean: Buffer::with_rule(zeros, Buffer::finite),
            running_var: Buffer::with_rule(ones, Buffer::finite_non_negative),
            num_batches_tracked: Buffer::new(Tensor::new(0i64, cpu)?),
            config,
            ranks,
            training: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The running mean per channel.
    pub fn running_mean(&self) -> Tensor {
        self.running_mean.get()
    }

    /// The running (unbiased) variance per channel.
    pub fn running_var(&self) -> Tensor {
        self.running_var.get()
    }

    /// The scale per channel, if the layer is affine.
    pub fn weight(&self) -> Option<&Param> {
        self.weight.as_ref()
    }

    /// The shift per channel, if the layer is affine.
    pub fn bias(&self) -> Option<&Param> {
        self.bias.as_ref()
    }

    fn channels(&self) -> usize {
        self.running_mean.dims()[0]
    }

    /// The batch's mean and biased variance per channel (`[1, C, 1]` of an `[N, C, M]` view) on
    /// candle's operations, `count` values behind each.
    fn batch_stats(&self, x: &Tensor, count: usize) -> Result<(Tensor, Tensor)> {
        let mean = (x.sum_keepdim(2)?.sum_keepdim(0)? / count as f64)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = (centred.sqr()?.sum_keepdim(2)?.sum_keepdim(0)? / count as f64)?;
        Ok((mean, var))
    }

    /// Moves the running statistics towards the batch's (`var` biased, made unbiased here from
    /// the `count` values behind it) and counts the batch, in plain arithmetic: a dozen candle
    /// operations on a few channels cost more than the normalisation itself. The statistics are
    /// `f32` whatever was loaded (loading converts to the buffers' dtype).
    fn update_running(&self, mean: &[f32], var: &[f32], count: usize) -> Result<()> {
        let (m, unbias) = (self.config.momentum, count as f64 / (count - 1) as f64);
        let mix = |old: &Buffer, new: &[f32], scale: f64| -> Result<()> {
            let before: Vec<f32> = old.get().to_vec1()?;
            let v = before.iter().zip(new).map(|(&o, &n)| ((1.0 - m) * o as f64 + m * n as f64 * scale) as f32);
            old.set(Tensor::from_vec(v.collect(), new.len(), &Device::Cpu)?);
            Ok(())
        };
        mix(&self.running_mean, mean, 1.0)?;
        mix(&self.running_var, var, unbias)?;
        let tracked = self.num_batches_tracked.get().to_scalar::<i64>()?;
        self.num_batches_tracked.set(Tensor::new(tracked + 1, &Device::Cpu)?);
        Ok(())
    }
}

impl Registered for BatchNorm {
    fn own_parameters(&self) -> Vec<(String, Param)> {
        let named = |n: &str, p: &Option<Param>| p.clone().map(|p| (n.to_string(), p));
        named("weight", &self.weight).into_iter().chain(named("bias", &self.bias)).collect()
    }

    fn own_buffers(&self) -> Vec<(String, Buffer)> {
        vec![
            ("running_mean".into(), self.running_mean.clone()),
            ("running_var".into(), self.running_var.clone()),
            ("num_batches_tracked".into(), self.num_batches_tracked.clone()),
        ]
    }

    fn type_name(&self) -> String {
        if self.ranks == [4] { "BatchNorm2d" } else { "BatchNorm1d" }.to_string()
    }

    fn extra_repr(&self) -> String {
        let c = self.config;
        let affine = if c.affine { "True" } else { "False" };
        format!(
            "{}, eps={}, momentum={}, affine={affine}, bias={affine}, track_running_stats=True",
            self.channels(),
            crate::module::repr::py_float(c.eps),
            crate::module::repr::py_float(c.momentum)
        )
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, std::sync::atomic::Ordering::Relaxed);
    }
    fn is_training(&self) -> Option<bool> {
        Some(self.training.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl BatchNorm {
    /// The normalisation, then ReLU if `relu`: one pass of the fused kernel on `f32` CPU data
    /// (see [`crate::fast`]), candle's operations otherwise.
    fn apply(&self, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor> {
        let c = self.channels();
        if !self.ranks.contains(&xs.rank()) || xs.dims()[1] != c {
            let expected = match self.ranks {
                [4] => format!("[batch, {c}, height, width]"),
                _ => format!("[batch, {c}] or [batch, {c}, length]"),
            };
            return Err(Error::Shape { layer: crate::module::repr(self), expected, found: format!("{:?}", xs.dims()) });
        }
        same_dtype(self, xs, self.running_mean.get().dtype())?;
        let training = self.training.load(std::sync::atomic::Ordering::Relaxed);
        let count = xs.elem_count() / c;
        if training && count < 2 {
            let found = format!("{:?}", xs.dims());
            return Err(Error::invalid("batch norm input in training mode", "more than one value per channel", found));
        }
        if crate::fast::fits(&[xs]) {
            let stats = if training {
                Stats::Batch
            } else {
                Stats::Given { mean: self.running_mean.get().to_vec1()?, var: self.running_var.get().to_vec1()? }
            };
            // Without learnt scale and shift, constants: their gradients go nowhere.
            let (w, b) = match (&self.weight, &self.bias) {
                (Some(w), Some(b)) => (w.tensor(), b.tensor()),
                _ => (Tensor::ones(c, DType::F32, &Device::Cpu)?, Tensor::zeros(c, DType::F32, &Device::Cpu)?),
            };
            let (y, batch_stats) = crate::fast::batch_norm(xs, &w, &b, stats, self.config.eps, (relu, chained))?;
            if let Some((mean, var)) = batch_stats {
                self.update_running(&mean, &var, count)?;
            }
            return Ok(y);
        }
        let x = xs.reshape((xs.dims()[0], c, xs.dims()[2..].iter().product::<usize>()))?;
        let y = self.plain(&x, training, count)?.reshape(xs.shape())?;
        Ok(if relu { crate::fast::relu(&y)? } else { y })
    }

    /// The layer on candle's operations (the reference the kernel is tested against).
    fn plain(&self, x: &Tensor, training: bool, count: usize) -> Result<Tensor> {
        let c = self.channels();
        let (mean, var) = if training {
            let (mean, var) = self.batch_stats(x, count)?;
            let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
            self.update_running(&flat(&mean)?, &flat(&var)?, count)?;
            (mean, var)
        } else {
            let stat = |b: &Buffer| b.get().to_dtype(x.dtype())?.reshape((1, c, 1));
            (stat(&self.running_mean)?, stat(&self.running_var)?)
        };
        let scale = (var + self.config.eps)?.sqrt()?.recip()?;
        let mut y = x.broadcast_sub(&mean)?.broadcast_mul(&scale)?;
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            y = y.broadcast_mul(&w.tensor().reshape((1, c, 1))?)?.broadcast_add(&b.tensor().reshape((1, c, 1))?)?;
        }
        Ok(y)
    }
}

impl Module for BatchNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, false, false)
    }
}

impl super::fusion::Fused for BatchNorm {
    /// Batch norm, and the ReLU, in one pass of the fused kernel.
    fn forward_fused(&self, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor> {
        self.apply(xs, relu, chained)
    }
}

/// Layer normalisation over the last dimensions (`normalized_shape`): each sample is normalised
/// with its own mean and biased variance over those, then scaled and shifted elementwise
/// (PyTorch's `nn.LayerNorm`, names `weight` and `bias`). It behaves the same in training and
/// evaluation, and does not depend on the batch.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{LayerNorm, Module};
/// let ln = LayerNorm::new(&[4])?;
/// let x = Tensor::new(&[[1f32, 2., 3., 4.]], &Device::Cpu)?;
/// let y: Vec<f32> = ln.forward(&x)?.flatten_all()?.to_vec1()?;
/// assert!((y[0] + 1.3416).abs() < 1e-4);
/// assert_eq!(ln.to_string(), "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)");
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Param,
    bias: Param,
    shape: Vec<usize>,
    eps: f64,
}

impl LayerNorm {
    /// Normalisation over trailing dimensions of sizes `shape`, eps `1e-5`, weight 1 and bias 0.
    pub fn new(shape: &[usize]) -> Result<Self> {
        if shape.is_empty() || shape.contains(&0) {
            return Err(Error::invalid("layer norm shape", "one or more non-zero sizes", format!("{shape:?}")));
        }
        if !super::room::can_hold(&[shape, &[2]].concat(), 4) {
            return Err(Error::invalid("layer norm shape", "sizes that fit in memory", format!("{shape:?}")));
        }
        let cpu = &Device::Cpu;
        Ok(LayerNorm {
            weight: Param::new(&Tensor::ones(shape, DType::F32, cpu)?)?,
            bias: Param::new(&Tensor::zeros(shape, DType::F32, cpu)?)?,
            shape: shape.to_vec(),
            eps: 1e-5,
        })
    }

    /// The scale, of the normalised shape.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The shift, of the normalised shape.
    pub fn bias(&self) -> &Param {
        &self.bias
    }
}

impl Registered for LayerNorm {
    fn own_parameters(&self) -> Vec<(String, Param)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }

    fn extra_repr(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        format!("{tuple}, eps={}, elementwise_affine=True, bias=True", crate::module::repr::py_float(self.eps))
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let k = self.shape.len();
        if xs.rank() < k || xs.dims()[xs.rank() - k..] != self.shape[..] {
            return Err(Error::Shape {
                layer: crate::module::repr(self),
                expected: format!("[..., {}]", self.shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
                found: format!("{:?}", xs.dims()),
            });
        }
        same_dtype(self, xs, self.weight.tensor().dtype())?;
        let inner: usize = self.shape.iter().product();
        let x = xs.reshape(((), inner))?;
        let mean = x.mean_keepdim(1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(1)?;
        let y = centred.broadcast_mul(&(var + self.eps)?.sqrt()?.recip()?)?;
        let (w, b) = (self.weight.tensor().reshape((1, inner))?, self.bias.tensor().reshape((1, inner))?);
        Ok(y.broadcast_mul(&w)?.broadcast_add(&b)?.reshape(xs.shape())?)
    }
}

/// An error naming `layer` unless `xs` holds `dtype` values (its parameters' and statistics').
fn same_dtype(layer: &dyn Module, xs: &Tensor, dtype: DType) -> Result<()> {
    if xs.dtype() == dtype {
        return Ok(());
    }
    let found = format!("{:?} {:?}", xs.dtype(), xs.dims());
    Err(Error::Shape { layer: crate::module::repr(layer), expected: format!("{dtype:?} values"), found })
}

super::repr::impl_display_as_repr!(BatchNorm, LayerNorm);
