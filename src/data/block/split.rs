//! Splitters: which items train and which validate (lesson 08's `split_by_func`).

use crate::error::{Error, Result};
use crate::rng::Rng;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where an item goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training set.
    Train,
    /// The validation set.
    Valid,
}

/// Decides each item's set, or that it belongs to neither (`None`: a file beside the `train` and
/// `valid` folders). One required method; a closure over one item is a splitter too.
pub trait Splitter<I> {
    /// The set of each of `items`, in order.
    fn split(&self, items: &[I]) -> Result<Vec<Option<Split>>>;
}

impl<I, F: Fn(&I) -> Option<Split>> Splitter<I> for F {
    fn split(&self, items: &[I]) -> Result<Vec<Option<Split>>> {
        Ok(items.iter().map(self).collect())
    }
}

/// Lesson 08's `grandparent_splitter`: a file's set is named by the folder above its class
/// folder, `DIR/train/<class>/x.jpg` or `DIR/valid/<class>/x.jpg` (ImageNet's layout). A split by
/// the data's own folders, not by chance: the validation set stays the one its makers chose
/// (Imagenette's pictures of other photographers, other days), and the same on every machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrandparentSplitter {
    /// The training folder's name.
    pub train: String,
    /// The validation folder's name.
    pub valid: String,
}

impl Default for GrandparentSplitter {
    fn default() -> Self {
        GrandparentSplitter { train: "train".into(), valid: "valid".into() }
    }
}

impl Splitter<PathBuf> for GrandparentSplitter {
    fn split(&self, items: &[PathBuf]) -> Result<Vec<Option<Split>>> {
        let grandparent = |p: &Path| p.parent()?.parent()?.file_name()?.to_str().map(str::to_owned);
        Ok(items
            .iter()
            .map(|p| match grandparent(p) {
                Some(g) if g == self.train => Some(Split::Train),
                Some(g) if g == self.valid => Some(Split::Valid),
                _ => None,
            })
            .collect())
    }
}

/// fastai's `RandomSplitter`: a share `valid_pct` of the items, drawn from `seed`, validates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomSplitter {
    /// The validation share, above 0 and below 1.
    pub valid_pct: f64,
    /// The draw's seed.
    pub seed: u64,
}

impl<I> Splitter<I> for RandomSplitter {
    fn split(&self, items: &[I]) -> Result<Vec<Option<Split>>> {
        if !(self.valid_pct > 0.0 && self.valid_pct < 1.0) {
            return Err(Error::invalid("validation share", "above 0 and below 1", self.valid_pct));
        }
        let n_valid = (items.len() as f64 * self.valid_pct).round() as usize;
        let mut sets = vec![Some(Split::Train); items.len()];
        for &i in &Rng::new(self.seed).permutation(items.len())[..n_valid] {
            sets[i] = Some(Split::Valid);
        }
        Ok(sets)
    }
}

/// Items by position: those in `valid` validate, the others train (MNIST's split: the last
/// 10,000 of the training file, as the classic `mnist.pkl.gz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSplitter {
    /// The positions of the validation items.
    pub valid: Range<usize>,
}

impl<I> Splitter<I> for IndexSplitter {
    fn split(&self, items: &[I]) -> Result<Vec<Option<Split>>> {
        if self.valid.end > items.len() || self.valid.start >= self.valid.end {
            let expected = format!("a non-empty range within the {} items", items.len());
            return Err(Error::invalid("validation range", expected, format!("{:?}", self.valid)));
        }
        Ok((0..items.len()).map(|i| Some(if self.valid.contains(&i) { Split::Valid } else { Split::Train })).collect())
    }
}
