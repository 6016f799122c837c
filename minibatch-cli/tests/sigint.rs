//! Ctrl-C in the middle of training, then `--resume`: the same final weights as a run never
//! interrupted. (Its own test binary: it sends a real SIGINT to a child process.)

mod common;
use common::weights;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn minibatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_minibatch"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn interrupted_and_resumed_training_ends_where_uninterrupted_training_does() {
    let tmp = std::env::temp_dir().join(format!("minibatch-sigint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let (whole, resumed, ckpt) = (tmp.join("whole.safetensors"), tmp.join("resumed.safetensors"), tmp.join("ckpt"));
    let common = [
        "train",
        "--epochs",
        "3",
        "--seed",
        "7",
        "--opt",
        "adam",
        "--schedule",
        "onecycle",
        "--json",
        "--valid-size",
        "40000",
    ];

    let (whole_log, log) = (tmp.join("whole.jsonl"), tmp.join("log.jsonl"));
    let out = minibatch().args(common).arg("--save").arg(&whole).arg("--log").arg(&whole_log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Interrupt as soon as the first epoch is reported: the second is under way.
    let mut child = minibatch()
        .args(common)
        .arg("--checkpoint-dir")
        .arg(&ckpt)
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"epoch\":1") && first.contains("\"complete\":true"), "{first}");
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "interrupted mid-run: {err}");
    assert!(err.contains("interrupted") && err.contains("checkpoint in"), "{err}");
    let info = minibatch::learner::latest_checkpoint(&ckpt).unwrap();
    assert!(info.iter > 0 && info.epoch < 3, "stopped inside the run: {info:?}");
    // The row of the epoch cut short says so.
    let rows: Vec<String> = lines.map(Result::unwrap).collect();
    if info.batch > 0 {
        assert!(rows.last().is_some_and(|r| r.contains("\"complete\":false")), "{rows:?}");
    }

    let out = minibatch()
        .args(["train", "--epochs", "3", "--json", "--resume"])
        .arg(&ckpt)
        .arg("--save")
        .arg(&resumed)
        .arg("--log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(weights(&resumed) == weights(&whole), "resumed weights differ from uninterrupted ones");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    assert!(read(&log) == read(&whole_log), "the resumed run's log is not the uninterrupted run's");
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// Runs the program with `args`, sends it SIGINT after `after`, and returns its exit status and
/// standard error.
fn interrupted(args: &[&str], after: std::time::Duration) -> (Option<i32>, String) {
    let mut child = minibatch().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(after);
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t0.elapsed().as_secs() < 30, "still running 30 s after SIGINT");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn lr_find_and_predict_end_on_ctrl_c_with_130() {
    let tmp = std::env::temp_dir().join(format!("minibatch-sigint-cmds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    // A sweep of a million rates would run for minutes.
    let sweep = ["lr-find", "--num-it", "1000000", "--end-lr", "1e-3"];
    let (code, err) = interrupted(&sweep, std::time::Duration::from_millis(1500));
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("lr-find: interrupted after"), "{err}");

    // predict over many large pictures: it stops between two of them.
    let model = tmp.join("m.safetensors");
    let out = minibatch()
        .args(["train", "--epochs", "1", "--valid-size", "55000", "--json", "--save", model.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let picture = tmp.join("big.png");
    image::GrayImage::from_fn(2000, 2000, |x, y| image::Luma([if (x / 100 + y / 100) % 7 == 0 { 0 } else { 255 }]))
        .save(&picture)
        .unwrap();
    let mut args = vec!["predict", "--load", model.to_str().unwrap()];
    args.extend(std::iter::repeat_n(picture.to_str().unwrap(), 2000));
    let (code, err) = interrupted(&args, std::time::Duration::from_millis(1500));
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("predict: interrupted before"), "{err}");
    std::fs::remove_dir_all(&tmp).unwrap();
}
