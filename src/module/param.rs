//! Parameters: tensors that learn, with a gradient that accumulates until it is zeroed.

use crate::error::Result;
use candle_core::{Tensor, Var};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A trainable tensor and its accumulated gradient. Clones share both, as PyTorch's parameters
/// are shared between a model and its optimizer.
///
/// Gradients accumulate: two [`backward`] calls without a [`zero_grad`](Param::zero_grad) in
/// between add up, exactly as in PyTorch. That is what makes gradient accumulation over several
/// small batches possible, and it is why the training loop must zero them after each step.
#[derive(Clone)]
pub struct Param {
    var: Var,
    grad: Arc<Mutex<Option<Tensor>>>,
    frozen: Arc<AtomicBool>,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` without recording the operations on parameters for backward, like PyTorch's
/// `torch.no_grad()`: validation and the optimizer's update need no gradient, and recording one
/// would keep every intermediate tensor alive until the result is dropped.
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// Whether operations on parameters are recorded for backward on this thread (false inside
/// [`no_grad`]).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

impl Param {
    /// A parameter holding a copy of `value`.
    pub fn new(value: &Tensor) -> Result<Self> {
        let frozen = Arc::new(AtomicBool::new(false));
        Ok(Param { var: Var::from_tensor(value)?, grad: Arc::new(Mutex::new(None)), frozen })
    }

    /// The value, to compute with. Outside [`no_grad`] the operations on it are recorded, so that
    /// [`backward`] can find its gradient; inside, and while the parameter is
    /// [frozen](Param::freeze), it is detached.
    pub fn tensor(&self) -> Tensor {
        if is_grad_enabled() && !self.is_frozen() {
            self.var.as_tensor().clone()
        } else {
            self.var.as_detached_tensor()
        }
    }

    /// Stops training this parameter, PyTorch's `requires_grad_(False)`: no gradient is computed
    /// for it (the operations on it are not recorded), so an optimizer leaves it as it is.
    /// Clones share the flag, as they share the value.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
        self.zero_grad();
    }

    /// Trains this parameter again.
    pub fn unfreeze(&self) {
        self.frozen.store(false, Ordering::Relaxed);
    }

    /// Whether the parameter is frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Relaxed)
    }

    /// The underlying candle variable.
    pub fn var(&self) -> &Var {
        &self.var
    }

    /// The shape's dimensions.
    pub fn dims(&self) -> &[usize] {
        self.var.dims()
    }

    /// The number of scalars.
    pub fn elem_count(&self) -> usize {
        self.var.elem_count()
    }

    /// The gradient accumulated since the last [`zero_grad`](Param::zero_grad), if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.lock().clone()
    }

    /// Forgets the gradient (PyTorch's `zero_grad(set_to_none=True)`, its default).
    pub fn zero_grad(&self) {
        *self.lock() = None;
    }

    /// Adds `grad` to the accumulated gradient; a frozen parameter takes none.
    pub fn accumulate_grad(&self, grad: Tensor) -> Result<()> {
        if self.is_frozen() {
            return Ok(());
        }
        let mut slot = self.lock();
        *slot = Some(match slot.take() {
            None => grad.detach(),
            Some(old) => (old + grad.detach())?,
        });
        Ok(())
    }

    /// Overwrites the value in place (same shape), keeping the gradient.
    pub fn set(&self, value: &Tensor) -> Result<()> {
        Ok(self.var.set(value)?)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Tensor>> {
        // A poisoned lock only means another thread panicked mid-update; the slot is still valid.
        self.grad.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({:?})", self.dims())
    }
}

/// Computes the gradient of `loss` (a scalar) with respect to each of `params` and adds it to the
/// parameter's accumulated gradient: PyTorch's `loss.backward()`.
pub fn backward(loss: &Tensor, params: &[Param]) -> Result<()> {
    let mut grads = loss.backward()?;
    for p in params {
        if let Some(g) = grads.remove(p.var.as_tensor()) {
            p.accumulate_grad(g)?;
        }
    }
    Ok(())
}
