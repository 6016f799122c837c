//! The MNIST database (and any IDX data set of the same form): the notebook's step 1.
//!
//! [`Mnist::load`] reads the four IDX files of a folder and splits them as the classic
//! `mnist.pkl.gz` did: training = the first 50,000 images of the training file, validation = its
//! last 10,000, test = the `t10k` file. Pixels stay `u8` in memory (47 MB rather than 188 MB of
//! `f32`) and are scaled to `[0, 1]` when a batch is collated.

mod idx;
mod images;
mod render;

pub use idx::{parse_idx, read_idx, Idx};
pub(crate) use images::images_to_batch;
pub use images::{ImageDataset, ImageItem, Pixels};
pub use render::render_digit;

use crate::error::{Error, IdxProblem, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to split and check the data.
#[derive(Debug, Clone, Default)]
pub struct MnistConfig {
    /// Images taken from the end of the training file for validation. `None`: 10,000 for a file of
    /// 60,000 (MNIST's split), and the last sixth for a file of another size.
    pub valid_size: Option<usize>,
    /// The number of classes. `None`: one more than the largest training label.
    pub classes: Option<usize>,
}

/// The training, validation and test sets of an IDX data set.
///
/// ```no_run
/// let data = minibatch::Mnist::load("data/mnist")?;
/// assert_eq!((data.train.len(), data.valid.len(), data.test.len()), (50_000, 10_000, 10_000));
/// assert_eq!((data.train.image_len(), data.classes()), (784, 10));
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Mnist {
    /// The first images of the training file.
    pub train: ImageDataset,
    /// The last images of the training file.
    pub valid: ImageDataset,
    /// The test file.
    pub test: ImageDataset,
}

impl Mnist {
    /// Loads `dir` with MNIST's split (see [`MnistConfig`]).
    pub fn load(dir: impl AsRef<Path>) -> Result<Mnist> {
        Self::load_with(dir, &MnistConfig::default())
    }

    /// Loads `dir` with a chosen split and class count.
    pub fn load_with(dir: impl AsRef<Path>, config: &MnistConfig) -> Result<Mnist> {
        let dir = dir.as_ref();
        let train = load_pair(dir, "train")?;
        let test = load_pair(dir, "t10k")?;
        let n = train.labels.len();
        let classes = config.classes.unwrap_or_else(|| train.labels.iter().max().map_or(0, |&m| m as usize + 1));
        check_labels(&train.labels_path, &train.labels, classes)?;
        check_labels(&test.labels_path, &test.labels, classes)?;
        let valid = config.valid_size.unwrap_or(if n == 60_000 { 10_000 } else { n / 6 });
        if valid >= n {
            return Err(Error::Idx { path: train.images_path, problem: IdxProblem::Split { valid, total: n } });
        }
        let full = ImageDataset::new(train.images, train.labels, classes)?;
        Ok(Mnist {
            train: full.slice(0, n - valid)?,
            valid: full.slice(n - valid, valid)?,
            test: ImageDataset::new(test.images, test.labels, classes)?,
        })
    }

    /// The number of classes (10 for MNIST).
    pub fn classes(&self) -> usize {
        self.train.classes()
    }
}

/// An image file and its label file, read.
struct Pair {
    images_path: PathBuf,
    images: Idx,
    labels_path: PathBuf,
    labels: Arc<[u8]>,
}

/// Reads `{prefix}-images` and `{prefix}-labels` and checks that they agree in count.
fn load_pair(dir: &Path, prefix: &str) -> Result<Pair> {
    let what = if prefix == "train" { ["training images", "training labels"] } else { ["test images", "test labels"] };
    let xp = find_file(dir, &format!("{prefix}-images"), "idx3-ubyte", what[0])?;
    let yp = find_file(dir, &format!("{prefix}-labels"), "idx1-ubyte", what[1])?;
    let x = read_idx(&xp, 3)?;
    let y = read_idx(&yp, 1)?;
    if x.dims[0] != y.dims[0] {
        let problem = IdxProblem::CountMismatch { images: x.dims[0], labels: y.dims[0] };
        return Err(Error::Idx { path: yp, problem });
    }
    Ok(Pair { images_path: xp, images: x, labels_path: yp, labels: y.data.into() })
}

/// The first existing name among the standard (`train-images-idx3-ubyte[.gz]`) and dotted
/// (`train-images.idx3-ubyte[.gz]`) spellings.
fn find_file(dir: &Path, stem: &str, kind: &str, what: &'static str) -> Result<PathBuf> {
    let tried: Vec<String> =
        ["-", "."].iter().flat_map(|sep| [format!("{stem}{sep}{kind}"), format!("{stem}{sep}{kind}.gz")]).collect();
    tried.iter().map(|name| dir.join(name)).find(|p| p.is_file()).ok_or_else(|| Error::MissingFile {
        dir: dir.to_path_buf(),
        what,
        tried,
    })
}

fn check_labels(path: &Path, labels: &[u8], classes: usize) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= classes) {
        None => Ok(()),
        Some(index) => Err(Error::Idx {
            path: path.to_path_buf(),
            problem: IdxProblem::LabelOutOfRange { index, label: labels[index], classes },
        }),
    }
}
