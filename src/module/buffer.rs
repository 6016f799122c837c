//! Buffers: tensors a module keeps and saves but does not train (batch norm's running statistics).

use crate::error::Result;
use candle_core::Tensor;
use std::sync::{Arc, Mutex, MutexGuard};

/// A tensor that belongs to a module's state without being a parameter: PyTorch's
/// `register_buffer`. Batch norm's `running_mean` is one: the forward pass updates it (so it lives
/// behind a lock, as `forward` takes `&self`), [`state_dict`](super::state_dict) saves it beside
/// the parameters under its name, and no optimizer ever sees it. Clones share the value.
#[derive(Clone)]
pub struct Buffer {
    value: Arc<Mutex<Tensor>>,
    rule: Option<Rule>,
}

/// What a value loaded into a buffer must satisfy: `Err` says what the value has instead (a
/// batch norm's running variance must be finite and at least 0, say).
pub type Rule = fn(&Tensor) -> std::result::Result<(), String>;

impl Buffer {
    /// A buffer holding `value` (detached: a buffer has no gradient).
    pub fn new(value: Tensor) -> Self {
        Buffer { value: Arc::new(Mutex::new(value.detach())), rule: None }
    }

    /// A buffer whose loaded values must satisfy `rule` ([`Buffer::finite`], [`Buffer::finite_non_negative`]
    /// or a function of your own): [`load_state`](super::load_state) refuses a file that breaks it,
    /// before it changes anything.
    pub fn with_rule(value: Tensor, rule: Rule) -> Self {
        Buffer { rule: Some(rule), ..Buffer::new(value) }
    }

    /// A [`Rule`]: every value finite (no NaN, no infinity).
    pub fn finite(value: &Tensor) -> std::result::Result<(), String> {
        first_bad(value, |v| v.is_finite(), "finite values")
    }

    /// A [`Rule`]: every value finite and at least 0 (a variance).
    pub fn finite_non_negative(value: &Tensor) -> std::result::Result<(), String> {
        first_bad(value, |v| v.is_finite() && v >= 0.0, "finite values of at least 0")
    }

    /// Whether `value` may be loaded into this buffer (always, without a rule).
    pub fn check(&self, value: &Tensor) -> std::result::Result<(), String> {
        self.rule.map_or(Ok(()), |rule| rule(value))
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
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({:?})", self.dims())
    }
}

/// `Err` naming the first value that fails `ok`, and what was wanted.
fn first_bad(value: &Tensor, ok: fn(f64) -> bool, wanted: &str) -> std::result::Result<(), String> {
    let values = value
        .flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F64))
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(|e| e.to_string())?;
    match values.iter().position(|&v| !ok(v)) {
        Some(i) => Err(format!("{} at index {i}, where {wanted} are wanted", values[i])),
        None => Ok(()),
    }
}
