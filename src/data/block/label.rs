//! Labellers and the category processor (lesson 08's `label_by_func` and `CategoryProcessor`).

use crate::error::{Error, Result};
use std::path::PathBuf;

/// Names each item's class. One required method; a closure is a labeller too.
pub trait Labeller<I> {
    /// The class name of `item`.
    fn label(&self, item: &I) -> Result<String>;
}

impl<I, F: Fn(&I) -> Result<String>> Labeller<I> for F {
    fn label(&self, item: &I) -> Result<String> {
        self(item)
    }
}

/// Lesson 08's `parent_labeler`: a file's class is the name of its folder.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParentLabeller;

impl Labeller<PathBuf> for ParentLabeller {
    fn label(&self, item: &PathBuf) -> Result<String> {
        let parent = item.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str());
        parent
            .map(str::to_owned)
            .ok_or_else(|| Error::invalid("file to label", "one in a named folder", item.display()))
    }
}

/// Class names to numbers: the vocabulary is fitted on the training labels only (sorted, and
/// numerically when every name is a whole number, so that MNIST's "10" follows "9"), then the
/// same mapping applies to the validation labels. Fitting it on all the data would let the
/// validation set decide something about training, and a class seen only in validation would
/// get a number the model was never trained to give: that is an error here, naming the class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryProcessor {
    vocab: Vec<String>,
}

impl CategoryProcessor {
    /// The vocabulary of the training labels.
    pub fn fit(train_labels: &[String]) -> CategoryProcessor {
        let mut vocab: Vec<String> = train_labels.to_vec();
        vocab.sort();
        vocab.dedup();
        if vocab.iter().all(|v| v.parse::<u64>().is_ok()) {
            vocab.sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
        }
        CategoryProcessor { vocab }
    }

    /// The class names, in number order.
    pub fn vocab(&self) -> &[String] {
        &self.vocab
    }

    /// The number of class `label`.
    pub fn process(&self, label: &str) -> Result<u32> {
        match self.vocab.iter().position(|v| v == label) {
            Some(i) => Ok(i as u32),
            None => Err(Error::invalid("class", format!("one of the training classes {:?}", self.vocab), label)),
        }
    }
}
