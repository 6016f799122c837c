//! The course's CNN for MNIST (lessons 06 and 07), with and without batch norm, and telling a
//! saved model's architecture from its weights.

use super::{XResNet, XResNetConfig};
use crate::error::{Error, Result};
use crate::module::init::{kaiming_normal, Fan};
use crate::module::{
    AdaptiveAvgPool2d, BatchNorm, Conv2d, Conv2dConfig, Flatten, Linear, Module, ReLU, Sequential, View,
};
use crate::rng::Rng;
use candle_core::Tensor;
use std::collections::HashMap;

/// The channels and kernel of each of the CNN's four stride-2 blocks (28 -> 14 -> 7 -> 4 -> 2);
/// the first takes the input's channels.
const BLOCKS: [(usize, usize, usize); 4] = [(1, 8, 5), (8, 16, 3), (16, 32, 3), (32, 32, 3)];

/// The lesson's CNN for MNIST's 1x28x28 images and `classes` outputs ([`cnn_for`] with
/// [`MNIST_INPUT`]), written as PyTorch writes it so that
/// weights move between the two under the same names (`1.0.weight`, ..., `7.weight`):
///
/// ```text
/// Sequential(View(-1, 1, 28, 28),
///            Sequential(Conv2d(1, 8, 5, stride=2, padding=2), ReLU()),     # 1: 14x14
///            Sequential(Conv2d(8, 16, 3, stride=2, padding=1), ReLU()),    # 2: 7x7
///            Sequential(Conv2d(16, 32, 3, stride=2, padding=1), ReLU()),   # 3: 4x4
///            Sequential(Conv2d(32, 32, 3, stride=2, padding=1), ReLU()),   # 4: 2x2
///            AdaptiveAvgPool2d(1), Flatten(), Linear(32, classes))
/// ```
///
/// With `batch_norm`, each block is `Conv2d(.., bias=False), BatchNorm2d, ReLU` (lesson 07). The
/// convolutions start from Kaiming's normal initialisation for ReLU (`std = sqrt(2 / fan_in)`,
/// zero bias), which the lesson derives and which this model needs to train at a high rate;
/// the last layer keeps PyTorch's default.
///
/// ```
/// let model = minibatch::cnn(false, 10, 0)?;
/// assert_eq!(minibatch::Module::num_parameters(&model), 15_594);
/// let x = candle_core::Tensor::zeros((2, 784), candle_core::DType::F32, &candle_core::Device::Cpu)?;
/// assert_eq!(minibatch::Module::forward(&model, &x)?.dims(), &[2, 10]);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn cnn(batch_norm: bool, classes: usize, seed: u64) -> Result<Sequential> {
    cnn_for(batch_norm, MNIST_INPUT, classes, seed)
}

/// One MNIST image as the CNNs take it: 1 channel of 28 by 28.
pub const MNIST_INPUT: [usize; 3] = [1, 28, 28];

/// The largest channel count and side of a CNN's input.
const MAX_INPUT: usize = 1 << 16;

/// The [`cnn`] for inputs of `[channels, height, width]` (the view's shape; the convolutions and
/// the pooling take any size): the same layers and names, the first convolution taking
/// `channels`. For pictures of an image folder, `[3, size, size]`.
///
/// ```
/// let model = minibatch::cnn_for(true, [3, 64, 64], 5, 0)?;
/// let x = candle_core::Tensor::zeros((2, 3, 64, 64), candle_core::DType::F32, &candle_core::Device::Cpu)?;
/// assert_eq!(minibatch::Module::forward(&model, &x)?.dims(), &[2, 5]);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn cnn_for(batch_norm: bool, input: [usize; 3], classes: usize, seed: u64) -> Result<Sequential> {
    if classes == 0 {
        return Err(Error::invalid("cnn classes", "at least one", classes));
    }
    if input.iter().any(|&d| d == 0 || d > MAX_INPUT) {
        return Err(Error::invalid(
            "cnn input [channels, height, width]",
            format!("each 1 to {MAX_INPUT}"),
            format!("{input:?}"),
        ));
    }
    let mut rng = Rng::new(seed);
    let [c, h, w] = input.map(|d| d as i64);
    let mut model = Sequential::new().add(View::new(&[-1, c, h, w]));
    for (i, (inp, out, k)) in BLOCKS.into_iter().enumerate() {
        let inp = if i == 0 { input[0] } else { inp };
        let config = Conv2dConfig { stride: 2, padding: k / 2, bias: !batch_norm, ..Default::default() };
        let weight = kaiming_normal(&[out, inp, k, k], 0.0, Fan::In, &mut rng)?;
        let bias = (!batch_norm).then(|| Tensor::zeros(out, candle_core::DType::F32, &candle_core::Device::Cpu));
        let conv = Conv2d::from_tensors(weight, bias.transpose()?, config)?;
        let block = Sequential::new().add(conv);
        let block = if batch_norm { block.add(BatchNorm::new_2d(out)?) } else { block };
        model = model.add(block.add(ReLU));
    }
    Ok(model.add(AdaptiveAvgPool2d::new(1, 1)).add(Flatten).add(Linear::new(32, classes, &mut rng)?))
}

/// The architectures the program trains, saves and rebuilds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Architecture {
    /// An [`mlp`](crate::mlp) of these layer sizes (inputs first, classes last).
    Mlp(Vec<usize>),
    /// The lesson's [`cnn_for`] this input and this many classes.
    Cnn {
        /// Outputs of the last layer.
        classes: usize,
        /// One input's `[channels, height, width]` ([`MNIST_INPUT`] for MNIST).
        input: [usize; 3],
    },
    /// The [`cnn_for`] with batch norm.
    CnnBn {
        /// Outputs of the last layer.
        classes: usize,
        /// One input's `[channels, height, width]`.
        input: [usize; 3],
    },
    /// Lesson 11's [`XResNet`](super::XResNet) of this depth (18, 34 or 50).
    XResNet {
        /// 18, 34 or 50.
        depth: usize,
        /// Outputs of the last layer.
        classes: usize,
        /// One input's `[channels, height, width]` (the model takes any size; its channels are
        /// the stem's).
        input: [usize; 3],
    },
}

impl Architecture {
    /// A fresh model of this architecture, initialised from `seed`.
    pub fn build(&self, seed: u64) -> Result<Box<dyn Module>> {
        Ok(match self {
            Architecture::Mlp(sizes) => Box::new(super::mlp(sizes, seed)?),
            Architecture::Cnn { classes, input } => Box::new(cnn_for(false, *input, *classes, seed)?),
            Architecture::CnnBn { classes, input } => Box::new(cnn_for(true, *input, *classes, seed)?),
            Architecture::XResNet { depth, classes, input } => {
                let config = match depth {
                    18 => XResNetConfig::xresnet18(input[0], *classes),
                    34 => XResNetConfig::xresnet34(input[0], *classes),
                    50 => XResNetConfig::xresnet50(input[0], *classes),
                    _ => return Err(Error::invalid("xresnet depth", "18, 34 or 50", depth)),
                };
                Box::new(XResNet::new(&config, seed)?)
            }
        })
    }

    /// The architecture whose `state_dict` this is, or `None` when it is none of these: what
    /// `minibatch eval` and `summary` rebuild a saved model from. A CNN is recognised by its
    /// head (`7.weight`), its batch norm by `1.1.running_mean`, its input channels by its first
    /// convolution (`1.0.weight`, `[8, channels, 5, 5]`); the state must then have exactly the
    /// model's names and shapes. The input's height and width are not in the weights: they are
    /// taken to be MNIST's 28x28 (set others with [`with_input`](Architecture::with_input)).
    pub fn from_state(state: &HashMap<String, Tensor>) -> Option<Architecture> {
        if let Some(sizes) = super::mlp_sizes(state) {
            return Some(Architecture::Mlp(sizes));
        }
        let arch = if let Some(head) = state.get("10.weight") {
            // An XResNet's head follows its stem (0-2), max pool (3), four stages and pooling.
            // Its depth shows in its names: a third block in the last stage (34 and 50), a third
            // convolution in a block (50's bottlenecks).
            let classes = head.dims2().ok()?.0;
            let depth = match (state.contains_key("4.0.convs.2.0.weight"), state.contains_key("7.2.convs.0.0.weight")) {
                (true, _) => 50,
                (false, true) => 34,
                (false, false) => 18,
            };
            let input = [state.get("0.0.weight")?.dims4().ok()?.1, 28, 28];
            Architecture::XResNet { depth, classes, input }
        } else {
            let classes = state.get("7.weight")?.dims2().ok()?.0;
            let input = [state.get("1.0.weight")?.dims4().ok()?.1, 28, 28];
            if state.contains_key("1.1.running_mean") {
                Architecture::CnnBn { classes, input }
            } else {
                Architecture::Cnn { classes, input }
            }
        };
        // The state must then have exactly that model's names and shapes.
        let want = crate::module::state_dict(arch.build(0).ok()?.as_ref());
        let same =
            want.len() == state.len() && want.iter().all(|(k, v)| state.get(k).is_some_and(|t| t.dims() == v.dims()));
        same.then_some(arch)
    }

    /// The name the program's `--model` flag gives it: `mlp`, `cnn`, `cnn-bn`, `xresnet18`...
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Mlp(_) => "mlp",
            Architecture::Cnn { .. } => "cnn",
            Architecture::CnnBn { .. } => "cnn-bn",
            Architecture::XResNet { depth: 18, .. } => "xresnet18",
            Architecture::XResNet { depth: 34, .. } => "xresnet34",
            Architecture::XResNet { .. } => "xresnet50",
        }
    }

    /// The outputs of the last layer.
    pub fn classes(&self) -> usize {
        match self {
            Architecture::Mlp(sizes) => sizes.last().copied().unwrap_or(0),
            Architecture::Cnn { classes, .. }
            | Architecture::CnnBn { classes, .. }
            | Architecture::XResNet { classes, .. } => *classes,
        }
    }

    /// The number of values in one input (784 for every architecture here on MNIST).
    pub fn inputs(&self) -> usize {
        match self {
            Architecture::Mlp(sizes) => sizes[0],
            Architecture::Cnn { input, .. }
            | Architecture::CnnBn { input, .. }
            | Architecture::XResNet { input, .. } => input.iter().product(),
        }
    }

    /// The shape of one input as the data gives it: `[784]` for the mlp, and for the CNNs on
    /// MNIST (whose first layer is a view of the flat image); `[channels, height, width]`
    /// otherwise.
    pub fn input_shape(&self) -> Vec<usize> {
        match self {
            Architecture::Mlp(_) => vec![self.inputs()],
            Architecture::Cnn { input, .. } | Architecture::CnnBn { input, .. } if *input == MNIST_INPUT => {
                vec![self.inputs()]
            }
            Architecture::Cnn { input, .. }
            | Architecture::CnnBn { input, .. }
            | Architecture::XResNet { input, .. } => input.to_vec(),
        }
    }

    /// The same architecture for inputs of `[channels, height, width]` (an mlp is unchanged).
    pub fn with_input(self, shape: [usize; 3]) -> Architecture {
        match self {
            Architecture::Cnn { classes, .. } => Architecture::Cnn { classes, input: shape },
            Architecture::CnnBn { classes, .. } => Architecture::CnnBn { classes, input: shape },
            Architecture::XResNet { depth, classes, .. } => Architecture::XResNet { depth, classes, input: shape },
            mlp => mlp,
        }
    }
}
