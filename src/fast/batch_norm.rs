//! Batch normalisation (then ReLU, optionally) as one custom op over `[n, c, ...]` data (or a
//! convolution's channel-major `[c, n, ...]` output): candle runs it as a dozen reductions and
//! broadcasts, each a pass over the activations with a fresh buffer. Rows of one channel (of one
//! example, or of the whole batch when channel-major) are summed in 16 interleaved `f32` lanes
//! and the rows' sums added up in `f64`, in a fixed order.

use super::gemm::filled;
use super::storage::{cpu_f32, with_f32};
use super::team::rows_mut;
use crate::error::Result;
use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};

/// `(sum of f(v))` over a row in 16 lanes, as `f64`.
#[inline]
fn lanes(row: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0f32; 16];
    let chunks = row.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, &v)| *a += f(v));
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + rest as f64
}

/// How an input is cut into rows of one channel: `[n, c, ...]` into `n * c` rows of `m` (row `i`
/// of channel `i % c`), or channel-major `[c, n, ...]` into `c` rows of `n * m` (row `i` of
/// channel `i`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rows {
    pub len: usize,
    pub channels: usize,
    channel_major: bool,
}

impl Rows {
    /// The rows of an input of these dimensions, `(n, c, m)` with them.
    pub fn of(dims: &[usize], channel_major: bool) -> Option<(Rows, usize, usize, usize)> {
        let &[a, b, ref rest @ ..] = dims else { return None };
        let m: usize = rest.iter().product();
        let (n, c) = if channel_major { (b, a) } else { (a, b) };
        let len = if channel_major { n * m } else { m };
        Some((Rows { len: len.max(1), channels: c, channel_major }, n, c, m))
    }

    /// The work below which a pass over these rows stays on one thread: a convolution's
    /// channel-major output follows the convolution's rule (see `im2col.rs`).
    fn least(&self) -> usize {
        if self.channel_major {
            super::im2col::PARALLEL_ELEMENTS
        } else {
            0
        }
    }

    #[inline]
    fn channel(&self, i: usize) -> usize {
        if self.channel_major {
            i
        } else {
            i % self.channels
        }
    }
}

/// Per-channel mean and biased variance of `x` (`[n, c, ...]`, or `[c, n, ...]` when
/// `channel_major`), in two passes: the mean, then the squared distances from it, which keeps
/// the variance exact when the mean is large.
fn channel_stats(x: &Tensor, channel_major: bool) -> Result<(Vec<f32>, Vec<f32>)> {
    let Some((rows, n, c, m)) = Rows::of(x.dims(), channel_major) else {
        return Err(crate::error::Error::invalid(
            "batch norm input",
            "at least 2 dimensions",
            format!("{:?}", x.dims()),
        ));
    };
    let x = x.contiguous()?;
    let count = (n * m).max(1) as f64;
    Ok(with_f32(&x, "batch norm input", |x| {
        let sums = by_channel(&rows, c, x.len() / rows.len, |i| lanes(&x[i * rows.len..][..rows.len], |v| v));
        let mean: Vec<f32> = sums.iter().map(|s| (s / count) as f32).collect();
        let sq = by_channel(&rows, c, x.len() / rows.len, |i| {
            let mu = mean[rows.channel(i)];
            lanes(&x[i * rows.len..][..rows.len], |v| (v - mu) * (v - mu))
        });
        Ok((mean, sq.iter().map(|s| (s / count) as f32).collect()))
    })?)
}

/// `f(i)` of each of `count` rows (computed between the kernel team's threads when there is
/// enough work), added up per channel in the rows' order: the same bits however it is split.
fn by_channel<T: Copy + Default + Send + std::ops::AddAssign>(
    rows: &Rows,
    channels: usize,
    count: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let mut per_row = vec![T::default(); count];
    rows_mut(rows.least(), &mut per_row, 1, rows.len, |first, part| {
        part.iter_mut().enumerate().for_each(|(j, v)| *v = f(first + j));
    });
    let mut sums = vec![T::default(); channels];
    for (i, v) in per_row.into_iter().enumerate() {
        sums[rows.channel(i)] += v;
    }
    sums
}

/// A batch's per-channel mean and biased variance.
pub(crate) type Moments = (Vec<f32>, Vec<f32>);

/// What batch norm normalises with: the batch's own statistics (training) or given ones (the
/// running statistics, in evaluation).
pub(crate) enum Stats {
    Batch,
    Given { mean: Vec<f32>, var: Vec<f32> },
}

/// Batch norm of `xs` (`[n, c, ...]`, `f32` on the CPU) with per-channel `weight` and `bias`, then
/// ReLU if `relu`: the kernel's one entry. It reads a convolution's channel-major original when
/// there is one (a reshape on either side would cost, in backward, candle's adding of its
/// gradient to a fresh tensor of zeros) and hands its output on as the convolution does (see
/// `stored.rs`; a permuted view when `chained`). Returns the output and, with [`Stats::Batch`],
/// the batch's mean and biased variance, for the layer's running statistics.
pub(crate) fn batch_norm(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stats: Stats,
    eps: f64,
    (relu, chained): (bool, bool),
) -> Result<(Tensor, Option<Moments>)> {
    let (xs, channel_major) = match super::stored::channel_major(xs) {
        Some(original) => (original, true),
        None => (xs.contiguous()?, false),
    };
    let (mean, var, batch_stats) = match stats {
        Stats::Batch => {
            let (mean, var) = channel_stats(&xs, channel_major)?;
            (mean.clone(), var.clone(), Some((mean, var)))
        }
        Stats::Given { mean, var } => (mean, var, None),
    };
    let training = batch_stats.is_some();
    let op = BatchNormOp { mean, var, eps, batch_stats: training, relu, channel_major };
    let y = xs.apply_op3_arc(weight, bias, std::sync::Arc::new(Box::new(op)))?;
    let y = if channel_major { super::stored::channel_major_copy(&y, chained)? } else { y };
    Ok((y, batch_stats))
}

/// `(x - mean) / sqrt(var + eps) * weight + bias` per channel, then ReLU if `relu`.
struct BatchNormOp {
    mean: Vec<f32>,
    var: Vec<f32>,
    eps: f64,
    /// Whether `mean` and `var` are the batch's own (training), so that the gradient flows
    /// through them too; the running statistics (evaluation) are constants.
    batch_stats: bool,
    relu: bool,
    /// Whether the input is channel-major (`[c, n, ...]`, a convolution's own output).
    pub channel_major: bool,
}

impl BatchNormOp {
    fn rstd(&self) -> Vec<f32> {
        self.var.iter().map(|&v| (1.0 / (v as f64 + self.eps).sqrt()) as f32).collect()
    }

    /// The input's rows and `(n, c, m)`: `m` values per example and channel.
    fn dims(&self, x: &[usize]) -> candle_core::Result<(Rows, usize, usize, usize)> {
        match Rows::of(x, self.channel_major) {
            Some(r) if r.2 == self.mean.len() => Ok(r),
            _ => bail!("batch norm: expected {} channels, found {x:?}", self.mean.len()),
        }
    }

    /// The rows of `x` (of `dims`), checked to cover it whole (every output row is written).
    fn rows_of(&self, dims: &[usize], len: usize) -> candle_core::Result<(Rows, usize, usize, usize)> {
        let r = self.dims(dims)?;
        if !len.is_multiple_of(r.0.len) {
            bail!("batch norm: {len} values are not rows of {} for {dims:?}", r.0.len);
        }
        Ok(r)
    }
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "batch-norm"
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
        let (rows, ..) = self.rows_of(l1.dims(), x.len())?;
        let rstd = self.rstd();
        if w.len() != rstd.len() || b.len() != rstd.len() {
            bail!("batch norm: {} channels, weight of {} and bias of {}", rstd.len(), w.len(), b.len());
        }
        // Written once, not zeroed first: a zeroed allocation of this size comes as fresh pages
        // that the kernel clears on first touch.
        let y = filled(x.len(), |y| {
            rows_mut(rows.least(), y, rows.len, rows.len, |first, out| {
                for (j, out) in out.chunks_exact_mut(rows.len).enumerate() {
                    let (i, ch) = (first + j, rows.channel(first + j));
                    let scale = w[ch] * rstd[ch];
                    let shift = b[ch] - self.mean[ch] * scale;
                    let row = &x[i * rows.len..][..rows.len];
                    for (y, &v) in out.iter_mut().zip(row) {
                        let z = v * scale + shift;
                        // Not `max`: NaN stays NaN, as in PyTorch.
                        y.write(if self.relu && z < 0.0 { 0.0 } else { z });
                    }
                }
            })
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, n, c, m) = self.rows_of(x.dims(), x.elem_count())?;
        let m1 = rows.len;
        let rstd = self.rstd();
        let grad = grad.contiguous()?;
        let w: Vec<f32> = w.to_vec1()?;
        let relu = self.relu;
        let (db, dw, dx) = with_f32(x, "input", |x| {
            with_f32(&grad, "gradient", |g| {
                with_f32(res, "output", |r| {
                    let rows_of = |v| -> Vec<&[f32]> { <[f32]>::chunks_exact(v, m1).collect() };
                    let (xs, gs, rs_) = (rows_of(x), rows_of(g), rows_of(r));
                    // Per channel: the sums of the gradient (the bias's) and of the gradient times
                    // the centred input (the weight's, once scaled to x-hat).
                    let sums = by_channel(&rows, c, xs.len(), |i| {
                        let (a, b) = grad_sums(xs[i], gs[i], rs_[i], self.mean[rows.channel(i)], relu);
                        Pair(a, b)
                    });
                    let (sg, sgx): (Vec<f64>, Vec<f64>) = sums.into_iter().map(|Pair(a, b)| (a, b)).unzip();
                    let dw: Vec<f64> = (0..c).map(|ch| sgx[ch] * rstd[ch] as f64).collect();
                    let count = (n * m) as f64;
                    let dx = filled(x.len(), |out| {
                        rows_mut(rows.least(), out, m1, m1, |first, out| {
                            for (j, out) in out.chunks_exact_mut(m1).enumerate() {
                                let (i, ch) = (first + j, rows.channel(first + j));
                                // dx = w * rstd * (g - mean(g) - x-hat * mean(g * x-hat)), or without
                                // the means when the statistics are constants (evaluation mode).
                                let (mg, mgx) = if self.batch_stats {
                                    ((sg[ch] / count) as f32, (dw[ch] / count) as f32)
                                } else {
                                    (0.0, 0.0)
                                };
                                let k = w[ch] * rstd[ch];
                                input_grad(out, (xs[i], gs[i], rs_[i]), (self.mean[ch], rstd[ch], k, mg, mgx), relu);
                            }
                        })
                    });
                    let f = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
                    Ok((f(sg), f(dw), dx))
                })
            })
        })?;
        let dx = Tensor::from_vec(dx, x.shape(), &Device::Cpu)?;
        let (dw, db) = (Tensor::from_vec(dw, c, &Device::Cpu)?, Tensor::from_vec(db, c, &Device::Cpu)?);
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// Two sums of a row, added as a pair.
#[derive(Clone, Copy, Default)]
struct Pair(f64, f64);

impl std::ops::AddAssign for Pair {
    fn add_assign(&mut self, other: Pair) {
        self.0 += other.0;
        self.1 += other.1;
    }
}

/// The gradient of one row before the ReLU (zero where the ReLU cut).
#[inline(always)]
fn cut(g: f32, r: f32, relu: bool) -> f32 {
    if relu && r <= 0.0 {
        0.0
    } else {
        g
    }
}

/// `(sum of g, sum of g * (x - mu))` over a row, the gradient cut by the ReLU, in 16 lanes.
// Inlined: called as a function, it ran at half the speed (not specialised for its caller).
#[inline(always)]
fn grad_sums(x: &[f32], g: &[f32], r: &[f32], mu: f32, relu: bool) -> (f64, f64) {
    let (mut a, mut b) = ([0f32; 16], [0f32; 16]);
    let (cx, cg, cr) = (x.chunks_exact(16), g.chunks_exact(16), r.chunks_exact(16));
    let (tx, tg, tr) = (cx.remainder(), cg.remainder(), cr.remainder());
    for ((x, g), r) in cx.zip(cg).zip(cr) {
        let (x, g, r): (&[f32; 16], &[f32; 16], &[f32; 16]) =
            (x.try_into().expect("16"), g.try_into().expect("16"), r.try_into().expect("16"));
        for l in 0..16 {
            let gv = cut(g[l], r[l], relu);
            a[l] += gv;
            b[l] += gv * (x[l] - mu);
        }
    }
    let (mut ta, mut tb) = (0f32, 0f32);
    for ((&x, &g), &r) in tx.iter().zip(tg).zip(tr) {
        let gv = cut(g, r, relu);
        ta += gv;
        tb += gv * (x - mu);
    }
    let sum = |v: [f32; 16], t: f32| v.iter().map(|&x| x as f64).sum::<f64>() + t as f64;
    (sum(a, ta), sum(b, tb))
}

/// One row of the input gradient: `k * (g - mg - (x - mu) * rs * mgx)`, `g` cut by the ReLU.
fn input_grad(
    out: &mut [std::mem::MaybeUninit<f32>],
    (x, g, r): (&[f32], &[f32], &[f32]),
    (mu, rs, k, mg, mgx): (f32, f32, f32, f32, f32),
    relu: bool,
) {
    for (((o, &x), &g), &r) in out.iter_mut().zip(x).zip(g).zip(r) {
        o.write(k * (cut(g, r, relu) - mg - (x - mu) * rs * mgx));
    }
}
