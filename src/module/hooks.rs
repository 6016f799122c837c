//! Forward hooks (lesson 06): functions called with a module's input and output each time it
//! runs, to look inside a model without changing it.

use super::Module;
use crate::error::Result;
use candle_core::Tensor;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a forward hook is called with, as PyTorch's: the module that ran, its input and its
/// output. The module answers [`is_training`](super::Registered::is_training) (the lesson's
/// `mod.training`) and names its type.
pub type ForwardHook = Arc<dyn Fn(&dyn Module, &Tensor, &Tensor) + Send + Sync>;

struct Entry {
    id: u64,
    module: Identity,
    hook: ForwardHook,
}

/// How a module is known: its type and its first parameter's tensor (stable while the module
/// lives, wherever it is moved, and never given to another), or, for a module without
/// parameters (a pooling, a `View`), its type and address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    type_name: String,
    key: Key,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Param(candle_core::TensorId),
    Address(usize),
}

static HOOKS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// The number of hooks registered: zero makes every check a single load.
static COUNT: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn hooks() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    // A poisoned lock only means a hook panicked; the list itself is whole.
    HOOKS.lock().unwrap_or_else(|e| e.into_inner())
}

fn identity(module: &dyn Module) -> Identity {
    let key = match first_parameter(module) {
        Some(id) => Key::Param(id),
        None => Key::Address((module as *const dyn Module).cast::<()>() as usize),
    };
    Identity { type_name: module.type_name(), key }
}

fn first_parameter(module: &dyn Module) -> Option<candle_core::TensorId> {
    if let Some((_, p)) = module.own_parameters().into_iter().next() {
        return Some(p.var().as_tensor().id());
    }
    module.named_children().into_iter().find_map(|(_, child)| first_parameter(child))
}

/// Keeps a hook registered; dropping it (or [`remove`](HookHandle::remove)) removes the hook, as
/// PyTorch's `handle.remove()` does, so a forgotten hook cannot outlive the code that needed it.
#[must_use = "the hook is removed when its handle is dropped"]
#[derive(Debug)]
pub struct HookHandle {
    id: u64,
}

impl HookHandle {
    /// Removes the hook now.
    pub fn remove(self) {}
}

impl Drop for HookHandle {
    fn drop(&mut self) {
        let mut list = hooks();
        let before = list.len();
        list.retain(|e| e.id != self.id);
        COUNT.fetch_sub(before - list.len(), Ordering::Relaxed);
    }
}

/// Calls `hook(module, input, output)` after every forward of `module` run through a
/// [`Sequential`](super::Sequential) or [`forward_with_hooks`]: PyTorch's `register_forward_hook`. A
/// `Sequential` does not fold a hooked layer with the `ReLU` after it, so the hook sees the
/// layer's own output. The hook lives until the handle is dropped.
///
/// A module with parameters is known by them, so its hooks follow it wherever it is moved (into
/// a `Box`, a `Learner`). One without parameters (a pooling, a `View`) is known by its address:
/// hook it where it does not move (inside a `Sequential`, whose layers are boxed). A zero-sized
/// module (a `ReLU`, a `Flatten`, a closure) has no address of its own, as every value of its
/// type shares one: hook the layer's slot in its `Sequential`, `&seq.layers()[i]` (the box,
/// which a `&dyn Module` takes as well), to hook that one layer; hooked as itself, its hooks see
/// every layer of its type.
///
/// ```
/// use minibatch::{forward_with_hooks, register_forward_hook, Linear, Module, Rng};
/// use std::sync::{Arc, Mutex};
/// let layer = Linear::new(3, 2, &mut Rng::new(0))?;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let handle = register_forward_hook(&layer, move |_module, _x, y| log.lock().unwrap().push(y.dims().to_vec()))?;
/// let x = candle_core::Tensor::zeros((4, 3), candle_core::DType::F32, &candle_core::Device::Cpu)?;
/// forward_with_hooks(&layer, &x)?;
/// drop(handle);
/// forward_with_hooks(&layer, &x)?;
/// assert_eq!(*seen.lock().unwrap(), vec![vec![4, 2]]);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn register_forward_hook(
    module: &dyn Module,
    hook: impl Fn(&dyn Module, &Tensor, &Tensor) + Send + Sync + 'static,
) -> Result<HookHandle> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    hooks().push(Entry { id, module: identity(module), hook: Arc::new(hook) });
    COUNT.fetch_add(1, Ordering::Relaxed);
    Ok(HookHandle { id })
}

/// The hooks registered on any of `modules`, each once (empty at once when none is registered).
fn hooks_of(modules: &[&dyn Module]) -> Vec<ForwardHook> {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return Vec::new();
    }
    let ids: Vec<Identity> = modules.iter().map(|m| identity(*m)).collect();
    hooks().iter().filter(|e| ids.contains(&e.module)).map(|e| e.hook.clone()).collect()
}

/// The hooks of the layer in `slot` (a container's box), registered on the layer or on its slot:
/// the box's own address names the slot of a zero-sized layer.
#[allow(clippy::borrowed_box)]
pub(crate) fn slot_hooks(slot: &Box<dyn Module>) -> Vec<ForwardHook> {
    hooks_of(&[slot.as_ref(), slot])
}

/// `module.forward(xs)` followed by its forward hooks: PyTorch's `module(x)`. A model's own
/// `forward` calls its layers this way when its layers' hooks should fire (a
/// [`Sequential`](super::Sequential) does it for its layers).
pub fn forward_with_hooks(module: &dyn Module, xs: &Tensor) -> Result<Tensor> {
    let y = module.forward(xs)?;
    // Called outside the registry's lock, so that a hook may register or drop hooks.
    hooks_of(&[module]).iter().for_each(|hook| hook(module, xs, &y));
    Ok(y)
}
