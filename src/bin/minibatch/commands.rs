//! The subcommands that train, evaluate and look.

use crate::args::{DataArgs, EvalArgs, LrFindArgs, ShowArgs, TrainArgs};
use anyhow::Context;
use minibatch::fast::{self, Mlp};
use minibatch::optim::scheduled;
use minibatch::plot::{plot_png, Chart, Series};
use minibatch::{
    cross_entropy, evaluate, get_dls_with, load_state, save_state, train_epoch, DataLoader, DlsOptions, ImageDataset,
    LrFindConfig, Mnist, MnistConfig, Module,
};
use std::path::PathBuf;
use std::time::Instant;

/// The data folder: `--data-dir`, `$MINIBATCH_DATA`, `./data/mnist`, or the bundled copy.
pub fn load_data(args: &DataArgs) -> anyhow::Result<Mnist> {
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

pub fn train(a: TrainArgs) -> anyhow::Result<()> {
    let data = load_data(&a.data)?;
    if a.bs > data.train.len() {
        anyhow::bail!("batch size {} is larger than the {} training images", a.bs, data.train.len());
    }
    let (n_in, n_out) = (data.train.image_len(), data.classes());
    let options = DlsOptions { seed: a.seed, workers: a.workers, ..Default::default() };
    let (train_dl, valid_dl) = get_dls_with(data.train, data.valid, a.bs, options)?;
    let model = Mlp::new(&[n_in, a.hidden, n_out], a.seed)?;
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
        let train_loss = train_epoch(&model, fast::cross_entropy, &mut opt, &train_dl)?;
        let valid = evaluate(&model, fast::cross_entropy, &valid_dl)?;
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

pub fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let tensors = minibatch::module::read_state(&a.load)?;
    let sizes = minibatch::mlp_sizes(&tensors)
        .with_context(|| format!("{}: not the weights of a Linear/ReLU stack", a.load.display()))?;
    let model = Mlp::new(&sizes, 0)?;
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
    let e = evaluate(&model, fast::cross_entropy, &dl)?;
    if a.json {
        println!("{}", serde_json::json!({"split": a.split, "loss": e.loss, "accuracy": e.accuracy, "count": e.count}));
    } else {
        println!("{}: loss {:.4}  accuracy {:.4}  ({n} images)", a.split, e.loss, e.accuracy);
    }
    Ok(())
}

pub fn lr_find(a: LrFindArgs) -> anyhow::Result<()> {
    let data = load_data(&a.data)?;
    let (n_in, n_out) = (data.train.image_len(), data.classes());
    let options = DlsOptions { seed: a.seed, ..Default::default() };
    let (train_dl, _) = get_dls_with(data.train, data.valid, a.bs, options)?;
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

pub fn show(a: ShowArgs) -> anyhow::Result<()> {
    let data = split(load_data(&a.data)?, &a.split);
    let (rows, cols) = data.image_shape();
    let pixels = data
        .pixels(a.index)
        .with_context(|| format!("index {} is past the {} images of the {} split", a.index, data.len(), a.split))?;
    println!("{} #{}: label {}", a.split, a.index, data.label(a.index).unwrap_or_default());
    print!("{}", minibatch::render_digit(pixels, rows, cols));
    Ok(())
}
