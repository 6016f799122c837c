//! A residual block's join, `relu(a + b)`, as one pass on the channel-major storage the
//! convolutions and batch norm hand on (lesson 11's `ResBlock`): no copy into the batch-major
//! order and back, and a one-pass backward.

use super::passes;
use super::storage::{cpu_f32, with_f32};
use super::stored::{channel_major, channel_major_copy};
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            bail!("add-relu: shapes {:?} and {:?} differ", l1.dims(), l2.dims());
        }
        let (a, b) = (cpu_f32(s1, l1, "residual branch")?, cpu_f32(s2, l2, "shortcut")?);
        // NaN stays NaN, as in `relu`.
        let y = passes::map2(a, b, 0, |a, b| {
            let s = a + b;
            if s < 0.0 {
                0.0
            } else {
                s
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// The gradient passes to both inputs where the sum was not `<= 0`.
    fn bwd(
        &self,
        a: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (res, grad) = (res.contiguous()?, grad.contiguous()?);
        let g = with_f32(&res, "add-relu output", |y| {
            with_f32(&grad, "add-relu gradient", |g| Ok(passes::relu_grad(g, y, 0)))
        })?;
        let g = Tensor::from_vec(g, a.shape(), a.device())?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// `x` `[n, c, h, w]` as contiguous `[c, n, h, w]`: the original a layer handed on, a permuted
/// view's storage as it is, or else one copy.
fn stored(x: &Tensor) -> candle_core::Result<Tensor> {
    if let Some(original) = channel_major(x) {
        return Ok(original);
    }
    let permuted = x.permute((1, 0, 2, 3))?;
    if permuted.is_contiguous() {
        Ok(permuted)
    } else {
        permuted.contiguous()
    }
}

/// `relu(a + b)` for two `[n, c, h, w]` `f32` CPU tensors of one shape, computed channel-major and
/// handed on as a permuted view that the next of the library's layers reads as stored; other
/// tensors (another rank, type or device) through candle's operations.
pub(crate) fn add_relu(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let fits = a.dtype() == DType::F32 && b.dtype() == DType::F32 && a.device().is_cpu() && b.device().is_cpu();
    if !fits || a.rank() != 4 || a.dims() != b.dims() {
        return super::relu(&(a + b)?);
    }
    let y = stored(a)?.apply_op2(&stored(b)?, AddRelu)?;
    channel_major_copy(&y, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn adds_rectifies_keeps_nan_and_sends_the_gradient_to_both() {
        let a = Var::new(&[-2f32, 1.0, f32::NAN, 3.0, -1.0, 0.5], &Device::Cpu).unwrap();
        let b = Var::new(&[1f32, 1.0, 0.0, -4.0, 1.0, 0.5], &Device::Cpu).unwrap();
        let shape = (1, 2, 3, 1);
        let (x, s) = (a.as_tensor().reshape(shape).unwrap(), b.as_tensor().reshape(shape).unwrap());
        let y = add_relu(&x, &s).unwrap();
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!((v[0], v[1], v[3], v[4], v[5]), (0.0, 2.0, 0.0, 0.0, 1.0));
        assert!(v[2].is_nan());
        let grads = (y * 3.0).unwrap().sum_all().unwrap().backward().unwrap();
        for var in [&a, &b] {
            let g: Vec<f32> = grads.get(var.as_tensor()).unwrap().to_vec1().unwrap();
            assert_eq!(g, [0.0, 3.0, 3.0, 0.0, 0.0, 3.0]);
        }
    }
}
