//! Lesson 11's XResNet (`xresnet18`, `34`, `50`): the "bag of tricks" ResNet, built from the
//! library's layers under the lesson's PyTorch names, so that a saved one loads into the
//! lesson's model and back.

use crate::error::{Error, Result};
use crate::module::init::{kaiming_normal, Fan};
use crate::module::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, Module, Registered,
    Sequential,
};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor};

/// The largest width (channels) of a layer, as the program's `--hidden`: past it the weights alone
/// would take gigabytes.
const MAX_WIDTH: usize = 4_096;
/// The most blocks in a stage.
const MAX_BLOCKS: usize = 256;
/// The most classes.
const MAX_CLASSES: usize = 1 << 20;

/// The lesson's `conv_layer`: a bias-free convolution (Kaiming-normal weights, padding `ks / 2`),
/// batch norm (its weight 0 when `zero_bn`, so the block starts as its shortcut), then a ReLU
/// when `act`.
fn conv_layer(
    ni: usize,
    nf: usize,
    ks: usize,
    stride: usize,
    zero_bn: bool,
    act: bool,
    rng: &mut Rng,
) -> Result<Sequential> {
    let config = Conv2dConfig { stride, padding: ks / 2, bias: false, ..Default::default() };
    let conv = Conv2d::from_tensors(kaiming_normal(&[nf, ni, ks, ks], 0.0, Fan::In, rng)?, None, config)?;
    let bn = BatchNorm::new_2d(nf)?;
    if let (true, Some(weight)) = (zero_bn, bn.weight()) {
        weight.set(&Tensor::zeros(nf, DType::F32, &Device::Cpu)?)?;
    }
    let layer = Sequential::new().add(conv).add(bn);
    Ok(if act { layer.add(crate::module::ReLU) } else { layer })
}

/// The lesson's `ResBlock`: `relu(convs(x) + idconv(pool(x)))`. `convs` is two 3x3 convolutions
/// (`expansion` 1) or the 1x1, 3x3, 1x1 bottleneck (`expansion` 4), the last batch norm
/// zero-initialised; the shortcut averages 2x2 windows (`ceil_mode`) when the block strides, and
/// a 1x1 convolution matches the channels when they change. Where the shapes agree the shortcut
/// is the input itself (the lesson's `noop`), which has no parameters and no name.
pub struct ResBlock {
    convs: Sequential,
    idconv: Option<Sequential>,
    pool: Option<AvgPool2d>,
}

impl ResBlock {
    /// A block from `ni * expansion` to `nh * expansion` channels through `nh` hidden ones.
    pub fn new(expansion: usize, ni: usize, nh: usize, stride: usize, rng: &mut Rng) -> Result<Self> {
        let sizes_ok = ni.min(nh) > 0 && ni.max(nh) <= MAX_WIDTH;
        if !matches!(expansion, 1 | 4) || !matches!(stride, 1 | 2) || !sizes_ok {
            let found = format!("expansion {expansion}, {ni} in, {nh} hidden, stride {stride}");
            let expected = format!("expansion 1 or 4, stride 1 or 2 (the shortcut pools 2x2), sizes 1 to {MAX_WIDTH}");
            return Err(Error::invalid("ResBlock", expected, found));
        }
        let (nf, ni) = (nh * expansion, ni * expansion);
        let convs = if expansion == 1 {
            Sequential::new()
                .add(conv_layer(ni, nh, 3, stride, false, true, rng)?)
                .add(conv_layer(nh, nf, 3, 1, true, false, rng)?)
        } else {
            Sequential::new()
                .add(conv_layer(ni, nh, 1, 1, false, true, rng)?)
                .add(conv_layer(nh, nh, 3, stride, false, true, rng)?)
                .add(conv_layer(nh, nf, 1, 1, true, false, rng)?)
        };
        let idconv = (ni != nf).then(|| conv_layer(ni, nf, 1, 1, false, false, rng)).transpose()?;
        let pool = (stride != 1).then(|| AvgPool2d::new(2, 2, 0).ceil_mode(true));
        Ok(ResBlock { convs, idconv, pool })
    }
}

impl Registered for ResBlock {
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![("convs".into(), &self.convs)];
        if let Some(idconv) = &self.idconv {
            out.push(("idconv".into(), idconv));
        }
        if let Some(pool) = &self.pool {
            out.push(("pool".into(), pool));
        }
        out
    }
}

impl Module for ResBlock {
    /// On the fused kernels both branches hand their outputs on channel-major, as a chain's
    /// layers do, and the join adds and rectifies them there in one pass: no copy between the
    /// layers of a block or between blocks.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let fused = crate::fast::fused();
        let run = |layers: &Sequential, x: &Tensor| match fused {
            true => crate::module::forward_fused(layers, x, false, true),
            false => layers.forward(x),
        };
        let y = run(&self.convs, x)?;
        let pooled = match &self.pool {
            Some(pool) => pool.forward(x)?,
            None => x.clone(),
        };
        let shortcut = match &self.idconv {
            Some(idconv) => run(idconv, &pooled)?,
            None => pooled,
        };
        Ok(match fused {
            true => crate::fast::add_relu(&y, &shortcut)?,
            false => crate::fast::relu(&(y + shortcut)?)?,
        })
    }
}

/// The sizes of an [`XResNet`]: lesson 11's `XResNet.create(expansion, layers, c_in, c_out)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XResNetConfig {
    /// 1 (basic blocks: `xresnet18`, `34`) or 4 (bottlenecks: `xresnet50`).
    pub expansion: usize,
    /// Blocks in each stage; the first stage keeps the size, each later one halves it.
    pub layers: Vec<usize>,
    /// Input channels (1 for MNIST, 3 for photos).
    pub c_in: usize,
    /// Outputs of the last layer.
    pub classes: usize,
    /// Each stage's width before expansion, the first also the stem's: the lesson's
    /// `[64, 128, 256, 512]`, one per stage.
    pub widths: Vec<usize>,
}

impl XResNetConfig {
    /// `xresnet18`: basic blocks, `[2, 2, 2, 2]`.
    pub fn xresnet18(c_in: usize, classes: usize) -> Self {
        Self::lesson(1, &[2, 2, 2, 2], c_in, classes)
    }
    /// `xresnet34`: basic blocks, `[3, 4, 6, 3]`.
    pub fn xresnet34(c_in: usize, classes: usize) -> Self {
        Self::lesson(1, &[3, 4, 6, 3], c_in, classes)
    }
    /// `xresnet50`: bottleneck blocks, `[3, 4, 6, 3]`.
    pub fn xresnet50(c_in: usize, classes: usize) -> Self {
        Self::lesson(4, &[3, 4, 6, 3], c_in, classes)
    }
    fn lesson(expansion: usize, layers: &[usize], c_in: usize, classes: usize) -> Self {
        XResNetConfig { expansion, layers: layers.to_vec(), c_in, classes, widths: vec![64, 128, 256, 512] }
    }
}

/// Lesson 11's XResNet: a stem of three 3x3 convolutions (the first of stride 2, to
/// `(c_in + 1) * 8`, then `widths[0]` twice), a 3x3 max pool of stride 2, the stages of
/// [`ResBlock`]s, average pooling to 1x1, and the classifier; Kaiming-normal convolutions and
/// classifier, zero biases. It takes `[n, c_in, h, w]` images, or `[n, c_in * s * s]` rows of
/// square ones (MNIST's loader gives those). Its children and parameters carry the lesson's
/// names (`0.0.weight`, `4.0.convs.0.0.weight`, `10.weight`), so `save_state` writes what the
/// lesson's PyTorch model loads with `strict=True`, and the reverse.
///
/// ```
/// use minibatch::{Module, XResNet, XResNetConfig};
/// let model = XResNet::new(&XResNetConfig::xresnet18(1, 10), 0)?;
/// assert_eq!(model.num_parameters(), 11_218_618); // as PyTorch counts the lesson's
/// let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!((names[0].as_str(), names.last().unwrap().as_str()), ("0.0.weight", "10.bias"));
/// # Ok::<(), minibatch::Error>(())
/// ```
pub struct XResNet {
    layers: Sequential,
    c_in: usize,
}

impl XResNet {
    /// The model of `config`, initialised from `seed`.
    pub fn new(config: &XResNetConfig, seed: u64) -> Result<Self> {
        let c = config;
        if !matches!(c.expansion, 1 | 4) {
            return Err(Error::invalid("xresnet expansion", "1 (basic blocks) or 4 (bottlenecks)", c.expansion));
        }
        let too_big = c.widths.iter().any(|&w| w > MAX_WIDTH)
            || c.layers.iter().any(|&l| l > MAX_BLOCKS)
            || c.c_in > MAX_WIDTH
            || c.classes > MAX_CLASSES;
        if too_big {
            let found = format!("widths {:?}, blocks {:?}, {} in, {} classes", c.widths, c.layers, c.c_in, c.classes);
            let expected =
                format!("widths and input channels to {MAX_WIDTH}, {MAX_BLOCKS} blocks a stage, {MAX_CLASSES} classes");
            return Err(Error::invalid("xresnet sizes", expected, found));
        }
        if c.layers.is_empty() || c.layers.len() != c.widths.len() || c.c_in == 0 || c.classes == 0 {
            let found =
                format!("{} stages, {} widths, {} in, {} classes", c.layers.len(), c.widths.len(), c.c_in, c.classes);
            return Err(Error::invalid(
                "xresnet sizes",
                "one width per stage, at least one stage, sizes from 1",
                found,
            ));
        }
        if c.widths.iter().any(|&w| w == 0 || w % c.expansion != 0) {
            return Err(Error::invalid(
                "xresnet widths",
                format!("multiples of the expansion {}", c.expansion),
                format!("{:?}", c.widths),
            ));
        }
        let mut rng = Rng::new(seed);
        let stem = [c.c_in, (c.c_in + 1) * 8, c.widths[0], c.widths[0]];
        let mut layers = Sequential::new();
        for i in 0..3 {
            layers =
                layers.add(conv_layer(stem[i], stem[i + 1], 3, if i == 0 { 2 } else { 1 }, false, true, &mut rng)?);
        }
        layers = layers.add(MaxPool2d::new(3, 2, 1));
        let nfs: Vec<usize> = std::iter::once(c.widths[0] / c.expansion).chain(c.widths.iter().copied()).collect();
        for (i, &blocks) in c.layers.iter().enumerate() {
            let mut stage = Sequential::new();
            for b in 0..blocks {
                let (ni, stride) = if b == 0 { (nfs[i], if i == 0 { 1 } else { 2 }) } else { (nfs[i + 1], 1) };
                stage = stage.add(ResBlock::new(c.expansion, ni, nfs[i + 1], stride, &mut rng)?);
            }
            layers = layers.add(stage);
        }
        let last = nfs[c.layers.len()] * c.expansion;
        let weight = kaiming_normal(&[c.classes, last], 0.0, Fan::In, &mut rng)?;
        let head = Linear::from_tensors(weight, Some(Tensor::zeros(c.classes, DType::F32, &Device::Cpu)?))?;
        layers = layers.add(AdaptiveAvgPool2d::new(1, 1)).add(Flatten).add(head);
        Ok(XResNet { layers, c_in: c.c_in })
    }

    /// The layers: the stem's three, the max pool, one per stage, the pooling, `Flatten` and the
    /// classifier.
    pub fn layers(&self) -> &Sequential {
        &self.layers
    }
}

impl Registered for XResNet {
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.layers.named_children()
    }
    fn set_training(&self, training: bool) {
        self.layers.set_training(training)
    }
    fn is_training(&self) -> Option<bool> {
        self.layers.is_training()
    }
}

impl Module for XResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let &[n, features] = x.dims() {
            let side = ((features / self.c_in) as f64).sqrt().round() as usize;
            if self.c_in * side * side != features {
                let expected = format!("[n, {} * s * s] or [n, {}, h, w]", self.c_in, self.c_in);
                return Err(Error::Shape { layer: "XResNet".into(), expected, found: format!("{:?}", x.dims()) });
            }
            return self.layers.forward(&x.reshape((n, self.c_in, side, side))?);
        }
        self.layers.forward(x)
    }
}

impl std::fmt::Display for XResNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::module::repr(self))
    }
}

impl std::fmt::Display for ResBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::module::repr(self))
    }
}
