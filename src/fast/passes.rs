//! The element-wise passes the fused layers share (bias rows, ReLU and its gradient, sums of
//! rows), each split between the kernel team when large (see [`super::team::rows_mut`]; `least`
//! is the work in all below which a pass stays on the caller, 0 for the team's own rule): every
//! element or row is computed on its own, so the bits do not depend on the split.

use super::gemm::filled;
use super::team::rows_mut;

/// `b.len()` rows of `len` values, row `i` all `b[i]`: a feature-major (or channel-major) output
/// with its bias in it, for a product to add to.
pub(crate) fn bias_rows(b: &[f32], len: usize, least: usize) -> Vec<f32> {
    if len == 0 {
        return Vec::new();
    }
    filled(b.len() * len, |y| {
        rows_mut(least, y, len, len, |first, rows| {
            for (row, &b) in rows.chunks_exact_mut(len).zip(&b[first..]) {
                row.iter_mut().for_each(|y| _ = y.write(b));
            }
        })
    })
}

/// `rows` copies of `b`: a batch-major output with its bias in it.
pub(crate) fn bias_repeated(b: &[f32], rows: usize, least: usize) -> Vec<f32> {
    let len = b.len();
    if len == 0 {
        return Vec::new();
    }
    filled(rows * len, |y| {
        rows_mut(least, y, len, len, |_, part| {
            part.chunks_exact_mut(len).for_each(|row| row.iter_mut().zip(b).for_each(|(y, &b)| _ = y.write(b)));
        })
    })
}

/// ReLU in place; NaN stays NaN, as in PyTorch (not `max`, which makes it 0).
pub(crate) fn relu_in_place(y: &mut [f32], least: usize) {
    rows_mut(least, y, 1, 1, |_, y| y.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }));
}

/// ReLU of `x` into a new vector; NaN stays NaN.
pub(crate) fn relu(x: &[f32], least: usize) -> Vec<f32> {
    map(x, least, |v| if v < 0.0 { 0.0 } else { v })
}

/// `f` of every element of `x` into a new vector.
pub(crate) fn map(x: &[f32], least: usize, f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    filled(x.len(), |y| {
        rows_mut(least, y, 1, 1, |at, y| {
            y.iter_mut().zip(&x[at..]).for_each(|(y, &v)| _ = y.write(f(v)));
        })
    })
}

/// `f` of every pair of elements of `a` and `b` (of `a`'s length) into a new vector.
pub(crate) fn map2(a: &[f32], b: &[f32], least: usize, f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    filled(a.len(), |out| {
        rows_mut(least, out, 1, 1, |i, out| {
            let (a, b) = (&a[i..i + out.len()], &b[i..i + out.len()]);
            out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&a, &b))| _ = o.write(f(a, b)));
        })
    })
}

/// PyTorch's `threshold_backward`: `g` where `at` (the ReLU's input, or its output) is above 0,
/// else 0. `at` has `g`'s length.
pub(crate) fn relu_grad(g: &[f32], at: &[f32], least: usize) -> Vec<f32> {
    map2(g, at, least, |g, a| if a <= 0.0 { 0.0 } else { g })
}

/// [`relu_grad`] into `out` (a reused buffer of `g`'s length).
pub(crate) fn relu_grad_into(out: &mut [f32], g: &[f32], at: &[f32], least: usize) {
    rows_mut(least, out, 1, 1, |i, out| {
        let (g, at) = (&g[i..i + out.len()], &at[i..i + out.len()]);
        for ((o, &g), &a) in out.iter_mut().zip(g).zip(at) {
            *o = if a <= 0.0 { 0.0 } else { g };
        }
    });
}

/// The sum of each of the `rows` rows of `len` values of `g`, in 16 lanes each
/// ([`sum_lanes`]): the bias gradient of a feature- or channel-major output.
pub(crate) fn row_sums(g: &[f32], rows: usize, len: usize, least: usize) -> Vec<f32> {
    filled(rows, |sums| {
        rows_mut(least, sums, 1, len, |first, sums| {
            for (i, s) in sums.iter_mut().enumerate() {
                s.write(sum_lanes(&g[(first + i) * len..][..len]));
            }
        })
    })
}

/// The sum of `v` in 16 interleaved partial sums, added together at the end: one running sum
/// waits out the latency of every addition, while 16 fill the vector units. A fixed order, so every run and
/// thread count gives the same bits.
pub(crate) fn sum_lanes(v: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, x)| *a += x);
    }
    acc.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of every sign, NaN and infinities among them; 100,003 of them, enough to be split.
    fn values() -> Vec<f32> {
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0];
        (0..100_003).map(|i| if i % 997 == 0 { specials[i / 997 % 5] } else { (i as f32 * 0.37).sin() * 3.0 }).collect()
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn passes_give_the_bits_of_the_plain_loops() {
        let (x, g) = (values(), values().iter().rev().copied().collect::<Vec<f32>>());
        let plain_relu: Vec<f32> = x.iter().map(|&v| if v < 0.0 { 0.0 } else { v }).collect();
        assert!(same_bits(&relu(&x, 0), &plain_relu));
        assert!(same_bits(&relu(&x, usize::MAX), &plain_relu));
        let mut y = x.clone();
        relu_in_place(&mut y, 0);
        assert!(same_bits(&y, &plain_relu));
        let plain_grad: Vec<f32> = g.iter().zip(&x).map(|(&g, &a)| if a <= 0.0 { 0.0 } else { g }).collect();
        assert!(same_bits(&relu_grad(&g, &x, 0), &plain_grad));
        let mut out = vec![7.0; g.len()];
        relu_grad_into(&mut out, &g, &x, 0);
        assert!(same_bits(&out, &plain_grad));
        let (rows, len) = (101, 987);
        let sums = row_sums(&x[..rows * len], rows, len, 0);
        let plain: Vec<f32> = x[..rows * len].chunks_exact(len).map(super::sum_lanes).collect();
        assert!(same_bits(&sums, &plain));
        let b: Vec<f32> = (0..rows).map(|i| i as f32 - 50.5).collect();
        let plain: Vec<f32> = b.iter().flat_map(|&v| std::iter::repeat_n(v, len)).collect();
        assert!(same_bits(&bias_rows(&b, len, 0), &plain));
        let plain: Vec<f32> = (0..len).flat_map(|_| b.iter().copied()).collect();
        assert!(same_bits(&bias_repeated(&b, len, 0), &plain));
        assert!(
            bias_rows(&b, 0, 0).is_empty() && bias_repeated(&[], 5, 0).is_empty() && row_sums(&[], 0, 4, 0).is_empty()
        );
    }
}
