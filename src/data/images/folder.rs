//! Class folders as a data set: torchvision's `ImageFolder`, lesson 08's items, splitters and
//! parent-folder labeller.

use super::picture::{header_check, Picture, EXTENSIONS};
use crate::data::block::{get_files, RandomSplitter, Split, Splitter};
use crate::data::Dataset;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Pictures in class folders: every PNG and JPEG under `DIR/<class>/` (searched recursively),
/// labelled by the class folder, the classes sorted by name into the vocabulary. torchvision's
/// `ImageFolder`; fastai's `ImageList.from_files` with a parent-folder labeller.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    items: Vec<(PathBuf, u32)>,
    classes: Vec<String>,
    skipped: Vec<(PathBuf, String)>,
    stand_in: bool,
    unreadable: UnreadableLog,
}

/// The files whose header read but whose picture did not decode (a truncated PNG), noted as an
/// [`ImageFolder`] that [stands in](ImageFolder::stand_in_for_unreadable) for them meets them;
/// shared by the folder's clones and its loader's workers.
#[derive(Debug, Clone, Default)]
pub struct UnreadableLog(Arc<Mutex<Vec<(PathBuf, String)>>>);

impl UnreadableLog {
    /// The files met so far, with why, sorted by file.
    pub fn list(&self) -> Vec<(PathBuf, String)> {
        let mut list = self.0.lock().map(|l| l.clone()).unwrap_or_default();
        list.sort();
        list
    }

    fn note(&self, path: &Path, why: String) {
        if let Ok(mut list) = self.0.lock() {
            if !list.iter().any(|(p, _)| p == path) {
                list.push((path.to_path_buf(), why));
            }
        }
    }
}

impl ImageFolder {
    /// The pictures of `dir`'s class folders. Files whose header does not read as a PNG or JPEG
    /// of a valid size are left out and listed by [`skipped`](ImageFolder::skipped).
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let classes = class_folders(dir)?;
        Self::with_classes(dir, &classes)
    }

    /// The pictures of `dir`'s class folders, labelled by their place in `classes` (a training
    /// set's vocabulary, for its validation set); a class folder not in it is an error.
    pub fn with_classes(dir: impl AsRef<Path>, classes: &[String]) -> Result<Self> {
        // Decoded pictures are large blocks: glibc's thresholds raised once, so that they are
        // reused rather than mapped and faulted in afresh each time (see `fast/tune.rs`).
        crate::fast::tune();
        let dir = dir.as_ref();
        let mut items = Vec::new();
        for name in class_folders(dir)? {
            let Some(label) = classes.iter().position(|c| *c == name) else {
                let expected = format!("one of the training classes {classes:?}");
                return Err(Error::invalid("class folder", expected, dir.join(&name).display()));
            };
            let files = get_files(dir.join(&name), &EXTENSIONS)?;
            items.extend(files.into_iter().map(|f| (f, label as u32)));
        }
        ImageFolder::from_items(items, classes.to_vec())
    }

    /// Labelled picture files (a [`DataBlock`](crate::data::block::DataBlock)'s sets) and their
    /// class names. Files whose header does not read as a PNG or JPEG of a valid size are left
    /// out and listed by [`skipped`](ImageFolder::skipped); a label past the classes is an error.
    pub fn from_items(items: Vec<(PathBuf, u32)>, classes: Vec<String>) -> Result<ImageFolder> {
        let (mut kept, mut skipped) = (Vec::with_capacity(items.len()), Vec::new());
        for (file, label) in items {
            if label as usize >= classes.len() {
                let expected = format!("below the {} classes", classes.len());
                return Err(Error::invalid("picture label", expected, format!("{label} ({})", file.display())));
            }
            match header_check(&file) {
                Ok(()) => kept.push((file, label)),
                Err(why) => skipped.push((file, why)),
            }
        }
        Ok(ImageFolder { items: kept, classes, skipped, stand_in: false, unreadable: Default::default() })
    }

    /// Lesson 08's grandparent split: the training set from `dir/train`, the validation set from
    /// `dir/valid` with the training set's vocabulary.
    pub fn split(dir: impl AsRef<Path>) -> Result<(ImageFolder, ImageFolder)> {
        let dir = dir.as_ref();
        let train = ImageFolder::new(dir.join("train"))?;
        let valid = ImageFolder::with_classes(dir.join("valid"), &train.classes)?;
        Ok((train, valid))
    }

    /// One folder of class folders split at random (fastai's `RandomSplitter`): a share
    /// `valid_pct` of the pictures, drawn from `seed`, for validation, the rest for training;
    /// both keep the folder's vocabulary and their pictures' order.
    pub fn split_random(dir: impl AsRef<Path>, valid_pct: f64, seed: u64) -> Result<(ImageFolder, ImageFolder)> {
        let all = ImageFolder::new(dir)?;
        let sets = RandomSplitter { valid_pct, seed }.split(&all.items)?;
        let (mut train, mut valid) = (all.clone(), all);
        let keep = |items: Vec<(PathBuf, u32)>, want: Split| {
            items.into_iter().zip(&sets).filter(|(_, s)| **s == Some(want)).map(|(item, _)| item).collect()
        };
        train.items = keep(train.items, Split::Train);
        valid.items = keep(valid.items, Split::Valid);
        valid.skipped.clear();
        valid.unreadable = UnreadableLog::default();
        Ok((train, valid))
    }

    /// Whether `dir` is laid out for [`split`](ImageFolder::split): a `train` and a `valid`
    /// folder in it.
    pub fn is_split(dir: impl AsRef<Path>) -> bool {
        let dir = dir.as_ref();
        dir.join("train").is_dir() && dir.join("valid").is_dir()
    }

    /// The class names, in label order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Each picture's file and label.
    pub fn items(&self) -> &[(PathBuf, u32)] {
        &self.items
    }

    /// The files left out, with why.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// The folder, reading on past a file whose header read but whose picture does not decode
    /// (checking every picture whole up front would decode the data set once more): the file
    /// is noted in [`unreadable`](ImageFolder::unreadable) and the next picture that decodes
    /// stands in for it, with its own label, so that a long run is not lost to one bad file and
    /// no picture is given a wrong label. Without it, [`get`](Dataset::get) fails naming the file.
    pub fn stand_in_for_unreadable(mut self) -> Self {
        self.stand_in = true;
        self
    }

    /// The files met that did not decode (see
    /// [`stand_in_for_unreadable`](ImageFolder::stand_in_for_unreadable)).
    pub fn unreadable(&self) -> UnreadableLog {
        self.unreadable.clone()
    }
}

impl Dataset for ImageFolder {
    type Item = (Picture, u32);

    fn len(&self) -> usize {
        self.items.len()
    }

    /// The picture decoded, and its label.
    fn get(&self, index: usize) -> Result<(Picture, u32)> {
        let n = self.items.len();
        let (path, label) =
            self.items.get(index).ok_or_else(|| Error::invalid("image folder index", format!("below {n}"), index))?;
        let failed = match Picture::open(path) {
            Ok(picture) => return Ok((picture, *label)),
            Err(e) if !self.stand_in => return Err(e),
            Err(e) => e,
        };
        self.unreadable.note(path, failed.to_string());
        for (path, label) in self.items.iter().cycle().skip(index + 1).take(n - 1) {
            match Picture::open(path) {
                Ok(picture) => return Ok((picture, *label)),
                Err(e) => self.unreadable.note(path, e.to_string()),
            }
        }
        Err(failed)
    }
}

/// The sub-folders of `dir`, sorted by name.
fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        // A link to a folder is a class folder too.
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(Error::invalid("image folder", "class folders (DIR/<class>/*.png)", dir.display()));
    }
    Ok(names)
}
