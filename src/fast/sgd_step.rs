//! SGD's update in place: `p -= lr * g`, and with momentum, weight decay or Nesterov the
//! momentum buffer updated in place too. One pass over each tensor, split between the fused
//! kernels' threads for a large weight, with no allocation. Every value is rounded as the plain
//! path's candle operations round it (`affine(x, s, 0)` is `x * s + 0`), so both agree to the bit.

use super::storage::cpu_f32;
use candle_core::{bail, CpuStorage, InplaceOp2, InplaceOp3, Layout, Tensor};

/// Parameters from which the in-place step runs on the kernel threads.
const PARALLEL_LEN: usize = 1 << 18;

/// SGD's hyperparameters as the kernels use them (`f32`, as candle's `affine` casts them).
#[derive(Clone, Copy)]
pub(crate) struct SgdStepConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

#[derive(Clone, Copy)]
struct Coefficients {
    lr: f32,
    momentum: f32,
    /// `1 - dampening`.
    undamped: f32,
    nesterov: bool,
    wd: Option<f32>,
}

impl From<SgdStepConfig> for Coefficients {
    fn from(c: SgdStepConfig) -> Self {
        Coefficients {
            lr: c.lr as f32,
            momentum: c.momentum as f32,
            undamped: (1.0 - c.dampening) as f32,
            nesterov: c.nesterov,
            wd: (c.weight_decay != 0.0).then_some(c.weight_decay as f32),
        }
    }
}

impl Coefficients {
    /// The gradient with L2 weight decay folded in: `g + (p * wd + 0)`.
    fn decayed(&self, g: f32, p: f32) -> f32 {
        match self.wd {
            Some(wd) => g + (p * wd + 0.0),
            None => g,
        }
    }
}

/// The momentum buffer's update, on the buffer: `b = (b * momentum + 0) + (g' * (1 - dampening) + 0)`.
struct BufferUpdate(Coefficients);

/// The parameter's update: `p = p - (d * lr + 0)`, `d` the buffer (or `g' + b * momentum` with
/// Nesterov), or the gradient when there is no momentum.
struct ParamUpdate(Coefficients);

impl InplaceOp3 for BufferUpdate {
    fn name(&self) -> &'static str {
        "sgd-momentum-buffer"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let (g, p) = (cpu_f32(s2, l2, "gradient")?, cpu_f32(s3, l3, "parameter")?);
        let b = contiguous_mut(s1, l1, g.len())?;
        let c = self.0;
        // The parameter is read only for weight decay: a pass over every weight saved otherwise.
        split(b, |at, b| match c.wd {
            Some(_) => {
                for ((b, &g), &p) in b.iter_mut().zip(&g[at..]).zip(&p[at..]) {
                    *b = (*b * c.momentum + 0.0) + (c.decayed(g, p) * c.undamped + 0.0);
                }
            }
            None => {
                b.iter_mut().zip(&g[at..]).for_each(|(b, &g)| *b = (*b * c.momentum + 0.0) + (g * c.undamped + 0.0))
            }
        });
        Ok(())
    }
}

impl InplaceOp3 for ParamUpdate {
    fn name(&self) -> &'static str {
        "sgd-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let (b, g) = (cpu_f32(s2, l2, "momentum buffer")?, cpu_f32(s3, l3, "gradient")?);
        let p = contiguous_mut(s1, l1, g.len())?;
        let c = self.0;
        // The gradient is read only with Nesterov: a pass over every weight saved otherwise.
        split(p, |at, p| {
            if c.nesterov {
                for ((p, &b), &g) in p.iter_mut().zip(&b[at..]).zip(&g[at..]) {
                    *p -= (c.decayed(g, *p) + (b * c.momentum + 0.0)) * c.lr + 0.0;
                }
            } else {
                p.iter_mut().zip(&b[at..]).for_each(|(p, &b)| *p -= b * c.lr + 0.0);
            }
        });
        Ok(())
    }
}

impl InplaceOp2 for ParamUpdate {
    fn name(&self) -> &'static str {
        "sgd-step"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let g = cpu_f32(s2, l2, "gradient")?;
        let p = contiguous_mut(s1, l1, g.len())?;
        let c = self.0;
        split(p, |at, p| p.iter_mut().zip(&g[at..]).for_each(|(p, &g)| *p -= c.decayed(g, *p) * c.lr + 0.0));
        Ok(())
    }
}

/// The `len` contiguous `f32` values that `s` holds under `l`.
fn contiguous_mut<'a>(s: &'a mut CpuStorage, l: &Layout, len: usize) -> candle_core::Result<&'a mut [f32]> {
    let Some((start, end)) = l.contiguous_offsets() else { bail!("sgd-step: a tensor that is not contiguous") };
    let CpuStorage::F32(v) = s else { bail!("sgd-step: a tensor that is not f32") };
    if end - start != len {
        bail!("sgd-step: {} values against {len} gradients", end - start);
    }
    Ok(&mut v[start..end])
}

/// Runs `f(offset, part)` over `data`: in parts on the kernel threads for a large tensor (the
/// wide model's 800,000 weights), whole on the caller otherwise. Each element's update is its
/// own, so the bits do not depend on the split.
fn split(data: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    const CHUNK: usize = PARALLEL_LEN / 4;
    if data.len() >= PARALLEL_LEN {
        super::team::chunks_mut(data, CHUNK, |i, part| f(i * CHUNK, part));
    } else {
        f(0, data);
    }
}

/// SGD's step for parameter `p` with gradient `g` in place, and its momentum buffer `buffer`
/// (which must exist when `config` has momentum: the first step, which makes it, is the plain
/// path's). `false` (and nothing done) unless every tensor is contiguous `f32` on the CPU, of
/// one shape.
pub(crate) fn sgd_in_place(
    p: &Tensor,
    g: &Tensor,
    buffer: Option<&Tensor>,
    config: SgdStepConfig,
) -> candle_core::Result<bool> {
    let ok = |t: &Tensor| {
        t.dtype() == candle_core::DType::F32 && t.device().is_cpu() && t.is_contiguous() && t.dims() == p.dims()
    };
    let c = Coefficients::from(config);
    match buffer {
        _ if !ok(p) || !ok(g) => Ok(false),
        None if config.momentum == 0.0 => p.inplace_op2(g, &ParamUpdate(c)).map(|_| true),
        Some(b) if config.momentum != 0.0 && ok(b) => {
            b.inplace_op3(g, p, &BufferUpdate(c))?;
            p.inplace_op3(b, g, &ParamUpdate(c))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
