//! Modules, the notebook's step 3: layers and models that know their parameters.
//!
//! A module is split in two traits. [`Module`] is what it computes (`forward`, its one required
//! method) and everything derived from its structure: `parameters`, `named_parameters`, `train`,
//! `eval`. [`Registered`] is that structure: its children and its own parameters. The derive
//! `#[derive(Registered)]` writes `Registered` from a struct's fields, which is what PyTorch's
//! `__setattr__` does when `self.l1 = nn.Linear(...)` registers `l1`; a model whose layers sit in a
//! `Vec` implements `Registered` by hand, as the notebook's `add_module` does.

mod activation;
mod buffer;
mod container;
mod conv;
mod fusion;
pub(crate) use fusion::forward_fused;
mod hooks;
pub mod init;
mod linear;
mod mode;
mod norm;
mod param;
mod pool;
mod repr;
mod room;
mod shape;
mod state;
mod stats;
mod transfer;

pub use activation::{Dropout, GeneralRelu, ReLU};
pub use buffer::{Buffer, Rule as BufferRule};
pub use container::{ModuleList, Sequential};
pub use conv::{Conv2d, Conv2dConfig};
pub(crate) use hooks::slot_hooks;
pub use hooks::{forward_with_hooks, register_forward_hook, ForwardHook, HookHandle};
pub use linear::Linear;
pub use mode::TrainingMode;
pub use norm::{BatchNorm, BatchNormConfig, LayerNorm};
pub use param::{backward, is_grad_enabled, no_grad, Param};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use repr::repr;
pub use shape::{Flatten, View};
pub use state::{
    load_state, load_tensors, parse_state, read_state, save_state, save_state_with, save_tensors, saved_model,
    saved_notes, state_dict, MODEL_KEY,
};
pub use stats::{ActivationStats, HistogramConfig, LayerStats};
pub use transfer::{freeze, freeze_body, freeze_with, load_matching, lr_slice, unfreeze, Transfer};

use crate::error::Result;
use candle_core::Tensor;

/// A module's structure: its children and its own parameters, in registration order. Every
/// method has a default, so a parameter-free leaf (`ReLU`) writes an empty `impl`.
pub trait Registered {
    /// The direct sub-modules with their names (`l1`, `l2`; `0`, `1` in a [`Sequential`]).
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// The parameters this module holds itself, not those of its children (`weight`, `bias`).
    fn own_parameters(&self) -> Vec<(String, Param)> {
        Vec::new()
    }

    /// The buffers this module holds itself (`running_mean`, ...): saved and loaded with the
    /// parameters, never trained.
    fn own_buffers(&self) -> Vec<(String, Buffer)> {
        Vec::new()
    }

    /// The name printed by `Display` (`Linear`, `Sequential`): by default the type's name
    /// without its path or generics.
    fn type_name(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }

    /// What `Display` prints between the parentheses of a leaf (`in_features=784, ...`).
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// Switches this module and its children between training (`true`) and evaluation mode. Only
    /// modules that behave differently (dropout, batch norm) keep a flag; the default recurses.
    fn set_training(&self, training: bool) {
        for (_, child) in self.named_children() {
            child.set_training(training);
        }
    }

    /// Whether this module is in training mode, PyTorch's `self.training`: the flag of a module
    /// that keeps one (a container, batch norm, dropout, a derived module's
    /// `#[module(training)]` field), otherwise that of its first child that keeps one. `None` for
    /// a layer that behaves the same in both modes and keeps no flag (a `Linear`, a `ReLU`):
    /// the container that holds it says the mode.
    fn is_training(&self) -> Option<bool> {
        self.named_children().into_iter().find_map(|(_, child)| child.is_training())
    }
}

/// A computation with parameters: the notebook's `nn.Module`.
///
/// Every module is `'static` (`Any`): a model owns its layers, as PyTorch's does, and the library
/// finds the fused kernels behind its own layers through that, wherever they sit.
///
/// ```
/// use minibatch::{Linear, Module, ReLU, Rng, Sequential};
/// let mut rng = Rng::new(0);
/// let model = Sequential::new().add(Linear::new(784, 50, &mut rng)?).add(ReLU).add(Linear::new(50, 10, &mut rng)?);
/// let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// assert_eq!(model.num_parameters(), 784 * 50 + 50 + 50 * 10 + 10);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Module`: it has no `forward`",
    label = "not a `Module`",
    note = "a model of your own: `impl Module for {Self} {{ fn forward(&self, x: &Tensor) -> minibatch::Result<Tensor> {{ ... }} }}` beside `#[derive(Registered)]`",
    note = "a field of a `#[derive(Registered)]` struct that is no module takes `#[module(skip)]` (or `param`, `buffer`, `training`); layers in a `Vec` go in a `ModuleList`"
)]
pub trait Module: Registered + std::any::Any {
    /// The output for a batch of inputs.
    fn forward(&self, xs: &Tensor) -> Result<Tensor>;

    /// Every parameter, own ones first, then each child's in order: PyTorch's order, which
    /// optimizers and saved weights rely on.
    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut out = self.own_parameters();
        for (name, child) in self.named_children() {
            out.extend(child.named_parameters().into_iter().map(|(n, p)| (format!("{name}.{n}"), p)));
        }
        out
    }

    /// Every parameter, in the order of [`named_parameters`](Module::named_parameters). The layers
    /// are the structure; the parameters are what an optimizer updates, whatever the structure,
    /// which is why a training loop over parameters is shorter than one over layers.
    fn parameters(&self) -> Vec<Param> {
        self.named_parameters().into_iter().map(|(_, p)| p).collect()
    }

    /// Every buffer (batch norm's running statistics), named and ordered as
    /// [`named_parameters`](Module::named_parameters).
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        let mut out = self.own_buffers();
        for (name, child) in self.named_children() {
            out.extend(child.named_buffers().into_iter().map(|(n, b)| (format!("{name}.{n}"), b)));
        }
        out
    }

    /// The number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Param::elem_count).sum()
    }

    /// Training mode (the default state).
    fn train(&self) {
        self.set_training(true);
    }

    /// Evaluation mode.
    fn eval(&self) {
        self.set_training(false);
    }

    /// Adds the gradient of `loss` to every parameter's gradient: `loss.backward()`.
    fn backward(&self, loss: &Tensor) -> Result<()> {
        backward(loss, &self.parameters())
    }

    /// Forgets every parameter's gradient.
    fn zero_grad(&self) {
        self.parameters().iter().for_each(Param::zero_grad);
    }
}

impl std::fmt::Display for dyn Module + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&repr(self))
    }
}

/// A closure is a parameter-free module, as in candle: `Sequential::new().add(|x: &Tensor| ...)`.
/// It prints as `Lambda()`, like fastai's `Lambda`.
impl<F: Fn(&Tensor) -> Result<Tensor>> Registered for F {
    fn type_name(&self) -> String {
        "Lambda".to_string()
    }
}

impl<F: Fn(&Tensor) -> Result<Tensor> + 'static> Module for F {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self(xs)
    }
}

/// Forwards every method of [`Registered`] and [`Module`] through a box, so that a
/// `Box<dyn Module>` is a module wherever one is taken (`Learner::new(boxed, ..)`, `fit(.., &boxed, ..)`).
macro_rules! forward_module {
    ($($ptr:ty),*) => {$(
        impl Registered for $ptr {
            fn named_children(&self) -> Vec<(String, &dyn Module)> {
                (**self).named_children()
            }
            fn own_parameters(&self) -> Vec<(String, Param)> {
                (**self).own_parameters()
            }
            fn own_buffers(&self) -> Vec<(String, Buffer)> {
                (**self).own_buffers()
            }
            fn type_name(&self) -> String {
                (**self).type_name()
            }
            fn extra_repr(&self) -> String {
                (**self).extra_repr()
            }
            fn set_training(&self, training: bool) {
                (**self).set_training(training)
            }
        }

        impl Module for $ptr {
            fn forward(&self, xs: &Tensor) -> Result<Tensor> {
                (**self).forward(xs)
            }
            fn named_parameters(&self) -> Vec<(String, Param)> {
                (**self).named_parameters()
            }
            fn named_buffers(&self) -> Vec<(String, Buffer)> {
                (**self).named_buffers()
            }
        }
    )*};
}

forward_module!(Box<dyn Module>);
