//! The program's arguments and their checks.

use crate::choice::{OptKind, OptSpec, ScheduleKind};
use clap::Args;
use minibatch::Architecture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The largest sizes the flags take: beyond them a typo would spawn thousands of threads or
/// allocate gigabytes before anything could say so.
pub const MAX_WORKERS: usize = 64;
/// See [`MAX_WORKERS`].
pub const MAX_THREADS: usize = 256;
/// See [`MAX_WORKERS`] (a 784-16384-10 model holds 13 million parameters).
pub const MAX_HIDDEN: usize = 16_384;
/// See [`MAX_WORKERS`].
pub const MAX_LAYERS: usize = 64;
/// See [`MAX_WORKERS`].
pub const MAX_BATCH: usize = 65_536;
/// See [`MAX_WORKERS`].
pub const MAX_STEPS: usize = 1_000_000;

#[derive(Args, Serialize, Deserialize)]
pub struct DataArgs {
    /// Folder of the four IDX files (standard or dotted names, raw or .gz). Default: the
    /// bundled data/mnist.
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
}

/// `train`'s flags; those that shape the run are also its settings, stored in each checkpoint
/// (serialised) so that `--resume` and `eval` need not be told them again.
#[derive(Args, Serialize, Deserialize)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// The model: mlp (the notebook's Linear/ReLU stack, sized by --hidden or --layers), cnn
    /// (lesson 06's four stride-2 convolutions) or cnn-bn (the same with batch norm, lesson 07).
    /// The CNNs start from Kaiming's initialisation and default to --bs 128, --schedule onecycle
    /// and, for sgd, --lr 0.2 (cnn) or 0.4 (cnn-bn: batch norm takes a higher rate).
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    #[serde(default)]
    pub model: ModelKind,
    /// Passes over the training set (default: 5; with --resume, the run's own number).
    #[arg(long, value_parser = at_most::<MAX_STEPS>)]
    pub epochs: Option<usize>,
    /// Train data-parallel with the other processes of `mpirun -n N minibatch train
    /// --distributed ...`: each process trains on its share of every epoch (--bs is per process),
    /// gradients are averaged after each backward, validation is shared out and summed; only
    /// process 0 prints and writes files. Needs a build with `--features mpi`.
    #[arg(long)]
    #[serde(default)]
    pub distributed: bool,
    /// How the processes of a distributed run sum their gradients: shared (in memory that the
    /// processes of one machine share, each summing a slice; when they all run on one machine
    /// and /dev/shm has room for a copy of the gradients per process and one of the sums) or
    /// mpi (MPI_Allreduce, as across machines always).
    #[arg(long, value_enum, default_value_t = AllReduce::Shared, requires = "distributed")]
    #[serde(default)]
    pub all_reduce: AllReduce,
    /// The number of processes of a distributed run, recorded for resuming.
    #[arg(skip)]
    #[serde(default)]
    pub world: Option<usize>,
    /// Batch size for training (validation uses twice as many). Default: 64 for mlp, 128 for the
    /// CNNs.
    #[arg(long, value_parser = at_most::<MAX_BATCH>)]
    pub bs: Option<usize>,
    #[command(flatten)]
    pub opt: OptArgs,
    /// Learning-rate schedule over the whole run, applied per batch: const, cosine (to 0) or
    /// onecycle (peaking at --lr, with momentum cycled between 0.95 and 0.85). Default: const for
    /// mlp, onecycle for the CNNs.
    #[arg(long)]
    pub schedule: Option<ScheduleKind>,
    /// Batches of linear warmup from 0 to the schedule's first rate.
    #[arg(long, default_value_t = 0, value_parser = zero_to::<MAX_STEPS>)]
    pub warmup: usize,
    /// Hidden units of the mlp (one hidden layer; --layers gives several). Default: 50.
    #[arg(long, value_parser = at_most::<MAX_HIDDEN>)]
    pub hidden: Option<usize>,
    /// Hidden layer sizes, comma-separated (`512,512,512` is the bench's `deep`); overrides
    /// --hidden.
    #[arg(long, value_delimiter = ',', value_parser = at_most::<MAX_HIDDEN>, conflicts_with = "hidden")]
    pub layers: Option<Vec<usize>>,
    /// Seed of the initial weights and of the shuffles: the same seed gives the same run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save the trained weights as safetensors (names as PyTorch's nn.Sequential has them).
    #[arg(long)]
    #[serde(skip)]
    pub save: Option<PathBuf>,
    /// One JSON object per epoch instead of the progress bar and table.
    #[arg(long)]
    #[serde(skip)]
    pub json: bool,
    /// Write a JSON object per batch and per epoch to this file (`minibatch plot` redraws it).
    #[arg(long)]
    #[serde(skip)]
    pub log: Option<PathBuf>,
    /// Draw the loss, metric and learning-rate curves into this PNG at the end.
    #[arg(long)]
    #[serde(skip)]
    pub plot: Option<PathBuf>,
    /// Draw the lesson's activation telemetry into this PNG at the end: each layer's mean, standard
    /// deviation and near-zero fraction per batch, and its histograms over time.
    #[arg(long)]
    #[serde(skip)]
    pub telemetry: Option<PathBuf>,
    /// Write a checkpoint here at each epoch's end and on Ctrl-C (the two newest are kept).
    #[arg(long)]
    #[serde(skip)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue the run checkpointed in this folder, with its own settings (other flags but
    /// --epochs, --json, --log, --plot, --save, --checkpoint-dir and --threads are ignored, and
    /// named in a warning); it keeps checkpointing there.
    #[arg(long)]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// Stop when the validation loss has not improved for this many epochs.
    #[arg(long, value_parser = positive)]
    pub early_stop: Option<usize>,
    /// Clip the gradients' global norm to this value.
    #[arg(long, value_parser = learning_rate)]
    pub clip: Option<f64>,
    /// Loader worker threads preparing batches while the model trains (0: in the training
    /// thread). For MNIST one keeps the model fed (see the README).
    #[arg(long, default_value_t = 1, value_parser = zero_to::<MAX_WORKERS>)]
    pub workers: usize,
    /// Threads for large matrix multiplies and element-wise passes (default: one per core, or
    /// with --distributed the cores shared among the processes on the machine); small ones, and
    /// candle's other operations, always run on one, which is fastest for them. Results do not
    /// depend on it.
    #[arg(long, value_parser = at_most::<MAX_THREADS>)]
    #[serde(skip)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
    /// The flags given on the command line (clap's ids), to say which `--resume` ignores.
    #[arg(skip)]
    #[serde(skip)]
    pub given: Vec<String>,
}

#[derive(Args, Serialize, Deserialize)]
#[command(allow_negative_numbers = true)]
pub struct OptArgs {
    /// Optimizer: sgd, adam, adamw or rmsprop.
    #[arg(long, default_value = "sgd")]
    pub opt: OptKind,
    /// Learning rate (peak rate with --schedule onecycle). Default: 0.5 for sgd (the
    /// notebook's), 1e-2 for adam and adamw, 3e-3 for rmsprop.
    #[arg(long, value_parser = learning_rate)]
    pub lr: Option<f64>,
    /// Momentum (Adam's beta1). Default: 0 for sgd and rmsprop, 0.9 for adam.
    #[arg(long, value_parser = fraction)]
    pub momentum: Option<f64>,
    /// Weight decay (decoupled for adamw, L2 otherwise).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub wd: f64,
}

/// Runs a flag's own check on a value that came from elsewhere (a checkpoint's settings).
fn recheck<T: std::fmt::Display, U>(flag: &str, value: T, parse: fn(&str) -> Result<U, String>) -> anyhow::Result<()> {
    parse(&value.to_string()).map(|_| ()).map_err(|e| anyhow::anyhow!("`{flag}` is {value}: {e}"))
}

/// How `train --distributed` sums gradients over the processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AllReduce {
    /// In shared memory, on one machine.
    #[default]
    Shared,
    /// Through MPI_Allreduce.
    Mpi,
}

/// The architectures `train --model` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    #[default]
    Mlp,
    Cnn,
    CnnBn,
}

impl ModelKind {
    /// The flag's spelling: `mlp`, `cnn`, `cnn-bn`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
            ModelKind::CnnBn => "cnn-bn",
        }
    }
}

/// SGD's default peak rates for the CNNs (with the one-cycle schedule and momentum): without
/// batch norm, 0.4 measured to kill the ReLUs in a one-epoch run (accuracy 0.11).
pub const CNN_LR: f64 = 0.2;
/// See [`CNN_LR`].
pub const CNN_BN_LR: f64 = 0.4;

impl TrainArgs {
    /// The epochs to train: `--epochs`, or 5.
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(5)
    }

    /// The architecture to train for `n_in` inputs and `n_out` classes.
    pub fn arch(&self, n_in: usize, n_out: usize) -> anyhow::Result<Architecture> {
        if self.model != ModelKind::Mlp && (self.hidden.is_some() || self.layers.is_some()) {
            anyhow::bail!("--hidden and --layers size the mlp; --model {} has its own layers", self.model.name());
        }
        if self.model != ModelKind::Mlp && n_in != 28 * 28 {
            anyhow::bail!("--model {} takes 28x28 images; these have {n_in} pixels", self.model.name());
        }
        Ok(match self.model {
            ModelKind::Mlp => {
                let hidden = self.layers.clone().unwrap_or_else(|| vec![self.hidden.unwrap_or(50)]);
                Architecture::Mlp([vec![n_in], hidden, vec![n_out]].concat())
            }
            ModelKind::Cnn => Architecture::Cnn { classes: n_out },
            ModelKind::CnnBn => Architecture::CnnBn { classes: n_out },
        })
    }

    /// The batch size, the model's default unless given.
    pub fn bs(&self) -> usize {
        self.bs.unwrap_or(if self.model == ModelKind::Mlp { 64 } else { 128 })
    }

    /// The schedule, the model's default unless given.
    pub fn schedule(&self) -> ScheduleKind {
        self.schedule.unwrap_or(if self.model == ModelKind::Mlp { ScheduleKind::Const } else { ScheduleKind::OneCycle })
    }

    /// The optimizer's settings, with the CNNs' default rate for SGD.
    pub fn opt_spec(&self) -> OptSpec {
        let mut spec = self.opt.spec();
        let rate = match self.model {
            ModelKind::Mlp => None,
            ModelKind::Cnn => Some(CNN_LR),
            ModelKind::CnnBn => Some(CNN_BN_LR),
        };
        if spec.kind == OptKind::Sgd {
            spec.lr = spec.lr.or(rate);
        }
        spec
    }

    /// The checks of the flags, on settings read back from a checkpoint (which a hand edit or a
    /// corrupted file may have put out of range).
    pub fn check(&self) -> anyhow::Result<()> {
        recheck("epochs", self.epochs(), at_most::<MAX_STEPS>)?;
        if let Some(bs) = self.bs {
            recheck("bs", bs, at_most::<MAX_BATCH>)?;
        }
        recheck("warmup", self.warmup, zero_to::<MAX_STEPS>)?;
        if let Some(hidden) = self.hidden {
            recheck("hidden", hidden, at_most::<MAX_HIDDEN>)?;
        }
        for &size in self.layers.iter().flatten() {
            recheck("layers", size, at_most::<MAX_HIDDEN>)?;
        }
        if let Some(layers) = &self.layers {
            recheck("layers", layers.len(), at_most::<MAX_LAYERS>)?;
        }
        recheck("workers", self.workers, zero_to::<MAX_WORKERS>)?;
        recheck("wd", self.opt.wd, non_negative)?;
        if let Some(v) = self.opt.lr {
            recheck("lr", v, learning_rate)?;
        }
        if let Some(v) = self.opt.momentum {
            recheck("momentum", v, fraction)?;
        }
        if let Some(v) = self.clip {
            recheck("clip", v, learning_rate)?;
        }
        if let Some(v) = self.early_stop {
            recheck("early_stop", v, positive)?;
        }
        if let Some(v) = self.data.valid_size {
            recheck("valid_size", v, positive)?;
        }
        if let Some(v) = self.data.classes {
            recheck("classes", v, at_most::<256>)?;
        }
        Ok(())
    }
}

impl OptArgs {
    pub fn spec(&self) -> OptSpec {
        OptSpec { kind: self.opt, lr: self.lr, momentum: self.momentum, weight_decay: self.wd }
    }
}

#[derive(Args)]
pub struct PlotArgs {
    /// A log written by `train --log`.
    pub log: PathBuf,
    /// The PNG to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct SummaryArgs {
    /// The model to summarise (see `train --help`).
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    pub model: ModelKind,
    /// Hidden units of the mlp. Default: 50.
    #[arg(long, value_parser = at_most::<MAX_HIDDEN>)]
    pub hidden: Option<usize>,
    /// Batch size of the example input.
    #[arg(long, default_value_t = 64, value_parser = at_most::<MAX_BATCH>)]
    pub bs: usize,
    /// Summarise the model saved here (a weights file or a checkpoint folder) instead.
    #[arg(long)]
    pub load: Option<PathBuf>,
}

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

#[derive(Args)]
pub struct EvalArgs {
    /// Weights saved by `train --save`, or a checkpoint folder of `train --checkpoint-dir`.
    #[arg(long)]
    pub load: PathBuf,
    /// The split to evaluate.
    #[arg(long, default_value = "test", value_parser = ["train", "valid", "test"])]
    pub split: String,
    /// Batch size (128, train's validation batch, gives its numbers to the last digit).
    #[arg(long, default_value_t = 128, value_parser = at_most::<MAX_BATCH>)]
    pub bs: usize,
    /// One JSON object instead of a readable line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataArgs,
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
    /// Which image of the split (from 0).
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// The split to draw from.
    #[arg(long, default_value = "train", value_parser = ["train", "valid", "test"])]
    pub split: String,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a positive whole number")),
    }
}

/// A whole number from 1 to `MAX`.
pub fn at_most<const MAX: usize>(s: &str) -> Result<usize, String> {
    match positive(s)? {
        n if n > MAX => Err(format!("must be at most {MAX}, not {n}")),
        n => Ok(n),
    }
}

/// The flags of `command` typed on the command line (not their groups, nor defaults): what
/// `train --resume` names when it ignores them.
pub fn typed(command: &clap::Command, matches: &clap::ArgMatches) -> Vec<String> {
    let flags: Vec<&clap::Id> = command.get_arguments().map(|f| f.get_id()).collect();
    let typed = |id: &&clap::Id| {
        flags.contains(id) && matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
    };
    matches.ids().filter(typed).map(|id| id.to_string()).collect()
}

/// A whole number from 2 to `MAX`.
pub fn two_to<const MAX: usize>(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n < 2 => Err("must be at least 2".into()),
        _ => at_most::<MAX>(s),
    }
}

/// A whole number from 0 to `MAX`.
pub fn zero_to<const MAX: usize>(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > MAX => Err(format!("must be at most {MAX}, not {n}")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number >= 0, not {v}")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

pub fn fraction(s: &str) -> Result<f64, String> {
    match non_negative(s)? {
        v if v < 1.0 => Ok(v),
        v => Err(format!("must be below 1, not {v}")),
    }
}

pub fn learning_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number above 0, not {v}")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

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
