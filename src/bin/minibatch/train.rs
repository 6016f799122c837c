//! `minibatch train`: the Learner on the fast path, with progress, logs, plots, checkpoints and
//! resume.

use crate::args::TrainArgs;
use crate::commands::load_data;
use anyhow::Context;
use minibatch::fast::{self, Mlp};
use minibatch::learner::{
    latest_checkpoint, plot_records, Callback, Checkpoint, Ctx, DivergenceGuard, EarlyStopping, Flow, GradientClip,
    JsonlLogger, Learner, Progress,
};
use minibatch::optim::scheduled;
use minibatch::{get_dls_with, save_state, DlsOptions, Module};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

/// The run's settings, stored in each checkpoint.
fn hyper(a: &TrainArgs) -> Value {
    json!({
        "epochs": a.epochs, "bs": a.bs, "hidden": a.hidden, "seed": a.seed,
        "opt": a.opt.opt.to_string(), "lr": a.opt.lr, "momentum": a.opt.momentum, "wd": a.opt.wd,
        "schedule": a.schedule.to_string(), "warmup": a.warmup, "workers": a.workers,
        "data_dir": a.data.data_dir, "valid_size": a.data.valid_size, "early_stop": a.early_stop, "clip": a.clip,
    })
}

/// Takes the stored settings of a checkpoint over the flags.
fn restore(a: &mut TrainArgs, h: &Value) -> anyhow::Result<()> {
    let bad = || anyhow::anyhow!("the checkpoint's settings are incomplete");
    let num = |k: &str| h[k].as_u64().map(|v| v as usize).ok_or_else(bad);
    a.bs = num("bs")?;
    a.hidden = num("hidden")?;
    a.seed = h["seed"].as_u64().ok_or_else(bad)?;
    a.warmup = num("warmup")?;
    a.workers = num("workers")?;
    a.opt.opt = h["opt"].as_str().ok_or_else(bad)?.parse()?;
    a.opt.lr = h["lr"].as_f64();
    a.opt.momentum = h["momentum"].as_f64();
    a.opt.wd = h["wd"].as_f64().ok_or_else(bad)?;
    a.schedule = h["schedule"].as_str().ok_or_else(bad)?.parse()?;
    a.data.data_dir = h["data_dir"].as_str().map(PathBuf::from);
    a.data.valid_size = h["valid_size"].as_u64().map(|v| v as usize);
    a.early_stop = h["early_stop"].as_u64().map(|v| v as usize);
    a.clip = h["clip"].as_f64();
    // The schedule spans the run's epochs as first planned.
    a.epochs = a.epochs.max(num("epochs")?);
    Ok(())
}

/// `--json`: one object per epoch on standard output.
struct JsonEpochs(Instant);

impl Callback for JsonEpochs {
    fn before_epoch(&mut self, _: &mut Ctx) -> Flow {
        self.0 = Instant::now();
        Flow::Continue
    }
    fn after_epoch(&mut self, cx: &mut Ctx) -> Flow {
        let s = cx.state;
        let v = json!({"epoch": s.epoch + 1, "train_loss": s.train_loss, "valid_loss": s.metric("valid_loss"),
            "valid_accuracy": s.metric("accuracy"), "seconds": self.0.elapsed().as_secs_f64()});
        println!("{v}");
        Flow::Continue
    }
}

pub fn train(mut a: TrainArgs) -> anyhow::Result<()> {
    let resumed = match a.resume.clone() {
        Some(dir) => {
            let info = latest_checkpoint(&dir)?;
            restore(&mut a, &info.hyper)?;
            a.checkpoint_dir.get_or_insert(dir);
            Some(info)
        }
        None => None,
    };
    let data = load_data(&a.data)?;
    if a.bs > data.train.len() {
        anyhow::bail!("batch size {} is larger than the {} training images", a.bs, data.train.len());
    }
    let (n_in, n_out) = (data.train.image_len(), data.classes());
    let options = DlsOptions { seed: a.seed, workers: a.workers, ..Default::default() };
    let (train_dl, valid_dl) = get_dls_with(data.train, data.valid, a.bs, options)?;
    let model = Mlp::new(&[n_in, a.hidden, n_out], a.seed)?;
    let total_steps = train_dl.len() * a.epochs;
    let opt = scheduled(&a.opt.spec(), model.named_parameters(), a.schedule, total_steps, a.warmup)?;
    if !a.json && resumed.is_none() {
        println!("{model}");
        let (nt, nv) = (train_dl.dataset().len(), valid_dl.dataset().len());
        println!("{nt} training and {nv} validation images, {} parameters", model.num_parameters());
    }
    let mut learn = Learner::new(model, fast::cross_entropy, opt, train_dl, valid_dl);
    if let Some(dir) = &a.resume {
        let info = learn.load_checkpoint(dir)?;
        if !a.json {
            println!("resuming {} at epoch {}, batch {}", info.dir.display(), info.epoch + 1, info.batch);
        }
    }
    learn.add_callback(DivergenceGuard::new(10));
    if let Some(clip) = a.clip {
        learn.add_callback(GradientClip(clip));
    }
    if let Some(patience) = a.early_stop {
        learn.add_callback(EarlyStopping::new("valid_loss", patience));
    }
    if a.json {
        learn.add_callback(JsonEpochs(Instant::now()));
    } else {
        learn.add_callback(Progress::new());
    }
    if let Some(log) = &a.log {
        learn.add_callback(JsonlLogger::create(log)?);
    }
    if let Some(dir) = &a.checkpoint_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the checkpoint folder", dir.display()))?;
        learn.add_callback(Checkpoint::new(dir, hyper(&a)));
    }
    let report = learn.fit(a.epochs)?;
    if let Some(path) = &a.plot {
        plot_records(&learn.recorder.batches, &learn.recorder.epochs, path)?;
    }
    if let Some(path) = &a.save {
        save_state(learn.model.as_ref(), path)?;
        if !a.json {
            println!("saved {}", path.display());
        }
    }
    match report.stopped {
        Some(reason) if minibatch::learner::interrupted() => {
            let saved = a.checkpoint_dir.map(|d| format!("; checkpoint in {}", d.display())).unwrap_or_default();
            eprintln!("minibatch: {reason}{saved}");
            std::process::exit(130);
        }
        Some(reason) => eprintln!("minibatch: stopped: {reason}"),
        None => {}
    }
    Ok(())
}
