//! `bench`'s flags.

use super::data_flags::DataArgs;
use super::limits::{at_most, zero_to, MAX_BATCH, MAX_THREADS, MAX_WORKERS};
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {
    /// What to time: `train` (each configuration, plain and fast), `data` (the MNIST loader
    /// alone) or `images` (the loader of an image folder, --data-dir, with augmentation).
    #[arg(default_value = "train", value_parser = ["train", "data", "images"])]
    pub what: String,
    /// Training epochs per configuration (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = at_most::<1000>)]
    pub epochs: usize,
    /// Configurations, comma-separated: notebook, wide, deep, cnn, cnn-bn, xresnet18, xresnet34,
    /// xresnet50 (the xresnets on the first 3,200 training images).
    #[arg(long, default_value = "notebook,wide,deep", value_delimiter = ',',
          value_parser = ["notebook", "wide", "deep", "cnn", "cnn-bn", "xresnet18", "xresnet34", "xresnet50"])]
    pub configs: Vec<String>,
    /// Implementations, comma-separated: plain, fast.
    #[arg(long, default_value = "plain,fast", value_delimiter = ',', value_parser = ["plain", "fast"])]
    pub paths: Vec<String>,
    /// The precision of the layers' products, as `train --precision`: fp32 or bf16 (for the
    /// MLP configurations, a second table then shows the bf16 matmul floor beside the fp32 one).
    #[arg(long, default_value = "fp32", value_parser = super::limits::precision)]
    pub precision: minibatch::Precision,
    /// Threads for large matrix multiplies, as `train --threads` (default: one per core).
    #[arg(long, value_parser = at_most::<MAX_THREADS>)]
    pub threads: Option<usize>,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run one `CONFIG:PATH` in this process (the parent runs each in a child of its own, so
    /// that peak memory is each one's alone).
    #[arg(long, hide = true)]
    pub child: Option<String>,
    /// `bench images`: the side of the square pictures the loader makes.
    #[arg(long, default_value_t = 128, value_parser = at_most::<4096>)]
    pub size: usize,
    /// `bench images`: loader worker threads (0: in the caller's thread).
    #[arg(long, default_value_t = 2, value_parser = zero_to::<MAX_WORKERS>)]
    pub workers: usize,
    /// `bench images`: the augmentation: none (resize and centre crop), flip (and a random flip),
    /// standard (a random resized crop and a random flip) or warp (those, a rotation and a tilt).
    #[arg(long, default_value = "standard", value_parser = super::limits::augment)]
    pub augment: minibatch::data::images::Augment,
    /// `bench images`: the batch size.
    #[arg(long, default_value_t = 64, value_parser = at_most::<MAX_BATCH>)]
    pub bs: usize,
    #[command(flatten)]
    pub data: DataArgs,
}
