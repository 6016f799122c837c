//! How the fast path stores activations, and the three products of a linear layer in the
//! layouts the matrix-multiply kernels run fastest on.

use super::gemm::{matmul, transpose, View, ViewMut};
use candle_core::Shape;
use std::cell::RefCell;
use std::mem::MaybeUninit;

type Uninit = MaybeUninit<f32>;

/// How a batch of activations is stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Order {
    /// `[batch, features]`, one example per row: what the loader makes and the loss reads.
    Batch,
    /// `[features, batch]`, one feature per row: what the multiplies between hidden layers
    /// run fastest on (see [`super::gemm::matmul`]).
    Feature,
}

impl Order {
    /// `(batch, features)` of a tensor of this order with dimensions `dims`.
    pub(crate) fn sizes(self, dims: &[usize]) -> Option<(usize, usize)> {
        match (self, dims) {
            (Order::Batch, &[b, f]) => Some((b, f)),
            (Order::Feature, &[f, b]) => Some((b, f)),
            _ => None,
        }
    }

    /// `(rows, columns)` of a `[batch, features]` matrix stored in this order.
    fn stored(self, batch: usize, features: usize) -> (usize, usize) {
        match self {
            Order::Batch => (batch, features),
            Order::Feature => (features, batch),
        }
    }

    /// The dimensions of a tensor holding a `[batch, features]` matrix in this order.
    pub(crate) fn shape(self, batch: usize, features: usize) -> Shape {
        Shape::from(self.stored(batch, features))
    }

    /// The `[batch, features]` matrix stored in `data` in this order.
    fn view(self, data: &[f32], batch: usize, features: usize) -> View<'_> {
        let (rs, cs) = self.strides(batch, features);
        View { data, rs, cs }
    }

    /// The strides `(rs, cs)` of a `[batch, features]` matrix stored in this order.
    fn strides(self, batch: usize, features: usize) -> (usize, usize) {
        match self {
            Order::Batch => (features, 1),
            Order::Feature => (1, batch),
        }
    }
}

thread_local! {
    /// A reused buffer for an operand stored in the other order.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Padding between the rows of a transposed copy: a power-of-two row length (512 or 1024
/// floats) puts the eight rows a transpose writes at once in the same cache sets.
pub(crate) const PAD: usize = 16;

/// Runs `f` on the `[batch, features]` matrix `data` (stored in `order`) as a view in `want`
/// order, transposing it into a reused buffer when the orders differ.
fn in_order<R>(data: &[f32], order: Order, want: Order, batch: usize, features: usize, f: impl FnOnce(View) -> R) -> R {
    // bf16 products pack their operands from either order: a transposed copy buys them nothing.
    if order == want || super::bf16_packing() {
        return f(order.view(data, batch, features));
    }
    let run = |buf: &mut Vec<f32>| {
        let (rows, cols) = order.stored(batch, features);
        let ld = rows + PAD;
        if buf.len() < cols * ld {
            buf.resize(cols * ld, 0.0); // Grown once, never shrunk: no zeroing on later steps.
        }
        let buf = &mut buf[..cols * ld];
        transpose(data, rows, cols, buf, ld);
        f(match want {
            Order::Feature => View { data: buf, rs: 1, cs: ld },
            Order::Batch => View { data: buf, rs: ld, cs: 1 },
        })
    };
    // Should a product ever run inside another's use of the buffer on this thread, it gets a
    // buffer of its own rather than a panic.
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
}

/// The order a layer with this input and output computes in: feature-major unless both ends are
/// batch-major. A layer from feature-major activations to batch-major logits computes
/// feature-major and transposes its small output (and the incoming gradient): its three
/// products then all run in fast layouts.
pub(crate) fn compute_order(input: Order, output: Order) -> Order {
    if input == Order::Batch && output == Order::Batch {
        Order::Batch
    } else {
        Order::Feature
    }
}

/// `y = x Wᵀ` (added to what `y` holds). With a feature-major output the input is read
/// feature-major too (the batch transposed first): the destination column-major and `lhs`
/// contiguous along `m` is the kernels' fast layout for `x Wᵀ`; row-major both ways is 3x slower.
pub(crate) fn forward_product(x: &[f32], input: Order, w: &[f32], y: &mut [f32], output: Order, dims: Dims) {
    let Dims { batch, inp, out } = dims;
    in_order(x, input, output, batch, inp, |x| {
        let (rs, cs) = output.strides(batch, out);
        matmul(batch, out, inp, ViewMut::new(y, rs, cs), true, x, View::transposed(w, inp))
    })
}

/// `dW = gᵀ x` into `dw` (`[out, in]`, written whole; see [`super::gemm::filled`]). The input
/// is read batch-major (transposed first if need be): with both operands contiguous along the
/// batch the product is 3x slower. (For the wide model's 10 logits too: transposing its 256x1024 input
/// beats multiplying in the slow layout.)
pub(crate) fn weight_product(g: &[f32], output: Order, x: &[f32], input: Order, dw: &mut [Uninit], dims: Dims) {
    let Dims { batch, inp, out } = dims;
    let g = output.view(g, batch, out);
    in_order(x, input, Order::Batch, batch, inp, |x| {
        matmul(out, inp, batch, ViewMut::uninit(dw, inp, 1), false, View { data: g.data, rs: g.cs, cs: g.rs }, x)
    })
}

/// `dx = g W` into `dx` (stored in the input's order, written whole; see [`super::gemm::filled`]).
pub(crate) fn input_product(g: &[f32], output: Order, w: &[f32], dx: &mut [Uninit], input: Order, dims: Dims) {
    let Dims { batch, inp, out } = dims;
    let g = output.view(g, batch, out);
    let (rs, cs) = input.strides(batch, inp);
    matmul(batch, inp, out, ViewMut::uninit(dx, rs, cs), false, g, View::rows(w, inp))
}

/// The sizes of one layer's products.
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub batch: usize,
    pub inp: usize,
    pub out: usize,
}

/// The `[batch, features]` matrix `data`, stored in `order`, stored in the other order.
pub(crate) fn reordered(data: &[f32], order: Order, batch: usize, features: usize) -> Vec<f32> {
    let (rows, cols) = order.stored(batch, features);
    let mut out = vec![0f32; rows * cols];
    transpose(data, rows, cols, &mut out, rows);
    out
}
