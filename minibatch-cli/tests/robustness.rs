//! The program under the mistakes and accidents of real use: outputs that cannot be written,
//! closed standard output, resumed runs, impossible checkpoints, odd paths and corrupted labels.
//! Each case runs the real program.

mod common;
use common::{mnist_dir, stderr, weights};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn minibatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_minibatch"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> Output {
    minibatch().args(args).output().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    common::tmp(&format!("robust-{name}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small, quick run: 5,000 training images.
const SMALL: [&str; 4] = ["--valid-size", "55000", "--epochs", "1"];

fn fails_before_training(args: &[&str], message: &str) {
    let out = run(&[&["train"], &SMALL[..], args].concat());
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    assert!(stderr(&out).contains(message), "{args:?}: expected {message:?} in {}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing trained: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn every_output_is_checked_before_the_first_epoch() {
    let d = tmp("outputs");
    let w = d.join("w.safetensors");
    fails_before_training(&["--save", s(&d.join("missing/w.safetensors"))], "does not exist");
    fails_before_training(&["--plot", s(&d.join("curves.txt")), "--save", s(&w)], "give a name ending in .png");
    fails_before_training(&["--save", s(&d)], "is a folder");
    fails_before_training(&["--log", "/dev/full"], "not a regular file");
    fails_before_training(&["--save", "/dev/full"], "not a regular file");
    assert!(!Path::new("/dev/full").is_file(), "the device node is still one");
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    fails_before_training(&["--save", s(&fifo)], "not a regular file");
    fails_before_training(&["--plot", "/proc/curves.png"], "cannot write in /proc");
    fails_before_training(&["--checkpoint-dir", "/proc/version/ck"], "/proc/version is not a folder");
    // Only the folder itself is made: a mistyped path above it is an error, not a new tree.
    fails_before_training(&["--checkpoint-dir", s(&d.join("missing/ck"))], "missing does not exist");
    assert!(!w.exists());
    let names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["fifo"], "no stray files");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_plot_that_fails_at_the_end_does_not_cost_the_weights() {
    let d = tmp("plot-fails");
    let (w, plots, ck) = (d.join("w.safetensors"), d.join("plots"), d.join("ck"));
    std::fs::create_dir(&plots).unwrap();
    let child = minibatch()
        .args(["train", "--epochs", "6", "--save", s(&w), "--checkpoint-dir", s(&ck)])
        .args(["--plot", s(&plots.join("curves.png"))])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first epoch is checkpointed, the plot's folder goes away.
    let t0 = std::time::Instant::now();
    while !ck.join("latest").exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_dir(&plots).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("curves.png"), "{}", stderr(&out));
    assert_eq!(minibatch::module::read_state(&w).unwrap().len(), 4, "the weights were written");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_closed_or_full_standard_output_is_no_panic_and_the_weights_are_saved() {
    let d = tmp("stdout");
    for (name, stdout) in
        [("closed", None), ("full", Some(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap()))]
    {
        let w = d.join(format!("{name}.safetensors"));
        let mut cmd = minibatch();
        cmd.args(["train"]).args(SMALL).args(["--save", s(&w)]).stderr(Stdio::piped());
        let out = match stdout {
            Some(file) => cmd.stdout(file).output().unwrap(),
            None => {
                // A pipe whose reader is gone: `minibatch train | head -0`.
                let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
                drop(child.stdout.take());
                child.wait_with_output().unwrap()
            }
        };
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("standard output") && !err.contains("panicked"), "{name}: {err}");
        assert!(w.is_file(), "{name}: the weights were saved");
    }
    for cmd in [&["show"][..], &["summary"], &["eval", "--load", "/nonexistent.safetensors"]] {
        let out =
            minibatch().args(cmd).stdout(std::fs::File::options().write(true).open("/dev/full").unwrap()).output();
        let err = stderr(&out.unwrap());
        assert!(!err.contains("panicked"), "{cmd:?}: {err}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn resuming_late_in_a_long_run_ends_where_the_uninterrupted_run_does() {
    let d = tmp("resume");
    let (whole, resumed, ck) = (d.join("whole.safetensors"), d.join("resumed.safetensors"), d.join("ck"));
    let common = ["train", "--valid-size", "55000", "--json", "--early-stop", "30"];
    let out = run(&[&common[..], &["--epochs", "40", "--save", s(&whole)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[&common[..], &["--epochs", "20", "--checkpoint-dir", s(&ck)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["train", "--epochs", "40", "--json", "--resume", s(&ck), "--save", s(&resumed), "--lr", "5"]);
    assert!(out.status.success(), "the guard's reference loss travels: {}", stderr(&out));
    assert!(weights(&whole) == weights(&resumed), "bit for bit");
    // A flag of the run's own settings given again is named, not taken.
    let warned = stderr(&out);
    assert!(warned.contains("warning: --lr ignored: a resumed run goes on with its own settings"), "{warned}");
    assert_eq!(warned.matches("ignored").count(), 1, "--epochs, --json, --save are the invocation's: {warned}");

    // Impossible positions and broken files are refused, naming the field and the format.
    let state = std::fs::read_to_string(ck.join("latest")).unwrap();
    let state = ck.join(state.trim()).join("state.json");
    let good = std::fs::read_to_string(&state).unwrap();
    let edit = |key: &str, value: u64| {
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v[key] = value.into();
        std::fs::write(&state, v.to_string()).unwrap();
        run(&["train", "--resume", s(&ck)])
    };
    for (key, value, message) in [
        ("batch", 99_999, "`batch` is 99999, past the 78 batches of an epoch"),
        ("epoch", 999, "`epoch` is 999, past the run's 40 epochs"),
        ("iter", 999_999, "`iter` is 999999, more steps than"),
    ] {
        let out = edit(key, value);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(message), "{key}: {}", stderr(&out));
    }
    std::fs::write(&state, "{ not json").unwrap();
    let out = run(&["train", "--resume", s(&ck)]);
    assert!(stderr(&out).contains("not a valid checkpoint state:"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("safetensors"), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_diverged_run_says_where_its_last_good_weights_are() {
    let d = tmp("diverged");
    let w = d.join("w.safetensors");
    let out = run(&["train", "--lr", "100", "--epochs", "3", "--valid-size", "55000", "--save", s(&w)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains(&format!("they are in {}", w.display())), "{}", stderr(&out));
    let good = weights(&w);
    assert!(good.iter().flat_map(|(_, v)| v).all(|x| x.is_finite() && x.abs() < 10.0));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_checkpoint_evaluates_its_own_validation_set_wherever_it_is_run_from() {
    let d = tmp("eval");
    let ck = d.join("ck");
    // Run from another folder, with a relative data folder.
    let out = minibatch()
        .current_dir(mnist_dir().parent().unwrap())
        .args(["train", "--epochs", "1", "--valid-size", "100", "--json", "--data-dir", "mnist"])
        .args(["--checkpoint-dir", s(&ck)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let trained: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out =
        minibatch().current_dir(&d).args(["eval", "--load", "ck", "--split", "valid", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["count"], 100);
    assert_eq!(v["loss"], trained["valid_loss"]);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A copy of the bundled data in `dir`, with the training labels given.
fn data_copy(dir: &Path, train_labels: Option<&[u8]>) {
    common::copy_data(dir);
    if let Some(bytes) = train_labels {
        std::fs::remove_file(dir.join("train-labels-idx1-ubyte.gz")).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), bytes).unwrap();
    }
}

/// MNIST's training labels, raw.
fn raw_labels() -> Vec<u8> {
    let mut bytes = Vec::new();
    let gz = std::fs::File::open(mnist_dir().join("train-labels-idx1-ubyte.gz")).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut bytes).unwrap();
    bytes
}

#[test]
fn a_corrupted_label_is_refused_unless_the_classes_are_given() {
    let d = tmp("labels");
    let mut labels = raw_labels();
    labels[8 + 123] = 200;
    data_copy(&d, Some(&labels));
    let out = run(&["train", "--epochs", "1", "--data-dir", s(&d)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("train-labels-idx1-ubyte") && err.contains("11 distinct values (0-9, 200)"), "{err}");
    assert!(err.contains("--classes 201"), "{err}");
    let out =
        run(&["train", "--epochs", "1", "--valid-size", "55000", "--data-dir", s(&d), "--classes", "201", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn raw_and_gzipped_copies_must_agree() {
    let d = tmp("copies");
    let mut labels = raw_labels();
    data_copy(&d, None);
    std::fs::write(d.join("train-labels-idx1-ubyte"), &labels).unwrap();
    let out = run(&["train", "--epochs", "1", "--valid-size", "55000", "--json", "--data-dir", s(&d)]);
    assert!(out.status.success(), "identical copies are fine: {}", stderr(&out));
    labels[8 + 5] = (labels[8 + 5] + 1) % 10;
    std::fs::write(d.join("train-labels-idx1-ubyte"), &labels).unwrap();
    let out = run(&["train", "--epochs", "1", "--data-dir", s(&d)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("both hold the training labels but differ"), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn a_data_folder_whose_name_is_not_utf8_checkpoints_and_resumes() {
    use std::os::unix::ffi::OsStrExt;
    let d = tmp("utf8");
    let data = d.join(std::ffi::OsStr::from_bytes(b"mnist-\xff"));
    data_copy(&data, None);
    let ck = d.join("ck");
    let first = minibatch()
        .args(["train", "--epochs", "1", "--valid-size", "55000", "--json", "--checkpoint-dir", s(&ck)])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    std::fs::rename(&data, d.join("elsewhere")).unwrap();
    let out = run(&["train", "--epochs", "2", "--json", "--resume", s(&ck)]);
    assert_eq!(out.status.code(), Some(1), "the run's own folder is read, and it is gone");
    std::fs::rename(d.join("elsewhere"), &data).unwrap();
    let out = run(&["train", "--epochs", "2", "--json", "--resume", s(&ck)]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn sizes_have_limits_and_errors_are_said_once() {
    for args in [
        &["train", "--workers", "100000"][..],
        &["train", "--threads", "4294967296"],
        &["train", "--hidden", "100000000"],
        &["summary", "--hidden", "100000000"],
        &["lr-find", "--num-it", "100000000"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("must be at most"), "{args:?}: {}", stderr(&out));
    }
    let out = run(&["eval", "--load", "/nonexistent/x.safetensors"]);
    assert_eq!(stderr(&out).matches("os error 2").count(), 1, "{}", stderr(&out));
    // The same bound says the same thing for every value under it.
    for n in ["0", "1"] {
        let out = run(&["lr-find", "--num-it", n]);
        assert_eq!(out.status.code(), Some(2), "{n}");
        assert!(stderr(&out).contains("must be at least 2"), "{n}: {}", stderr(&out));
    }
    // A flag the command would ignore is refused, not ignored.
    let out = run(&["lr-find", "--lr", "5"]);
    assert_eq!(out.status.code(), Some(2), "flags that cannot go together are bad flags");
    assert!(stderr(&out).contains("--lr 5 has no effect on lr-find"), "{}", stderr(&out));
}

#[test]
fn lr_find_goes_on_past_one_epoch_and_says_when_it_cannot_suggest() {
    let out = run(&["lr-find", "--valid-size", "58000", "--num-it", "100", "--json", "--end-lr", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lrs"].as_array().unwrap().len(), 100, "2,000 images are 31 batches: the sweep crossed epochs");
    let out = run(&["lr-find", "--start-lr", "10", "--end-lr", "1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no suggestion") && !text.contains("NaN"), "{text}");
}

#[test]
fn inputs_that_are_not_regular_files_are_refused_not_read() {
    let d = tmp("inputs");
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for args in [
        vec!["eval", "--load", "/dev/zero"],
        vec!["summary", "--load", "/dev/zero"],
        vec!["eval", "--load", s(&fifo)],
        vec!["plot", s(&fifo), "-o", s(&d.join("p.png"))],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("not a regular file"), "{args:?}: {}", stderr(&out));
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn two_outputs_naming_one_file_are_refused() {
    let d = tmp("same");
    let p = d.join("out.png");
    fails_before_training(&["--plot", s(&p), "--log", s(&p)], "--log and --plot name the same file");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn checkpoints_out_of_range_finished_or_partly_removed() {
    let d = tmp("ck-cases");
    let ck = d.join("ck");
    let out = run(&["train", "--valid-size", "58000", "--epochs", "3", "--json", "--checkpoint-dir", s(&ck)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let newest = ck.join(std::fs::read_to_string(ck.join("latest")).unwrap().trim());

    // A finished run says so rather than training nothing: told its own number of epochs, or
    // none (not the flag's default of 5, which would train two more).
    for epochs in [&["--epochs", "3"][..], &[]] {
        let out = run(&[&["train", "--resume", s(&ck)][..], epochs].concat());
        assert_eq!(out.status.code(), Some(1), "{epochs:?}");
        assert!(stderr(&out).contains("the run has done its 3 epochs"), "{}", stderr(&out));
    }

    // Settings read back go through the flags' checks.
    let good = std::fs::read_to_string(newest.join("state.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["hyper"]["workers"] = 100_000.into();
    std::fs::write(newest.join("state.json"), v.to_string()).unwrap();
    let out = run(&["train", "--resume", s(&ck), "--epochs", "4"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`workers` is 100000: must be at most 64"), "{}", stderr(&out));
    std::fs::write(newest.join("state.json"), &good).unwrap();

    // `latest` may only name a folder of the checkpoint folder.
    std::fs::write(ck.join("latest"), "../elsewhere").unwrap();
    let out = run(&["train", "--resume", s(&ck), "--epochs", "4"]);
    assert!(stderr(&out).contains("not a checkpoint folder of"), "{}", stderr(&out));

    // The newest removed by hand: the one before it is used.
    std::fs::write(ck.join("latest"), newest.file_name().unwrap().to_str().unwrap()).unwrap();
    std::fs::remove_dir_all(&newest).unwrap();
    let out = run(&["train", "--resume", s(&ck), "--epochs", "4", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "epochs 3 and 4 ran");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn test_images_of_another_size_are_refused() {
    let d = tmp("shape");
    data_copy(&d, None);
    let mut bytes = Vec::new();
    let gz = std::fs::File::open(mnist_dir().join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut bytes).unwrap();
    bytes[8..16].copy_from_slice(&[0, 0, 0, 14, 0, 0, 0, 56]);
    std::fs::remove_file(d.join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), &bytes).unwrap();
    let out = run(&["train", "--data-dir", s(&d)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("images of [14, 56] pixels, but the training images are [28, 28]"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_checkpoint_whose_weights_are_not_its_runs_is_refused_by_eval() {
    let d = tmp("eval-swapped");
    let (ck, other) = (d.join("ck"), d.join("other.safetensors"));
    let base = ["train", "--epochs", "1", "--valid-size", "55000", "--json"];
    let out = run(&[&base[..], &["--layers", "32,16", "--checkpoint-dir", s(&ck)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[&base[..], &["--save", s(&other)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["eval", "--load", s(&ck), "--json"]);
    assert!(out.status.success(), "the run's own weights: {}", stderr(&out));
    let model = minibatch::learner::latest_checkpoint(&ck).unwrap().dir.join("model.safetensors");
    std::fs::copy(&other, &model).unwrap();
    let out = run(&["eval", "--load", s(&ck)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the weights are of a 784-50-10 mlp, but the run's settings make a 784-32-16-10 mlp"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn warmup_past_the_run_is_said_telemetry_is_kept_on_resume_and_summary_refuses_a_model_beside_load() {
    let out = run(&["train", "--epochs", "1", "--valid-size", "59000", "--warmup", "100000", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("--warmup 100000 is as long as the run's 15 steps"), "{}", stderr(&out));

    let dir = tmp("telemetry-resume");
    let (ck, png) = (dir.join("ck"), dir.join("t.png"));
    let out = run(&["train", "--epochs", "1", "--valid-size", "58000", "--json", "--checkpoint-dir", s(&ck)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["train", "--resume", s(&ck), "--epochs", "2", "--json", "--telemetry", s(&png)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("--telemetry"), "{}", stderr(&out));
    assert!(png.is_file(), "--telemetry is honoured on --resume, as --plot is");
    std::fs::remove_dir_all(&dir).unwrap();

    let out = run(&["summary", "--model", "cnn-bn", "--load", "no-such.safetensors"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot be used with"), "{}", stderr(&out));
}

#[test]
fn weights_of_another_model_of_the_same_shapes_are_refused_and_a_file_that_does_not_say_is_named() {
    use minibatch::{AdaptiveAvgPool2d, Conv2d, Conv2dConfig, Flatten, GeneralRelu, Linear, Sequential, View};
    let dir = tmp("same-shapes");
    // The lesson's CNN with GeneralRelu: the shapes and names of `--model cnn`, another model.
    let mut rng = minibatch::Rng::new(0);
    let mut model = Sequential::new().add(View::new(&[-1, 1, 28, 28]));
    for (i, o, k) in [(1, 8, 5), (8, 16, 3), (16, 32, 3), (32, 32, 3)] {
        let conv = Conv2d::new(i, o, k, Conv2dConfig { stride: 2, padding: k / 2, ..Default::default() }, &mut rng);
        let act = GeneralRelu { leak: Some(0.1), sub: Some(0.4), maxv: None };
        model = model.add(Sequential::new().add(conv.unwrap()).add(act));
    }
    let model = model.add(AdaptiveAvgPool2d::new(1, 1)).add(Flatten).add(Linear::new(32, 10, &mut rng).unwrap());
    let general = dir.join("general.safetensors");
    minibatch::save_state(&model, &general).unwrap();
    for command in ["eval", "summary"] {
        let out = run(&[command, "--load", s(&general)]);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("holds another model than a cnn of 10 classes") && err.contains("GeneralRelu"), "{err}");
    }
    // Weights without the record (as PyTorch writes them) are taken by their shapes, said so.
    let plain = dir.join("plain.safetensors");
    minibatch::module::save_tensors(&minibatch::state_dict(&minibatch::cnn(false, 10, 0).unwrap()), &plain).unwrap();
    let out = run(&["eval", "--load", s(&plain), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not say which model it holds; taken for a cnn of 10 classes"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_whose_head_has_other_classes_than_its_run_is_refused() {
    let dir = tmp("head-classes");
    let ck = dir.join("ck");
    let out = run(&["train", "--epochs", "1", "--valid-size", "58000", "--json", "--checkpoint-dir", s(&ck)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = minibatch::learner::latest_checkpoint(&ck).unwrap().dir;
    minibatch::save_state(&minibatch::mlp(&[784, 50, 11], 0).unwrap(), folder.join("model.safetensors")).unwrap();
    for command in ["eval", "summary"] {
        let out = run(&[command, "--load", s(&ck)]);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the weights are of a 784-50-11 mlp, but the run's settings make a 784-50-10 mlp")
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_run_into_a_checkpoint_folder_is_warned_of() {
    let dir = tmp("second-run");
    let ck = dir.join("ck");
    let args = ["train", "--epochs", "1", "--valid-size", "59000", "--json", "--checkpoint-dir", s(&ck)];
    let out = run(&args);
    assert!(out.status.success() && !stderr(&out).contains("warning"), "{}", stderr(&out));
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("already holds another run's checkpoints"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The program run under an address-space limit of `kib` KiB (`ulimit -v`).
fn run_limited(kib: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_minibatch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn running_out_of_memory_is_one_line_and_status_1_not_an_abort() {
    let d = tmp("oom");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // A valid raw IDX file of 1.5 GB of images (sparse: nothing is written), more than the limit.
    let n: u32 = 2_000_000;
    let images = std::fs::File::create(d.join("train-images-idx3-ubyte")).unwrap();
    let header = [0x803u32, n, 28, 28].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
    std::io::Write::write_all(&mut &images, &header).unwrap();
    images.set_len(16 + n as u64 * 784).unwrap();
    let labels =
        [[0x801u32, n].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>(), vec![0; n as usize]].concat();
    std::fs::write(d.join("train-labels-idx1-ubyte"), labels).unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(mnist_dir().join(f), d.join(f)).unwrap();
    }
    let cases: [&[&str]; 2] = [
        &["show", "--data-dir", s(&d)],
        // The lesson's CNN with batches of 5,000: its activations outgrow the limit.
        &["train", "--model", "cnn", "--bs", "5000", "--epochs", "1", "--valid-size", "55000"],
    ];
    for args in cases {
        let out = run_limited(1_000_000, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with("minibatch: error: out of memory"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, no backtrace: {err}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}
