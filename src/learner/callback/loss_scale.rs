//! Dynamic loss scaling (lesson 10c), PyTorch's `GradScaler` as a callback.

use super::{from_state, Callback, Ctx, Flow};
use crate::error::Result;
use crate::module::no_grad;
use candle_core::DType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Multiplies the loss by `scale` before the backward and divides the gradients by it after,
/// so that gradients too small for fp16 survive the backward; a step whose gradients overflowed
/// (a value not finite, before or after the division) is skipped and the scale halved, and after
/// `growth_interval` good steps in a row the scale doubles. PyTorch's defaults: scale 2¹⁶, growth
/// every 2,000 steps.
///
/// A scale that is not a finite number above 0, or a `growth_interval` of 0, stops `fit` with an
/// error before the first step; so does a scale halved down to zero (every step overflowing,
/// which no scale cures: a loss that is not finite).
///
/// A power-of-two scale (the default, halved and doubled) changes no bit of an fp32 or bf16 step
/// (bf16 has fp32's exponent range): it is harmless there, and needed only for fp16, whose
/// smallest subnormal is 6e-8 (see [`guide::s18_mixed_precision`](crate::guide::s18_mixed_precision)). Its state
/// travels in checkpoints.
///
/// ```
/// # use minibatch::learner::{Learner, LossScaler};
/// # use minibatch::{cross_entropy, get_dls, get_model, Mnist};
/// # let data = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))?;
/// # let (train_dl, valid_dl) = get_dls(data.train.slice(0, 128)?, data.valid.slice(0, 64)?, 64)?;
/// # let (model, opt) = get_model(784, 50, 10, 0.5, 0)?;
/// // A scale past f32's range: the first step's gradients overflow; it is skipped, the scale halved.
/// let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl)
///     .with_callback(LossScaler { scale: 1e39, ..LossScaler::default() });
/// learn.fit(1)?;
/// let scaler = learn.callback::<LossScaler>().unwrap();
/// assert_eq!((scaler.skipped, scaler.scale), (2, 2.5e38)); // two batches, both skipped
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LossScaler {
    /// The factor the loss is multiplied by.
    pub scale: f64,
    /// Good steps in a row after which the scale doubles.
    pub growth_interval: usize,
    /// Good steps since the last overflow or growth.
    pub good: usize,
    /// Steps skipped because their gradients overflowed, in all.
    pub skipped: usize,
    /// Why this callback stopped training, if it did (settings that cannot train, or a scale
    /// halved to nothing); set by the callback.
    #[serde(skip)]
    pub failed: Option<String>,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler { scale: 65536.0, growth_interval: 2000, good: 0, skipped: 0, failed: None }
    }
}

impl LossScaler {
    /// The gradients divided by the scale, if every one is finite after the division (an
    /// overflow before it gives infinities or NaN, which stay so); else they are left alone.
    fn unscale(&self, cx: &mut Ctx) -> Result<bool> {
        no_grad(|| {
            let params = cx.opt.params();
            let mut unscaled = Vec::with_capacity(params.len());
            for p in params {
                let Some(g) = p.grad() else { continue };
                let g = g.affine(1.0 / self.scale, 0.0)?;
                // Read in place: no copy of every gradient each step.
                let finite = crate::fast::with_f32(&g.to_dtype(DType::F32)?, "gradient", |v| {
                    Ok(v.iter().all(|x| x.is_finite()))
                })?;
                if !finite {
                    return Ok(false);
                }
                unscaled.push((p, g));
            }
            for (p, g) in unscaled {
                p.zero_grad();
                p.accumulate_grad(g)?;
            }
            Ok(true)
        })
    }

    /// Why the settings cannot train, if they cannot.
    fn check(&self) -> Option<String> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Some(format!("LossScaler: the scale must be a finite number above 0, not {}", self.scale));
        }
        (self.growth_interval == 0).then(|| "LossScaler: growth_interval must be at least 1".to_string())
    }
}

impl Callback for LossScaler {
    fn before_fit(&mut self, _: &mut Ctx) -> Flow {
        self.failed = self.check();
        if self.failed.is_some() {
            Flow::StopFit
        } else {
            Flow::Continue
        }
    }
    fn loss_scale(&mut self) -> f64 {
        self.scale
    }
    fn after_backward(&mut self, cx: &mut Ctx) -> Flow {
        let finite = match self.unscale(cx) {
            Ok(finite) => finite,
            Err(e) => {
                self.failed = Some(format!("LossScaler: the gradients could not be unscaled: {e}"));
                return Flow::StopFit;
            }
        };
        if !finite {
            self.scale /= 2.0;
            self.good = 0;
            self.skipped += 1;
            if self.scale < f64::from(f32::MIN_POSITIVE) {
                self.failed = Some(format!(
                    "LossScaler: every step overflows ({} skipped) and the scale fell to {:e}: the loss or its gradients are not finite",
                    self.skipped, self.scale
                ));
                return Flow::StopFit;
            }
            return Flow::SkipBatch;
        }
        self.good += 1;
        if self.good >= self.growth_interval {
            self.scale *= 2.0;
            self.good = 0;
        }
        Flow::Continue
    }
    fn failure(&self) -> Option<String> {
        self.failed.clone()
    }
    fn stop_reason(&self) -> Option<String> {
        self.failed.clone()
    }
    fn state(&self) -> Option<Value> {
        serde_json::to_value(self).ok()
    }
    fn load_state(&mut self, state: &Value) -> Result<()> {
        *self = from_state("LossScaler", state)?;
        Ok(())
    }
}
