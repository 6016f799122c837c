//! Activation functions as modules.

use super::{Module, Registered};
use crate::error::Result;
use candle_core::Tensor;

/// `max(x, 0)`, element-wise. No parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReLU;

impl Registered for ReLU {}

impl Module for ReLU {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(xs.relu()?)
    }
}

crate::impl_display_as_repr!(ReLU);
