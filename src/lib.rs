//! # minibatch
//!
//! Train neural networks with minibatches: the system that fast.ai's lesson 9 notebook
//! `03_minibatch_training` builds, as a Rust library on candle's tensors. The pieces come in the
//! notebook's order:
//!
//! 1. data: [`Mnist`] reads IDX files (bundled in `data/mnist/`);
//! 2. loss and metric: [`softmax`], [`log_softmax`], [`logsumexp`], [`nll`], [`cross_entropy`],
//!    [`accuracy`];
//! 3. modules: the [`Module`] trait, [`Registered`] and its derive, [`Linear`], [`ReLU`],
//!    [`Sequential`], [`ModuleList`];
//! 4. optimizers: [`Optimizer`], [`Sgd`];
//! 5. data pipeline: [`Dataset`], [`Sampler`], [`Collate`], [`DataLoader`], [`get_dls`];
//! 6. training: [`fit`] with validation, [`get_model`].
//!
//! Beyond the notebook: [`learner`] (fastai's Learner with callbacks, progress, logs, plots and
//! checkpoints), [`optim`] (Adam, AdamW, RMSprop, parameter groups, clipping, accumulation),
//! [`schedule`] (one-cycle, cosine, warmup) and [`lr_find`], the next lessons' layers
//! ([`Conv2d`], [`BatchNorm`], [`LayerNorm`], the poolings, [`cnn`]) with forward hooks and
//! [`ActivationStats`], [`fast`] (the fused CPU kernels that every `Linear`, `Conv2d`,
//! `BatchNorm`, `ReLU` and `cross_entropy` runs on, with no set-up call), [`distributed`]
//! (data-parallel training over MPI, [`DistributedSampler`]), [`data::block`] (lesson 08's data
//! block API) and `data::images` (folders of photos and lesson 10's augmentation, the `images`
//! feature), `benchmark` (the `bench` feature), and [`guide`]: the lesson's questions answered
//! with tested code.
//!
//! Training in three lines, as in the notebook:
//!
//! ```no_run
//! # use minibatch::*;
//! # let data = Mnist::load("data/mnist")?;
//! let (train_dl, valid_dl) = get_dls(data.train, data.valid, 64)?;
//! let (model, mut opt) = get_model(784, 50, 10, 0.5, 0)?;
//! let stats = fit(5, &model, cross_entropy, &mut opt, &train_dl, &valid_dl)?;
//! # Ok::<(), minibatch::Error>(())
//! ```
//!
//! One step by hand, on a tiny batch:
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use minibatch::{cross_entropy, get_model, Module, Optimizer};
//! let (model, mut opt) = get_model(4, 8, 3, 0.5, 0)?;
//! let x = Tensor::new(&[[0f32, 1., 0., 1.], [1., 0., 1., 0.]], &Device::Cpu)?;
//! let y = Tensor::new(&[2u32, 0], &Device::Cpu)?;
//! let before = cross_entropy(&model.forward(&x)?, &y)?;
//! model.backward(&before)?;
//! opt.step()?;
//! opt.zero_grad();
//! let after = cross_entropy(&model.forward(&x)?, &y)?;
//! assert!(after.to_scalar::<f32>()? < before.to_scalar::<f32>()?);
//! # Ok::<(), minibatch::Error>(())
//! ```

#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate self as minibatch;

#[cfg(feature = "bench")]
pub mod benchmark;
pub mod data;
pub mod distributed;
pub mod error;
pub mod fast;
mod files;
pub mod guide;
pub mod label_smoothing;
pub mod learner;
pub mod loss;
pub mod mnist;
pub mod module;
pub mod optim;
#[cfg(feature = "plot")]
pub mod plot;
pub mod precision;
pub mod rng;
pub mod schedule;
pub mod threads;
pub mod train;

pub use data::{
    get_dls, get_dls_with, BatchSampler, Collate, DataLoader, Dataset, DefaultCollate, DistributedSampler, DlsOptions,
    RandomSampler, Sampler, SequentialSampler, TensorDataset, VecDataset,
};
pub use error::{Error, IdxProblem, Result};
pub use fast::relu;
pub use label_smoothing::LabelSmoothingCrossEntropy;
pub use loss::{accuracy, cross_entropy, log_softmax, logsumexp, nll, soft_cross_entropy, softmax};
pub use minibatch_derive::Registered;
pub use mnist::{render_digit, ImageDataset, ImageItem, Mnist, MnistConfig};
pub use module::init;
pub use module::{
    backward, forward_with_hooks, freeze, freeze_body, freeze_with, load_matching, load_state, lr_slice, no_grad,
    register_forward_hook, save_state, save_state_with, state_dict, unfreeze, ActivationStats, AdaptiveAvgPool2d,
    AvgPool2d, BatchNorm, BatchNormConfig, Buffer, Conv2d, Conv2dConfig, Dropout, Flatten, GeneralRelu,
    HistogramConfig, LayerNorm, LayerStats, Linear, MaxPool2d, Module, ModuleList, Param, ReLU, Registered, Sequential,
    TrainingMode, Transfer, View,
};
pub use optim::{
    clip_grad_norm, clip_grad_value, Adam, AdamConfig, AdamW, Optimizer, RmsProp, RmsPropConfig, RuleOptimizer, Sgd,
    SgdConfig,
};
pub use precision::{autocast, Precision};
pub use rng::Rng;
pub use threads::set_kernel_threads;
pub use train::{
    cnn, cnn_for, evaluate, fit, get_model, lr_find, mlp, mlp_sizes, Architecture, EpochStats, Evaluation, LrFind,
    LrFindConfig, ResBlock, XResNet, XResNetConfig, MNIST_INPUT,
};

/// candle's tensor library, re-exported so that users need no second dependency line.
pub use candle_core;
