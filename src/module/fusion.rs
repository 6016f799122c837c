//! How a [`Sequential`](super::Sequential) runs its layers on the fused kernels, kept out of the
//! public [`Module`] trait: a user's module shows `forward` and its parameters, nothing more.
//!
//! A layer that can fold a following ReLU into its own pass, and hand its output on in the
//! storage the next layer reads fastest, implements [`Fused`]; [`fused`] finds that side of a
//! module through `Any` (every module is `Any`), so a layer reached through a `Box<dyn Module>`
//! fuses as one added directly.

use super::{BatchNorm, Conv2d, Linear, Module, ReLU, Sequential};
use crate::error::Result;
use candle_core::Tensor;
use std::any::Any;

/// A layer with a fused pass.
pub(crate) trait Fused {
    /// The output, then ReLU if `relu`, in one pass. When `chained` (the output goes straight to
    /// the next layer of a chain), the same values may come in whatever storage that layer reads
    /// fastest (a wide [`Linear`] hands on a transposed view of its feature-major output).
    fn forward_fused(&self, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor>;
}

/// The module itself, looking through boxes.
pub(crate) fn concrete(module: &dyn Module) -> &dyn Any {
    let any: &dyn Any = module;
    match any.downcast_ref::<Box<dyn Module>>() {
        Some(boxed) => concrete(boxed.as_ref()),
        None => any,
    }
}

/// The fused side of `module`, if it has one.
pub(crate) fn fused(module: &dyn Module) -> Option<&dyn Fused> {
    let any = concrete(module);
    if let Some(l) = any.downcast_ref::<Linear>() {
        return Some(l);
    }
    if let Some(c) = any.downcast_ref::<Conv2d>() {
        return Some(c);
    }
    if let Some(b) = any.downcast_ref::<BatchNorm>() {
        return Some(b);
    }
    any.downcast_ref::<Sequential>().map(|s| s as &dyn Fused)
}

/// Whether `module` is a [`ReLU`], which a chain folds into the layer before it.
pub(crate) fn is_relu(module: &dyn Module) -> bool {
    concrete(module).is::<ReLU>()
}

/// `module`'s fused pass, or its `forward` then a ReLU if `relu` for a module without one.
pub(crate) fn forward_fused(module: &dyn Module, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor> {
    match fused(module) {
        Some(f) => f.forward_fused(xs, relu, chained),
        None => {
            let y = module.forward(xs)?;
            Ok(if relu { crate::fast::relu(&y)? } else { y })
        }
    }
}
