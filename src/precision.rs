//! Mixed precision (lesson 10c): the number format of the layers' matrix products.
//!
//! Under [`Precision::Bf16`] every product of the library's layers (a [`Linear`](crate::Linear)'s
//! forward, weight gradient and input gradient; a [`Conv2d`](crate::Conv2d)'s patch products)
//! rounds both operands to bfloat16 and adds the products up in `f32`. Everything else stays
//! `f32`: the parameters (the optimizer's fp32 master weights), activations between layers, the
//! loss, softmax, batch norm's statistics and the optimizer's update. A model built from the
//! library's layers needs no change; products outside them (candle's own `matmul` in a user's
//! layer, or everything under [`fast::with_candle_ops`](crate::fast::with_candle_ops)) stay fp32.
//!
//! bf16 keeps fp32's 8-bit exponent and drops 16 bits of mantissa: the same range, about 3
//! significant digits. So gradients do not underflow (fp16's 5-bit exponent needs loss scaling
//! for that; bf16 does not) and the products lose little, but a weight held in bf16 could not take
//! a step smaller than 1/256 of itself: hence fp32 master weights. The guide's page
//! [`s18_mixed_precision`](crate::guide::s18_mixed_precision) shows each point.

use serde::{Deserialize, Serialize};
use std::cell::Cell;

/// The number format of the layers' matrix products: `Fp32` (the default) or `Bf16` (bf16
/// operands, `f32` sums; see the [module](self)). A setting of the [`Learner`](crate::learner::Learner)
/// ([`Learner::precision`](crate::learner::Learner::precision)) and of `minibatch train --precision`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `f32` operands and sums.
    #[default]
    Fp32,
    /// bfloat16 operands, `f32` sums.
    Bf16,
}

impl std::fmt::Display for Precision {
    /// `fp32` or `bf16`, as `--precision` takes them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = crate::error::Error;

    /// `fp32` (or `f32`) and `bf16`, in any case.
    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "f32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(crate::error::Error::invalid("precision", "fp32 or bf16", format!("{s:?}"))),
        }
    }
}

/// Runs `f` with the layers' products in `precision` on this thread (PyTorch's `torch.autocast`
/// as a closure); the previous precision comes back afterwards. The
/// [`Learner`](crate::learner::Learner) calls it around its loop; a hand-written loop can too.
///
/// ```
/// use minibatch::{autocast, mlp, Module, Precision};
/// use candle_core::{Device, Tensor};
/// let model = mlp(&[4, 8, 3], 0)?;
/// let x = Tensor::new(&[[0.3f32, -1.7, 2.1, 0.01]], &Device::Cpu)?;
/// let fp32 = model.forward(&x)?.to_vec2::<f32>()?;
/// let bf16 = autocast(Precision::Bf16, || model.forward(&x))?.to_vec2::<f32>()?;
/// // bf16 keeps about 3 significant digits of each operand.
/// assert!(fp32[0].iter().zip(&bf16[0]).all(|(a, b)| (a - b).abs() < 0.02));
/// assert_ne!(fp32, bf16);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn autocast<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    struct Restore(Precision);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|p| p.replace(precision)));
    f()
}

thread_local! {
    static CURRENT: Cell<Precision> = const { Cell::new(Precision::Fp32) };
}

/// The precision of the layers' products on this thread (fp32 outside [`autocast`]).
#[inline]
pub fn current() -> Precision {
    CURRENT.with(Cell::get)
}

/// `x` rounded to the nearest bfloat16 (ties to even), returned as an `f32`: what a bf16 product
/// multiplies. Subnormals round to zero, as the processors' conversion instructions do.
///
/// ```
/// use minibatch::precision::to_bf16;
/// assert_eq!(to_bf16(1.0 + 1.0 / 512.0), 1.0); // below bf16's resolution at 1 (1/128): lost
/// assert_eq!(to_bf16(3.14159), 3.140625);
/// assert!((to_bf16(1e-30) / 1e-30 - 1.0).abs() < 0.004); // fp32's range, unlike fp16
/// ```
pub fn to_bf16(x: f32) -> f32 {
    f32::from_bits((bf16_bits(x) as u32) << 16)
}

/// The bf16 nearest `x`, as its 16 bits (see [`to_bf16`]).
pub(crate) fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        ((b >> 16) | 0x40) as u16
    } else if b & 0x7f80_0000 == 0 {
        ((b >> 16) & 0x8000) as u16
    } else {
        ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
    }
}
