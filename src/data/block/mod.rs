//! Lesson 08's data block API: the pieces that turn a source of items into labelled training and
//! validation sets, each a small type that can be swapped for another.
//!
//! - **items**: a `Vec` of anything; [`get_files`] finds the files of a folder.
//! - **splitter** ([`Splitter`]): [`GrandparentSplitter`], [`RandomSplitter`], [`IndexSplitter`],
//!   or a closure.
//! - **labeller** ([`Labeller`]): [`ParentLabeller`], or a closure.
//! - **processor** ([`CategoryProcessor`]): class names to numbers, fitted on the training set.
//!
//! [`DataBlock::label`] runs them in that order. The labelled items then become a data set with
//! a reader ([`ItemDataset`]: a picture decoder, an IDX row) and batches with the
//! [`DataLoader`](crate::DataLoader)'s per-item transforms (in its workers) and collate.
//!
//! ```
//! use minibatch::data::block::{DataBlock, IndexSplitter, ItemDataset};
//! use minibatch::mnist::read_idx;
//! use minibatch::DataLoader;
//! use std::sync::Arc;
//! // MNIST through the same pieces: the items are the training file's images, the split its
//! // last 10,000 (the classic one), the labels its digits, the reader a row of pixels.
//! let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"));
//! let images = Arc::new(read_idx(&dir.join("train-images-idx3-ubyte.gz"), 3)?);
//! let labels = read_idx(&dir.join("train-labels-idx1-ubyte.gz"), 1)?;
//! let items: Vec<usize> = (0..labels.data.len()).collect();
//! let label = move |&i: &usize| Ok(labels.data[i].to_string());
//! let sets = DataBlock::new(IndexSplitter { valid: 50_000..60_000 }, label).label(items)?;
//! assert_eq!((sets.train.len(), sets.valid.len(), sets.vocab.len()), (50_000, 10_000, 10));
//! let row = |i: usize| images.data[i * 784..(i + 1) * 784].iter().map(|&p| p as f32 / 255.0).collect::<Vec<f32>>();
//! let read = move |&i: &usize| Ok(row(i));
//! let dl = DataLoader::builder(ItemDataset::new(sets.train, read)).batch_size(64).build()?;
//! let (x, y) = dl.iter().next().unwrap()?;
//! assert_eq!((x.dims(), &y.to_vec1::<u32>()?[..3]), (&[64, 784][..], &[5, 0, 4][..]));
//! # Ok::<(), minibatch::Error>(())
//! ```

mod label;
mod split;

pub use label::{CategoryProcessor, Labeller, ParentLabeller};
pub use split::{GrandparentSplitter, IndexSplitter, RandomSplitter, Split, Splitter};

use crate::data::Dataset;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Every file under `dir` (searched recursively, following links to folders, each real folder
/// once) whose ending is one of `extensions` (compared without case), sorted: lesson 08's
/// `get_files`.
pub fn get_files(dir: impl AsRef<Path>, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    find(dir.as_ref(), extensions, &mut Vec::new(), &mut out)?;
    out.sort();
    Ok(out)
}

fn find(dir: &Path, extensions: &[&str], seen: &mut Vec<PathBuf>, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    // A link back to a folder above is a loop: each real folder is searched once.
    let real = std::fs::canonicalize(dir).map_err(io)?;
    if seen.contains(&real) {
        return Ok(());
    }
    seen.push(real);
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        // Links are followed; a broken one is listed by its name, for the reader to refuse.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            find(&path, extensions, seen, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// A splitter and a labeller, run over items by [`label`](DataBlock::label).
pub struct DataBlock<I> {
    splitter: Box<dyn Splitter<I>>,
    labeller: Box<dyn Labeller<I>>,
}

/// Items split and labelled: each with its class number, and the class names.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled<I> {
    /// The training items and their class numbers.
    pub train: Vec<(I, u32)>,
    /// The validation items and their class numbers.
    pub valid: Vec<(I, u32)>,
    /// The class names, in number order (the training set's).
    pub vocab: Vec<String>,
}

impl<I> DataBlock<I> {
    /// The block of this splitter and labeller.
    pub fn new(splitter: impl Splitter<I> + 'static, labeller: impl Labeller<I> + 'static) -> Self {
        DataBlock { splitter: Box::new(splitter), labeller: Box::new(labeller) }
    }

    /// Splits `items`, labels them, fits the [`CategoryProcessor`] on the training labels and
    /// numbers both sets by it. Items of neither set are dropped; a validation class the
    /// training set lacks is an error naming it.
    pub fn label(&self, items: Vec<I>) -> Result<Labelled<I>> {
        let sets = self.splitter.split(&items)?;
        if sets.len() != items.len() {
            return Err(Error::invalid("splitter's answers", format!("one per item ({})", items.len()), sets.len()));
        }
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        for (item, set) in items.into_iter().zip(sets) {
            match set {
                Some(Split::Train) => train.push((self.labeller.label(&item)?, item)),
                Some(Split::Valid) => valid.push((self.labeller.label(&item)?, item)),
                None => {}
            }
        }
        let names: Vec<String> = train.iter().map(|(l, _)| l.clone()).collect();
        let proc = CategoryProcessor::fit(&names);
        let number = |set: Vec<(String, I)>| -> Result<Vec<(I, u32)>> {
            set.into_iter().map(|(l, item)| Ok((item, proc.process(&l)?))).collect()
        };
        Ok(Labelled { train: number(train)?, valid: number(valid)?, vocab: proc.vocab().to_vec() })
    }
}

/// Labelled items and the reader that opens one: a [`Dataset`] of `(read item, class)`.
pub struct ItemDataset<I, F> {
    items: Vec<(I, u32)>,
    read: F,
}

impl<I, X, F: Fn(&I) -> Result<X>> ItemDataset<I, F> {
    /// The items of one set of [`Labelled`], read by `read`.
    pub fn new(items: Vec<(I, u32)>, read: F) -> Self {
        ItemDataset { items, read }
    }
}

impl<I, X, F: Fn(&I) -> Result<X>> Dataset for ItemDataset<I, F> {
    type Item = (X, u32);

    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Result<(X, u32)> {
        let n = self.items.len();
        let (item, label) =
            self.items.get(index).ok_or_else(|| Error::invalid("item index", format!("below {n}"), index))?;
        Ok(((self.read)(item)?, *label))
    }
}
