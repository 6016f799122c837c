//! A module's own training flag, for a module written by a user: PyTorch's `self.training`.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the module holding it is in training mode (`true` when made): PyTorch's
/// `self.training`. A struct with `#[derive(Registered)]` marks such a field `#[module(training)]`,
/// and `model.train()` / `model.eval()` on any container above it set it, as they set the
/// library's own layers' modes.
///
/// ```
/// use minibatch::candle_core::Tensor;
/// use minibatch::{Module, Registered, Sequential, TrainingMode};
/// #[derive(Registered)]
/// struct Noisy {
///     #[module(training)]
///     mode: TrainingMode,
/// }
/// impl Module for Noisy {
///     fn forward(&self, x: &Tensor) -> minibatch::Result<Tensor> {
///         // Only in training: add 1 (a stand-in for dropout's noise).
///         Ok(if self.mode.is_training() { (x + 1.0)? } else { x.clone() })
///     }
/// }
/// let model = Sequential::new().add(Noisy { mode: TrainingMode::default() });
/// let x = Tensor::new(&[1f32], &minibatch::candle_core::Device::Cpu)?;
/// assert_eq!(model.forward(&x)?.to_vec1::<f32>()?, [2.0]);
/// model.eval();
/// assert_eq!(model.forward(&x)?.to_vec1::<f32>()?, [1.0]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug)]
pub struct TrainingMode(AtomicBool);

impl TrainingMode {
    /// Whether the module is in training mode.
    pub fn is_training(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the mode (what `train` and `eval` do through the container).
    pub fn set(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed);
    }
}

impl Default for TrainingMode {
    /// Training mode, as a new PyTorch module is.
    fn default() -> Self {
        TrainingMode(AtomicBool::new(true))
    }
}

impl Clone for TrainingMode {
    fn clone(&self) -> Self {
        TrainingMode(AtomicBool::new(self.is_training()))
    }
}
