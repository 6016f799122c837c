//! The MNIST database (and any IDX data set of the same form): the notebook's step 1.
//!
//! [`Mnist::load`] reads the four IDX files of a folder and splits them as the classic
//! `mnist.pkl.gz` did: training = the first 50,000 images of the training file, validation = its
//! last 10,000, test = the `t10k` file. Pixels stay `u8` in memory (47 MB rather than 188 MB of
//! `f32`) and are scaled to `[0, 1]` when a batch is collated.

#[cfg(feature = "images")]
mod folder;
mod idx;
mod images;
mod render;

#[cfg(feature = "images")]
pub use folder::{write_picture_folder, DIGIT_NAMES};
pub use idx::{parse_idx, read_idx, Idx};
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
    /// The number of classes. `None`: one more than the largest training label, refused when that
    /// would leave most classes without a single training label (a corrupted byte, not a data set
    /// of that many classes).
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
        if test.images.dims[1..] != train.images.dims[1..] {
            let problem = IdxProblem::ImageShape {
                expected: train.images.dims[1..].to_vec(),
                found: test.images.dims[1..].to_vec(),
            };
            return Err(Error::Idx { path: test.images_path, problem });
        }
        let n = train.labels.len();
        let classes = match config.classes {
            Some(c) => c,
            None => classes_from_labels(&train.labels_path, &train.labels)?,
        };
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
    let (xp, x) = read_data_file(dir, &format!("{prefix}-images"), "idx3-ubyte", what[0], 3)?;
    let empty = match x.dims[..] {
        [0, _, _] => Some(IdxProblem::NoImages),
        [_, rows, cols] if rows == 0 || cols == 0 => Some(IdxProblem::NoPixels { rows, cols }),
        _ => None,
    };
    if let Some(problem) = empty {
        return Err(Error::Idx { path: xp, problem });
    }
    let (yp, y) = read_data_file(dir, &format!("{prefix}-labels"), "idx1-ubyte", what[1], 1)?;
    if x.dims[0] != y.dims[0] {
        let problem = IdxProblem::CountMismatch { images: x.dims[0], labels: y.dims[0] };
        return Err(Error::Idx { path: yp, problem });
    }
    Ok(Pair { images_path: xp, images: x, labels_path: yp, labels: y.data.into() })
}

/// Reads a data file under the first existing of its names: the standard spelling raw
/// (`train-images-idx3-ubyte`), then gzipped (`.gz`), then the dotted spelling
/// (`train-images.idx3-ubyte`) raw and gzipped. When a folder holds more than one of them (a raw
/// and a `.gz` copy, say), every copy is read and they must hold the same data: copies that
/// differ are an [`Error::DifferingCopies`] rather than a silent pick.
fn read_data_file(dir: &Path, stem: &str, kind: &str, what: &'static str, ndim: u8) -> Result<(PathBuf, Idx)> {
    let tried: Vec<String> =
        ["-", "."].iter().flat_map(|sep| [format!("{stem}{sep}{kind}"), format!("{stem}{sep}{kind}.gz")]).collect();
    // `exists`, not `is_file`: a name that is there but not a file (a folder, a device) is
    // reported as such by the reader rather than as missing.
    let found: Vec<PathBuf> = tried.iter().map(|name| dir.join(name)).filter(|p| p.exists()).collect();
    let Some(first) = found.first() else {
        return Err(Error::MissingFile { dir: dir.to_path_buf(), what, tried });
    };
    let data = read_idx(first, ndim)?;
    for other in &found[1..] {
        if read_idx(other, ndim)? != data {
            return Err(Error::DifferingCopies { first: first.clone(), second: other.clone(), what });
        }
    }
    Ok((first.clone(), data))
}

/// The class count the labels imply (largest + 1), refused when most of those classes would be
/// empty: one corrupted byte reading 200 in MNIST's labels would otherwise build a 201-class model.
fn classes_from_labels(path: &Path, labels: &[u8]) -> Result<usize> {
    let mut seen = [false; 256];
    labels.iter().for_each(|&l| seen[l as usize] = true);
    let values: Vec<u8> = (0..=255u8).filter(|&v| seen[v as usize]).collect();
    let classes = values.last().map_or(0, |&m| m as usize + 1);
    if values.len() * 2 < classes {
        return Err(Error::Idx { path: path.to_path_buf(), problem: IdxProblem::SparseLabels { values, classes } });
    }
    Ok(classes)
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
