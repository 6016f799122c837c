//! Saving and loading a module's parameters as safetensors.

use super::Module;
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// The parameters and buffers by their names (`0.weight`, `1.1.running_mean`): PyTorch's
/// `state_dict`. As PyTorch's, the tensors are the model's own values, not copies: an in-place
/// step (SGD's) changes them too, so keep a copy (`t.copy()`) of what must not move, a best
/// epoch's weights say. Loading one back into its model works.
pub fn state_dict(module: &dyn Module) -> HashMap<String, Tensor> {
    let params = module.named_parameters().into_iter().map(|(n, p)| (n, p.tensor().detach()));
    params.chain(module.named_buffers().into_iter().map(|(n, b)| (n, b.get()))).collect()
}

/// The metadata key under which [`save_state`] records what model the file holds.
pub const MODEL_KEY: &str = "minibatch.model";

/// Writes the parameters and buffers to a safetensors file under their names (`0.weight`,
/// ...), which PyTorch's `load_state_dict(safetensors.torch.load_file(path))` takes for the same
/// model. The file also says what model it holds: the module's printed form (PyTorch's repr,
/// activations and their settings included) in its metadata under [`MODEL_KEY`], which
/// [`saved_model`] reads back. The file is written to a temporary name and renamed, so an
/// interrupted save never leaves a half-written file where a good one was.
pub fn save_state(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    save_state_with(module, path, HashMap::new())
}

/// [`save_state`] with more notes in the file's metadata (string keys and values, which
/// PyTorch's loader ignores): what a model needs besides its weights, as the class names and
/// input size of a model trained on pictures. [`saved_notes`] reads them back.
///
/// ```
/// use std::collections::HashMap;
/// let model = minibatch::Linear::new(2, 3, &mut minibatch::Rng::new(0))?;
/// let path = std::env::temp_dir().join(format!("notes-{}.safetensors", std::process::id()));
/// minibatch::save_state_with(&model, &path, HashMap::from([("classes".into(), "cat,dog".into())]))?;
/// assert_eq!(minibatch::module::saved_notes(&path)?["classes"], "cat,dog");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn save_state_with(module: &dyn Module, path: impl AsRef<Path>, mut notes: HashMap<String, String>) -> Result<()> {
    notes.insert(MODEL_KEY.to_string(), super::repr(module));
    write_tensors(&state_dict(module), path.as_ref(), Some(notes))
}

/// The metadata of a safetensors file: [`save_state_with`]'s notes, and what model it holds
/// under [`MODEL_KEY`]; empty for a file without any (one PyTorch wrote).
pub fn saved_notes(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = crate::files::read_regular(path)?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::BadStateFile { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// What model a weights file says it holds (the printed form [`save_state`] recorded), or
/// `None` for a file that does not say (one PyTorch wrote).
pub fn saved_model(path: &Path) -> Result<Option<String>> {
    Ok(saved_notes(path)?.remove(MODEL_KEY))
}

/// Writes named tensors to a safetensors file atomically: to a temporary file beside it, flushed
/// to disk, then renamed over it, so that a crash mid-write leaves the old file whole. Used for
/// weights and for optimizer state (`save_tensors(&opt.state_dict(), path)`). Every failure
/// (a missing folder, a full disk, a folder of that name) is an error naming `path`, and leaves
/// no temporary file.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    write_tensors(tensors, path, None)
}

/// [`save_tensors`] with the file's metadata.
fn write_tensors(tensors: &HashMap<String, Tensor>, path: &Path, about: Option<HashMap<String, String>>) -> Result<()> {
    let bytes = safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), about)
        .map_err(|e| Error::BadStateFile { path: path.to_path_buf(), reason: e.to_string() })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()
    })();
    // Whatever fails (the write, or the rename onto a folder), no temporary file is left behind.
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Reads every tensor of a safetensors file; a file that is not one is an
/// [`Error::BadStateFile`] naming it.
pub fn read_state(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = crate::files::read_regular(path)?;
    parse_state(&bytes, path)
}

/// [`read_state`] on bytes in memory (`name` names them in errors): what the fuzzer drives.
pub fn parse_state(bytes: &[u8], name: &Path) -> Result<HashMap<String, Tensor>> {
    let path = name;
    candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| Error::BadStateFile { path: path.to_path_buf(), reason: e.to_string() })
}

/// Loads parameters and buffers saved by [`save_state`] (or PyTorch's
/// `safetensors.torch.save_file(model.state_dict(), ..)`) into `module`. Every parameter and buffer
/// must be in the file with its shape; nothing is changed unless all are, and an error names the
/// tensor and both shapes.
pub fn load_state(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    load_tensors(module, &read_state(path)?, path)
}

/// What a file lacking a tensor holds instead: its first names, in order, to tell a file of
/// another model.
fn not_there(tensors: &HashMap<String, Tensor>) -> String {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let shown: Vec<&str> = names.iter().take(4).map(|n| n.as_str()).collect();
    match names.len() {
        0 => "nothing (the file holds no tensor)".into(),
        n if n > shown.len() => format!("nothing (the file holds {}, ... {n} tensors in all)", shown.join(", ")),
        _ => format!("nothing (the file holds {})", shown.join(", ")),
    }
}

/// [`load_state`] from tensors already read (`path` names their file in errors).
pub fn load_tensors(module: &dyn Module, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let params = module.named_parameters();
    let buffers = module.named_buffers();
    let mismatch = |name: &str, expected: String, found: String| Error::StateMismatch {
        path: path.to_path_buf(),
        name: name.to_string(),
        expected,
        found,
    };
    let wanted = params.iter().map(|(n, p)| (n, p.dims().to_vec())).chain(buffers.iter().map(|(n, b)| (n, b.dims())));
    for (name, dims) in wanted {
        match tensors.get(name) {
            None => return Err(mismatch(name, format!("{dims:?}"), not_there(tensors))),
            Some(t) if t.dims() != dims => return Err(mismatch(name, format!("{dims:?}"), format!("{:?}", t.dims()))),
            Some(_) => {}
        }
    }
    let known = |k: &String| params.iter().any(|(n, _)| n == k) || buffers.iter().any(|(n, _)| n == k);
    if let Some(extra) = tensors.keys().find(|k| !known(k)) {
        return Err(mismatch(extra, "no such parameter".into(), format!("{:?}", tensors[extra].dims())));
    }
    for (name, b) in &buffers {
        // Checked before anything is set: a refused file leaves the model as it was.
        if let Err(found) = b.check(&tensors[name]) {
            return Err(mismatch(name, "a value its layer can use".into(), found));
        }
    }
    for (name, p) in &params {
        // A copy: the tensor may be a view of this very parameter (its own `state_dict`).
        p.set(&tensors[name].to_dtype(p.tensor().dtype())?.copy()?)?;
    }
    for (name, b) in &buffers {
        b.set(tensors[name].to_dtype(b.get().dtype())?);
    }
    Ok(())
}
