//! Buffers: tensors a module keeps and saves but does not train (batch norm's running statistics).

use crate::error::Result;
use candle_core::Tensor;
use std::sync::{Arc, Mutex, MutexGuard};

/// A tensor that belongs to a module's state without being a parameter: PyTorch's
/// `register_buffer`. Batch norm's `running_mean` is one: the forward pass updates it (so it lives
/// behind a lock, as `forward` takes `&self`), [`state_dict`](super::state_dict) saves it beside
/// the parameters under its name, and no optimizer ever sees it. Clones share the value.
#[derive(Clone)]
pub struct Buffer(Arc<Mutex<Tensor>>);

impl Buffer {
    /// A buffer holding `value` (detached: a buffer has no gradient).
    pub fn new(value: Tensor) -> Self {
        Buffer(Arc::new(Mutex::new(value.detach())))
    }

    /// The current value.
    pub fn get(&self) -> Tensor {
        self.lock().clone()
    }

    /// Replaces the value. The shape and dtype are the caller's to keep: loading checks them
    /// against the module's own before calling this.
    pub fn set(&self, value: Tensor) {
        *self.lock() = value.detach();
    }

    /// The shape's dimensions.
    pub fn dims(&self) -> Vec<usize> {
        self.lock().dims().to_vec()
    }

    /// A copy of the value in fresh storage, to put back later (an lr sweep restores it).
    pub fn snapshot(&self) -> Result<Tensor> {
        Ok(self.lock().copy()?)
    }

    fn lock(&self) -> MutexGuard<'_, Tensor> {
        // A poisoned lock only means another thread panicked mid-update; the value is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({:?})", self.dims())
    }
}
