//! The fully connected layer.

use super::{is_grad_enabled, Module, Param, Registered};
use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::{Device, Tensor};

/// `y = x Wᵀ + b`, with `W` of shape `[out_features, in_features]` as in PyTorch, so that saved
/// weights load into `nn.Linear` unchanged.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Param,
    bias: Option<Param>,
}

impl Linear {
    /// A layer with PyTorch's default initialisation: weight and bias drawn from
    /// `U(-1/sqrt(in_features), 1/sqrt(in_features))` (its `kaiming_uniform_(a=sqrt(5))`).
    pub fn new(in_features: usize, out_features: usize, rng: &mut Rng) -> Result<Self> {
        let w = uniform(&[out_features, in_features], in_features, rng)?;
        let b = uniform(&[out_features], in_features, rng)?;
        Self::from_tensors(w, Some(b))
    }

    /// A layer without bias, initialised as [`new`](Linear::new).
    pub fn no_bias(in_features: usize, out_features: usize, rng: &mut Rng) -> Result<Self> {
        Self::from_tensors(uniform(&[out_features, in_features], in_features, rng)?, None)
    }

    /// A layer with the given weight `[out, in]` and bias `[out]` (copied).
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        // Before candle's thread pool starts: see `fast/tune.rs`.
        crate::fast::tune();
        let &[out_f, _] = weight.dims() else {
            return Err(Error::invalid("linear weight shape", "[out, in]", format!("{:?}", weight.dims())));
        };
        if let Some(b) = &bias {
            if b.dims() != [out_f] {
                return Err(Error::invalid("linear bias shape", format!("[{out_f}]"), format!("{:?}", b.dims())));
            }
        }
        Ok(Linear { weight: Param::new(&weight)?, bias: bias.as_ref().map(Param::new).transpose()? })
    }

    /// The weight, `[out_features, in_features]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The bias, `[out_features]`, if the layer has one.
    pub fn bias(&self) -> Option<&Param> {
        self.bias.as_ref()
    }

    /// Input size.
    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Output size.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }
}

fn uniform(shape: &[usize], fan_in: usize, rng: &mut Rng) -> Result<Tensor> {
    if !super::room::can_hold(shape, 4) {
        return Err(Error::invalid("linear sizes", "a weight that fits in memory", format!("{shape:?}")));
    }
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.uniform(-bound, bound) as f32).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

impl Registered for Linear {
    fn own_parameters(&self) -> Vec<(String, Param)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }

    fn extra_repr(&self) -> String {
        let bias = if self.bias.is_some() { "True" } else { "False" };
        format!("in_features={}, out_features={}, bias={bias}", self.in_features(), self.out_features())
    }
}

impl Linear {
    /// `x Wᵀ + b`, then ReLU if `relu`: on the fused kernel for a `[batch, in]` `f32` input with
    /// a bias (see [`crate::fast`]), on candle's operations otherwise; a one-dimensional `[in]`
    /// input is one example (`[out]` out), as in PyTorch. An input whose last dimension is not
    /// `in_features` is an error naming the layer.
    fn apply(&self, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor> {
        if xs.dims().last() != Some(&self.in_features()) {
            return Err(Error::Shape {
                layer: crate::module::repr(self),
                expected: format!("{} features", self.in_features()),
                found: format!("{:?}", xs.dims()),
            });
        }
        let w = self.weight.tensor();
        if xs.dtype() != w.dtype() {
            return Err(Error::Shape {
                layer: crate::module::repr(self),
                expected: format!("{:?}, as its weight", w.dtype()),
                found: format!("{:?} {:?}", xs.dtype(), xs.dims()),
            });
        }
        if xs.rank() == 1 {
            // One example without a batch dimension, as PyTorch's `nn.Linear` takes it.
            return Ok(self.apply(&xs.unsqueeze(0)?, relu, false)?.squeeze(0)?);
        }
        match &self.bias {
            Some(b) if xs.rank() == 2 && crate::fast::fits(&[xs, &w]) => {
                let sink = is_grad_enabled().then(|| self.grad_sink(b));
                crate::fast::layer(xs, &w, &b.tensor(), sink, relu, chained)
            }
            _ => {
                let y = if xs.rank() == 2 { xs.matmul(&w.t()?)? } else { xs.broadcast_matmul(&w.t()?)? };
                let y = match &self.bias {
                    Some(b) => y.broadcast_add(&b.tensor())?,
                    None => y,
                };
                Ok(if relu { crate::fast::relu(&y)? } else { y })
            }
        }
    }
}

impl Linear {
    /// The fused kernel's backward adds the weight and bias gradients to these parameters.
    fn grad_sink(&self, bias: &Param) -> crate::fast::GradSink {
        let (w, b) = (self.weight.clone(), bias.clone());
        std::sync::Arc::new(move |dw, db| {
            let into = |p: &Param, g| p.accumulate_grad(g).map_err(|e| candle_core::Error::Msg(e.to_string()));
            into(&w, dw)?;
            into(&b, db)
        })
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, false, false)
    }
}

impl super::fusion::Fused for Linear {
    /// The layer, and the ReLU, in one pass of the fused kernel.
    fn forward_fused(&self, xs: &Tensor, relu: bool, chained: bool) -> Result<Tensor> {
        self.apply(xs, relu, chained)
    }
}

super::repr::impl_display_as_repr!(Linear);
