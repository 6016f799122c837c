//! Initialisation as lesson 06 derives it: Kaiming He's, which keeps the standard deviation of
//! the activations near 1 through a stack of (leaky) ReLU layers.
//!
//! For a weight of shape `[out, in, ...kernel]`, `fan_in` is `in * kernel size` and `fan_out`
//! is `out * kernel size`; the gain of a leaky ReLU of slope `a` is `sqrt(2 / (1 + a²))`, and
//! the standard deviation `gain / sqrt(fan)`. As PyTorch's `init.kaiming_normal_` and
//! `kaiming_uniform_` (whose uniform bound is `sqrt(3)` times that standard deviation).
//!
//! ```
//! use minibatch::init::{kaiming_normal, Fan};
//! use minibatch::Rng;
//! let w = kaiming_normal(&[512, 784], 0.0, Fan::In, &mut Rng::new(0))?;
//! let v: Vec<f32> = w.flatten_all()?.to_vec1()?;
//! let std = (v.iter().map(|x| (x * x) as f64).sum::<f64>() / v.len() as f64).sqrt();
//! assert!((std - (2.0f64 / 784.0).sqrt()).abs() < 0.001);
//! # Ok::<(), minibatch::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::{Device, Tensor};

/// Which side of the layer the variance is kept on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fan {
    /// The inputs (the forward pass): PyTorch's default `mode='fan_in'`.
    #[default]
    In,
    /// The outputs (the backward pass).
    Out,
}

/// `(fan_in, fan_out)` of a weight of this shape (at least two dimensions).
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    let [out, inp, kernel @ ..] = shape else {
        return Err(Error::invalid("weight shape", "[out, in, ...kernel]", format!("{shape:?}")));
    };
    let k: usize = kernel.iter().product();
    Ok((inp * k, out * k))
}

/// The standard deviation Kaiming's initialisation gives a weight of this shape.
pub fn kaiming_std(shape: &[usize], a: f64, fan: Fan) -> Result<f64> {
    let (fan_in, fan_out) = fans(shape)?;
    let n = match fan {
        Fan::In => fan_in,
        Fan::Out => fan_out,
    };
    Ok((2.0 / (1.0 + a * a)).sqrt() / (n.max(1) as f64).sqrt())
}

/// A weight drawn from `N(0, std²)`, `std` as [`kaiming_std`].
pub fn kaiming_normal(shape: &[usize], a: f64, fan: Fan, rng: &mut Rng) -> Result<Tensor> {
    let std = kaiming_std(shape, a, fan)?;
    let v: Vec<f32> = (0..shape.iter().product()).map(|_| (rng.normal() * std) as f32).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

/// A weight drawn from `U(-b, b)` with `b = sqrt(3) * std`, `std` as [`kaiming_std`].
pub fn kaiming_uniform(shape: &[usize], a: f64, fan: Fan, rng: &mut Rng) -> Result<Tensor> {
    let bound = 3f64.sqrt() * kaiming_std(shape, a, fan)?;
    let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.uniform(-bound, bound) as f32).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample standard deviation of a weight.
    fn std_of(t: &Tensor) -> f64 {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    }

    #[test]
    fn fans_and_standard_deviations_follow_the_formula() {
        assert_eq!(fans(&[32, 16, 3, 3]).unwrap(), (144, 288));
        assert!(fans(&[5]).is_err());
        let mut rng = Rng::new(3);
        // Conv weight, leaky slope 0.1, both modes, both distributions: within 2% of the formula.
        for fan in [Fan::In, Fan::Out] {
            let want = kaiming_std(&[64, 32, 3, 3], 0.1, fan).unwrap();
            assert!(
                (want - (2.0 / 1.01f64).sqrt() / if fan == Fan::In { 288f64 } else { 576f64 }.sqrt()).abs() < 1e-12
            );
            for w in [
                kaiming_normal(&[64, 32, 3, 3], 0.1, fan, &mut rng),
                kaiming_uniform(&[64, 32, 3, 3], 0.1, fan, &mut rng),
            ] {
                let got = std_of(&w.unwrap());
                assert!((got / want - 1.0).abs() < 0.02, "{fan:?}: {got} against {want}");
            }
        }
    }

    #[test]
    fn the_normal_sampler_has_mean_0_and_variance_1() {
        let mut rng = Rng::new(7);
        let v: Vec<f64> = (0..200_000).map(|_| rng.normal()).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01, "{mean} {var}");
        assert!(v.iter().all(|x| x.is_finite()));
    }
}
