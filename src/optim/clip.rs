//! Gradient clipping.

use super::steps::{norm, scale};
use crate::error::Result;
use crate::module::{no_grad, Param};

/// Scales all gradients together so that their global L2 norm is at most `max_norm`, and returns
/// the norm before clipping: PyTorch's `clip_grad_norm_` (scale `max_norm / (norm + 1e-6)`,
/// applied only when below 1).
pub fn clip_grad_norm(params: &[Param], max_norm: f64) -> Result<f64> {
    no_grad(|| {
        let grads: Vec<_> = params.iter().filter_map(|p| p.grad().map(|g| (p, g))).collect();
        let total = grads.iter().map(|(_, g)| norm(g).map(|n| n * n)).sum::<Result<f64>>()?.sqrt();
        let coef = max_norm / (total + 1e-6);
        if coef < 1.0 {
            for (p, g) in grads {
                p.zero_grad();
                p.accumulate_grad(scale(&g, coef)?)?;
            }
        }
        Ok(total)
    })
}

/// Clamps every gradient element to `[-clip, clip]`: PyTorch's `clip_grad_value_`.
pub fn clip_grad_value(params: &[Param], clip: f64) -> Result<()> {
    no_grad(|| {
        for p in params {
            if let Some(g) = p.grad() {
                p.zero_grad();
                p.accumulate_grad(g.clamp(-clip, clip)?)?;
            }
        }
        Ok(())
    })
}
