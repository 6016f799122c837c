//! The `minibatch` program: train, evaluate and look at MNIST (or any IDX data set of its form).

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use minibatch::optim::{scheduled, OptKind, OptSpec, ScheduleKind};
use minibatch::plot::{plot_png, Chart, Series};
use minibatch::{
    cross_entropy, evaluate, get_dls, load_state, save_state, train_epoch, DataLoader, ImageDataset, LrFindConfig,
    Mnist, MnistConfig, Module,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "minibatch", version, about = "Train neural networks with minibatches (fast.ai lesson 9, in Rust)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the notebook's model (Linear, ReLU, Linear) with SGD, validating after each epoch.
    Train(TrainArgs),
    /// Report loss and accuracy of saved weights on a split (the test set by default).
    Eval(EvalArgs),
    /// Draw one image in the terminal with its label.
    Show(ShowArgs),
    /// Sweep the learning rate upwards over at most one epoch and suggest one.
    LrFind(LrFindArgs),
}

#[derive(Args)]
struct DataArgs {
    /// Folder of the four IDX files (standard or dotted names, raw or .gz). Default: the
    /// bundled data/mnist.
    #[arg(long, env = "MINIBATCH_DATA")]
    data_dir: Option<PathBuf>,
    /// Images taken from the end of the training file for validation (default: 10,000 of
    /// MNIST's 60,000, the last sixth otherwise).
    #[arg(long, value_parser = positive)]
    valid_size: Option<usize>,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct TrainArgs {
    /// Passes over the training set.
    #[arg(long, default_value_t = 5, value_parser = positive)]
    epochs: usize,
    /// Batch size for training (validation uses twice as many).
    #[arg(long, default_value_t = 64, value_parser = positive)]
    bs: usize,
    #[command(flatten)]
    opt: OptArgs,
    /// Learning-rate schedule over the whole run, applied per batch: const, cosine (to 0) or
    /// onecycle (peaking at --lr, with momentum cycled between 0.95 and 0.85).
    #[arg(long, default_value = "const")]
    schedule: ScheduleKind,
    /// Batches of linear warmup from 0 to the schedule's first rate.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Hidden units of the model.
    #[arg(long, default_value_t = 50, value_parser = positive)]
    hidden: usize,
    /// Seed of the initial weights and of the shuffles: the same seed gives the same run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save the trained weights as safetensors (names as PyTorch's nn.Sequential has them).
    #[arg(long)]
    save: Option<PathBuf>,
    /// One JSON object per epoch instead of a readable line.
    #[arg(long)]
    json: bool,
    /// Threads for the tensor kernels (1 is fastest for small models).
    #[arg(long, default_value_t = 1, value_parser = positive)]
    threads: usize,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct OptArgs {
    /// Optimizer: sgd, adam, adamw or rmsprop.
    #[arg(long, default_value = "sgd")]
    opt: OptKind,
    /// Learning rate (peak rate with --schedule onecycle). Default: 0.5 for sgd (the
    /// notebook's), 1e-2 for adam and adamw, 3e-3 for rmsprop.
    #[arg(long, value_parser = learning_rate)]
    lr: Option<f64>,
    /// Momentum (Adam's beta1). Default: 0 for sgd and rmsprop, 0.9 for adam.
    #[arg(long, value_parser = fraction)]
    momentum: Option<f64>,
    /// Weight decay (decoupled for adamw, L2 otherwise).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    wd: f64,
}

impl OptArgs {
    fn spec(&self) -> OptSpec {
        OptSpec { kind: self.opt, lr: self.lr, momentum: self.momentum, weight_decay: self.wd }
    }
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct LrFindArgs {
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = positive)]
    bs: usize,
    /// Hidden units of the model.
    #[arg(long, default_value_t = 50, value_parser = positive)]
    hidden: usize,
    /// Seed of the initial weights and of the shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    opt: OptArgs,
    /// First rate of the sweep.
    #[arg(long, default_value_t = 1e-7, value_parser = learning_rate)]
    start_lr: f64,
    /// Last rate of the sweep.
    #[arg(long, default_value_t = 10.0, value_parser = learning_rate)]
    end_lr: f64,
    /// Batches in the sweep (at most one epoch).
    #[arg(long, default_value_t = 100, value_parser = positive)]
    num_it: usize,
    /// Print the sweep as JSON.
    #[arg(long)]
    json: bool,
    /// Also draw the curve (loss against learning rate) into this PNG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
struct EvalArgs {
    /// Weights saved by `train --save`.
    #[arg(long)]
    load: PathBuf,
    /// The split to evaluate.
    #[arg(long, default_value = "test", value_parser = ["train", "valid", "test"])]
    split: String,
    /// Batch size (128, train's validation batch, gives its numbers to the last digit).
    #[arg(long, default_value_t = 128, value_parser = positive)]
    bs: usize,
    /// One JSON object instead of a readable line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
struct ShowArgs {
    /// Which image of the split (from 0).
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// The split to draw from.
    #[arg(long, default_value = "train", value_parser = ["train", "valid", "test"])]
    split: String,
    #[command(flatten)]
    data: DataArgs,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a positive whole number")),
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number >= 0, not {v}")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    match non_negative(s)? {
        v if v < 1.0 => Ok(v),
        v => Err(format!("must be below 1, not {v}")),
    }
}

fn learning_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number above 0, not {v}")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Train(a) => a.threads,
        _ => 1,
    };
    minibatch::set_num_threads(threads);
    let result = match cli.command {
        Command::Train(a) => train(a),
        Command::Eval(a) => eval(a),
        Command::Show(a) => show(a),
        Command::LrFind(a) => lr_find(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("minibatch: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The data folder: `--data-dir`, `$MINIBATCH_DATA`, `./data/mnist`, or the bundled copy.
fn load_data(args: &DataArgs) -> anyhow::Result<Mnist> {
    let dir = args.data_dir.clone().unwrap_or_else(|| {
        let local = PathBuf::from("data/mnist");
        if local.is_dir() {
            local
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
        }
    });
    let config = MnistConfig { valid_size: args.valid_size, classes: None };
    Ok(Mnist::load_with(&dir, &config)?)
}

fn split(data: Mnist, name: &str) -> ImageDataset {
    match name {
        "train" => data.train,
        "valid" => data.valid,
        _ => data.test,
    }
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    let data = load_data(&a.data)?;
    if a.bs > data.train.len() {
        anyhow::bail!("batch size {} is larger than the {} training images", a.bs, data.train.len());
    }
    let (n_in, n_out) = (data.train.image_len(), data.classes());
    let (train_dl, valid_dl) = get_dls(data.train, data.valid, a.bs)?;
    let train_dl = train_dl.shuffle(a.seed);
    let model = minibatch::mlp(&[n_in, a.hidden, n_out], a.seed)?;
    let total_steps = train_dl.len() * a.epochs;
    let mut opt = scheduled(&a.opt.spec(), model.named_parameters(), a.schedule, total_steps, a.warmup)?;
    if !a.json {
        println!("{model}");
        println!(
            "{} training and {} validation images, {} parameters",
            train_dl.dataset().len(),
            valid_dl.dataset().len(),
            model.num_parameters()
        );
    }
    for epoch in 1..=a.epochs {
        let start = Instant::now();
        let train_loss = train_epoch(&model, cross_entropy, &mut opt, &train_dl)?;
        let valid = evaluate(&model, cross_entropy, &valid_dl)?;
        let seconds = start.elapsed().as_secs_f64();
        let stats = minibatch::EpochStats {
            epoch,
            train_loss,
            valid_loss: valid.loss,
            valid_accuracy: valid.accuracy,
            seconds,
        };
        if a.json {
            println!("{}", serde_json::to_string(&stats)?);
        } else {
            let rate = (train_dl.len() * a.bs) as f64 / seconds;
            println!(
                "epoch {epoch}/{}  train_loss {train_loss:.4}  valid_loss {:.4}  valid_accuracy {:.4}  {seconds:.2}s ({rate:.0} images/s)",
                a.epochs, valid.loss, valid.accuracy
            );
        }
    }
    if let Some(path) = &a.save {
        save_state(&model, path)?;
        if !a.json {
            println!("saved {}", path.display());
        }
    }
    Ok(())
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let tensors = minibatch::module::read_state(&a.load)?;
    let sizes = minibatch::mlp_sizes(&tensors)
        .with_context(|| format!("{}: not the weights of a Linear/ReLU stack", a.load.display()))?;
    let model = minibatch::mlp(&sizes, 0)?;
    load_state(&model, &a.load)?;
    let data = split(load_data(&a.data)?, &a.split);
    if data.image_len() != sizes[0] {
        anyhow::bail!(
            "{}: the model takes {} inputs but the images have {} pixels",
            a.load.display(),
            sizes[0],
            data.image_len()
        );
    }
    let n = data.len();
    let dl = DataLoader::new(data, a.bs)?;
    let e = evaluate(&model, cross_entropy, &dl)?;
    if a.json {
        println!("{}", serde_json::json!({"split": a.split, "loss": e.loss, "accuracy": e.accuracy, "count": e.count}));
    } else {
        println!("{}: loss {:.4}  accuracy {:.4}  ({n} images)", a.split, e.loss, e.accuracy);
    }
    Ok(())
}

fn lr_find(a: LrFindArgs) -> anyhow::Result<()> {
    let data = load_data(&a.data)?;
    let (n_in, n_out) = (data.train.image_len(), data.classes());
    let (train_dl, _) = get_dls(data.train, data.valid, a.bs)?;
    let train_dl = train_dl.shuffle(a.seed);
    let model = minibatch::mlp(&[n_in, a.hidden, n_out], a.seed)?;
    let mut opt = a.opt.spec().build(model.named_parameters())?;
    let config = LrFindConfig { start_lr: a.start_lr, end_lr: a.end_lr, num_it: a.num_it, ..Default::default() };
    let found = minibatch::lr_find(&model, cross_entropy, &mut opt, &train_dl, config)?;
    if let Some(path) = &a.plot {
        let chart = Chart {
            title: format!("lr_find: steepest {:.2e}, minimum/10 {:.2e}", found.steepest, found.minimum),
            x_label: "learning rate".into(),
            y_label: "smoothed loss".into(),
            log_x: true,
            series: vec![Series {
                name: "loss".into(),
                points: found.lrs.iter().copied().zip(found.losses.iter().copied()).collect(),
            }],
        };
        plot_png(path, &[chart], (800, 500))?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&found)?);
        return Ok(());
    }
    println!("{:>12}  {:>10}", "lr", "loss");
    for (lr, loss) in found.lrs.iter().zip(&found.losses) {
        println!("{lr:>12.3e}  {loss:>10.4}");
    }
    println!("suggested: {:.3e} (steepest descent), {:.3e} (minimum / 10)", found.steepest, found.minimum);
    Ok(())
}

fn show(a: ShowArgs) -> anyhow::Result<()> {
    let data = split(load_data(&a.data)?, &a.split);
    let (rows, cols) = data.image_shape();
    let pixels = data
        .pixels(a.index)
        .with_context(|| format!("index {} is past the {} images of the {} split", a.index, data.len(), a.split))?;
    println!("{} #{}: label {}", a.split, a.index, data.label(a.index).unwrap_or_default());
    print!("{}", minibatch::render_digit(pixels, rows, cols));
    Ok(())
}
