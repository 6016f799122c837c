//! `train --pretrained`: a trained body loaded under this run's head (lesson 11a).

use crate::out::outln;
use anyhow::{bail, Context};
use minibatch::learner::latest_checkpoint;
use minibatch::Module;
use std::path::Path;

/// The rate of a pretrained body's parameters, over the head's (lesson 11a's discriminative
/// rates: the body needs only adjusting).
pub const BODY_LR_RATIO: f64 = 0.1;

/// The names of the parameters of every child of `model` but the last (its head).
pub fn body_names(model: &dyn Module) -> Vec<String> {
    let children = model.named_children();
    let Some((head, _)) = children.last() else { return Vec::new() };
    let head = format!("{head}.");
    model.named_parameters().into_iter().map(|(n, _)| n).filter(|n| !n.starts_with(&head)).collect()
}

/// Loads the body of `path` (a weights file or a checkpoint folder) into `model`, saying what was
/// kept and what is new when `say`.
pub fn load_body(model: &dyn Module, path: &Path, say: Say) -> anyhow::Result<()> {
    let file = if path.is_dir() {
        let info = latest_checkpoint(path).with_context(|| {
            format!("--pretrained {}: a folder, but not one of a run's checkpoints", path.display())
        })?;
        info.dir.join("model.safetensors")
    } else {
        path.to_path_buf()
    };
    let tensors = minibatch::module::read_state(&file)?;
    // The whole body must be there: a body of another model (a cnn's under a cnn-bn) would
    // leave some of it untrained.
    let params = model.named_parameters();
    for name in body_names(model) {
        let dims = params.iter().find(|(n, _)| *n == name).map(|(_, p)| p.dims().to_vec()).unwrap_or_default();
        if tensors.get(&name).map(|t| t.dims()) != Some(&dims[..]) {
            let found = tensors.get(&name).map_or("nothing".to_string(), |t| format!("{:?}", t.dims()));
            bail!(
                "{}: not a body of this model: its `{name}` should be {dims:?}, the file has {found} (--pretrained takes weights of the same --model)",
                file.display()
            );
        }
    }
    let report = minibatch::load_matching(model, &tensors, &file)?;
    let new = if report.new.is_empty() { "none".to_string() } else { report.new.join(", ") };
    let line = format!("pretrained: {} tensors kept from {}; new: {new}", report.kept.len(), file.display());
    match say {
        Say::Out => outln!("{line}"),
        Say::Err => eprintln!("minibatch: {line}"),
        Say::Nothing => {}
    }
    Ok(())
}

/// Where a message of the first process goes: standard output, or standard error beside
/// `--json`'s lines; the other processes say nothing.
#[derive(Clone, Copy)]
pub enum Say {
    Out,
    Err,
    Nothing,
}
