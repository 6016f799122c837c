//! The Learner: callbacks written by users, the shipped ones, resuming from a checkpoint.

mod common;
use common::{flat, mnist_dir, weights, StopAfter};
use minibatch::learner::{
    Callback, Checkpoint, Ctx, DivergenceGuard, EarlyStopping, Flow, JsonlLogger, Learner, SaveBest, TopK,
};
use minibatch::{cross_entropy, get_dls, get_model, Mnist};

fn learner(n_train: usize, lr: f64) -> Learner {
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train, valid) = (data.train.slice(0, n_train).unwrap(), data.valid.slice(0, 1000).unwrap());
    let (train_dl, valid_dl) = get_dls(train, valid, 64).unwrap();
    let (model, opt) = get_model(784, 50, 10, lr, 0).unwrap();
    Learner::new(model, cross_entropy, opt, train_dl, valid_dl)
}

// A callback in under 20 lines that records the learning rate at every batch.
struct LrLog(std::rc::Rc<std::cell::RefCell<Vec<f64>>>);
impl Callback for LrLog {
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        self.0.borrow_mut().push(cx.state.lr);
        Flow::Continue
    }
}

#[test]
fn user_callbacks_record_the_rate_and_stop_training() {
    let lrs = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut l = learner(3200, 0.5).with_callback(LrLog(lrs.clone()));
    let report = l.fit_one_cycle(2, 0.5).unwrap();
    assert_eq!(report.stopped, None);
    let lrs = lrs.borrow();
    assert_eq!(lrs.len(), 100, "two epochs of 50 batches");
    let peak = lrs.iter().cloned().fold(0.0, f64::max);
    assert!(
        (peak - 0.5).abs() < 0.01 && lrs[0] < 0.03 && *lrs.last().unwrap() < 1e-3,
        "one-cycle: {peak} {} {}",
        lrs[0],
        lrs[99]
    );
    assert_eq!(l.recorder.batches.iter().map(|b| b.lr).collect::<Vec<_>>(), *lrs);

    let mut l = learner(3200, 0.5).with_callback(StopAfter(7));
    let report = l.fit(3).unwrap();
    assert_eq!(l.state.iter, 7);
    assert_eq!(report.epochs_done, 0, "stopped inside the first epoch");
    assert!(report.stopped.is_some());
    // The part-epoch was validated, and its record says it was a part.
    let part = l.recorder.epochs.last().unwrap();
    assert!(!part.complete && part.iter == 7, "{part:?}");
    let mut whole = learner(640, 0.5);
    whole.fit(1).unwrap();
    assert!(whole.recorder.epochs.iter().all(|e| e.complete));
}

#[test]
fn metrics_early_stopping_and_save_best() {
    let best = std::env::temp_dir().join(format!("minibatch-best-{}.safetensors", std::process::id()));
    let mut l = learner(2000, 0.5).with_metrics(vec![Box::new(minibatch::learner::Accuracy), Box::new(TopK(3))]);
    l.add_callback(SaveBest::new("accuracy", &best));
    // A patience of 0 epochs: stops at the first epoch that does not improve.
    l.add_callback(EarlyStopping::new("valid_loss", 1).min_delta(1.0));
    let report = l.fit(10).unwrap();
    assert_eq!(report.epochs_done, 2, "the second epoch cannot improve the loss by 1.0");
    assert!(report.stopped.unwrap().contains("early stopping: valid_loss"));
    let m = &l.state.metrics;
    assert_eq!(m.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["valid_loss", "accuracy", "top3_accuracy"]);
    assert!(l.state.metric("top3_accuracy").unwrap() >= l.state.metric("accuracy").unwrap());
    assert!(best.is_file());
    std::fs::remove_file(&best).unwrap();
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_keeps_good_weights() {
    let mut l = learner(3200, 100.0).with_callback(DivergenceGuard::new(1));
    let report = l.fit(3).unwrap();
    let reason = report.stopped.unwrap();
    assert!(reason.starts_with("diverged: the loss is") && reason.contains("at step"), "{reason}");
    assert!(weights(&l).iter().all(|w| w.is_finite() && w.abs() < 10.0), "the last good weights are back");
    assert!(l.state.iter < 10, "stopped at once: {}", l.state.iter);
}

#[test]
fn resuming_from_a_checkpoint_gives_the_same_weights() {
    let dir = std::env::temp_dir().join(format!("minibatch-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut whole = learner(3200, 0.5);
    whole.fit(2).unwrap();

    // Stopped in the middle of the second epoch, checkpointed, then resumed in a new learner.
    let mut first = learner(3200, 0.5)
        .with_callback(StopAfter(73))
        .with_callback(Checkpoint::new(&dir, serde_json::json!({"lr": 0.5})));
    first.fit(2).unwrap();
    let info = minibatch::learner::latest_checkpoint(&dir).unwrap();
    assert_eq!((info.epoch, info.batch, info.iter), (1, 23, 73));
    assert_eq!(info.hyper["lr"], 0.5);

    let mut resumed = learner(3200, 0.5);
    resumed.load_checkpoint(&dir).unwrap();
    resumed.fit_until(2).unwrap();
    assert_eq!(resumed.state.iter, 100);
    assert!(weights(&resumed) == weights(&whole), "resumed training must match uninterrupted training to the bit");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn logs_plots_predict_and_summary() {
    let log = std::env::temp_dir().join(format!("minibatch-log-{}.jsonl", std::process::id()));
    let png = log.with_extension("png");
    let mut l = learner(1280, 0.5).with_callback(JsonlLogger::create(&log).unwrap());
    l.fit(2).unwrap();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|x| serde_json::from_str(x).unwrap()).collect();
    assert_eq!(lines.iter().filter(|v| v["kind"] == "batch").count(), 40);
    let epochs: Vec<_> = lines.iter().filter(|v| v["kind"] == "epoch").collect();
    assert_eq!(epochs.len(), 2);
    assert!(epochs[1]["accuracy"].as_f64().unwrap() > 0.5);
    minibatch::plot::plot_log(&log, &png).unwrap();
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let x = Mnist::load(mnist_dir()).unwrap().test.gather(&[0, 1]).unwrap().0;
    assert_eq!(l.predict(&x).unwrap().dims(), &[2, 10]);
    let s = l.summary(&[64, 784]).unwrap();
    assert!(s.contains("0 (Linear)") && s.contains("[64, 10]") && s.contains("Total params: 39,760"), "{s}");
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&png).unwrap();
}

#[test]
fn a_checkpoint_replaced_under_the_same_name_is_found_while_it_is_moved_aside() {
    let dir = std::env::temp_dir().join(format!("minibatch-ckpt-aside-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut first = learner(640, 0.5).with_callback(Checkpoint::new(&dir, serde_json::json!({"run": 1})));
    first.fit(1).unwrap();
    let info = minibatch::learner::latest_checkpoint(&dir).unwrap();
    let name = info.dir.file_name().unwrap().to_str().unwrap().to_string();
    // A second run writing a checkpoint of the same name moves the first one aside before its
    // own goes in: killed between the two renames, `latest` names a missing folder.
    std::fs::rename(dir.join(&name), dir.join(format!(".old-{name}"))).unwrap();
    let found = minibatch::learner::latest_checkpoint(&dir).unwrap();
    assert_eq!((found.hyper["run"].as_i64(), found.epoch), (Some(1), info.epoch));
    // And a run that completes the replacement leaves only its own checkpoint under the name.
    let mut second = learner(640, 0.5).with_callback(Checkpoint::new(&dir, serde_json::json!({"run": 2})));
    second.fit(1).unwrap();
    assert_eq!(minibatch::learner::latest_checkpoint(&dir).unwrap().hyper["run"].as_i64(), Some(2));
    assert!(!dir.join(format!(".old-{name}")).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resumed_run_keeps_every_callbacks_state() {
    let dir = std::env::temp_dir().join(format!("minibatch-ckpt-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut first = learner(1280, 0.5)
        .with_callback(DivergenceGuard::new(1))
        .with_callback(EarlyStopping::new("valid_loss", 100))
        .with_callback(Checkpoint::new(&dir, serde_json::json!({})));
    first.fit(3).unwrap();
    let info = minibatch::learner::latest_checkpoint(&dir).unwrap();
    let names: Vec<&str> = info.callbacks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["DivergenceGuard", "EarlyStopping", "Checkpoint"], "the checkpoint keeps its run's name");
    assert_eq!(info.callbacks[0].1["first_loss"], first.recorder.batches[0].loss);

    // The resumed guard judges against the run's first loss, not the resumed process's: with
    // that loss replaced by a tiny one, the first resumed step counts as divergence.
    let mut state =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(info.dir.join("state.json")).unwrap())
            .unwrap();
    state["callbacks"][0][1]["first_loss"] = serde_json::json!(1e-3);
    std::fs::write(info.dir.join("state.json"), state.to_string()).unwrap();
    let mut resumed = learner(1280, 0.5).with_callback(DivergenceGuard::new(1));
    resumed.load_checkpoint(&dir).unwrap();
    let report = resumed.fit_until(4).unwrap();
    assert!(report.diverged, "{report:?}");
    assert_eq!(resumed.state.iter, 60, "stopped before its first resumed step");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn early_stopping_state_travels_and_a_misspelt_metric_is_refused() {
    let mut es = EarlyStopping::new("valid_loss", 3);
    es.load_state(&serde_json::json!({"best": 0.25, "waited": 2})).unwrap();
    assert_eq!((es.best, es.waited), (Some(0.25), 2));
    assert_eq!(es.state().unwrap(), serde_json::json!({"best": 0.25, "waited": 2}));
    assert!(es.load_state(&serde_json::json!({"best": "x"})).is_err());

    let mut l = learner(640, 0.5).with_callback(EarlyStopping::new("val_loss", 3));
    let err = l.fit(1).unwrap_err().to_string();
    assert!(err.contains("EarlyStopping watches `val_loss`") && err.contains("valid_loss, accuracy"), "{err}");
    assert_eq!(l.state.iter, 0, "refused before training");
    let mut l = learner(640, 0.5).with_callback(SaveBest::new("acc", "/nonexistent/best.safetensors"));
    assert!(l.fit(1).unwrap_err().to_string().contains("SaveBest watches `acc`"));
}

// Skips the first batch of every epoch.
struct SkipFirst;
impl Callback for SkipFirst {
    fn before_batch(&mut self, cx: &mut Ctx) -> Flow {
        if cx.state.batch == 0 {
            Flow::SkipBatch
        } else {
            Flow::Continue
        }
    }
}

#[test]
fn a_skipped_first_batch_is_not_recorded_or_logged() {
    let log = std::env::temp_dir().join(format!("minibatch-skip-{}.jsonl", std::process::id()));
    let mut l = learner(640, 0.5).with_callback(SkipFirst).with_callback(JsonlLogger::create(&log).unwrap());
    l.fit(2).unwrap();
    let iters: Vec<usize> = l.recorder.batches.iter().map(|b| b.iter).collect();
    assert_eq!(iters, (0..18).collect::<Vec<_>>(), "9 steps an epoch, numbered from 0");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("\"batch\"")).count(), 18);
    std::fs::remove_file(&log).unwrap();
}

// Counts the log's lines at every batch, while the logger is still writing.
struct CountLines(std::path::PathBuf, std::rc::Rc<std::cell::RefCell<Vec<usize>>>);
impl Callback for CountLines {
    fn after_batch(&mut self, _: &mut Ctx) -> Flow {
        self.1.borrow_mut().push(std::fs::read_to_string(&self.0).unwrap().lines().count());
        Flow::Continue
    }
}

#[test]
fn the_log_is_on_disk_a_line_at_a_time_and_a_torn_last_line_is_left_out() {
    let log = std::env::temp_dir().join(format!("minibatch-lines-{}.jsonl", std::process::id()));
    let png = log.with_extension("png");
    let counts = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut l = learner(640, 0.5)
        .with_callback(JsonlLogger::create(&log).unwrap())
        .with_callback(CountLines(log.clone(), counts.clone()));
    l.fit(1).unwrap();
    assert_eq!(*counts.borrow(), (1..=10).collect::<Vec<_>>(), "each batch's line is written when it is logged");

    // Killed mid-write: the last line is cut. The plot leaves it out and says so.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, &text[..text.len() - 20]).unwrap();
    let warnings = minibatch::plot::plot_log(&log, &png).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("line 11 is cut short"), "{warnings:?}");
    // A bad line elsewhere is an error naming the line and the format.
    std::fs::write(&log, format!("{{\"kind\": \"batch\"}}\n{text}")).unwrap();
    let err = minibatch::plot::plot_log(&log, &png).unwrap_err().to_string();
    assert!(err.contains("not a valid training log (JSON lines): line 1: no whole number `iter`"), "{err}");
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&png).unwrap();
}

/// Items whose image is all NaN from index 100 on.
struct Poisoned(minibatch::ImageDataset);
impl minibatch::Dataset for Poisoned {
    type Item = (candle_core::Tensor, candle_core::Tensor);
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> minibatch::Result<Self::Item> {
        let (x, y) = self.0.gather(&[i])?;
        let x = x.squeeze(0)?;
        let x = if i >= 100 { (x * f64::NAN)? } else { x };
        Ok((x, y.squeeze(0)?))
    }
}

#[test]
fn a_non_finite_input_batch_is_reported_by_the_loop() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let train = minibatch::DataLoader::new(Poisoned(data.train.slice(0, 640).unwrap()), 64).unwrap();
    let valid_dl = minibatch::DataLoader::new(data.valid.slice(0, 128).unwrap(), 64).unwrap();
    let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    let mut l = Learner::new(model, cross_entropy, opt, train, valid_dl);
    let err = l.fit(1).unwrap_err().to_string();
    assert_eq!(err, "the input of training batch 2 of epoch 1 holds a non-finite value (NaN or infinity)");
}

/// Writes down every hook the loop calls, with the batch it is at.
struct Events(std::rc::Rc<std::cell::RefCell<Vec<String>>>);
impl Events {
    fn log(&self, hook: &str, cx: &Ctx) -> Flow {
        self.0.borrow_mut().push(format!("{hook}@{}", cx.state.batch));
        Flow::Continue
    }
}
impl Callback for Events {
    fn before_fit(&mut self, cx: &mut Ctx) -> Flow {
        self.log("before_fit", cx)
    }
    fn before_epoch(&mut self, cx: &mut Ctx) -> Flow {
        self.log("before_epoch", cx)
    }
    fn before_train(&mut self, cx: &mut Ctx) -> Flow {
        self.log("before_train", cx)
    }
    fn before_batch(&mut self, cx: &mut Ctx) -> Flow {
        self.log("before_batch", cx)
    }
    fn after_forward(&mut self, cx: &mut Ctx) -> Flow {
        self.log("after_forward", cx)
    }
    fn after_loss(&mut self, cx: &mut Ctx) -> Flow {
        self.log("after_loss", cx)
    }
    fn after_backward(&mut self, cx: &mut Ctx) -> Flow {
        self.log("after_backward", cx)
    }
    fn after_step(&mut self, cx: &mut Ctx) -> Flow {
        self.log("after_step", cx)
    }
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        self.log("after_batch", cx)
    }
}

#[test]
fn fit_lr_find_and_the_notebooks_fit_run_one_loop() {
    // The learning-rate finder drives the learner's own loop: a callback sees the same hooks,
    // in the same order, for each of its batches as for a training batch.
    let (fit_events, sweep_events) = (Default::default(), Default::default());
    let mut l = learner(640, 0.5).with_callback(Events(std::rc::Rc::clone(&fit_events)));
    l.fit(1).unwrap();
    let mut s = learner(640, 0.5)
        .with_callback(Events(std::rc::Rc::clone(&sweep_events)))
        .with_callback(EarlyStopping::new("valid_loss", 1));
    let before = weights(&s);
    let config = minibatch::LrFindConfig { num_it: 4, ..Default::default() };
    assert_eq!(s.lr_find(config).unwrap().lrs.len(), 4);
    let (fit_events, sweep_events) = (fit_events.borrow(), sweep_events.borrow());
    assert_eq!(sweep_events.len(), 3 + 4 * 6, "before_fit/epoch/train, then six hooks per batch");
    assert_eq!(sweep_events[..], fit_events[..sweep_events.len()]);
    assert!(weights(&s) == before && s.state.iter == 0 && s.recorder.batches.is_empty(), "all put back");
    let es = s.callback::<EarlyStopping>().unwrap();
    assert_eq!((es.best, es.waited), (None, 0), "callbacks' state put back too");

    // The notebook's three lines give what a Learner with no callback gives, to the bit.
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train, valid) = (data.train.slice(0, 1280).unwrap(), data.valid.slice(0, 500).unwrap());
    let (train_dl, valid_dl) = get_dls(train.clone(), valid.clone(), 64).unwrap();
    let (model, mut opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    let stats = minibatch::fit(2, &model, cross_entropy, &mut opt, &train_dl, &valid_dl).unwrap();
    let (train_dl, valid_dl) = get_dls(train, valid, 64).unwrap();
    let (model2, opt2) = get_model(784, 50, 10, 0.5, 0).unwrap();
    let boxed: Box<dyn minibatch::Module> = Box::new(model2);
    let mut learn = Learner::new(boxed, cross_entropy, opt2, train_dl, valid_dl);
    learn.fit(2).unwrap();
    for (s, e) in stats.iter().zip(&learn.recorder.epochs) {
        assert_eq!((s.train_loss, s.valid_loss), (e.train_loss, e.metrics[0].1));
    }
    assert!(minibatch::module::state_dict(&model).keys().all(|k| {
        let (a, b) =
            (&minibatch::module::state_dict(&model)[k], &minibatch::module::state_dict(learn.model.as_ref())[k]);
        flat(a) == flat(b)
    }));
}

#[test]
fn fit_trains_that_many_more_epochs_and_fit_until_a_total() {
    let mut l = learner(640, 0.5);
    l.fit(1).unwrap();
    l.fit(2).unwrap();
    assert_eq!((l.state.epoch, l.recorder.epochs.len()), (3, 3), "fastai's fit(n): n more");
    l.fit_until(4).unwrap();
    l.fit_until(2).unwrap();
    assert_eq!(l.state.epoch, 4, "fit_until(total) stops at the total, and does nothing past it");
}

#[test]
fn a_training_loader_without_batches_or_a_bad_one_cycle_rate_is_refused() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train, valid) = get_dls(data.train.slice(0, 10).unwrap(), data.valid.slice(0, 100).unwrap(), 64).unwrap();
    let (model, mut opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    let err = minibatch::fit(2, &model, cross_entropy, &mut opt, &train, &valid).unwrap_err().to_string();
    assert!(err.starts_with("invalid training loader: expected at least one batch, found 0 batches"), "{err}");
    let (train, valid) = get_dls(data.train.slice(0, 128).unwrap(), data.valid.slice(0, 100).unwrap(), 64).unwrap();
    let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    let mut learn = Learner::new(model, cross_entropy, opt, train, valid);
    for bad in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
        let err = learn.fit_one_cycle(1, bad).unwrap_err().to_string();
        assert!(err.starts_with("invalid max_lr: expected a finite number above 0"), "{err}");
    }
    assert_eq!(learn.state.epoch, 0, "nothing trained");
}

/// A `Write` whose bytes can be read after the learner that owns it is done.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn progress_marks_an_epoch_stopped_part_way() {
    struct StopAt(usize);
    impl Callback for StopAt {
        fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
            if cx.state.epoch == 1 && cx.state.batch == self.0 {
                Flow::StopEpoch
            } else {
                Flow::Continue
            }
        }
    }
    let table = Shared::default();
    let progress = minibatch::learner::Progress::new().with_output(table.clone());
    let mut l = learner(640, 0.5).with_callback(progress).with_callback(StopAt(3));
    l.fit(2).unwrap();
    let text = String::from_utf8(table.0.borrow().clone()).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(!rows[1].contains("stopped"), "the whole first epoch: {text}");
    assert!(rows[2].ends_with("(stopped after batch 3 of 10)"), "{text}");
}

#[test]
fn the_log_of_a_resumed_run_is_the_log_of_a_run_never_stopped() {
    let dir = std::env::temp_dir().join(format!("minibatch-log-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (whole_log, log, ck) = (dir.join("whole.jsonl"), dir.join("log.jsonl"), dir.join("ck"));
    learner(1280, 0.5).with_callback(JsonlLogger::create(&whole_log).unwrap()).fit(3).unwrap();
    // Stopped mid-epoch (steps 27 and 39, of 20 an epoch), then at an epoch's end (step 40), each
    // resumed in a new learner that continues the same log. (At 39, an epoch mean remade from the
    // checkpoint's mean times its examples differed in its last bit; the checkpoint keeps the sum.)
    for stop in [27, 39, 40] {
        let mut first = learner(1280, 0.5)
            .with_callback(JsonlLogger::continuing(&log, 0, 0).unwrap())
            .with_callback(StopAfter(stop))
            .with_callback(Checkpoint::new(&ck, serde_json::json!({})));
        first.fit(3).unwrap();
        let mut resumed = learner(1280, 0.5);
        resumed.load_checkpoint(&ck).unwrap();
        let (epoch, iter) = (resumed.state.epoch, resumed.state.iter);
        resumed.add_callback(JsonlLogger::continuing(&log, epoch, iter).unwrap());
        resumed.fit_until(3).unwrap();
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
        assert!(read(&log) == read(&whole_log), "stopped after step {stop}: {}", read(&log));
        std::fs::remove_dir_all(&ck).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_log_continued_from_another_run_or_from_nothing_says_what_it_lacks() {
    let dir = std::env::temp_dir().join(format!("minibatch-log-gap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short.jsonl");
    learner(640, 0.5).with_callback(JsonlLogger::create(&short).unwrap()).fit(1).unwrap();
    let logger = JsonlLogger::continuing(&short, 1, 27).unwrap();
    let said = logger.missing().unwrap();
    assert!(
        said.ends_with(
            "held 10 of the run's 27 steps before its checkpoint; the log goes on from step 27 without the others"
        ),
        "{said}"
    );
    let none = JsonlLogger::continuing(dir.join("new.jsonl"), 1, 27).unwrap();
    assert!(none.missing().unwrap().contains("held 0 of the run's 27 steps"));
    let junk = dir.join("junk.jsonl");
    std::fs::write(&junk, "not json\n{\"kind\":\"note\"}\n").unwrap();
    let fresh = JsonlLogger::continuing(&junk, 0, 0).unwrap();
    assert!(fresh.missing().unwrap().ends_with("a line that is not a record of a training log was dropped"));
    assert_eq!(std::fs::read_to_string(&junk).unwrap(), "", "nothing of it kept");
    assert!(JsonlLogger::continuing(&short, 0, 0).unwrap().missing().is_none(), "a new run from nothing lacks nothing");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_fallback_never_takes_another_runs_checkpoint() {
    let dir = std::env::temp_dir().join(format!("minibatch-ckpt-runs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Two runs into one folder: the second stops in its first epoch.
    let mut first = learner(640, 0.5).with_callback(Checkpoint::new(&dir, serde_json::json!({"run": 1})));
    first.fit(2).unwrap();
    let mut second = learner(640, 0.5)
        .with_callback(StopAfter(3))
        .with_callback(Checkpoint::new(&dir, serde_json::json!({"run": 2})));
    second.fit(2).unwrap();
    let latest = minibatch::learner::latest_checkpoint(&dir).unwrap();
    assert_eq!((latest.hyper["run"].as_i64(), latest.epoch, latest.batch), (Some(2), 0, 3));
    // Its only checkpoint removed, the second run's `latest` names nothing: the first run's
    // checkpoints are not taken instead.
    std::fs::remove_dir_all(&latest.dir).unwrap();
    let err = minibatch::learner::latest_checkpoint(&dir).unwrap_err().to_string();
    assert!(err.contains("state.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
