//! The `minibatch` program: train, evaluate and look at MNIST (or any IDX data set of its form).

mod args;
mod bench;
mod commands;
mod train;

use args::{BenchArgs, EvalArgs, LrFindArgs, PlotArgs, ShowArgs, SummaryArgs, TrainArgs};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// candle allocates a fresh buffer for every operation; the system allocator returns large ones
/// to the kernel and takes them back zeroed (a page fault per 4 kB), mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "minibatch", version, about = "Train neural networks with minibatches (fast.ai lesson 9, in Rust)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the notebook's model (Linear, ReLU, Linear), validating after each epoch.
    Train(TrainArgs),
    /// Report loss and accuracy of saved weights on a split (the test set by default).
    Eval(EvalArgs),
    /// Draw one image in the terminal with its label.
    Show(ShowArgs),
    /// Sweep the learning rate upwards over at most one epoch and suggest one.
    LrFind(LrFindArgs),
    /// Redraw the curves of a `train --log` file into a PNG.
    Plot(PlotArgs),
    /// Print the model's layers with their output shapes and parameter counts.
    Summary(SummaryArgs),
    /// Time training (plain and fast paths against the matrix-multiply floor) or the data loader.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    minibatch::set_num_threads(1);
    if let Command::Train(a) = &cli.command {
        minibatch::threads::set_kernel_threads(a.threads.unwrap_or(0));
    }
    // Ctrl-C ends training after the current batch, checkpointed, rather than killing it.
    let _ = ctrlc::set_handler(minibatch::learner::interrupt);
    let result = match cli.command {
        Command::Train(a) => train::train(a),
        Command::Eval(a) => commands::eval(a),
        Command::Show(a) => commands::show(a),
        Command::LrFind(a) => commands::lr_find(a),
        Command::Bench(a) => bench::bench(a),
        Command::Plot(a) => commands::plot(a),
        Command::Summary(a) => commands::summary(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("minibatch: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
