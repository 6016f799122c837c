//! Layers that only change a tensor's shape: the lesson's `view(-1, 1, 28, 28)` and `Flatten`.

use super::{Module, Registered};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// Flattens every dimension from the second on (PyTorch's `nn.Flatten()`): `[n, c, h, w]` becomes
/// `[n, c * h * w]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flatten;

impl Registered for Flatten {
    fn extra_repr(&self) -> String {
        "start_dim=1, end_dim=-1".into()
    }
}

impl Module for Flatten {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(xs.flatten_from(1)?)
    }
}

/// Reshapes to `dims`, one of which may be `-1` (inferred from the others), as PyTorch's
/// `x.view(-1, 1, 28, 28)` does: the lesson's first layer of its CNN, turning a batch of
/// 784-pixel rows into `[n, 1, 28, 28]` images.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use minibatch::{Module, View};
/// let x = Tensor::zeros((5, 784), candle_core::DType::F32, &Device::Cpu)?;
/// assert_eq!(View::new(&[-1, 1, 28, 28]).forward(&x)?.dims(), &[5, 1, 28, 28]);
/// assert!(View::new(&[-1, 3, 28, 28]).forward(&x).is_err());
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    dims: Vec<i64>,
}

impl View {
    /// A reshape to `dims` (at most one `-1`).
    pub fn new(dims: &[i64]) -> Self {
        View { dims: dims.to_vec() }
    }

    /// The shape for an input of `count` elements.
    fn shape(&self, count: usize) -> Result<Vec<usize>> {
        let bad = || {
            let dims: Vec<String> = self.dims.iter().map(i64::to_string).collect();
            let rule =
                format!("an input that fills view({}) (at most one -1, no other negative size)", dims.join(", "));
            Error::invalid("view input", rule, format!("{count} elements"))
        };
        let known: i64 = self.dims.iter().filter(|&&d| d != -1).product();
        let free = self.dims.iter().filter(|&&d| d == -1).count();
        if free > 1 || self.dims.iter().any(|&d| d < -1) || known <= 0 && count > 0 {
            return Err(bad());
        }
        let rest = if known > 0 && count as i64 % known == 0 { count as i64 / known } else { return Err(bad()) };
        if free == 0 && rest != 1 {
            return Err(bad());
        }
        Ok(self.dims.iter().map(|&d| if d == -1 { rest as usize } else { d as usize }).collect())
    }
}

impl Registered for View {
    fn extra_repr(&self) -> String {
        self.dims.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    }
}

impl Module for View {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(xs.reshape(self.shape(xs.elem_count())?)?)
    }
}

super::repr::impl_display_as_repr!(Flatten, View);
