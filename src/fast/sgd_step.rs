//! SGD's update in place, `p -= lr * g`: one pass over each parameter, split between the fused
//! kernels' threads for a large weight, with no allocation.

use super::storage::cpu_f32;
use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Tensor};

/// Parameters from which the in-place step runs on the kernel threads.
const PARALLEL_LEN: usize = 1 << 18;

/// `p -= lr * g`, in place.
struct SgdStep {
    lr: f32,
}

impl InplaceOp2 for SgdStep {
    fn name(&self) -> &'static str {
        "sgd-step"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let g = cpu_f32(s2, l2, "gradient")?;
        let Some((start, end)) = l1.contiguous_offsets() else { bail!("sgd-step: parameter not contiguous") };
        let CpuStorage::F32(p) = s1 else { bail!("sgd-step: parameter is not f32") };
        let p = &mut p[start..end];
        if p.len() != g.len() {
            bail!("sgd-step: {} values against {} gradients", p.len(), g.len());
        }
        // The same two roundings as the plain `p - g * lr`, so both paths agree to the bit.
        let step = |p: &mut [f32], g: &[f32]| p.iter_mut().zip(g).for_each(|(p, g)| *p -= *g * self.lr);
        if p.len() >= PARALLEL_LEN {
            // A large weight (the wide model's 800,000) is split between the kernel threads.
            const CHUNK: usize = PARALLEL_LEN / 4;
            super::team::chunks_mut(p, CHUNK, |i, p| step(p, &g[i * CHUNK..][..p.len()]));
        } else {
            step(p, g);
        }
        Ok(())
    }
}

/// `p -= lr * g` in place when both are contiguous `f32` on the CPU; `false` (and nothing done)
/// otherwise.
pub(crate) fn sgd_in_place(p: &Tensor, g: &Tensor, lr: f64) -> candle_core::Result<bool> {
    let ok = |t: &Tensor| t.dtype() == candle_core::DType::F32 && t.device().is_cpu() && t.is_contiguous();
    if !ok(p) || !ok(g) || p.dims() != g.dims() {
        return Ok(false);
    }
    p.inplace_op2(g, &SgdStep { lr: lr as f32 })?;
    Ok(true)
}
