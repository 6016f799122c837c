//! `minibatch train`: the Learner on the fast path, with progress, logs, plots, checkpoints and
//! resume.

use crate::args::TrainArgs;
use crate::commands::load_data;
use crate::out::{outln, Stdout};
use crate::outputs::{check_file, check_folder, check_png};
use crate::Outcome;
use anyhow::{bail, Context};
use minibatch::learner::{
    latest_checkpoint, plot_records, Callback, CheckpointInfo, Ctx, DivergenceGuard, EarlyStopping, FitReport, Flow,
    GradientClip, JsonlLogger, Learner, Progress,
};
use minibatch::optim::scheduled;
use minibatch::{cross_entropy, get_dls_with, save_state, ActivationStats, DlsOptions, Module};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

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
        outln!("{v}");
        Flow::Continue
    }
}

/// The flags of this invocation over the settings stored in the checkpoint of `--resume`: the
/// run's own settings, with this invocation's outputs and an epoch count at least the planned one.
fn resume_settings(a: TrainArgs) -> anyhow::Result<(TrainArgs, Option<CheckpointInfo>)> {
    let Some(dir) = a.resume.clone() else { return Ok((a, None)) };
    let info = latest_checkpoint(&dir)?;
    let state = info.dir.join("state.json");
    let stored: TrainArgs = serde_json::from_value(info.hyper.clone())
        .with_context(|| format!("{}: the run's settings are incomplete", state.display()))?;
    stored.check().with_context(|| format!("{}: the run's settings", state.display()))?;
    if info.epoch > stored.epochs {
        bail!("{}: `epoch` is {}, past the run's {} epochs", state.display(), info.epoch, stored.epochs);
    }
    if info.epoch >= a.epochs.max(stored.epochs) {
        bail!(
            "{}: the run has done its {} epochs; give --epochs above that to train further",
            dir.display(),
            info.epoch
        );
    }
    // Resumed from one checkpoint folder: the run keeps checkpointing beside it.
    let dir = if info.dir == dir { dir.parent().map_or(dir.clone(), Path::to_path_buf) } else { dir };
    let a = TrainArgs {
        // The schedule spans the run's epochs as first planned.
        epochs: a.epochs.max(stored.epochs),
        save: a.save,
        json: a.json,
        log: a.log,
        plot: a.plot,
        checkpoint_dir: a.checkpoint_dir.or(Some(dir)),
        resume: a.resume,
        threads: a.threads,
        ..stored
    };
    Ok((a, Some(info)))
}

/// Checks every output before anything is trained.
fn check_outputs(a: &TrainArgs) -> anyhow::Result<()> {
    let files = [("--save", &a.save), ("--log", &a.log), ("--plot", &a.plot), ("--telemetry", &a.telemetry)];
    let given: Vec<(&str, std::path::PathBuf)> =
        files.iter().filter_map(|(flag, p)| Some((*flag, std::path::absolute(p.as_ref()?).ok()?))).collect();
    for (i, (flag, path)) in given.iter().enumerate() {
        if let Some((other, _)) = given[i + 1..].iter().find(|(_, q)| q == path) {
            bail!("{flag} and {other} name the same file, {}: one would overwrite the other", path.display());
        }
    }
    if let Some(p) = &a.save {
        check_file("--save", p)?;
    }
    if let Some(p) = &a.log {
        check_file("--log", p)?;
    }
    if let Some(p) = &a.plot {
        check_png("--plot", p)?;
    }
    if let Some(p) = &a.telemetry {
        check_png("--telemetry", p)?;
    }
    if let Some(d) = &a.checkpoint_dir {
        check_folder("--checkpoint-dir", d)?;
    }
    Ok(())
}

pub fn train(a: TrainArgs) -> anyhow::Result<Outcome> {
    let (mut a, resumed) = resume_settings(a)?;
    a.check()?;
    check_outputs(&a)?;
    let (data, dir) = load_data(&a.data)?;
    if a.bs() > data.train.len() {
        bail!("batch size {} is larger than the {} training images", a.bs(), data.train.len());
    }
    // The checkpoint records the data as it was found, so that resuming or evaluating elsewhere
    // reads the same images.
    a.data.data_dir = Some(std::path::absolute(&dir).unwrap_or(dir));
    a.data.valid_size = Some(data.valid.len());
    a.data.classes = Some(data.classes());
    let (n_in, n_out) = (data.train.image_len(), data.classes());
    let options = DlsOptions { seed: a.seed, workers: a.workers, ..Default::default() };
    let (train_dl, valid_dl) = get_dls_with(data.train, data.valid, a.bs(), options)?;
    let model = a.arch(n_in, n_out)?.build(a.seed)?;
    let total_steps = train_dl.len() * a.epochs;
    let opt = scheduled(&a.opt_spec(), model.named_parameters(), a.schedule(), total_steps, a.warmup)?;
    if !a.json && resumed.is_none() {
        outln!("{model}");
        let (nt, nv) = (train_dl.dataset().len(), valid_dl.dataset().len());
        outln!("{nt} training and {nv} validation images, {} parameters", model.num_parameters());
    }
    let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl);
    if let Some(info) = &resumed {
        learn.load_checkpoint(&info.dir)?;
        if !a.json {
            outln!("resuming {} at epoch {}, batch {}", info.dir.display(), info.epoch + 1, info.batch);
        }
    }
    add_callbacks(&mut learn, &a)?;
    let stats =
        a.telemetry.is_some().then(|| ActivationStats::new(learn.model.as_ref(), Default::default())).transpose()?;
    let report = learn.fit_until(a.epochs)?;
    let drawn = match (&a.telemetry, &stats) {
        (Some(path), Some(stats)) => Some(minibatch::plot::plot_activations(path, &stats.layers())),
        _ => None,
    };
    let outcome = finish(&learn, &a, report)?;
    drawn.transpose()?;
    Ok(outcome)
}

fn add_callbacks(learn: &mut Learner, a: &TrainArgs) -> anyhow::Result<()> {
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
        learn.add_callback(Progress::new().with_output(Stdout));
    }
    if let Some(log) = &a.log {
        learn.add_callback(JsonlLogger::create(log)?);
    }
    if let Some(dir) = &a.checkpoint_dir {
        let settings = serde_json::to_value(a).context("storing the run's settings")?;
        learn.add_callback(minibatch::learner::Checkpoint::new(dir, settings));
    }
    Ok(())
}

/// Writes the weights, then the plot (one failing never costs the other), and says how the run
/// ended.
fn finish(learn: &Learner, a: &TrainArgs, report: FitReport) -> anyhow::Result<Outcome> {
    let saved = a.save.as_ref().map(|path| save_state(learn.model.as_ref(), path).map(|()| path));
    let plotted = a.plot.as_ref().map(|path| plot_records(&learn.recorder.batches, &learn.recorder.epochs, path));
    if let (Some(Ok(path)), false) = (&saved, a.json) {
        outln!("saved {}", path.display());
    }
    let kept = {
        let mut places: Vec<String> = Vec::new();
        if let Some(Ok(path)) = &saved {
            places.push(path.display().to_string());
        }
        if let Some(dir) = &a.checkpoint_dir {
            places.push(format!("the checkpoint in {}", dir.display()));
        }
        places
    };
    let outcome = match report.stopped {
        Some(reason) if report.diverged => {
            let there = if kept.is_empty() {
                "; they were not kept (use --save or --checkpoint-dir)".to_string()
            } else {
                format!("; they are in {}", kept.join(" and "))
            };
            eprintln!("minibatch: {reason}{there}");
            Outcome::Diverged
        }
        Some(reason) if minibatch::learner::interrupted() => {
            let there = a.checkpoint_dir.as_ref().map(|d| format!("; checkpoint in {}", d.display()));
            eprintln!("minibatch: {reason}{}", there.unwrap_or_default());
            Outcome::Interrupted
        }
        Some(reason) => {
            eprintln!("minibatch: stopped: {reason}");
            Outcome::Done
        }
        None => Outcome::Done,
    };
    match (saved, plotted) {
        (Some(Err(e)), _) => Err(e.into()),
        (_, Some(Err(e))) => Err(e.into()),
        _ => Ok(outcome),
    }
}
