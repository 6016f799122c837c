//! Containers: `Sequential` runs its layers in turn; `ModuleList` only holds them.

use super::fusion::{self, Fused};
use super::{Module, Registered, TrainingMode};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// Layers applied one after the other, named `0`, `1`, ...: PyTorch's `nn.Sequential`. It saves
/// writing a model struct and its `forward` when the model is a chain, which most are.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
    mode: TrainingMode,
}

impl Sequential {
    /// An empty chain (its forward returns the input).
    pub fn new() -> Self {
        Sequential::default()
    }

    /// The chain with `layer` appended (candle-nn's spelling: `seq().add(..).add(..)`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer.
    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there is no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl From<Vec<Box<dyn Module>>> for Sequential {
    fn from(layers: Vec<Box<dyn Module>>) -> Self {
        Sequential { layers, mode: TrainingMode::default() }
    }
}

impl Registered for Sequential {
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.layers.iter().enumerate().map(|(i, l)| (i.to_string(), l.as_ref())).collect()
    }
    fn set_training(&self, training: bool) {
        self.mode.set(training);
        self.layers.iter().for_each(|l| l.set_training(training));
    }
    fn is_training(&self) -> Option<bool> {
        Some(self.mode.is_training())
    }
}

impl Sequential {
    /// The layers in turn, each followed by a ReLU folded into its pass where it has one; the last
    /// one chained when `last_chained` (see [`Fused`]).
    fn run(&self, xs: &Tensor, last_relu: bool, last_chained: bool) -> Result<Tensor> {
        let mut x = xs.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let slot = &self.layers[i];
            let layer = slot.as_ref();
            // A hooked layer runs alone, so that its hooks see its own output, and a hooked ReLU
            // is not folded into the layer before it.
            let hooks = super::slot_hooks(slot);
            let hooked = !hooks.is_empty();
            let fold = crate::fast::fused()
                && !hooked
                && self
                    .layers
                    .get(i + 1)
                    .is_some_and(|next| fusion::is_relu(next.as_ref()) && super::slot_hooks(next).is_empty());
            let next = i + 1 + fold as usize;
            let last = next >= self.layers.len();
            let relu = fold || (last && last_relu);
            let y = if hooked {
                layer.forward(&x)?
            } else {
                fusion::forward_fused(layer, &x, relu, !last || last_chained)?
            };
            hooks.iter().for_each(|hook| hook(layer, &x, &y));
            // A hooked last layer ran without the ReLU asked of the chain.
            x = if hooked && last && last_relu { crate::fast::relu(&y)? } else { y };
            i = next;
        }
        if self.layers.is_empty() && last_relu {
            x = crate::fast::relu(&x)?;
        }
        Ok(x)
    }
}

impl Module for Sequential {
    /// Each layer in turn; one of the library's layers followed by a [`ReLU`](super::ReLU) runs
    /// as one, so `Linear, ReLU` is one pass of the fused kernel, and every layer but the last
    /// hands its output on in the storage the next reads fastest.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.run(xs, false, false)
    }
}

impl Fused for Sequential {
    /// The chain with its last layer fused; inside another chain (the lesson's blocks), its last
    /// layer hands its output on as the outer chain's layers do.
    fn forward_fused(&self, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor> {
        self.run(xs, relu, chained)
    }
}

/// A list of modules, registered as children `0`, `1`, ...: PyTorch's `nn.ModuleList`. What it
/// adds to a plain `Vec` is registration: its layers' parameters are the model's parameters, and
/// they print. Like PyTorch's, it has no forward of its own: the model that holds it decides how
/// to call the layers.
#[derive(Default)]
pub struct ModuleList {
    modules: Vec<Box<dyn Module>>,
    mode: TrainingMode,
}

impl ModuleList {
    /// A list of the given modules.
    pub fn new(modules: Vec<Box<dyn Module>>) -> Self {
        ModuleList { modules, mode: TrainingMode::default() }
    }

    /// Appends a module.
    pub fn push(&mut self, module: impl Module + 'static) {
        self.modules.push(Box::new(module));
    }

    /// Iterates the modules.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Module> {
        self.modules.iter().map(|m| m.as_ref())
    }

    /// The number of modules.
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}

impl Registered for ModuleList {
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.iter().enumerate().map(|(i, l)| (i.to_string(), l)).collect()
    }
    fn set_training(&self, training: bool) {
        self.mode.set(training);
        self.modules.iter().for_each(|m| m.set_training(training));
    }
    fn is_training(&self) -> Option<bool> {
        Some(self.mode.is_training())
    }
}

impl Module for ModuleList {
    /// Fails: a `ModuleList` holds modules; the model that owns it calls them.
    fn forward(&self, _xs: &Tensor) -> Result<Tensor> {
        Err(Error::Unsupported("ModuleList has no forward: call its modules from your model's forward".into()))
    }
}

super::repr::impl_display_as_repr!(Sequential, ModuleList);
