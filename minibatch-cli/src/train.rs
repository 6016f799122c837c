//! `minibatch train`: the Learner on the fast path, with progress, logs, plots, checkpoints and
//! resume.

use crate::args::TrainArgs;
use crate::choice::ScheduleKind;
use crate::folder::FolderNotes;
use crate::out::{outln, Stdout};
use crate::outputs::{check_file, check_folder, check_png};
use crate::pretrained::{body_names, load_body, Say, BODY_LR_RATIO};
use crate::train_data::{prepare, Prepared};
use crate::world::World;
use crate::Outcome;
use anyhow::{bail, Context};
use minibatch::distributed::Collective;
use minibatch::learner::{
    latest_checkpoint, Callback, CheckpointInfo, Ctx, DivergenceGuard, EarlyStopping, FitReport, Flow, FreezeBody,
    GradientClip, JsonlLogger, Learner, MixUp, ParamScheduler, Progress,
};
use minibatch::{save_state_with, ActivationStats, LabelSmoothingCrossEntropy, Module, Precision};
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
        // `complete` is false for an epoch stopped part-way (Ctrl-C): its training loss is of the
        // batches it ran, and a resumed run prints the epoch again, whole.
        let v = json!({"epoch": s.epoch + 1, "train_loss": s.train_loss, "valid_loss": s.metric("valid_loss"),
            "valid_accuracy": s.metric("accuracy"), "seconds": self.0.elapsed().as_secs_f64(),
            "complete": s.epoch_complete()});
        outln!("{v}");
        Flow::Continue
    }
}

/// The flags `--resume` takes from the invocation (clap's ids); the others are the run's own, and
/// given anyway they are named in a warning (by the first process).
const KEPT_ON_RESUME: [&str; 12] = [
    "epochs",
    "save",
    "json",
    "log",
    "plot",
    "telemetry",
    "checkpoint_dir",
    "resume",
    "threads",
    "workers",
    "all_reduce",
    "distributed",
];

/// The flags of this invocation over the settings stored in the checkpoint of `--resume`: the
/// run's own settings, with this invocation's outputs and an epoch count at least the planned one.
fn resume_settings(a: TrainArgs, first: bool) -> anyhow::Result<(TrainArgs, Option<CheckpointInfo>)> {
    let Some(dir) = a.resume.clone() else { return Ok((a, None)) };
    let info = latest_checkpoint(&dir)?;
    let state = info.dir.join("state.json");
    let stored: TrainArgs = serde_json::from_value(info.hyper.clone())
        .with_context(|| format!("{}: the run's settings cannot be read", state.display()))?;
    stored.check().with_context(|| format!("{}: the run's settings", state.display()))?;
    if info.epoch > stored.epochs() {
        bail!("{}: `epoch` is {}, past the run's {} epochs", state.display(), info.epoch, stored.epochs());
    }
    // Without --epochs the run goes on to its own planned number, not to the flag's default.
    let epochs = a.epochs.unwrap_or(0).max(stored.epochs());
    if info.epoch >= epochs {
        bail!(
            "{}: the run has done its {} epochs; give --epochs above that to train further",
            dir.display(),
            info.epoch
        );
    }
    // Resumed from one checkpoint folder: the run keeps checkpointing beside it.
    let dir = if info.dir == dir { dir.parent().map_or(dir.clone(), Path::to_path_buf) } else { dir };
    let ignored: Vec<String> = (a.given.iter())
        .filter(|id| !KEPT_ON_RESUME.contains(&id.as_str()))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if !ignored.is_empty() && first {
        eprintln!(
            "minibatch: warning: {} ignored: a resumed run goes on with its own settings ({})",
            ignored.join(", "),
            state.display()
        );
    }
    if epochs > stored.epochs() && stored.schedule() != ScheduleKind::Const && first {
        eprintln!(
            "minibatch: warning: --epochs {epochs} stretches the run's {} schedule from its {} epochs to {epochs}: the \
             rates from here on are not those of the first plan",
            stored.schedule().name(),
            stored.epochs()
        );
    }
    let a = TrainArgs {
        // The schedule spans the run's epochs, as many as now asked.
        epochs: Some(epochs),
        save: a.save,
        json: a.json,
        log: a.log,
        plot: a.plot,
        telemetry: a.telemetry,
        checkpoint_dir: a.checkpoint_dir.or(Some(dir)),
        resume: a.resume,
        threads: a.threads,
        // Workers change how fast batches come, not which: the invocation's.
        workers: a.workers,
        all_reduce: a.all_reduce,
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
        if a.resume.is_none() && d.join("latest").exists() {
            eprintln!(
                "minibatch: warning: --checkpoint-dir {} already holds another run's checkpoints: this run's go beside \
                 them and `latest` will name this run's (resume that one with --resume, or give an empty folder)",
                d.display()
            );
        }
    }
    Ok(())
}

/// Every process of a distributed run refuses alike: process 0 says why, once, and the others
/// wait until it has (mpirun ends the whole job as soon as one process ends with an error, which
/// could cut process 0 short), then all end with status 1.
fn refused_together(e: &anyhow::Error, w: &dyn Collective) -> anyhow::Result<Outcome> {
    if w.rank() == 0 {
        eprintln!("minibatch: error: {}", crate::message(e));
    }
    let mut said = [0.0];
    w.all_reduce_sum_f64(&mut said)?;
    Ok(Outcome::FailedAsProcessZero)
}

pub fn train(a: TrainArgs) -> anyhow::Result<Outcome> {
    let world = crate::world::join(a.distributed, a.all_reduce)?;
    let settled = settle(a, &world);
    if let Some(w) = world.as_ref().filter(|w| w.size() > 1) {
        // The settings come from the flags and the checkpoint, the same for every process: when
        // they fail everywhere, process 0 alone says why, and not once per process.
        let mut failed = [f64::from(u8::from(settled.is_err()))];
        w.all_reduce_sum_f64(&mut failed)?;
        if failed[0] == w.size() as f64 {
            if let Err(e) = settled {
                return refused_together(&e, w.as_ref());
            }
        }
    }
    match (settled.and_then(|(a, resumed)| train_in(a, resumed, &world)), &world) {
        // Every process found the same difference: process 0 says it, the others end quietly.
        (Err(e), Some(w)) if e.is::<crate::agree::Disagreement>() => refused_together(&e, w.as_ref()),
        // Every other process would wait for this one in the next exchange: end them all.
        (Err(e), Some(w)) if w.size() > 1 => {
            // One write, so that the processes' lines do not interleave.
            let line = format!("minibatch: process {} of {}: {}\n", w.rank(), w.size(), crate::message(&e));
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            w.abort(1)
        }
        (result, _) => result,
    }
}

fn train_in(mut a: TrainArgs, resumed: Option<CheckpointInfo>, world: &World) -> anyhow::Result<Outcome> {
    let first = crate::world::first(world);
    let Prepared { train: train_dl, valid: valid_dl, input, classes: n_out, counts: (nt, nv), unreadable } =
        prepare(&mut a, world)?;
    let model = a.arch(input, n_out)?.build(a.seed)?;
    let total_steps = train_dl.len() * a.epochs();
    let spec = a.opt_spec();
    let body = match &a.pretrained {
        Some(path) => {
            // A resumed run's checkpoint holds the weights: the body is loaded when the run starts.
            if resumed.is_none() {
                let say = match (first, a.json) {
                    (false, _) => Say::Nothing,
                    (true, false) => Say::Out,
                    (true, true) => Say::Err,
                };
                load_body(model.as_ref(), path, say)?;
            }
            body_names(model.as_ref())
        }
        None => Vec::new(),
    };
    let opt = spec.build_grouped(model.named_parameters(), &body, BODY_LR_RATIO)?;
    let schedule = a.schedule().build(spec.lr(), total_steps, a.warmup);
    if a.freeze_epochs >= a.epochs() && first && resumed.is_none() {
        eprintln!(
            "minibatch: warning: --freeze-epochs {} is as long as the run's {} epochs: the body never trains",
            a.freeze_epochs,
            a.epochs()
        );
    }
    if a.warmup >= total_steps && first && resumed.is_none() {
        eprintln!(
            "minibatch: warning: --warmup {} is as long as the run's {total_steps} steps: every step trains below the rate",
            a.warmup
        );
    }
    if first && !a.json && resumed.is_none() {
        outln!("{model}");
        let what = if a.data.notes.is_some() { "pictures" } else { "images" };
        outln!("{nt} training and {nv} validation {what}, {} parameters", model.num_parameters());
        if a.precision == Precision::Bf16 {
            outln!("mixed precision: bf16 products summed in fp32; weights, loss and optimizer in fp32");
        }
        if let Some(n) = a.world {
            outln!("distributed over {n} processes: global batch size {} ({n} x --bs {})", n * a.bs(), a.bs());
        }
    }
    // The rate (and momentum) of each step, from the learner's step count: a resumed run goes on
    // at the checkpoint's point of the schedule.
    let loss = LabelSmoothingCrossEntropy::new(a.label_smoothing.unwrap_or(0.0))?.into_fn();
    let mut learn = Learner::new(model, loss, opt, train_dl, valid_dl)
        .with_callback(ParamScheduler::new(schedule))
        .precision(a.precision);
    if a.precision == Precision::Bf16 && !minibatch::fast::bf16_in_hardware() && first {
        eprintln!("minibatch: note: this processor has no bf16 products (AMX or AVX512-BF16): --precision bf16 rounds as bf16 does, at fp32's speed or below");
    }
    if let Some(alpha) = a.mixup {
        learn.add_callback(MixUp::new(alpha, n_out, a.seed)?);
    }
    if a.freeze_epochs > 0 {
        learn.add_callback(FreezeBody { epochs: a.freeze_epochs });
    }
    if let Some(w) = world {
        learn = learn.data_parallel(w.clone());
    }
    if let Some(info) = &resumed {
        learn.load_checkpoint(&info.dir)?;
        if first && !a.json {
            let bf16 = if a.precision == Precision::Bf16 { " (bf16 products)" } else { "" };
            outln!("resuming {} at epoch {}, batch {}{bf16}", info.dir.display(), info.epoch + 1, info.batch);
        }
    }
    add_callbacks(&mut learn, &a, first)?;
    let outcome = run(learn, &a, world);
    crate::folder::warn_unreadable(&unreadable);
    outcome
}

/// The run's settings (the checkpoint's when resuming), checked, with the number of processes;
/// the first process also checks that every output can be written.
fn settle(a: TrainArgs, world: &World) -> anyhow::Result<(TrainArgs, Option<CheckpointInfo>)> {
    let (mut a, resumed) = resume_settings(a, crate::world::first(world))?;
    a.check()?;
    let size = world.as_ref().map(|w| w.size());
    if resumed.is_some() && a.world != size {
        // Started by mpirun without --distributed, each process would train alone.
        let hint = if size.is_none() { " (under mpirun, with --distributed)" } else { "" };
        bail!(
            "the checkpoint is of a run on {} process(es), this one has {}: resume with the same number{hint}",
            a.world.unwrap_or(1),
            size.unwrap_or(1)
        );
    }
    a.world = size;
    if crate::world::first(world) {
        check_outputs(&a)?;
    }
    Ok((a, resumed))
}

/// Trains, then (first process) writes what the run keeps and says how it ended; the other
/// processes of a distributed run only say how it ended, through their exit status.
fn run(mut learn: Learner, a: &TrainArgs, world: &World) -> anyhow::Result<Outcome> {
    let first = crate::world::first(world);
    let telemetry = a.telemetry.as_ref().filter(|_| first);
    let stats = telemetry.map(|_| ActivationStats::new(learn.model.as_ref(), Default::default())).transpose()?;
    let started = Instant::now();
    let report = learn.fit_until(a.epochs())?;
    if let (Some(w), true) = (world, first) {
        report_exchange(w.as_ref(), started.elapsed().as_secs_f64());
    }
    if !first {
        return Ok(if report.diverged {
            Outcome::Diverged
        } else if minibatch::learner::interrupted() {
            Outcome::Interrupted
        } else {
            Outcome::Done
        });
    }
    let drawn = match (telemetry, &stats) {
        (Some(path), Some(stats)) => Some(minibatch::plot::plot_activations(path, &stats.layers())),
        _ => None,
    };
    let outcome = finish(&learn, a, report)?;
    drawn.transpose()?;
    Ok(outcome)
}

/// How much of `total` seconds of training process 0 spent exchanging gradients and waiting.
fn report_exchange(w: &dyn Collective, total: f64) {
    let (comm, wait) = (w.reduce_seconds(), w.wait_seconds());
    let share = |s: f64| 100.0 * s / total.max(1e-9);
    eprintln!(
        "minibatch: process 0 spent {total:.2} s training: {comm:.2} s ({:.0}%) exchanging gradients, of which {wait:.2} s ({:.0}%) waiting for the others",
        share(comm),
        share(wait)
    );
    if let Some(note) = w.exchange_note() {
        eprintln!("minibatch: {note}");
    }
}

/// The run's callbacks; only the first process of a distributed run prints, logs and checkpoints.
fn add_callbacks(learn: &mut Learner, a: &TrainArgs, first: bool) -> anyhow::Result<()> {
    learn.add_callback(DivergenceGuard::new(10));
    if let Some(clip) = a.clip {
        learn.add_callback(GradientClip(clip));
    }
    if let Some(patience) = a.early_stop {
        learn.add_callback(EarlyStopping::new("valid_loss", patience));
    }
    if !first {
        return Ok(());
    }
    if a.json {
        learn.add_callback(JsonEpochs(Instant::now()));
    } else {
        learn.add_callback(Progress::new().with_output(Stdout));
    }
    if let Some(log) = &a.log {
        // Resumed: the log goes on from the checkpoint, so that it holds the whole run.
        let logger = match a.resume {
            Some(_) => JsonlLogger::continuing(log, learn.state.epoch, learn.state.iter)?,
            None => JsonlLogger::create(log)?,
        };
        if let Some(missing) = logger.missing() {
            eprintln!("minibatch: warning: --log {missing}");
        }
        learn.add_callback(logger);
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
    let notes = a.data.notes.as_ref().map(FolderNotes::metadata).unwrap_or_default();
    let saved = a.save.as_ref().map(|path| save_state_with(learn.model.as_ref(), path, notes).map(|()| path));
    let plotted = a
        .plot
        .as_ref()
        .map(|path| minibatch::plot::plot_records(&learn.recorder.batches, &learn.recorder.epochs, path));
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
