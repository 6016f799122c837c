//! The matrix-multiply floor of an MLP's epoch: what `minibatch bench` sets a training loop's
//! time against.

use super::dense::orders;
use super::layout::{compute_order, forward_product, input_product, weight_product, Dims, Order};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// The time of the matrix multiplies alone of one training epoch of an MLP with these layer
/// sizes: per batch, each layer's forward product and its weight gradient, and the input
/// gradient of every layer but the first, each in the layouts the layers multiply in.
/// Buffers are allocated once: this is the floor that no training loop on this machine can beat
/// with these kernels.
pub fn matmul_floor(sizes: &[usize], n: usize, bs: usize) -> Duration {
    let bs = bs.max(1);
    let acts: Vec<Vec<f32>> = sizes.iter().map(|&s| vec![0.5f32; bs * s]).collect();
    let mut outs: Vec<Vec<f32>> = sizes.iter().map(|&s| vec![0f32; bs * s]).collect();
    let weights: Vec<Vec<f32>> = sizes.windows(2).map(|w| vec![0.01f32; w[0] * w[1]]).collect();
    let written = |len: usize| vec![MaybeUninit::new(0f32); len];
    let mut wgrads: Vec<_> = sizes.windows(2).map(|w| written(w[0] * w[1])).collect();
    let mut dxs: Vec<_> = sizes.iter().map(|&s| written(bs * s)).collect();
    let start = Instant::now();
    for _ in 0..n / bs {
        // Each operand already in the order the product reads it: the transposes the fast path
        // makes first are not multiplies.
        for (l, w) in sizes.windows(2).enumerate() {
            let dims = Dims { batch: bs, inp: w[0], out: w[1] };
            let order = compute_order(orders(sizes, l).0, orders(sizes, l).1);
            forward_product(&acts[l], order, &weights[l], &mut outs[l + 1], order, dims);
        }
        for (l, w) in sizes.windows(2).enumerate().rev() {
            let dims = Dims { batch: bs, inp: w[0], out: w[1] };
            let (input, output) = orders(sizes, l);
            let (order, g) = (compute_order(input, output), &acts[l + 1]);
            weight_product(g, order, &acts[l], Order::Batch, &mut wgrads[l], dims);
            if l > 0 {
                input_product(g, order, &weights[l], &mut dxs[l], input, dims);
            }
        }
    }
    std::hint::black_box((&outs, &wgrads, &dxs));
    start.elapsed()
}
