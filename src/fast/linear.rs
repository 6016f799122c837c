//! `x Wᵀ + b`, optionally followed by ReLU, as one custom op with its own backward.

use super::gemm::{matmul, View};
use super::storage::{cpu_f32, with_f32};
use crate::error::{Error, Result};
use crate::module::{is_grad_enabled, Param};
use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};

struct LinearOp {
    relu: bool,
    /// Whether backward must compute the input's gradient (it need not for a batch of data).
    input_grad: bool,
    /// The parameters behind the weight and bias, when known: backward adds their gradients to
    /// them directly, rather than handing them to candle, which would add each to a fresh
    /// tensor of zeros first (two more passes over every weight gradient, each step).
    params: Option<(Param, Param)>,
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        if self.relu {
            "linear-relu"
        } else {
            "linear"
        }
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
        let (&[batch, inp], &[out, inp_w]) = (l1.dims(), l2.dims()) else {
            bail!("linear: expected [batch, in] and [out, in]")
        };
        if inp != inp_w || b.len() != out {
            bail!("linear: input of {inp} features, weight {:?}, bias of {}", l2.dims(), b.len());
        }
        let mut y: Vec<f32> = Vec::with_capacity(batch * out);
        for _ in 0..batch {
            y.extend_from_slice(b);
        }
        matmul(batch, out, inp, &mut y, true, View::rows(x, inp), View::transposed(w, inp));
        if self.relu {
            y.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        Ok((CpuStorage::F32(y), Shape::from((batch, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (batch, out) = res.dims2()?;
        let inp = w.dims2()?.1;
        let grad = grad.contiguous()?;
        let g: Vec<f32> = with_f32(&grad, "gradient", |g| {
            if !self.relu {
                return Ok(g.to_vec());
            }
            with_f32(res, "output", |r| Ok(g.iter().zip(r).map(|(&g, &r)| if r > 0.0 { g } else { 0.0 }).collect()))
        })?;
        let mut dw = vec![0f32; out * inp];
        with_f32(x, "input", |x| {
            matmul(out, inp, batch, &mut dw, false, View::transposed(&g, out), View::rows(x, inp));
            Ok(())
        })?;
        let mut db = vec![0f32; out];
        for row in g.chunks_exact(out) {
            db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
        }
        let dx = if self.input_grad {
            let mut dx = vec![0f32; batch * inp];
            with_f32(w, "weight", |w| {
                matmul(batch, inp, out, &mut dx, false, View::rows(&g, out), View::rows(w, inp));
                Ok(())
            })?;
            Some(Tensor::from_vec(dx, (batch, inp), &Device::Cpu)?)
        } else {
            None
        };
        let (dw, db) = (Tensor::from_vec(dw, (out, inp), &Device::Cpu)?, Tensor::from_vec(db, out, &Device::Cpu)?);
        if let Some((w, b)) = &self.params {
            let into = |p: &Param, g| p.accumulate_grad(g).map_err(|e| candle_core::Error::Msg(e.to_string()));
            into(w, dw)?;
            into(b, db)?;
            return Ok((dx, None, None));
        }
        Ok((dx, Some(dw), Some(db)))
    }
}

/// `x Wᵀ + b` (then ReLU if `relu`) for `x` of shape `[batch, in]`, `w` of `[out, in]` and `b` of
/// `[out]`, all `f32` on the CPU: one matrix multiply with the bias added inside it and the ReLU
/// on its output, and a backward that computes the input's gradient only when the input is
/// itself computed from parameters (never for a batch of data).
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[[1f32, 2.]], &Device::Cpu)?;
/// let w = Tensor::new(&[[1f32, 0.], [0., -1.]], &Device::Cpu)?;
/// let b = Tensor::new(&[0.5f32, 0.5], &Device::Cpu)?;
/// assert_eq!(minibatch::fast::linear(&x, &w, &b, false)?.to_vec2::<f32>()?, vec![vec![1.5, -1.5]]);
/// assert_eq!(minibatch::fast::linear(&x, &w, &b, true)?.to_vec2::<f32>()?, vec![vec![1.5, 0.0]]);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    apply(x, w, b, relu, None)
}

/// [`linear`] on a weight and bias parameter: the same value, and a backward that adds their
/// gradients straight into the parameters (as `backward` would), skipping candle's extra copy.
pub fn linear_params(x: &Tensor, w: &Param, b: &Param, relu: bool) -> Result<Tensor> {
    let params = is_grad_enabled().then(|| (w.clone(), b.clone()));
    apply(x, &w.tensor(), &b.tensor(), relu, params)
}

fn apply(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool, params: Option<(Param, Param)>) -> Result<Tensor> {
    if x.rank() != 2 {
        return Err(Error::invalid("fast linear input", "[batch, features]", format!("{:?}", x.dims())));
    }
    let x = x.contiguous()?;
    let op = LinearOp { relu, input_grad: x.track_op(), params };
    Ok(x.apply_op3_arc(&w.contiguous()?, &b.contiguous()?, std::sync::Arc::new(Box::new(op)))?)
}
