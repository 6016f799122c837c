//! Hostile input and faults, through the program: every bad file gives one line naming it and a
//! non-zero status; a killed run leaves a loadable checkpoint; a diverging run stops; a full disk
//! is reported; thread counts do not change results.

mod common;
use common::stderr;
use std::path::PathBuf;
use std::process::{Command, Output};

fn minibatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minibatch")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    common::tmp(&format!("faults-{name}"))
}

/// A copy of the bundled data with `file` replaced by `bytes` (or by a folder, for `None`).
fn data_with(name: &str, file: &str, bytes: Option<&[u8]>) -> PathBuf {
    let d = tmp(name);
    common::copy_data(&d);
    std::fs::remove_file(d.join(file)).unwrap();
    match bytes {
        Some(b) => std::fs::write(d.join(file), b).unwrap(),
        None => std::fs::create_dir(d.join(file)).unwrap(),
    }
    d
}

fn fails_naming(args: &[&str], file: &str, what: &str) {
    let out = minibatch(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(file) && err.contains(what), "{args:?}: expected {file} and {what:?} in {err}");
}

fn labels(n: u32, last: u8) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend_from_slice(&n.to_be_bytes());
    v.extend((0..n).map(|i| if i + 1 == n { last } else { (i % 10) as u8 }));
    v
}

#[test]
fn every_bad_data_file_is_one_line_naming_it() {
    let gz_labels = "t10k-labels-idx1-ubyte.gz";
    let cases: Vec<(&str, Option<Vec<u8>>, &str)> = vec![
        ("empty", Some(vec![]), "empty file"),
        ("magic", Some(vec![0, 0, 8, 3, 0, 0, 0, 1]), "bad magic number"),
        ("truncated", Some(labels(10_000, 1)[..5000].to_vec()), "data length does not match"),
        ("long", Some([labels(10_000, 1), vec![0; 10]].concat()), "data length does not match"),
        ("count", Some(labels(9_999, 1)), "10000 images but 9999 labels"),
        ("label", Some(labels(10_000, 10)), "label 10 at index 9999 is out of range"),
        ("gzip", Some(vec![0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]), "not valid gzip"),
        ("unreadable", None, gz_labels),
    ];
    for (name, bytes, what) in cases {
        let dir = data_with(name, gz_labels, bytes.as_deref());
        fails_naming(&["train", "--epochs", "1", "--data-dir", dir.to_str().unwrap()], gz_labels, what);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let dir = tmp("missing");
    fails_naming(
        &["eval", "--load", "/nonexistent.safetensors", "--data-dir", dir.to_str().unwrap()],
        "/nonexistent.safetensors",
        "No such file",
    );
    fails_naming(&["show", "--data-dir", dir.to_str().unwrap()], "train-images", "no training images file");
}

#[test]
fn bad_checkpoints_are_named_and_refused() {
    let dir = tmp("ckpt");
    let d = dir.to_str().unwrap();
    let out = minibatch(&["train", "--epochs", "1", "--valid-size", "55000", "--checkpoint-dir", d, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let latest = std::fs::read_to_string(dir.join("latest")).unwrap();
    let model = dir.join(latest.trim()).join("model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    fails_naming(&["eval", "--load", d], "model.safetensors", "not a safetensors file");
    let mut corrupt = bytes.clone();
    corrupt[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&model, &corrupt).unwrap();
    fails_naming(&["eval", "--load", d], "model.safetensors", "not a safetensors file");
    std::fs::remove_dir_all(&dir).unwrap();

    // Weights of another model: the error names the tensor and both shapes.
    let small = minibatch::mlp(&[784, 20, 10], 0).unwrap();
    let file = std::env::temp_dir().join(format!("minibatch-other-{}.safetensors", std::process::id()));
    minibatch::save_state(&small, &file).unwrap();
    let err = minibatch::load_state(&minibatch::mlp(&[784, 50, 10], 0).unwrap(), &file).unwrap_err().to_string();
    assert!(err.contains("tensor 0.weight: expected [50, 784], found [20, 784]"), "{err}");
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn a_run_killed_at_random_points_leaves_a_loadable_checkpoint() {
    let dir = tmp("kill");
    let d = dir.to_str().unwrap();
    let mut rng = minibatch::Rng::new(2026);
    for round in 0..4 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_minibatch"))
            .args(["train", "--epochs", "500", "--valid-size", "59000", "--checkpoint-dir", d, "--json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Once a first checkpoint exists, kill at a random point of the following ones (an epoch
        // of 1,000 images takes a few milliseconds, so most kills land in or near a write).
        let t0 = std::time::Instant::now();
        while !dir.join("latest").exists() && t0.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.below(300) as u64));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let out = minibatch(&["eval", "--load", d, "--split", "valid", "--json"]);
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_diverging_run_fails_and_bad_outputs_are_refused() {
    let out = minibatch(&["train", "--lr", "100", "--epochs", "3", "--valid-size", "55000", "--json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "a diverged run is a failure: {err}");
    assert!(err.contains("diverged: the loss is") && err.contains("at step"), "{err}");
    assert!(err.contains("they were not kept (use --save or --checkpoint-dir)"), "{err}");

    // A device is not replaced by a file, before anything trains.
    let out = minibatch(&["train", "--epochs", "1", "--valid-size", "55000", "--log", "/dev/full"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--log /dev/full: not a regular file"), "{}", stderr(&out));

    let out =
        minibatch(&["train", "--epochs", "1", "--valid-size", "55000", "--save", "/nonexistent/dir/m.safetensors"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/dir/m.safetensors"), "{}", stderr(&out));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // The multiplies are split between the threads in blocks (uneven with three or five, and
    // five is more threads than CI's cores). 1024,256 splits 64x784x1024 and 64x1024x256 by
    // columns; 1500,64 has a 128x64x1500 product that blocks of 64 rows would add up in another
    // order (the gemm crate blocks k by 512 below 65 rows and columns). The CNN with batch norm
    // splits its convolutions' products, batch norms and passes too. The losses must not change,
    // in fp32 or bf16.
    let run = |model: &[&str], threads: &str| {
        let mut args = vec!["train", "--epochs", "1", "--valid-size", "55000", "--json", "--threads", threads];
        args.extend_from_slice(model);
        let out = minibatch(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["train_loss"].clone(), v["valid_loss"].clone())
    };
    let models: [&[&str]; 5] = [
        &["--layers", "1024,256", "--bs", "64"],
        &["--layers", "1500,64", "--bs", "128"],
        &["--model", "cnn-bn"],
        // bf16 products split by blocks of 32 rows or columns, also unevenly.
        &["--layers", "1024,256", "--bs", "64", "--precision", "bf16"],
        &["--model", "cnn-bn", "--precision", "bf16"],
    ];
    for model in models {
        let one = run(model, "1");
        for threads in ["2", "3", "5"] {
            assert_eq!(run(model, threads), one, "{model:?}, {threads} threads");
        }
    }
}
