//! `bench`'s flags.

use super::data_flags::DataArgs;
use super::limits::{at_most, MAX_THREADS};
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {
    /// What to time: `train` (each configuration, plain and fast) or `data` (the loader alone).
    #[arg(default_value = "train", value_parser = ["train", "data"])]
    pub what: String,
    /// Training epochs per configuration (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = at_most::<1000>)]
    pub epochs: usize,
    /// Configurations, comma-separated: notebook, wide, deep, cnn, cnn-bn.
    #[arg(long, default_value = "notebook,wide,deep", value_delimiter = ',',
          value_parser = ["notebook", "wide", "deep", "cnn", "cnn-bn"])]
    pub configs: Vec<String>,
    /// Implementations, comma-separated: plain, fast.
    #[arg(long, default_value = "plain,fast", value_delimiter = ',', value_parser = ["plain", "fast"])]
    pub paths: Vec<String>,
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
    #[command(flatten)]
    pub data: DataArgs,
}
