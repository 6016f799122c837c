//! `train`'s flags, which are also the run's settings: stored (serialised) in each checkpoint so
//! that `--resume` and `eval` need not be told them again, and checked again when read back.

use super::data_flags::DataArgs;
use super::limits::*;
use crate::choice::{OptKind, OptSpec, ScheduleKind};
use clap::Args;
use minibatch::data::images::Augment;
use minibatch::Architecture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `train`'s flags; those that shape the run are also its settings, stored in each checkpoint
/// (serialised) so that `--resume` and `eval` need not be told them again.
#[derive(Args, Serialize, Deserialize)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// The model: mlp (the notebook's Linear/ReLU stack, sized by --hidden or --layers), cnn
    /// (lesson 06's four stride-2 convolutions), cnn-bn (the same with batch norm, lesson 07) or
    /// xresnet18, xresnet34, xresnet50 (lesson 11's). The CNNs start from Kaiming's
    /// initialisation and default to --schedule onecycle, --bs 128 (64 for the xresnets) and, for
    /// sgd, --lr 0.2 (cnn), 0.4 (cnn-bn: batch norm takes a higher rate) or 0.1 (xresnets).
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
    /// Image folders: the side of the square pictures the model sees (default 128).
    #[arg(long, value_parser = picture_size)]
    #[serde(default)]
    pub size: Option<u32>,
    /// Image folders: the training pictures' augmentation. `standard` (the default): lesson 10's
    /// random resized crop and flip; `warp`: those, a small rotation and a perspective tilt;
    /// `flip`: resized, centre cropped and flipped; `none`: resized and centre cropped, as
    /// validation pictures.
    #[arg(long, value_parser = augment)]
    #[serde(default)]
    pub augment: Option<Augment>,
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
    /// Lesson 10b's MixUp: each training batch mixed with a shuffle of itself, weights drawn
    /// from Beta(ALPHA, ALPHA) (the lesson uses 0.4).
    #[arg(long, value_parser = learning_rate)]
    #[serde(default)]
    pub mixup: Option<f64>,
    /// Lesson 10b's label smoothing: train against 1 - EPS on the label and EPS spread over the
    /// classes (the lesson uses 0.1). The validation loss is smoothed alike.
    #[arg(long, value_parser = fraction)]
    #[serde(default)]
    pub label_smoothing: Option<f64>,
    /// Start from this body (a `--save` file or a checkpoint folder of a run of the same
    /// --model, on any classes): every tensor of the same name and shape is kept, the head is
    /// new. The body then trains at a tenth of the rate (lesson 11a).
    #[arg(long)]
    #[serde(default)]
    pub pretrained: Option<PathBuf>,
    /// With --pretrained: epochs trained with the body frozen (batch norm excepted) before every
    /// layer trains.
    #[arg(long, default_value_t = 0, value_parser = zero_to::<MAX_STEPS>, requires = "pretrained")]
    #[serde(default)]
    pub freeze_epochs: usize,
    /// The number format of the layers' matrix products: fp32, or bf16 (lesson 10c's mixed
    /// precision: bf16 operands summed in fp32; weights, loss, batch norm and the optimizer stay
    /// fp32). On processors with AMX the MLPs train about twice as fast; the lesson's small CNNs
    /// gain little. Without bf16 instructions it rounds the same way, without the speed.
    #[arg(long, value_parser = precision, default_value_t = minibatch::Precision::Fp32)]
    #[serde(default)]
    pub precision: minibatch::Precision,
    /// Clip the gradients' global norm to this value.
    #[arg(long, value_parser = learning_rate)]
    pub clip: Option<f64>,
    /// Loader worker threads preparing batches while the model trains (0: in the training
    /// thread). For MNIST one keeps the model fed (docs/data.md).
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
    Xresnet18,
    Xresnet34,
    Xresnet50,
}

impl ModelKind {
    /// The kind of an architecture.
    pub fn of(arch: &Architecture) -> ModelKind {
        match arch {
            Architecture::Mlp(_) => ModelKind::Mlp,
            Architecture::Cnn { .. } => ModelKind::Cnn,
            Architecture::CnnBn { .. } => ModelKind::CnnBn,
            Architecture::XResNet { depth: 18, .. } => ModelKind::Xresnet18,
            Architecture::XResNet { depth: 34, .. } => ModelKind::Xresnet34,
            Architecture::XResNet { .. } => ModelKind::Xresnet50,
        }
    }

    /// The training batch when `--bs` is not given: the notebook's 64 for the mlp and the
    /// XResNets (lesson 11's), 128 for the CNNs.
    pub fn default_bs(self) -> usize {
        match self {
            ModelKind::Cnn | ModelKind::CnnBn => 128,
            _ => 64,
        }
    }

    /// Whether this is one of lesson 11's XResNets.
    pub fn is_xresnet(self) -> bool {
        matches!(self, ModelKind::Xresnet18 | ModelKind::Xresnet34 | ModelKind::Xresnet50)
    }

    /// The flag's spelling: `mlp`, `cnn`, `cnn-bn`, `xresnet18`...
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
            ModelKind::CnnBn => "cnn-bn",
            ModelKind::Xresnet18 => "xresnet18",
            ModelKind::Xresnet34 => "xresnet34",
            ModelKind::Xresnet50 => "xresnet50",
        }
    }

    /// The architecture of this kind for inputs of `[channels, height, width]` and `n_out`
    /// classes (`hidden`: the mlp's hidden sizes; it takes the input flat).
    pub fn arch(self, input: [usize; 3], hidden: Vec<usize>, n_out: usize) -> Architecture {
        match self {
            ModelKind::Mlp => Architecture::Mlp([vec![input.iter().product()], hidden, vec![n_out]].concat()),
            ModelKind::Cnn => Architecture::Cnn { classes: n_out, input },
            ModelKind::CnnBn => Architecture::CnnBn { classes: n_out, input },
            ModelKind::Xresnet18 => Architecture::XResNet { depth: 18, classes: n_out, input },
            ModelKind::Xresnet34 => Architecture::XResNet { depth: 34, classes: n_out, input },
            ModelKind::Xresnet50 => Architecture::XResNet { depth: 50, classes: n_out, input },
        }
    }
}

/// SGD's default peak rates for the CNNs (with the one-cycle schedule and momentum): without
/// batch norm, 0.4 measured to kill the ReLUs in a one-epoch run (accuracy 0.11).
pub const CNN_LR: f64 = 0.2;

/// See [`CNN_LR`].
pub const CNN_BN_LR: f64 = 0.4;

/// SGD's default peak rate for the XResNets.
pub const XRESNET_LR: f64 = 0.1;

impl TrainArgs {
    /// The epochs to train: `--epochs`, or 5.
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(5)
    }

    /// The architecture to train for inputs of `[channels, height, width]` and `n_out` classes.
    pub fn arch(&self, input: [usize; 3], n_out: usize) -> anyhow::Result<Architecture> {
        if self.model != ModelKind::Mlp && (self.hidden.is_some() || self.layers.is_some()) {
            let why = format!("--hidden and --layers size the mlp; --model {} has its own layers", self.model.name());
            return Err(crate::BadFlags(why).into());
        }
        let hidden = self.layers.clone().unwrap_or_else(|| vec![self.hidden.unwrap_or(50)]);
        Ok(self.model.arch(input, hidden, n_out))
    }

    /// The batch size, the model's default unless given.
    pub fn bs(&self) -> usize {
        self.bs.unwrap_or(self.model.default_bs())
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
            ModelKind::Xresnet18 | ModelKind::Xresnet34 | ModelKind::Xresnet50 => Some(XRESNET_LR),
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
        if let Some(v) = self.mixup {
            recheck("mixup", v, learning_rate)?;
        }
        if let Some(v) = self.label_smoothing {
            recheck("label_smoothing", v, fraction)?;
        }
        recheck("freeze_epochs", self.freeze_epochs, zero_to::<MAX_STEPS>)?;
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
