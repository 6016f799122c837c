//! Transfer learning (lesson 11a): a trained body loaded into a model with a new head, its
//! parameters frozen but for batch norm's, then unfrozen.

use super::fusion::concrete;
use super::{BatchNorm, Module};
use crate::error::{Error, Result};
use candle_core::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// What [`load_matching`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// The model's tensors (parameters and buffers) taken from the file: same name, same shape.
    pub kept: Vec<String>,
    /// The model's tensors the file has no match for (a new head): left as initialised.
    pub new: Vec<String>,
    /// The file's tensors the model has no use for (the old head), with their shapes.
    pub unused: Vec<String>,
}

/// Loads into `module` every tensor of `tensors` whose name and shape match one of its own, and
/// leaves the rest as they are: a body trained on one data set under a head made for another
/// (lesson 11a's `adapt_model`). Nothing is set unless at least one parameter matches, and batch
/// norm statistics are checked first, as [`load_tensors`](super::load_tensors) checks them
/// (`path` names the file in errors).
///
/// ```
/// use minibatch::{load_matching, mlp, state_dict, Module};
/// let trained = mlp(&[4, 8, 10], 1)?; // ten classes
/// let fresh = mlp(&[4, 8, 3], 2)?;    // three
/// let report = load_matching(&fresh, &state_dict(&trained), "trained.safetensors".as_ref())?;
/// assert_eq!(report.kept, ["0.weight", "0.bias"]);
/// assert_eq!(report.new, ["2.weight", "2.bias"]);
/// assert_eq!(report.unused.len(), 2);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn load_matching(module: &dyn Module, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<Transfer> {
    let params = module.named_parameters();
    let buffers = module.named_buffers();
    let mut report = Transfer::default();
    let fits = |name: &str, dims: &[usize]| tensors.get(name).is_some_and(|t| t.dims() == dims);
    for (name, dims) in
        params.iter().map(|(n, p)| (n, p.dims().to_vec())).chain(buffers.iter().map(|(n, b)| (n, b.dims())))
    {
        if fits(name, &dims) {
            report.kept.push(name.clone());
        } else {
            report.new.push(name.clone());
        }
    }
    let mut unused: Vec<String> =
        tensors.iter().filter(|(k, _)| !report.kept.contains(k)).map(|(k, t)| format!("{k} {:?}", t.dims())).collect();
    unused.sort();
    report.unused = unused;
    // Buffers alone (batch norm's counters) match across architectures: a parameter must.
    if !params.iter().any(|(n, _)| report.kept.contains(n)) {
        return Err(Error::NothingInCommon { path: path.to_path_buf(), file: tensors.len(), model: params.len() });
    }
    for (name, b) in buffers.iter().filter(|(n, _)| report.kept.contains(n)) {
        if let Err(found) = b.check(&tensors[name]) {
            let expected = "a value its layer can use".into();
            return Err(Error::StateMismatch { path: path.to_path_buf(), name: name.clone(), expected, found });
        }
    }
    for (name, p) in params.iter().filter(|(n, _)| report.kept.contains(n)) {
        // A copy: the tensor may be a view of this very parameter (its own `state_dict`).
        p.set(&tensors[name].to_dtype(p.tensor().dtype())?.copy()?)?;
    }
    for (name, b) in buffers.iter().filter(|(n, _)| report.kept.contains(n)) {
        b.set(tensors[name].to_dtype(b.get().dtype())?);
    }
    Ok(report)
}

/// Freezes every parameter of `module` except its batch norm layers' (lesson 11a's finding: a
/// body whose batch norm is frozen too fine-tunes much worse, since its statistics and scales
/// were fitted to the other data set), as fastai's `freeze` does with `train_bn=True`. Frozen
/// parameters get no gradient and no update; the running statistics still move in training.
/// Returns the number of parameters frozen.
pub fn freeze(module: &dyn Module) -> usize {
    freeze_with(module, true)
}

/// [`freeze`]s every child of `module` but the last, the head of a `Sequential` (or
/// [`XResNet`](crate::XResNet)) classifier: fastai's `learn.freeze()`. Returns the number of
/// parameters frozen.
pub fn freeze_body(module: &dyn Module) -> usize {
    let children = module.named_children();
    let body = children.len().saturating_sub(1);
    children[..body].iter().map(|(_, child)| freeze(*child)).sum()
}

/// [`freeze`], freezing batch norm's parameters too unless `train_bn`.
pub fn freeze_with(module: &dyn Module, train_bn: bool) -> usize {
    let skip = train_bn && concrete(module).is::<BatchNorm>();
    let own = if skip { 0 } else { module.own_parameters().iter().map(|(_, p)| p.freeze()).count() };
    own + module.named_children().iter().map(|(_, child)| freeze_with(*child, train_bn)).sum::<usize>()
}

/// Trains every parameter of `module` again.
pub fn unfreeze(module: &dyn Module) {
    module.parameters().iter().for_each(super::Param::unfreeze);
}

/// `n` learning rates from `lo` to `hi`, evenly spaced on a log scale: fastai's `slice(lo, hi)`
/// for `n` parameter groups (the body's first layers learn slowest, the head fastest). One
/// group takes `hi`.
///
/// ```
/// let lrs = minibatch::lr_slice(1e-4, 1e-2, 3)?;
/// assert!((lrs[0] - 1e-4).abs() < 1e-12 && (lrs[1] - 1e-3).abs() < 1e-12 && (lrs[2] - 1e-2).abs() < 1e-12);
/// assert!(minibatch::lr_slice(0.0, 1e-2, 3).is_err()); // a log scale has no 0
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn lr_slice(lo: f64, hi: f64, n: usize) -> Result<Vec<f64>> {
    for (name, v) in [("lr_slice low rate", lo), ("lr_slice high rate", hi)] {
        if !(v > 0.0 && v.is_finite()) {
            return Err(Error::invalid(name, "a finite rate above 0", v));
        }
    }
    Ok(match n {
        0 => Vec::new(),
        1 => vec![hi],
        _ => (0..n).map(|i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64)).collect(),
    })
}
