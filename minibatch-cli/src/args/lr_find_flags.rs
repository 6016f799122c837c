//! `lr-find`'s flags.

use super::data_flags::DataArgs;
use super::limits::*;
use super::train_settings::OptArgs;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct LrFindArgs {
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = at_most::<MAX_BATCH>)]
    pub bs: usize,
    /// Hidden units of the model.
    #[arg(long, default_value_t = 50, value_parser = at_most::<MAX_HIDDEN>)]
    pub hidden: usize,
    /// Seed of the initial weights and of the shuffle.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub opt: OptArgs,
    /// First rate of the sweep.
    #[arg(long, default_value_t = 1e-7, value_parser = learning_rate)]
    pub start_lr: f64,
    /// Last rate of the sweep.
    #[arg(long, default_value_t = 10.0, value_parser = learning_rate)]
    pub end_lr: f64,
    /// Batches in the sweep (past one epoch, it goes on into the next).
    #[arg(long, default_value_t = 100, value_parser = two_to::<MAX_STEPS>)]
    pub num_it: usize,
    /// Print the sweep as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the curve (loss against learning rate) into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}
