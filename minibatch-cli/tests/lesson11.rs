//! The program on lessons 10b-11a: `--model xresnet18`, `--mixup`, `--label-smoothing`,
//! `--pretrained` with `--freeze-epochs`, on a small copy of MNIST.

mod common;
use common::{mnist_dir, stderr, tmp};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

fn minibatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minibatch")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The first `n` items of a bundled IDX file, written raw into `dir`.
fn first_items(file: &str, n: u32, item_len: usize, dir: &Path) {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(mnist_dir().join(format!("{file}.gz"))).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let header = if item_len == 1 { 8 } else { 16 };
    let mut out = bytes[..header].to_vec();
    out[4..8].copy_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&bytes[header..header + n as usize * item_len]);
    std::fs::write(dir.join(file), out).unwrap();
}

/// 1,200 training images (1,000 to train, 200 to validate) and 200 test images.
fn small_mnist(dir: &Path) {
    first_items("train-images-idx3-ubyte", 1200, 784, dir);
    first_items("train-labels-idx1-ubyte", 1200, 1, dir);
    first_items("t10k-images-idx3-ubyte", 200, 784, dir);
    first_items("t10k-labels-idx1-ubyte", 200, 1, dir);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_xresnet_trains_saves_and_is_rebuilt_by_eval_and_summary() {
    let d = tmp("xresnet");
    small_mnist(&d);
    let w = d.join("xresnet.safetensors");
    let args = ["train", "--model", "xresnet18", "--epochs", "1", "--valid-size", "200", "--json"];
    let out = minibatch(&[&args[..], &["--data-dir", s(&d), "--save", s(&w)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let epoch = &json_lines(&out)[0];
    // Sixteen batches: it has learnt something (chance is 0.1), no more.
    assert!(epoch["valid_accuracy"].as_f64().unwrap() > 0.2, "{epoch}");
    let ev =
        minibatch(&["eval", "--load", s(&w), "--split", "valid", "--json", "--data-dir", s(&d), "--valid-size", "200"]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    let v = &json_lines(&ev)[0];
    assert_eq!((&v["loss"], &v["accuracy"]), (&epoch["valid_loss"], &epoch["valid_accuracy"]));
    let summary = minibatch(&["summary", "--load", s(&w)]);
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(summary.status.success(), "{}", stderr(&summary));
    assert!(text.contains("Total params: 11,218,618") && text.contains("4 (Sequential)"), "{text}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn mixup_label_smoothing_and_a_pretrained_body_under_a_new_head() {
    let d = tmp("lesson11a");
    small_mnist(&d);
    let body = d.join("body.safetensors");
    let base = ["train", "--model", "cnn-bn", "--valid-size", "200", "--json", "--bs", "50"];
    let data = ["--data-dir", s(&d)];
    let out = minibatch(
        &[&base[..], &data, &["--epochs", "2", "--mixup", "0.4", "--label-smoothing", "0.1"], &["--save", s(&body)]]
            .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), 2);
    // Twelve classes: the head is new, the body kept, and frozen for the first epoch.
    let tuned = ["--epochs", "2", "--classes", "12", "--pretrained", s(&body), "--freeze-epochs", "1"];
    let out =
        minibatch(&[&["train", "--model", "cnn-bn", "--valid-size", "200", "--bs", "50"][..], &data, &tuned].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pretrained: 24 tensors kept") && text.contains("new: 7.weight, 7.bias"), "{text}");
    // A body of another model has nothing to keep.
    let mlp = ["train", "--epochs", "1", "--valid-size", "200", "--pretrained", s(&body)];
    let out = minibatch(&[&mlp[..], &data].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no tensor of the same name and shape"), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_new_flags_are_checked_by_the_parser() {
    for (args, why) in [
        (&["--mixup", "0"][..], "above 0"),
        (&["--label-smoothing", "1"][..], "below 1"),
        (&["--freeze-epochs", "1"][..], "--pretrained"),
        (&["--model", "xresnet99"][..], "xresnet18"),
    ] {
        let out = minibatch(&[&["train"][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
}
