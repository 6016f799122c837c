//! Lessons 06-07's CNN as a student writes it: the library's `GeneralRelu` (lesson 06's
//! activation), and the lesson's own batch norm, hand-written with candle's operations (guide
//! page 12), placed after the activation as the lesson's `conv_layer` does.
use minibatch::candle_core::{DType, Device, Tensor};
use minibatch::{
    no_grad, AdaptiveAvgPool2d, BatchNorm, Buffer, Conv2d, Conv2dConfig, Flatten, GeneralRelu, Linear, Module, Param,
    Registered, Result, Rng, Sequential, TrainingMode, View,
};

#[derive(Registered)]
pub struct LessonBatchNorm {
    #[module(param)]
    mults: Param,
    #[module(param)]
    adds: Param,
    #[module(buffer)]
    vars: Buffer,
    #[module(buffer)]
    means: Buffer,
    #[module(training)]
    mode: TrainingMode,
    #[module(skip)]
    mom: f64,
    #[module(skip)]
    eps: f64,
}

impl LessonBatchNorm {
    pub fn new(nf: usize) -> Result<Self> {
        let cpu = &Device::Cpu;
        Ok(LessonBatchNorm {
            mults: Param::new(&Tensor::ones((nf, 1, 1), DType::F32, cpu)?)?,
            adds: Param::new(&Tensor::zeros((nf, 1, 1), DType::F32, cpu)?)?,
            vars: Buffer::new(Tensor::ones((1, nf, 1, 1), DType::F32, cpu)?),
            means: Buffer::new(Tensor::zeros((1, nf, 1, 1), DType::F32, cpu)?),
            mode: TrainingMode::default(),
            mom: 0.1,
            eps: 1e-5,
        })
    }

    fn update_stats(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = (x.elem_count() / x.dims()[1]) as f64;
        let m = x.mean_keepdim(3)?.mean_keepdim(2)?.mean_keepdim(0)?;
        let d = x.broadcast_sub(&m)?;
        let v = ((d.sqr()?.mean_keepdim(3)?.mean_keepdim(2)?.mean_keepdim(0)? * n)? / (n - 1.0))?;
        let lerp = |old: Tensor, new: &Tensor| (old * (1.0 - self.mom))? + (new * self.mom)?;
        self.means.set(lerp(self.means.get(), &m)?);
        self.vars.set(lerp(self.vars.get(), &v)?);
        Ok((m, v))
    }
}

impl Module for LessonBatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (m, v) =
            if self.mode.is_training() { no_grad(|| self.update_stats(&x.detach()))? } else { (self.means.get(), self.vars.get()) };
        let x = x.broadcast_sub(&m)?.broadcast_div(&(v + self.eps)?.sqrt()?)?;
        Ok(x.broadcast_mul(&self.mults.tensor())?.broadcast_add(&self.adds.tensor())?)
    }
}

/// The same module, its statistics and affine taken on the `[channels, n*h*w]` view: every
/// reduction (the statistics, and in the backward pass the sums for `mults` and `adds`) runs over
/// the last dimension, which candle reduces fastest.
pub struct ChannelRows(pub LessonBatchNorm);

impl Registered for ChannelRows {
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.0.named_children()
    }
    fn own_parameters(&self) -> Vec<(String, Param)> {
        self.0.own_parameters()
    }
    fn own_buffers(&self) -> Vec<(String, minibatch::Buffer)> {
        self.0.own_buffers()
    }
    fn set_training(&self, training: bool) {
        self.0.set_training(training)
    }
}

impl Module for ChannelRows {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let bn = &self.0;
        let (n, c, h, w) = x.dims4()?;
        let rows = x.transpose(0, 1)?.reshape((c, n * h * w))?;
        let (m, v) = if bn.mode.is_training() {
            no_grad(|| -> Result<(Tensor, Tensor)> {
                let r = rows.detach();
                let m = r.mean_keepdim(1)?;
                let v = r.broadcast_sub(&m)?.sqr()?.sum_keepdim(1)?.affine(1.0 / (n * h * w - 1) as f64, 0.0)?;
                let lerp = |old: Tensor, new: &Tensor| (old * (1.0 - bn.mom))? + (new * bn.mom)?;
                bn.means.set(lerp(bn.means.get(), &m.reshape((1, c, 1, 1))?)?);
                bn.vars.set(lerp(bn.vars.get(), &v.reshape((1, c, 1, 1))?)?);
                Ok((m, v))
            })?
        } else {
            (bn.means.get().reshape((c, 1))?, bn.vars.get().reshape((c, 1))?)
        };
        let y = rows.broadcast_sub(&m)?.broadcast_div(&(v + bn.eps)?.sqrt()?)?;
        let y = y.broadcast_mul(&bn.mults.tensor().reshape((c, 1))?)?.broadcast_add(&bn.adds.tensor().reshape((c, 1))?)?;
        Ok(y.reshape((c, n, h, w))?.transpose(0, 1)?)
    }
}

/// Which batch norm follows each block's activation.
pub enum Norm {
    None,
    Own,
    OwnRows,
    Library,
}

/// The lesson's CNN with the program's `cnn` sizes (8, 16, 32, 32 channels, stride 2): each block
/// `Conv2d, GeneralRelu[, batch norm]`, then pooling, flatten and the classifier.
pub fn cnn(act: GeneralRelu, norm: Norm) -> Result<Sequential> {
    let mut rng = Rng::new(0);
    let mut model = Sequential::new().add(View::new(&[-1, 1, 28, 28]));
    for (inp, out, k) in [(1, 8, 5), (8, 16, 3), (16, 32, 3), (32, 32, 3)] {
        let bias = matches!(norm, Norm::None);
        let config = Conv2dConfig { stride: 2, padding: k / 2, bias, ..Default::default() };
        let block = Sequential::new().add(Conv2d::new(inp, out, k, config, &mut rng)?).add(act);
        model = model.add(match norm {
            Norm::None => block,
            Norm::Own => block.add(LessonBatchNorm::new(out)?),
            Norm::OwnRows => block.add(ChannelRows(LessonBatchNorm::new(out)?)),
            Norm::Library => block.add(BatchNorm::new_2d(out)?),
        });
    }
    Ok(model.add(AdaptiveAvgPool2d::new(1, 1)).add(Flatten).add(Linear::new(32, 10, &mut rng)?))
}
