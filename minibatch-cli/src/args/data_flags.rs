//! Where the data comes from: the flags every command that reads MNIST-like data takes.

use super::limits::{at_most, positive};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The data folder and how it is split; stored with a run's settings.
#[derive(Args, Serialize, Deserialize)]
pub struct DataArgs {
    /// Folder of the four IDX files (standard or dotted names, raw or .gz), or an image folder
    /// (`DIR/train/<class>/*.jpg` and `DIR/valid/<class>/...`, or `DIR/<class>/...` split at
    /// random). Default: the bundled data/mnist.
    #[arg(long, env = "MINIBATCH_DATA")]
    #[serde(with = "crate::paths::optional")]
    pub data_dir: Option<PathBuf>,
    /// Images taken from the end of the training file for validation (default: 10,000 of
    /// MNIST's 60,000, the last sixth otherwise).
    #[arg(long, value_parser = positive)]
    pub valid_size: Option<usize>,
    /// Number of classes (default: one more than the largest training label, refused when most
    /// of those classes would have no label at all, as a corrupted byte would make).
    #[arg(long, value_parser = at_most::<256>)]
    pub classes: Option<usize>,
    /// An image folder without `train` and `valid` folders: the share of its pictures drawn at
    /// random (from --seed) for validation. Default: 0.2.
    #[arg(long, value_parser = share)]
    #[serde(default)]
    pub valid_pct: Option<f64>,
    /// An image folder's class names, input size and normalisation, as the run found them.
    #[arg(skip)]
    #[serde(default)]
    pub notes: Option<crate::folder::FolderNotes>,
}

/// A share strictly between 0 and 1.
fn share(s: &str) -> Result<f64, String> {
    match super::limits::fraction(s)? {
        0.0 => Err("must be above 0".into()),
        v => Ok(v),
    }
}
