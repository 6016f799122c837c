//! A multi-layer perceptron that runs on the fused kernels.

use super::layout::Order;
use super::linear::linear_in_order;
use crate::error::{Error, Result};
use crate::module::{Linear, Module, ReLU, Registered};
use crate::rng::Rng;
use candle_core::Tensor;

static RELU: ReLU = ReLU;

/// `Linear, ReLU, Linear, ..., Linear` on the fused [`linear`](crate::fast::linear()) kernel:
/// the same layers, names (`0.weight`, `0.bias`, `2.weight`, ...) and initialisation as
/// [`crate::mlp`], so weights move freely between the two and to PyTorch's `nn.Sequential`; only
/// the speed differs (and the float rounding: the hidden activations are stored feature-major).
///
/// ```
/// use minibatch::{fast::Mlp, mlp, Module};
/// let (fast, plain) = (Mlp::new(&[784, 50, 10], 0)?, mlp(&[784, 50, 10], 0)?);
/// assert_eq!(fast.to_string().replace("Mlp(", "Sequential("), plain.to_string());
/// let names = |m: &dyn Module| m.named_parameters().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
/// assert_eq!(names(&fast), names(&plain));
/// # Ok::<(), minibatch::Error>(())
/// ```
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// Layers of the given sizes (at least two, none zero), initialised from `seed` as
    /// [`crate::mlp`] initialises them.
    pub fn new(sizes: &[usize], seed: u64) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::invalid("layer sizes", "at least two sizes, none zero", format!("{sizes:?}")));
        }
        let mut rng = Rng::new(seed);
        let layers = sizes.windows(2).map(|w| Linear::new(w[0], w[1], &mut rng)).collect::<Result<_>>()?;
        Ok(Mlp { layers })
    }

    /// The linear layers.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }
}

/// The `(input, output)` orders of layer `i` of `layers`: the hidden activations are stored
/// feature-major, the order in which every product can run in a fast layout (see
/// [`super::layout`]); the batch comes in and the logits go out batch-major.
pub(crate) fn orders(i: usize, layers: usize) -> (Order, Order) {
    let input = if i == 0 { Order::Batch } else { Order::Feature };
    let output = if i + 1 == layers { Order::Batch } else { Order::Feature };
    (input, output)
}

impl Registered for Mlp {
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        let mut v: Vec<(String, &dyn Module)> = Vec::with_capacity(2 * self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                v.push(((2 * i - 1).to_string(), &RELU));
            }
            v.push(((2 * i).to_string(), l));
        }
        v
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut x = xs.clone();
        for (i, l) in self.layers.iter().enumerate() {
            let b = l.bias().ok_or_else(|| Error::Unsupported("fast::Mlp needs biases".into()))?;
            x = linear_in_order(&x, l.weight(), b, i + 1 < self.layers.len(), orders(i, self.layers.len()))?;
        }
        Ok(x)
    }
}

crate::impl_display_as_repr!(Mlp);
