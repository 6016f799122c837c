//! Training on image folders: digits drawn as coloured PNG and JPEG files of several sizes, made
//! here, trained on, saved, evaluated, predicted and resumed as a user would.

use super::common::{digit_folder, stderr, tmp, weights};
use super::{json_lines, minibatch, stdout};
use minibatch::mnist::DIGIT_NAMES;
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_folder_of_digit_photos_trains_saves_evaluates_and_predicts_with_class_names() {
    let d = tmp("folder-train");
    let data = d.join("digits");
    digit_folder(&data, 200);
    std::fs::write(data.join("train/three/broken.jpg"), b"\xff\xd8 not a jpeg").unwrap();
    // A PNG cut short: its header reads, its picture does not decode.
    let whole = std::fs::read(data.join("train/five/0.png")).unwrap();
    std::fs::write(data.join("train/five/cut.png"), &whole[..whole.len() / 2]).unwrap();
    let model = d.join("digits.safetensors");
    let out = minibatch(&[
        "train",
        "--data-dir",
        s(&data),
        "--size",
        "28",
        "--epochs",
        "5",
        "--bs",
        "32",
        "--augment",
        "none",
        "--json",
        "--save",
        s(&model),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("warning: skipped") && err.contains("broken.jpg"), "{err}");
    assert!(err.contains("1 of 2402 files skipped"), "{err}");
    assert!(err.contains("cut.png did not decode") && err.contains("pictures that did not decode: 1"), "{err}");
    let epochs = json_lines(&out);
    let last = epochs.last().unwrap();
    let accuracy = last["valid_accuracy"].as_f64().unwrap();
    eprintln!("folder accuracy {accuracy}");
    assert!(accuracy > 0.8, "the CNN with batch norm learns the digits: {last}");

    // The saved model knows its classes and its input: eval scores the validation folder with
    // the numbers of the run's last epoch.
    let out =
        minibatch(&["eval", "--load", s(&model), "--data-dir", s(&data), "--split", "valid", "--bs", "64", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let scored = &json_lines(&out)[0];
    assert_eq!(scored["accuracy"], last["valid_accuracy"], "{scored} against {last}");
    assert_eq!(scored["count"], 400);

    // predict answers with the class names.
    let seven = std::fs::read_dir(data.join("valid/seven")).unwrap().next().unwrap().unwrap().path();
    let out = minibatch(&["predict", "--load", s(&model), s(&seven), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = &json_lines(&out)[0];
    let top = answer["top"][0]["class"].as_str().unwrap();
    assert!(DIGIT_NAMES.contains(&top), "{answer}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_folder_of_class_folders_is_split_at_random_and_eval_finds_the_same_split() {
    let d = tmp("folder-random");
    digit_folder(&d.join("digits"), 30);
    // Its training folder is a folder of class folders, without a split of its own.
    let data = d.join("digits/train");
    let model = d.join("m.safetensors");
    let out = minibatch(&[
        "train",
        "--data-dir",
        s(&data),
        "--size",
        "24",
        "--epochs",
        "1",
        "--valid-pct",
        "0.25",
        "--seed",
        "3",
        "--model",
        "cnn",
        "--augment",
        "flip",
        "--json",
        "--save",
        s(&model),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let last = json_lines(&out).pop().unwrap();
    let out =
        minibatch(&["eval", "--load", s(&model), "--data-dir", s(&data), "--split", "valid", "--bs", "128", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let scored = &json_lines(&out)[0];
    assert_eq!(scored["count"], 75, "a quarter of 300");
    assert_eq!(scored["accuracy"], last["valid_accuracy"]);

    // show draws a batch as training sees it, with the class names.
    let grid = d.join("grid.png");
    let out = minibatch(&["show", "--data-dir", s(&data), "--size", "24", "--bs", "10", "--out", s(&grid)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let drawn = image::open(&grid).unwrap();
    // 8 columns and 2 rows of 24-pixel pictures enlarged 4 times, with room for the captions.
    assert_eq!((drawn.width(), drawn.height()), (8 * (96 + 8), 2 * (96 + 22 + 8)));
    // A folder of one class folder (a `train` without its `valid`) is refused, saying why.
    let lone = d.join("lone");
    std::fs::create_dir_all(lone.join("train")).unwrap();
    std::fs::rename(data.join("one"), lone.join("train/one")).unwrap();
    let out = minibatch(&["train", "--data-dir", s(&lone), "--epochs", "1"]);
    assert!(stderr(&out).contains("a `train` folder needs a `valid` one beside it"), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_resumed_folder_run_ends_where_the_uninterrupted_one_does() {
    let d = tmp("folder-resume");
    let data = d.join("digits");
    digit_folder(&data, 20);
    let (whole, resumed, ck) = (d.join("whole.safetensors"), d.join("resumed.safetensors"), d.join("ck"));
    let common = ["train", "--data-dir", s(&data), "--size", "20", "--bs", "16", "--json", "--schedule", "const"];
    let out = minibatch(&[&common[..], &["--epochs", "3", "--workers", "2", "--save", s(&whole)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = minibatch(&[&common[..], &["--epochs", "1", "--checkpoint-dir", s(&ck)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    // The run goes on from its first epoch, augmentation and all, in the training thread.
    let out =
        minibatch(&["train", "--resume", s(&ck), "--epochs", "3", "--workers", "0", "--json", "--save", s(&resumed)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(weights(&whole) == weights(&resumed), "bit for bit, with 0 workers as with 2");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn folder_flags_on_idx_files_and_idx_flags_on_folders_are_refused() {
    let out = minibatch(&["train", "--size", "32", "--epochs", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--size, --augment and --valid-pct are for image folders"), "{}", stderr(&out));
    let root = tmp("folder-flags");
    digit_folder(&root, 2);
    let d = root.join("train");
    let out = minibatch(&["train", "--data-dir", s(&d), "--model", "mlp", "--epochs", "1"]);
    assert!(stderr(&out).contains("--model mlp takes flat images"), "{}", stderr(&out));
    let out = minibatch(&["train", "--data-dir", s(&d), "--valid-size", "5", "--epochs", "1"]);
    assert!(stderr(&out).contains("--valid-size and --classes are for IDX files"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn odd_folders_pipes_links_long_pictures_and_empty_classes_are_handled() {
    let d = tmp("folder-odd");
    let data = d.join("digits");
    digit_folder(&data, 10);
    // A picture of 1 by 2,000,000 pixels (its centre square is what the model sees), a pipe
    // named like a picture, and a class folder that is a link to another folder.
    let tall = image::RgbImage::from_pixel(1, 2_000_000, image::Rgb([90, 20, 200]));
    tall.save(data.join("train/two/tall.png")).unwrap();
    assert!(Command::new("mkfifo").arg(data.join("train/two/pipe.png")).status().unwrap().success());
    std::fs::rename(data.join("train/nine"), d.join("nine")).unwrap();
    std::os::unix::fs::symlink(d.join("nine"), data.join("train/nine")).unwrap();
    // Under 2 GB of address space: resizing the whole picture first would need 6 GB.
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2000000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_minibatch"))
        .args(["train", "--data-dir", s(&data), "--size", "32", "--augment", "none", "--epochs", "1", "--bs", "16"])
        .args(["--json", "--workers", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("pipe.png: not a regular file"), "{err}");
    assert!(!err.contains("\n\n"), "one line a warning: {err}");
    // 10 classes, the linked one among them: 100 training pictures and the tall one.
    let train = Command::new(env!("CARGO_BIN_EXE_minibatch"))
        .args(["train", "--data-dir", s(&data), "--size", "32", "--augment", "none", "--epochs", "1", "--bs", "16"])
        .output()
        .unwrap();
    assert!(stdout(&train).contains("101 training and 20 validation pictures"), "{}", stdout(&train));

    // An empty training class folder is refused, naming it.
    std::fs::create_dir_all(data.join("train/ten")).unwrap();
    std::fs::create_dir_all(data.join("valid/ten")).unwrap();
    let out = minibatch(&["train", "--data-dir", s(&data), "--size", "32", "--epochs", "1"]);
    assert!(stderr(&out).contains("none in class folder `ten`"), "{}", stderr(&out));
    // A folder that is not there is named as such.
    let out = minibatch(&["train", "--data-dir", s(&d.join("nowhere")), "--size", "32"]);
    assert!(stderr(&out).contains("no such folder"), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}
