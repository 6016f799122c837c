//! The Learner: callbacks written by users, the shipped ones, resuming from a checkpoint.

mod common;
use common::{flat, mnist_dir};
use minibatch::learner::{
    Callback, Checkpoint, Ctx, DivergenceGuard, EarlyStopping, Flow, JsonlLogger, Learner, SaveBest, TopK,
};
use minibatch::{cross_entropy, get_dls, get_model, Mnist};

fn learner(n_train: usize, lr: f64) -> Learner {
    minibatch::set_num_threads(1);
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train, valid) = (data.train.slice(0, n_train).unwrap(), data.valid.slice(0, 1000).unwrap());
    let (train_dl, valid_dl) = get_dls(train, valid, 64).unwrap();
    let (model, opt) = get_model(784, 50, 10, lr, 0).unwrap();
    Learner::new(model, cross_entropy, opt, train_dl, valid_dl)
}

fn weights(l: &Learner) -> Vec<f64> {
    l.model.parameters().iter().flat_map(|p| flat(&p.tensor())).collect()
}

// A callback in under 20 lines that records the learning rate at every batch.
struct LrLog(std::rc::Rc<std::cell::RefCell<Vec<f64>>>);
impl Callback for LrLog {
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        self.0.borrow_mut().push(cx.state.lr);
        Flow::Continue
    }
}

// And one that stops after N batches.
struct StopAfter(usize);
impl Callback for StopAfter {
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        if cx.state.iter >= self.0 {
            Flow::StopFit
        } else {
            Flow::Continue
        }
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
    resumed.fit(2).unwrap();
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
    minibatch::learner::plot_log(&log, &png).unwrap();
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let x = Mnist::load(mnist_dir()).unwrap().test.gather(&[0, 1]).unwrap().0;
    assert_eq!(l.predict(&x).unwrap().dims(), &[2, 10]);
    let s = l.summary(&[64, 784]).unwrap();
    assert!(s.contains("0 (Linear)") && s.contains("[64, 10]") && s.contains("Total params: 39,760"), "{s}");
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&png).unwrap();
}
