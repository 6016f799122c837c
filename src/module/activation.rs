//! Activation functions as modules.

use super::{Module, Registered};
use crate::error::Result;
use candle_core::Tensor;

/// `max(x, 0)`, element-wise, keeping NaN as NaN as PyTorch does (so a poisoned input yields a
/// NaN loss that the loop reports, not a finite one). No parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReLU;

impl Registered for ReLU {}

impl Module for ReLU {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if crate::fast::fused() {
            Ok(crate::fast::relu(xs)?)
        } else {
            Ok(xs.maximum(0.0)?)
        }
    }

    fn is_relu(&self) -> bool {
        true
    }
}

crate::impl_display_as_repr!(ReLU);
