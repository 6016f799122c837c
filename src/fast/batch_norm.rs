//! Batch normalisation (then ReLU, optionally) as one custom op over `[n, c, m]` data: candle
//! runs it as a dozen reductions and broadcasts, each a pass over the activations with a fresh
//! buffer (measured: batch norm made the lesson's CNN four times slower on candle's operations).

use super::storage::{cpu_f32, with_f32};
use crate::error::Result;
use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};

/// Per-channel mean and biased variance of `x` `[n, c, m]`, accumulated in `f64`.
pub(crate) fn channel_stats(x: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
    let (n, c, m) = x.dims3()?;
    let x = x.contiguous()?;
    let count = (n * m).max(1) as f64;
    Ok(with_f32(&x, "batch norm input", |x| {
        let mut sums = vec![0f64; c];
        for (i, row) in x.chunks_exact(m.max(1)).enumerate() {
            sums[i % c] += row.iter().map(|&v| v as f64).sum::<f64>();
        }
        let mean: Vec<f64> = sums.iter().map(|s| s / count).collect();
        let mut sq = vec![0f64; c];
        for (i, row) in x.chunks_exact(m.max(1)).enumerate() {
            let mu = mean[i % c];
            sq[i % c] += row.iter().map(|&v| (v as f64 - mu) * (v as f64 - mu)).sum::<f64>();
        }
        Ok((mean.iter().map(|&v| v as f32).collect(), sq.iter().map(|s| (s / count) as f32).collect()))
    })?)
}

/// `(x - mean) / sqrt(var + eps) * weight + bias` per channel, then ReLU if `relu`.
pub(crate) struct BatchNormOp {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub eps: f64,
    /// Whether `mean` and `var` are the batch's own (training), so that the gradient flows
    /// through them too; the running statistics (evaluation) are constants.
    pub batch_stats: bool,
    pub relu: bool,
}

impl BatchNormOp {
    fn rstd(&self) -> Vec<f32> {
        self.var.iter().map(|&v| (1.0 / (v as f64 + self.eps).sqrt()) as f32).collect()
    }

    fn dims(&self, x: &[usize]) -> candle_core::Result<(usize, usize, usize)> {
        match *x {
            [n, c, m] if c == self.mean.len() => Ok((n, c, m)),
            _ => bail!("batch norm: expected [n, {}, m], found {x:?}", self.mean.len()),
        }
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
        let (_, c, m) = self.dims(l1.dims())?;
        let rstd = self.rstd();
        let mut y = Vec::with_capacity(x.len());
        for (i, row) in x.chunks_exact(m.max(1)).enumerate() {
            let ch = i % c;
            let scale = w[ch] * rstd[ch];
            let shift = b[ch] - self.mean[ch] * scale;
            // Not `max`: NaN stays NaN, as in PyTorch.
            y.extend(row.iter().map(|&v| v * scale + shift).map(|v| if self.relu && v < 0.0 { 0.0 } else { v }));
        }
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
        let (n, c, m) = self.dims(x.dims())?;
        let rstd = self.rstd();
        let grad = grad.contiguous()?;
        let w: Vec<f32> = w.to_vec1()?;
        // The gradient before the ReLU.
        let g = with_f32(&grad, "gradient", |g| {
            with_f32(res, "output", |r| {
                Ok(g.iter().zip(r).map(|(&g, &r)| if self.relu && r <= 0.0 { 0.0 } else { g }).collect::<Vec<f32>>())
            })
        })?;
        let (db, dw, dx) = with_f32(x, "input", |x| {
            // Per channel: the sum of the gradient (the bias's) and of gradient times x-hat (the weight's).
            let (mut db, mut dw) = (vec![0f64; c], vec![0f64; c]);
            for (i, (xr, gr)) in x.chunks_exact(m.max(1)).zip(g.chunks_exact(m.max(1))).enumerate() {
                let ch = i % c;
                let (mu, rs) = (self.mean[ch], rstd[ch]);
                db[ch] += gr.iter().map(|&v| v as f64).sum::<f64>();
                dw[ch] += xr.iter().zip(gr).map(|(&x, &g)| ((x - mu) * rs * g) as f64).sum::<f64>();
            }
            let count = (n * m) as f64;
            let mut dx = Vec::with_capacity(x.len());
            for (i, (xr, gr)) in x.chunks_exact(m.max(1)).zip(g.chunks_exact(m.max(1))).enumerate() {
                let ch = i % c;
                let (mu, rs, k) = (self.mean[ch], rstd[ch], w[ch] * rstd[ch]);
                if self.batch_stats {
                    // dx = w * rstd * (g - mean(g) - x-hat * mean(g * x-hat))
                    let (mg, mgx) = ((db[ch] / count) as f32, (dw[ch] / count) as f32);
                    dx.extend(xr.iter().zip(gr).map(|(&x, &g)| k * (g - mg - (x - mu) * rs * mgx)));
                } else {
                    dx.extend(gr.iter().map(|&g| k * g));
                }
            }
            let f = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
            Ok((f(db), f(dw), dx))
        })?;
        let dx = Tensor::from_vec(dx, x.shape(), &Device::Cpu)?;
        let (dw, db) = (Tensor::from_vec(dw, c, &Device::Cpu)?, Tensor::from_vec(db, c, &Device::Cpu)?);
        Ok((Some(dx), Some(dw), Some(db)))
    }
}
