//! Image folders in the program: telling one from IDX files, its loaders, and the notes a model
//! trained on one keeps in its weights file (class names, input size, normalisation), so that
//! `eval` and `predict` need nothing else.

use crate::args::{ModelKind, TrainArgs};
use anyhow::{bail, Context};
use minibatch::data::images::{folder_dls, FolderDls, FolderOptions, ImageFolder, PictureCollate, UnreadableLog};
use minibatch::{Dataset, DlsOptions};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The metadata key of a model's [`FolderNotes`].
pub const NOTES_KEY: &str = "minibatch.data";

/// What a model trained on pictures needs besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderNotes {
    /// The class names, in label order.
    pub classes: Vec<String>,
    /// One input's `[channels, height, width]`.
    pub input: [usize; 3],
    /// Per-channel means of the training pictures.
    pub mean: [f32; 3],
    /// Per-channel standard deviations.
    pub std: [f32; 3],
    /// For a folder split at random: the validation share and the seed that drew it.
    #[serde(default)]
    pub random_split: Option<(f64, u64)>,
}

impl FolderNotes {
    /// The notes as a weights file's metadata.
    pub fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([(NOTES_KEY.to_string(), serde_json::to_string(self).unwrap_or_default())])
    }

    /// The notes in a weights file, if it has them.
    pub fn of_file(path: &Path) -> anyhow::Result<Option<FolderNotes>> {
        let Some(text) = minibatch::module::saved_notes(path)?.remove(NOTES_KEY) else { return Ok(None) };
        let notes: FolderNotes = serde_json::from_str(&text)
            .with_context(|| format!("{}: its `{NOTES_KEY}` metadata does not read", path.display()))?;
        if notes.classes.is_empty() || notes.input[0] != 3 || notes.input[1] == 0 || notes.input[1] != notes.input[2] {
            bail!("{}: its `{NOTES_KEY}` metadata names no classes or no square RGB input", path.display());
        }
        Ok(Some(notes))
    }

    /// The normalisation.
    pub fn collate(&self) -> PictureCollate {
        PictureCollate { mean: self.mean, std: self.std }
    }

    /// The side of the square pictures.
    pub fn size(&self) -> u32 {
        self.input[1] as u32
    }
}

/// Whether `dir` holds an image folder (class folders, or `train` and `valid`) rather than IDX
/// files: it has a sub-folder and no IDX file.
pub fn is_image_folder(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    let (mut folders, mut idx) = (false, false);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            folders = true;
        } else if name.contains("ubyte") || name.contains("idx") {
            idx = true;
        }
    }
    folders && !idx
}

/// The smallest picture an XResNet takes: its stem and stages halve it five times.
const MIN_XRESNET_SIZE: u32 = 17;

/// The default model for pictures (an mlp takes flat images): the CNN with batch norm.
const FOLDER_MODEL: ModelKind = ModelKind::CnnBn;

/// The loaders of the image folder `dir` for the run `a` (whose model becomes the CNN with batch
/// norm unless `--model` named one), and the notes its model will keep.
pub fn loaders(a: &mut TrainArgs, dir: &Path, first: bool) -> anyhow::Result<(FolderDls, FolderNotes)> {
    if a.data.valid_size.is_some() || a.data.classes.is_some() {
        bail!("--valid-size and --classes are for IDX files; an image folder's classes are its folders (--valid-pct splits one)");
    }
    if a.model == ModelKind::Mlp {
        if a.given.iter().any(|g| g == "model") {
            bail!("--model mlp takes flat images; train an image folder with cnn, cnn-bn or an xresnet");
        }
        a.model = FOLDER_MODEL;
    }
    let size = a.size.unwrap_or(128);
    if a.model.is_xresnet() && size < MIN_XRESNET_SIZE {
        bail!("--model {} needs --size {MIN_XRESNET_SIZE} or more (it halves the picture five times)", a.model.name());
    }
    if a.data.valid_pct.is_some() && ImageFolder::is_split(dir) && first {
        eprintln!(
            "minibatch: warning: --valid-pct ignored: {} is split by its `train` and `valid` folders",
            dir.display()
        );
    }
    let options = FolderOptions {
        size,
        bs: a.bs(),
        augment: a.augment.unwrap_or_default(),
        valid_pct: a.data.valid_pct.unwrap_or(0.2),
        loader: DlsOptions { seed: a.seed, workers: a.workers, ..Default::default() },
        ..Default::default()
    };
    let dls = folder_dls(dir, &options).with_context(|| format!("{}: the image folder", dir.display()))?;
    if first {
        warn_skipped(&[dls.train.dataset(), dls.valid.dataset()]);
    }
    let notes = FolderNotes {
        classes: dls.classes.clone(),
        input: [3, size as usize, size as usize],
        mean: dls.stats.mean,
        std: dls.stats.std,
        random_split: (!ImageFolder::is_split(dir)).then_some((options.valid_pct, a.seed)),
    };
    Ok((dls, notes))
}

/// One warning line per file left out, then their count.
pub fn warn_skipped(sets: &[&ImageFolder]) {
    let skipped: Vec<_> = sets.iter().flat_map(|s| s.skipped()).collect();
    for (file, why) in &skipped {
        eprintln!("minibatch: warning: skipped {}: {why}", file.display().to_string().escape_debug());
    }
    if !skipped.is_empty() {
        let total: usize = sets.iter().map(|s| s.len()).sum::<usize>() + skipped.len();
        eprintln!("minibatch: warning: {} of {total} files skipped (not a readable PNG or JPEG)", skipped.len());
    }
}

/// One warning line per file that did not decode when read (another picture stood in for it),
/// then their count.
pub fn warn_unreadable(logs: &[UnreadableLog]) {
    let failed: Vec<_> = logs.iter().flat_map(|l| l.list()).collect();
    for (file, why) in &failed {
        eprintln!(
            "minibatch: warning: {} did not decode ({why}); the next picture stood in for it",
            file.display().to_string().escape_debug()
        );
    }
    if !failed.is_empty() {
        eprintln!("minibatch: warning: pictures that did not decode: {}", failed.len());
    }
}
