//! The flags of the commands that read a saved model or the data: `eval`, `summary`, `predict`,
//! `show` and `plot`.

use super::data_flags::DataArgs;
use super::limits::{at_most, MAX_BATCH, MAX_HIDDEN};
use super::train_settings::ModelKind;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// Weights saved by `train --save`, or a checkpoint folder of `train --checkpoint-dir`.
    #[arg(long)]
    pub load: PathBuf,
    /// The split to evaluate. Default: test, or valid for a model trained on an image folder.
    #[arg(long, value_parser = ["train", "valid", "test"])]
    pub split: Option<String>,
    /// Batch size. Default: the validation batch `train` used (twice its training batch: the
    /// run's own for a checkpoint folder, the model's default for a weights file), which gives
    /// its numbers to the last digit.
    #[arg(long, value_parser = at_most::<MAX_BATCH>)]
    pub bs: Option<usize>,
    /// One JSON object instead of a readable line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Args)]
pub struct SummaryArgs {
    /// The model to summarise (see `train --help`).
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp, conflicts_with = "load")]
    pub model: ModelKind,
    /// Hidden units of the mlp. Default: 50.
    #[arg(long, value_parser = at_most::<MAX_HIDDEN>, conflicts_with = "load")]
    pub hidden: Option<usize>,
    /// Batch size of the example input.
    #[arg(long, default_value_t = 64, value_parser = at_most::<MAX_BATCH>)]
    pub bs: usize,
    /// Summarise the model saved here (a weights file or a checkpoint folder) instead.
    #[arg(long)]
    pub load: Option<PathBuf>,
}

#[derive(Args)]
pub struct PredictArgs {
    /// Weights saved by `train --save` (any model), or a checkpoint folder.
    #[arg(long)]
    pub load: PathBuf,
    /// Pictures of digits: PNG or JPEG, any size and colour, dark on light or light on dark.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// One JSON object per image instead of a readable line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Which image of the split (from 0), drawn in the terminal.
    #[arg(long, default_value_t = 0, conflicts_with = "out")]
    pub index: usize,
    /// The split to draw from (an image folder's: train or valid).
    #[arg(long, default_value = "train", value_parser = ["train", "valid", "test"])]
    pub split: String,
    /// Draw the first batch of the split into this PNG instead, as training sees it (an image
    /// folder's shuffled and augmented as --seed and --augment make it), each with its label:
    /// fastai's `show_batch`. Required for image folders.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pictures in the batch drawn by --out.
    #[arg(long, default_value_t = 16, value_parser = at_most::<256>, requires = "out")]
    pub bs: usize,
    /// Image folders: the side of the square pictures (default 128).
    #[arg(long, value_parser = super::limits::picture_size)]
    pub size: Option<u32>,
    /// Image folders: the augmentation (none, flip, standard, warp; default standard).
    #[arg(long, value_parser = super::limits::augment)]
    pub augment: Option<minibatch::data::images::Augment>,
    /// Seed of the shuffle and of the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Args)]
pub struct PlotArgs {
    /// A log written by `train --log`.
    pub log: PathBuf,
    /// The PNG to write.
    #[arg(short, long)]
    pub output: PathBuf,
}
