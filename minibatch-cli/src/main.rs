//! The `minibatch` program: train, evaluate and look at MNIST (or any IDX data set of its form) and
//! at folders of photos.

mod agree;
mod args;
mod bench;
mod bench_images;
mod choice;
mod commands;
mod folder;
mod folder_eval;
mod memory;
mod out;
mod outputs;
mod paths;
mod predict;
mod pretrained;
mod show;
mod train;
mod train_data;
mod world;

use args::{BenchArgs, EvalArgs, LrFindArgs, PlotArgs, PredictArgs, ShowArgs, SummaryArgs, TrainArgs};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: memory::ExitWhenOutOfMemory = memory::ExitWhenOutOfMemory;

#[derive(Parser)]
#[command(name = "minibatch", version, about = "Train neural networks with minibatches (fast.ai lesson 9, in Rust)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (the notebook's MLP by default; --model cnn or cnn-bn for lesson 06-07's
    /// CNNs), validating after each epoch.
    Train(Box<TrainArgs>),
    /// Report loss and accuracy of saved weights on a split (the test set by default).
    Eval(EvalArgs),
    /// Classify your own pictures with a saved model (digits for an MNIST model, photos for one
    /// trained on an image folder): the three likeliest classes.
    Predict(PredictArgs),
    /// Draw one image in the terminal with its label, or (--out) a batch into a PNG.
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

/// Flags that cannot go together, found after parsing (`--model cnn --layers ..`, a sweep that
/// ends below its start): exit status 2, as for the flags clap refuses itself.
#[derive(Debug)]
pub struct BadFlags(pub String);

impl std::fmt::Display for BadFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadFlags {}

/// How a command that did its work ended; every exit status is decided here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Status 0.
    Done,
    /// Training diverged and was stopped (status 3): the last good weights were kept.
    Diverged,
    /// Ctrl-C ended training after a checkpoint, or lr-find or predict part-way (status 130, the
    /// shell's for SIGINT).
    Interrupted,
    /// A process of a distributed run failed as process 0 did, which said why (status 1).
    FailedAsProcessZero,
}

/// An error with its causes, each said once: the library's errors already print their source
/// (`path: No such file or directory`), which anyhow's chain would repeat.
pub(crate) fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.ends_with(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// candle's element-wise operations on tensors of 64K elements or more run on a pool of candle's
/// own, whose threads spin after each one; beside the kernels' own threads they cost the CNNs
/// several percent of an epoch on two cores (docs/speed.md). candle sizes that pool from
/// `CANDLE_NUM_THREADS` only, so the program sets it to 1 unless the user did. This is the first
/// thing `main` does, while the process has one thread: no other thread can be reading the
/// environment. (The library itself writes no environment variable.)
fn one_thread_for_candles_pool() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

fn main() -> ExitCode {
    one_thread_for_candles_pool();
    let command = Cli::command();
    let matches = command.clone().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Train(a), Some(train), Some(m)) =
        (&mut cli.command, command.find_subcommand("train"), matches.subcommand_matches("train"))
    {
        a.given = args::typed(train, m);
    }
    match &cli.command {
        Command::Train(a) => {
            let threads = a.threads.unwrap_or_else(|| world::default_threads(a.distributed));
            minibatch::threads::set_kernel_threads(threads);
        }
        Command::Bench(a) => minibatch::threads::set_kernel_threads(a.threads.unwrap_or(0)),
        _ => {}
    }
    // Ctrl-C ends training (and lr-find's sweep) after the current batch, checkpointed, and
    // predict after the current picture, each with status 130. The other commands keep the
    // default: SIGINT ends them at once (status 130 in the shell).
    if matches!(cli.command, Command::Train(_) | Command::LrFind(_) | Command::Predict(_)) {
        let _ = ctrlc::set_handler(minibatch::learner::interrupt);
    }
    let result = match cli.command {
        Command::Train(a) => train::train(*a),
        Command::Eval(a) => commands::eval(a).map(|()| Outcome::Done),
        Command::Show(a) => commands::show(a).map(|()| Outcome::Done),
        Command::Predict(a) => predict::predict(a),
        Command::LrFind(a) => commands::lr_find(a),
        Command::Bench(a) => bench::bench(a).map(|()| Outcome::Done),
        Command::Plot(a) => commands::plot(a).map(|()| Outcome::Done),
        Command::Summary(a) => commands::summary(a).map(|()| Outcome::Done),
    };
    let stdout = out::failure();
    match (result, stdout) {
        (Err(e), _) => {
            eprintln!("minibatch: error: {}", message(&e));
            if e.chain().any(|c| c.is::<BadFlags>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
        (Ok(Outcome::Diverged), _) => ExitCode::from(3),
        (Ok(Outcome::Interrupted), _) => ExitCode::from(130),
        (Ok(Outcome::FailedAsProcessZero), _) => ExitCode::FAILURE,
        (Ok(Outcome::Done), Some(e)) => {
            eprintln!("minibatch: error: standard output: {e}");
            ExitCode::FAILURE
        }
        (Ok(Outcome::Done), None) => ExitCode::SUCCESS,
    }
}
