//! `x Wᵀ + b`, optionally followed by ReLU, as one custom op with its own backward.

use super::gemm::filled;
use super::layout::{compute_order, forward_product, input_product, reordered, weight_product, Dims, Order};
use super::passes::{bias_repeated, bias_rows, relu_grad, relu_in_place, row_sums};
use super::storage::{cpu_f32, with_f32};
use super::stored::{batch_major_copy, feature_major};
use crate::error::{Error, Result};
use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};

struct LinearOp {
    relu: bool,
    /// How the input and the output are stored.
    input: Order,
    output: Order,
    /// Whether backward must compute the input's gradient (it need not for a batch of data).
    input_grad: bool,
    /// Where the weight and bias gradients go, when the layer's parameters are known: backward
    /// adds them there directly, rather than handing them to candle, which would add each to a
    /// fresh tensor of zeros first (two more passes over every weight gradient, each step).
    sink: Option<GradSink>,
}

impl LinearOp {
    /// The layer's sizes from the input's and the weight's dimensions, checked against each other.
    fn dims(&self, x: &[usize], w: &[usize]) -> candle_core::Result<Dims> {
        let (Some((batch, inp)), &[out, inp_w]) = (self.input.sizes(x), w) else {
            bail!("linear: expected a [batch, in] input and an [out, in] weight, found {x:?} and {w:?}")
        };
        if inp != inp_w {
            bail!("linear: input of {inp} features, weight {w:?}");
        }
        Ok(Dims { batch, inp, out })
    }

    /// The gradient of the output before the ReLU (zero where the ReLU cut), in the output's order.
    fn output_grad(&self, grad: &Tensor, res: &Tensor) -> candle_core::Result<Vec<f32>> {
        let grad = grad.contiguous()?;
        with_f32(&grad, "gradient", |g| {
            if !self.relu {
                return Ok(g.to_vec());
            }
            with_f32(res, "output", |r| Ok(relu_grad(g, r, 0)))
        })
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        if self.relu {
            "linear-relu"
        } else {
            "linear"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w, b) = (cpu_f32(s1, l1, "input")?, cpu_f32(s2, l2, "weight")?, cpu_f32(s3, l3, "bias")?);
        let dims = self.dims(l1.dims(), l2.dims())?;
        if b.len() != dims.out {
            bail!("linear: {} outputs, bias of {}", dims.out, b.len());
        }
        let order = compute_order(self.input, self.output);
        let mut y = with_bias(b, order, dims);
        forward_product(x, self.input, w, &mut y, order, dims);
        if self.relu {
            relu_in_place(&mut y, 0);
        }
        let y = if order == self.output { y } else { reordered(&y, order, dims.batch, dims.out) };
        Ok((CpuStorage::F32(y), self.output.shape(dims.batch, dims.out)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = self.dims(x.dims(), w.dims())?;
        let Dims { batch, inp, out } = dims;
        let order = compute_order(self.input, self.output);
        let g = self.output_grad(grad, res)?;
        let g = if order == self.output { g } else { reordered(&g, self.output, batch, out) };
        let dw =
            with_f32(x, "input", |x| Ok(filled(out * inp, |dw| weight_product(&g, order, x, self.input, dw, dims))))?;
        let db = bias_grad(&g, order, dims);
        let dx = if self.input_grad {
            let dx = with_f32(w, "weight", |w| {
                Ok(filled(batch * inp, |dx| input_product(&g, order, w, dx, self.input, dims)))
            })?;
            Some(Tensor::from_vec(dx, self.input.shape(batch, inp), &Device::Cpu)?)
        } else {
            None
        };
        let (dw, db) = (Tensor::from_vec(dw, (out, inp), &Device::Cpu)?, Tensor::from_vec(db, out, &Device::Cpu)?);
        if let Some(sink) = &self.sink {
            sink(dw, db)?;
            return Ok((dx, None, None));
        }
        Ok((dx, Some(dw), Some(db)))
    }
}

/// The output before the product: the bias in every example's place, in the compute order.
fn with_bias(b: &[f32], order: Order, dims: Dims) -> Vec<f32> {
    match order {
        Order::Batch => bias_repeated(b, dims.batch, 0),
        Order::Feature => bias_rows(b, dims.batch, 0),
    }
}

/// The bias gradient: `g` summed over the batch.
fn bias_grad(g: &[f32], order: Order, dims: Dims) -> Vec<f32> {
    let Dims { batch, out, .. } = dims;
    match order {
        Order::Batch if out == 0 => Vec::new(),
        Order::Batch => {
            let mut db = vec![0f32; out];
            for row in g.chunks_exact(out) {
                db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
            }
            db
        }
        // One sum per output, each in its fixed order: split between threads, the same bits.
        Order::Feature => row_sums(g, out, batch, 0),
    }
}

/// `x Wᵀ + b` (then ReLU if `relu`) for `x` of shape `[batch, in]`, `w` of `[out, in]` and `b` of
/// `[out]`, all `f32` on the CPU: one matrix multiply with the bias added inside it and the ReLU
/// on its output, and a backward that computes the input's gradient only when the input is
/// itself computed from parameters (never for a batch of data).
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[[1f32, 2.]], &Device::Cpu)?;
/// let w = Tensor::new(&[[1f32, 0.], [0., -1.]], &Device::Cpu)?;
/// let b = Tensor::new(&[0.5f32, 0.5], &Device::Cpu)?;
/// assert_eq!(minibatch::fast::linear(&x, &w, &b, false)?.to_vec2::<f32>()?, vec![vec![1.5, -1.5]]);
/// assert_eq!(minibatch::fast::linear(&x, &w, &b, true)?.to_vec2::<f32>()?, vec![vec![1.5, 0.0]]);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    apply(x, w, b, relu, (Order::Batch, Order::Batch), None)
}

/// Output sizes from which a layer computes its output feature-major: hidden activations, whose
/// next layer's products all run in fast layouts from that order. Narrower outputs (the 10
/// logits of MNIST) are computed batch-major, the order the loss reads.
const FEATURE_MAJOR_FROM: usize = 16;

/// The order a layer of `out` outputs computes them in.
fn output_order(out: usize) -> Order {
    if out >= FEATURE_MAJOR_FROM {
        Order::Feature
    } else {
        Order::Batch
    }
}

/// The `(input, output)` orders of layer `l` of a chain of layers of these sizes fed a batch as
/// the loader makes it: what [`super::matmul_floor`] multiplies in.
pub(crate) fn orders(sizes: &[usize], l: usize) -> (Order, Order) {
    let input = if l == 0 { Order::Batch } else { output_order(sizes[l]) };
    (input, output_order(sizes[l + 1]))
}

/// Where a layer's backward puts the weight and bias gradients (the layer's parameters add them
/// to what they hold). The kernels know nothing of the module that owns the parameters.
pub(crate) type GradSink = std::sync::Arc<dyn Fn(Tensor, Tensor) -> candle_core::Result<()> + Send + Sync>;

/// The layer `x Wᵀ + b` (then ReLU if `relu`), as [`Linear`](crate::Linear) runs it: from the
/// feature-major original of `x` when `x` is a wide layer's output (see [`super::stored`]), to a
/// feature-major output when the layer is wide (returned as a batch-major copy, or a transposed
/// view when `chained`: see [`super::stored::batch_major_copy`]); the backward hands the weight
/// and bias gradients to `sink` when there is one (the parameters, skipping candle's extra copy),
/// to candle otherwise.
pub(crate) fn layer(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    sink: Option<GradSink>,
    relu: bool,
    chained: bool,
) -> Result<Tensor> {
    let (x, input) = match feature_major(x) {
        Some(stored) => (stored, Order::Feature),
        None => (x.clone(), Order::Batch),
    };
    let output = output_order(w.dims()[0]);
    let y = apply(&x, w, b, relu, (input, output), sink)?;
    Ok(match output {
        Order::Feature => batch_major_copy(&y, chained)?,
        Order::Batch => y,
    })
}

fn apply(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    relu: bool,
    (input, output): (Order, Order),
    sink: Option<GradSink>,
) -> Result<Tensor> {
    if x.rank() != 2 {
        return Err(Error::invalid("fast linear input", "[batch, features]", format!("{:?}", x.dims())));
    }
    let x = x.contiguous()?;
    let op = LinearOp { relu, input, output, input_grad: x.track_op(), sink };
    Ok(x.apply_op3_arc(&w.contiguous()?, &b.contiguous()?, std::sync::Arc::new(Box::new(op)))?)
}
