//! The subcommands that train, evaluate and look.

use crate::args::{DataArgs, EvalArgs, LrFindArgs, ModelKind, PlotArgs, ShowArgs, SummaryArgs, TrainArgs};
use crate::folder::FolderNotes;
use crate::out::{out, outln};
use crate::outputs::check_png;
use crate::Outcome;
use anyhow::Context;
use minibatch::learner::latest_checkpoint;
use minibatch::plot::{plot_png, Chart, Series};
use minibatch::{
    cross_entropy, evaluate, get_dls_with, load_state, Architecture, DataLoader, DlsOptions, ImageDataset,
    LabelSmoothingCrossEntropy, LrFind, LrFindConfig, Mnist, MnistConfig, Module,
};
use std::path::{Path, PathBuf};

/// The data, and the folder it came from: `--data-dir`, `$MINIBATCH_DATA`, `./data/mnist`, or
/// the bundled copy.
pub fn load_data(args: &DataArgs) -> anyhow::Result<(Mnist, PathBuf)> {
    let dir = data_dir(args);
    if crate::folder::is_image_folder(&dir) {
        anyhow::bail!(
            "{} is an image folder: this reads IDX files (`train`, `eval` of a model trained on pictures, `show` \
             and `bench images` read image folders)",
            dir.display()
        );
    }
    let config = MnistConfig { valid_size: args.valid_size, classes: args.classes };
    let data = Mnist::load_with(&dir, &config)?;
    Ok((data, dir))
}

/// The data folder: `--data-dir`, `$MINIBATCH_DATA`, `./data/mnist`, or the bundled copy.
pub fn data_dir(args: &DataArgs) -> PathBuf {
    args.data_dir.clone().unwrap_or_else(|| {
        let local = PathBuf::from("data/mnist");
        if local.is_dir() {
            local
        } else {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist"))
        }
    })
}

pub fn split(data: Mnist, name: &str) -> ImageDataset {
    match name {
        "train" => data.train,
        "valid" => data.valid,
        _ => data.test,
    }
}

/// A model saved by `train --save` or checkpointed by `train --checkpoint-dir`, with its
/// architecture read from the file (the names and shapes of its weights, and for a model of
/// pictures its input size from its notes) and its notes.
pub fn load_model(path: &Path) -> anyhow::Result<(Box<dyn Module>, Architecture, Option<FolderNotes>)> {
    let checkpoint = if path.is_dir() { Some(latest_checkpoint(path)?) } else { None };
    let file = checkpoint.as_ref().map_or(path.to_path_buf(), |c| c.dir.join("model.safetensors"));
    let tensors = minibatch::module::read_state(&file)?;
    let arch = Architecture::from_state(&tensors).with_context(|| {
        format!("{}: not the weights of a model `train` makes (an mlp, cnn, cnn-bn or xresnet)", file.display())
    })?;
    let settings: Option<TrainArgs> = match &checkpoint {
        Some(info) => Some(serde_json::from_value(info.hyper.clone()).with_context(|| {
            format!("{}: the run's settings cannot be read", info.dir.join("state.json").display())
        })?),
        None => None,
    };
    // A weights file keeps its notes in its metadata, a checkpoint in its run's settings.
    let notes = match &settings {
        Some(s) => s.data.notes.clone(),
        None => FolderNotes::of_file(&file)?,
    };
    let arch = match &notes {
        Some(n) => arch.with_input(n.input),
        None => arch,
    };
    if let Some(n) = notes.as_ref().filter(|n| n.classes.len() != arch.classes()) {
        anyhow::bail!(
            "{}: the model has {} outputs but its notes name {} classes",
            file.display(),
            arch.classes(),
            n.classes.len()
        );
    }
    if let Some(settings) = &settings {
        // A checkpoint's weights must be of the model its run's settings make, with as many
        // outputs as the run's data had classes.
        let planned = settings.arch(input_of(&arch), settings.data.classes.unwrap_or(classes(&arch)))?;
        if planned != arch {
            anyhow::bail!(
                "{}: the weights are of {}, but the run's settings make {}",
                file.display(),
                described(&arch),
                described(&planned)
            );
        }
    }
    let model = arch.build(0)?;
    same_model(&file, model.as_ref(), &arch)?;
    load_state(&model, &file)?;
    Ok((model, arch, notes))
}

/// One input's `[channels, height, width]` (an mlp's flat input as `[1, 1, n]`).
fn input_of(arch: &Architecture) -> [usize; 3] {
    match arch.input_shape()[..] {
        [c, h, w] => [c, h, w],
        _ => match arch {
            Architecture::Mlp(_) => [1, 1, arch.inputs()],
            _ => minibatch::MNIST_INPUT,
        },
    }
}

/// Checks the model a weights file says it holds against the one its shapes point to: the same
/// shapes can hold another activation (a GeneralRelu CNN's weights scored as a ReLU one). A file
/// that does not say (PyTorch's) is taken by its shapes, with a note saying so.
fn same_model(file: &Path, model: &dyn Module, arch: &Architecture) -> anyhow::Result<()> {
    let built = model.to_string();
    match minibatch::module::saved_model(file)? {
        Some(saved) if saved != built => {
            let (ours, theirs) = (built.lines(), saved.lines());
            let (a, b) = ours.zip(theirs).find(|(a, b)| a != b).unwrap_or(("(end)", "(end)"));
            anyhow::bail!(
                "{}: the file holds another model than {} of these shapes: its layer `{}` where `{}` was expected",
                file.display(),
                described(arch),
                b.trim(),
                a.trim()
            );
        }
        Some(_) => Ok(()),
        None => {
            eprintln!(
                "minibatch: note: {} does not say which model it holds; taken for {} by its tensors' shapes",
                file.display(),
                described(arch)
            );
            Ok(())
        }
    }
}

/// An architecture's outputs (its classes).
fn classes(arch: &Architecture) -> usize {
    arch.classes()
}

/// An architecture in words: `a 784-50-10 mlp`, `a cnn-bn of 10 classes`.
fn described(arch: &Architecture) -> String {
    match arch {
        Architecture::Mlp(sizes) => {
            format!("a {} mlp", sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-"))
        }
        other => format!("a {} of {} classes", other.name(), classes(other)),
    }
}

pub fn plot(a: PlotArgs) -> anyhow::Result<()> {
    check_png("--output", &a.output)?;
    for warning in minibatch::plot::plot_log(&a.log, &a.output)? {
        eprintln!("minibatch: warning: {warning}");
    }
    Ok(())
}

pub fn summary(a: SummaryArgs) -> anyhow::Result<()> {
    let (model, arch) = match &a.load {
        Some(path) => {
            let (model, arch, _) = load_model(path)?;
            (model, arch)
        }
        None => {
            if a.model != ModelKind::Mlp && a.hidden.is_some() {
                let why = format!("--hidden sizes the mlp; --model {} has its own layers", a.model.name());
                return Err(crate::BadFlags(why).into());
            }
            let arch = a.model.arch(minibatch::MNIST_INPUT, vec![a.hidden.unwrap_or(50)], 10);
            (arch.build(0)?, arch)
        }
    };
    let shape: Vec<usize> = std::iter::once(a.bs).chain(arch.input_shape()).collect();
    out!("{}", minibatch::learner::summary(model.as_ref(), &shape)?);
    Ok(())
}

/// The data flags of a checkpoint's run under those given now: evaluating a checkpoint reads the
/// run's own data folder and validation split unless told otherwise.
fn run_data(run: Option<&TrainArgs>, given: &DataArgs) -> DataArgs {
    let mut data = DataArgs {
        data_dir: given.data_dir.clone(),
        valid_size: given.valid_size,
        classes: given.classes,
        valid_pct: given.valid_pct,
        notes: None,
    };
    if let Some(run) = run {
        data.data_dir = data.data_dir.or(run.data.data_dir.clone());
        data.valid_size = data.valid_size.or(run.data.valid_size);
        data.classes = data.classes.or(run.data.classes);
        data.valid_pct = data.valid_pct.or(run.data.valid_pct);
    }
    data
}

/// The settings of the run whose checkpoint folder `load` is (`None` for a weights file).
fn run_settings(load: &Path) -> anyhow::Result<Option<TrainArgs>> {
    if !load.is_dir() {
        return Ok(None);
    }
    Ok(serde_json::from_value::<TrainArgs>(latest_checkpoint(load)?.hyper).ok())
}

pub fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let run = run_settings(&a.load)?;
    // A checkpoint of a bf16 run is scored with bf16 products, as its epochs were.
    let precision = run.as_ref().map_or(minibatch::Precision::Fp32, |r| r.precision);
    minibatch::autocast(precision, || eval_in(a, run))
}

fn eval_in(a: EvalArgs, run: Option<TrainArgs>) -> anyhow::Result<()> {
    let (model, arch, notes) = load_model(&a.load)?;
    let data_args = run_data(run.as_ref(), &a.data);
    // By default the validation batch `train` used: twice the run's training batch, or twice the
    // model's default one for a weights file.
    let train_bs = run.as_ref().map_or(ModelKind::of(&arch).default_bs(), TrainArgs::bs);
    let bs = a.bs.unwrap_or(train_bs.saturating_mul(2));
    if let Some(notes) = notes {
        return crate::folder_eval::eval(&a, &data_args, run.as_ref(), &model, &notes, bs);
    }
    let name = a.split.as_deref().unwrap_or("test");
    let data = split(load_data(&data_args)?.0, name);
    if data.image_len() != arch.inputs() {
        anyhow::bail!(
            "{}: the model takes {} inputs but the images have {} pixels",
            a.load.display(),
            arch.inputs(),
            data.image_len()
        );
    }
    let n = data.len();
    let dl = DataLoader::new(data, bs)?;
    // A checkpoint of a run with label smoothing is scored with its run's loss, as its epochs were.
    let smoothing = run.as_ref().and_then(|r| r.label_smoothing).unwrap_or(0.0);
    let e = evaluate(&model, LabelSmoothingCrossEntropy::new(smoothing)?.into_fn(), &dl)?;
    if a.json {
        outln!("{}", serde_json::json!({"split": name, "loss": e.loss, "accuracy": e.accuracy, "count": e.count}));
    } else {
        outln!("{name}: loss {:.4}  accuracy {:.4}  ({n} images)", e.loss, e.accuracy);
    }
    Ok(())
}

pub fn lr_find(a: LrFindArgs) -> anyhow::Result<Outcome> {
    if let Some(lr) = a.opt.lr {
        let why = format!("--lr {lr} has no effect on lr-find: the sweep sets the rate, from --start-lr to --end-lr");
        return Err(crate::BadFlags(why).into());
    }
    if let Some(path) = &a.plot {
        check_png("--plot", path)?;
    }
    if a.start_lr >= a.end_lr {
        return Err(crate::BadFlags(format!("--start-lr {} must be below --end-lr {}", a.start_lr, a.end_lr)).into());
    }
    let data = load_data(&a.data)?.0;
    if a.bs > data.train.len() {
        anyhow::bail!("batch size {} is larger than the {} training images", a.bs, data.train.len());
    }
    let (n_in, n_out) = (data.train.image_len(), data.classes());
    let options = DlsOptions { seed: a.seed, ..Default::default() };
    let (train_dl, _) = get_dls_with(data.train, data.valid, a.bs, options)?;
    let model = minibatch::mlp(&[n_in, a.hidden, n_out], a.seed)?;
    let mut opt = a.opt.spec().build(model.named_parameters())?;
    let config = LrFindConfig { start_lr: a.start_lr, end_lr: a.end_lr, num_it: a.num_it, ..Default::default() };
    let found = minibatch::lr_find(&model, cross_entropy, &mut opt, &train_dl, config)?;
    if minibatch::learner::interrupted() {
        eprintln!("minibatch: lr-find: interrupted after {} of {} rates", found.lrs.len(), a.num_it);
        return Ok(Outcome::Interrupted);
    }
    if let Some(path) = &a.plot {
        plot_lr_find(&found, path)?;
    }
    if a.json {
        outln!("{}", serde_json::to_string(&found)?);
    } else {
        print_lr_find(&found);
    }
    Ok(Outcome::Done)
}

/// The sweep's smoothed losses against the learning rate (log scale), its suggestions in the title.
fn plot_lr_find(found: &LrFind, path: &Path) -> anyhow::Result<()> {
    let chart = Chart {
        title: match (found.steepest, found.minimum) {
            (Some(steep), Some(min)) => format!("lr_find: steepest {steep:.2e}, minimum/10 {min:.2e}"),
            _ => "lr_find: too short to suggest a rate".into(),
        },
        x_label: "learning rate".into(),
        y_label: "smoothed loss".into(),
        log_x: true,
        series: vec![Series {
            name: "loss".into(),
            points: found.lrs.iter().copied().zip(found.losses.iter().copied()).collect(),
        }],
    };
    Ok(plot_png(path, &[chart], (800, 500))?)
}

/// The sweep as a table, then its suggestions (or why there are none).
fn print_lr_find(found: &LrFind) {
    outln!("{:>12}  {:>10}", "lr", "loss");
    for (lr, loss) in found.lrs.iter().zip(&found.losses) {
        outln!("{lr:>12.3e}  {loss:>10.4}");
    }
    match (found.steepest, found.minimum) {
        (Some(steep), Some(min)) => outln!("suggested: {steep:.3e} (steepest descent), {min:.3e} (minimum / 10)"),
        _ => outln!(
            "no suggestion: the sweep stopped after {} steps, too few to judge (at least {} are needed); \
             try a lower --start-lr or more --num-it",
            found.lrs.len(),
            minibatch::train::MIN_POINTS
        ),
    }
}

pub fn show(a: ShowArgs) -> anyhow::Result<()> {
    if a.out.is_some() || crate::folder::is_image_folder(&data_dir(&a.data)) {
        return crate::show::show_batch(&a);
    }
    let data = split(load_data(&a.data)?.0, &a.split);
    let (rows, cols) = data.image_shape();
    let pixels = data
        .pixels(a.index)
        .with_context(|| format!("index {} is past the {} images of the {} split", a.index, data.len(), a.split))?;
    outln!("{} #{}: label {}", a.split, a.index, data.label(a.index).unwrap_or_default());
    out!("{}", minibatch::render_digit(pixels, rows, cols));
    Ok(())
}
