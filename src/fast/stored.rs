//! Activations kept feature-major between the layers, while every tensor a user sees is an
//! ordinary batch-major `[batch, features]` one.
//!
//! A wide layer computes its output feature-major (`[features, batch]`), the order in which the
//! next layer's products run fastest, and returns a batch-major copy made by [`AsBatchMajor`]
//! (one AVX transpose). It also records which feature-major tensor that copy came from: when the
//! copy is handed to another of the library's layers (a `Linear`, a `ReLU`), that layer reads the
//! feature-major original instead, and the gradient flows along the original, so the copy costs
//! nothing in the backward. Code that reads the copy (candle's own `relu`, a user's op) sees a
//! plain contiguous tensor, and its gradient reaches the original through the copy's backward,
//! one transpose.

use super::gemm::transpose;
use super::layout::PAD;
use super::storage::{cpu_f32, with_f32};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, TensorId};
use std::cell::RefCell;

/// How many recent copies are remembered: a layer looks its input up right after the layer
/// before made it, so a few suffice. An original holds its step's graph (the batch, the
/// activations before it): a short list, emptied as the layers take their inputs, keeps no
/// earlier step's memory alive.
const REMEMBERED: usize = 4;

/// Which order an original is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `[features, batch]`, of a `[batch, features]` copy.
    Feature,
    /// `[channels, batch, height, width]`, of a `[batch, channels, height, width]` copy.
    Channel,
}

thread_local! {
    static ORIGINALS: RefCell<Vec<(TensorId, Tensor, Kind)>> = const { RefCell::new(Vec::new()) };
    /// The padded buffer of [`transposed`], grown once.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The feature-major `[features, batch]` original of a batch-major copy made by
/// [`batch_major_copy`], if `x` is one, forgotten as it is handed out: the next layer takes it
/// once (a second reader of the same copy reads the copy itself, as correct and a little slower).
pub(crate) fn feature_major(x: &Tensor) -> Option<Tensor> {
    take(x, Kind::Feature)
}

/// The channel-major `[channels, batch, height, width]` original of an NCHW copy made by
/// [`channel_major_copy`], if `x` is one (taken once, as [`feature_major`]).
pub(crate) fn channel_major(x: &Tensor) -> Option<Tensor> {
    take(x, Kind::Channel)
}

fn take(x: &Tensor, kind: Kind) -> Option<Tensor> {
    let id = x.id();
    ORIGINALS.with_borrow_mut(|v| v.iter().position(|(i, _, k)| *i == id && *k == kind).map(|at| v.remove(at).1))
}

fn remember(copy: &Tensor, stored: &Tensor, kind: Kind) {
    ORIGINALS.with_borrow_mut(|v| {
        if v.len() == REMEMBERED {
            v.remove(0);
        }
        v.push((copy.id(), stored.clone(), kind));
    });
}

/// The `[batch, channels, height, width]` tensor of the channel-major `stored`
/// (`[channels, batch, height, width]`), remembered as coming from it, so that the next of the
/// library's layers (a `Conv2d`, a `BatchNorm`, a `ReLU`) reads `stored` itself: a copy, or for
/// a layer whose output goes straight to the next module of a `Sequential` (`chained`), a
/// permuted view (no copy at all; candle's own operations read it through its strides).
pub(crate) fn channel_major_copy(stored: &Tensor, chained: bool) -> candle_core::Result<Tensor> {
    let copy = if chained { stored.permute((1, 0, 2, 3))? } else { stored.permute((1, 0, 2, 3))?.contiguous()? };
    remember(&copy, stored, Kind::Channel);
    Ok(copy)
}

/// The batch-major `[batch, features]` copy of the feature-major `stored` (`[features, batch]`),
/// remembered as coming from it. For a layer whose output goes straight to the next module of a
/// `Sequential` (`chained`), a transposed view instead: no copy, and the next layer reads the
/// original anyway.
pub(crate) fn batch_major_copy(stored: &Tensor, chained: bool) -> candle_core::Result<Tensor> {
    let copy = if chained { stored.t()? } else { stored.apply_op1(AsBatchMajor)? };
    remember(&copy, stored, Kind::Feature);
    Ok(copy)
}

/// The transpose of a contiguous `f32` matrix, with the transpose of the gradient as its backward.
struct AsBatchMajor;

/// `x` (`rows x cols`) transposed. Written through a reused buffer whose rows are padded and
/// then copied out: transposing straight into rows of a power-of-two length (256 or 1024
/// floats) is several times slower (the eight rows written at once share cache sets).
fn transposed(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let ld = rows + PAD;
    SCRATCH.with_borrow_mut(|buf| {
        if buf.len() < cols * ld {
            buf.resize(cols * ld, 0.0);
        }
        transpose(x, rows, cols, &mut buf[..cols * ld], ld);
        let mut out = Vec::with_capacity(rows * cols);
        (0..cols).for_each(|c| out.extend_from_slice(&buf[c * ld..c * ld + rows]));
        out
    })
}

impl CustomOp1 for AsBatchMajor {
    fn name(&self) -> &'static str {
        "as-batch-major"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, cols) = l.shape().dims2()?;
        let x = cpu_f32(s, l, "activations")?;
        Ok((CpuStorage::F32(transposed(x, rows, cols)), Shape::from((cols, rows))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (rows, cols) = grad.dims2()?;
        let grad = grad.contiguous()?;
        let g = with_f32(&grad, "gradient", |g| Ok(transposed(g, rows, cols)))?;
        Ok(Some(Tensor::from_vec(g, (cols, rows), grad.device())?))
    }
}
