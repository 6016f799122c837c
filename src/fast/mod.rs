//! The fast path: fused CPU kernels as candle custom ops, and the model that uses them.
//!
//! candle runs the notebook's model as a dozen small operations per layer, each allocating its
//! output, and its backward also computes the gradient of the input batch, which nothing needs (a
//! matrix multiply as large as the layer's own). These kernels do each layer in one pass:
//! [`linear()`] is `x Wᵀ + b` (and ReLU) in one matrix multiply with the bias and activation
//! folded in, whose backward skips the input's gradient when the input needs none; and
//! [`cross_entropy()`] is `log_softmax` and `nll` in one pass over the logits. [`Mlp`] chains the
//! layers with its hidden activations stored feature-major (`[features, batch]`), the order in
//! which the AVX-512 multiplies of every layer run in a fast layout (up to 3x faster than `x Wᵀ`
//! on row-major data). They compute the same maths as the plain modules, to float rounding: the
//! tests hold both to PyTorch's numbers, and a deep model's gradients to the plain path's.

mod cross_entropy;
mod gemm;
mod layout;
mod linear;
mod mlp;
mod relu;
mod storage;

pub use cross_entropy::cross_entropy;
pub use gemm::matmul_floor;
pub use linear::{linear, linear_params};
pub use mlp::Mlp;
pub use relu::relu;
pub(crate) use storage::sgd_in_place;
