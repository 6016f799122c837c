//! The pieces optimizers are made of. Each mirrors PyTorch's single-tensor code operation for
//! operation, so that results agree to float rounding.

use super::Slot;
use crate::error::Result;
use candle_core::{Tensor, D};

/// `t * s` for a scalar `s` (in `f32` for `f32` tensors, as PyTorch computes it).
pub(crate) fn scale(t: &Tensor, s: f64) -> Result<Tensor> {
    Ok(t.affine(s, 0.0)?)
}

/// `t / s` by a true division (not a multiplication by `1/s`, which rounds differently).
pub(crate) fn div_scalar(t: &Tensor, s: f64) -> Result<Tensor> {
    let s = Tensor::new(s as f32, t.device())?.to_dtype(t.dtype())?;
    Ok(t.broadcast_div(&s)?)
}

/// L2 weight decay folded into the gradient: `g + wd * p`.
pub(crate) fn l2(g: Tensor, p: &Tensor, wd: f64) -> Result<Tensor> {
    Ok(if wd == 0.0 { g } else { (g + scale(p, wd)?)? })
}

/// A moving average `buf ← buf + (x - buf) * w` (PyTorch's `lerp_`), started at zero.
pub(crate) fn lerp_avg(slot: &mut Slot, name: &str, x: &Tensor, w: f64) -> Result<Tensor> {
    let avg = match slot.take(name) {
        None => scale(x, w)?,
        Some(b) => (&b + scale(&(x - &b)?, w)?)?,
    };
    slot.put(name, avg.clone());
    Ok(avg)
}

/// A moving average of squares `buf ← buf * decay + x² * (1 - decay)` (PyTorch's
/// `mul_(decay).addcmul_(x, x, value=1-decay)`), started at zero.
pub(crate) fn square_avg(slot: &mut Slot, name: &str, x: &Tensor, decay: f64) -> Result<Tensor> {
    let sq = scale(&x.sqr()?, 1.0 - decay)?;
    let avg = match slot.take(name) {
        None => sq,
        Some(b) => (scale(&b, decay)? + sq)?,
    };
    slot.put(name, avg.clone());
    Ok(avg)
}

/// The L2 norm of a tensor, as `f64`.
pub(crate) fn norm(t: &Tensor) -> Result<f64> {
    Ok(t.flatten_all()?.sqr()?.sum(D::Minus1)?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?.sqrt())
}
