//! The program end to end: train, save, eval, show, and its answers to bad flags and files.

mod common;
#[path = "cli/folders.rs"]
mod folders;
use common::{mnist_dir, stderr, tmp};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

fn minibatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minibatch")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn train_save_then_eval_gives_the_same_validation_numbers() {
    let path = std::env::temp_dir().join(format!("minibatch-cli-{}.safetensors", std::process::id()));
    let p = path.to_str().unwrap();
    let out = minibatch(&["train", "--epochs", "1", "--json", "--save", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let epochs = json_lines(&out);
    assert_eq!(epochs.len(), 1);
    let e = &epochs[0];
    for key in ["epoch", "train_loss", "valid_loss", "valid_accuracy", "seconds"] {
        assert!(e.get(key).is_some(), "missing {key}: {e}");
    }
    assert!(e["valid_accuracy"].as_f64().unwrap() >= 0.93, "{e}");

    let ev = minibatch(&["eval", "--load", p, "--split", "valid", "--json"]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    let v = &json_lines(&ev)[0];
    assert_eq!(v["loss"], e["valid_loss"]);
    assert_eq!(v["accuracy"], e["valid_accuracy"]);
    assert_eq!(v["count"], 10_000);

    let test = minibatch(&["eval", "--load", p]);
    assert!(stdout(&test).starts_with("test: loss "), "{}", stdout(&test));

    // The saved names are PyTorch's for nn.Sequential.
    let names: Vec<String> = minibatch::module::read_state(&path).unwrap().into_keys().collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn readable_output_and_show() {
    let out = minibatch(&["train", "--epochs", "1", "--hidden", "8", "--valid-size", "50000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = stdout(&out);
    assert!(s.contains("(0): Linear(in_features=784, out_features=8, bias=True)"), "{s}");
    assert!(s.contains("10000 training and 50000 validation images"), "{s}");
    assert!(s.contains("epoch  train_loss  valid_loss    accuracy      img/s    time\n    1  "), "{s}");

    let show = minibatch(&["show", "--index", "0", "--split", "test"]);
    let s = stdout(&show);
    assert!(s.starts_with("test #0: label 7\n"), "{s}");
    assert_eq!(s.lines().count(), 29, "a label line and 28 rows");
    assert!(s.contains('@'), "ink is drawn");
}

#[test]
fn bad_flags_fail_before_any_work() {
    for args in [
        &["train", "--bs", "0"][..],
        &["train", "--bs", "-3"],
        &["train", "--lr", "-1"],
        &["train", "--lr", "inf"],
        &["train", "--epochs", "0"],
        &["train", "--hidden", "0"],
    ] {
        let out = minibatch(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("invalid value"), "{args:?}: {}", stderr(&out));
    }
    let out = minibatch(&["train", "--bs", "60000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("batch size 60000 is larger than the 50000 training images"), "{}", stderr(&out));
}

#[test]
fn bad_files_give_one_line_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("minibatch-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = minibatch(&["train", "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("train-images-idx3-ubyte") && err.contains(dir.to_str().unwrap()), "{err}");

    let not_weights = dir.join("m.safetensors");
    std::fs::write(&not_weights, b"not a safetensors file").unwrap();
    let out = minibatch(&["eval", "--load", not_weights.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("m.safetensors: not a safetensors file"), "{}", stderr(&out));
    let out = minibatch(&["eval", "--load", dir.join("missing.safetensors").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.safetensors"), "{}", stderr(&out));
}

#[test]
fn optimizers_and_schedules_by_name() {
    let out = minibatch(&[
        "train",
        "--epochs",
        "1",
        "--opt",
        "adam",
        "--schedule",
        "onecycle",
        "--valid-size",
        "55000",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let acc = json_lines(&out)[0]["valid_accuracy"].as_f64().unwrap();
    assert!(acc > 0.8, "adam with one-cycle on 5,000 images: {acc}");
    let out = minibatch(&["train", "--opt", "lion"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("sgd, adam, adamw or rmsprop"), "{}", stderr(&out));
    let out = minibatch(&["train", "--schedule", "triangle"]);
    assert!(stderr(&out).contains("const, cosine or onecycle"), "{}", stderr(&out));
}

#[test]
fn lr_find_prints_a_curve_and_a_suggestion_and_plots_it() {
    let png = std::env::temp_dir().join(format!("minibatch-lrfind-{}.png", std::process::id()));
    let out = minibatch(&["lr-find", "--num-it", "60", "--plot", png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = stdout(&out);
    assert!(s.lines().next().unwrap().contains("lr") && s.contains("suggested: "), "{s}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_file(&png).unwrap();
}

#[test]
fn layers_trains_a_deeper_mlp_that_eval_rebuilds() {
    let path = std::env::temp_dir().join(format!("minibatch-layers-{}.safetensors", std::process::id()));
    let p = path.to_str().unwrap();
    let out =
        minibatch(&["train", "--layers", "64,32", "--epochs", "1", "--valid-size", "55000", "--json", "--save", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trained = &json_lines(&out)[0];
    assert!(trained["valid_accuracy"].as_f64().unwrap() > 0.8, "{trained}");
    let mut names: Vec<String> = minibatch::module::read_state(&path).unwrap().into_keys().collect();
    names.sort();
    assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]);
    let ev = minibatch(&["eval", "--load", p, "--split", "valid", "--valid-size", "55000", "--json"]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    assert_eq!(json_lines(&ev)[0]["loss"], trained["valid_loss"]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn the_cnn_with_batch_norm_saves_its_running_statistics_and_eval_rebuilds_it() {
    let path = std::env::temp_dir().join(format!("minibatch-cnn-bn-{}.safetensors", std::process::id()));
    let p = path.to_str().unwrap();
    let out =
        minibatch(&["train", "--model", "cnn-bn", "--epochs", "1", "--valid-size", "55000", "--json", "--save", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trained = &json_lines(&out)[0];
    assert!(trained["valid_accuracy"].as_f64().unwrap() > 0.8, "{trained}");
    let state = minibatch::module::read_state(&path).unwrap();
    for name in ["1.0.weight", "1.1.weight", "1.1.running_mean", "1.1.running_var", "1.1.num_batches_tracked", "7.bias"]
    {
        assert!(state.contains_key(name), "{name} saved");
    }
    assert!(!state.contains_key("1.0.bias"), "convolutions before batch norm have no bias");
    // One update per training batch: 5,000 images in batches of 128, the last partial one dropped.
    assert_eq!(state["1.1.num_batches_tracked"].to_scalar::<i64>().unwrap(), 5000 / 128);
    // Validation ran in batches of 256 (twice the training batch), which eval takes by default.
    for bs in [&["--bs", "256"][..], &[]] {
        let args = [&["eval", "--load", p, "--split", "valid", "--valid-size", "55000", "--json"][..], bs].concat();
        let ev = minibatch(&args);
        assert!(ev.status.success(), "{}", stderr(&ev));
        // The same numbers as the training run's validation: eval mode, the running statistics.
        assert_eq!(json_lines(&ev)[0]["loss"], trained["valid_loss"], "{bs:?}");
    }
    let summary = minibatch(&["summary", "--load", p]);
    assert!(summary.status.success(), "{}", stderr(&summary));
    // Block 1: a bias-free 1->8 5x5 convolution (200) and batch norm's weight and bias (16).
    let table = stdout(&summary);
    assert!(table.contains("[64, 8, 14, 14]         216") && table.contains("[64, 32, 2, 2]"), "{table}");
    std::fs::remove_file(&path).unwrap();
}

#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_without_mpi_built_in_says_how_to_get_it() {
    let out = minibatch(&["train", "--distributed", "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--features minibatch-cli/mpi"), "{}", stderr(&out));
}

#[test]
fn all_reduce_is_a_flag_of_distributed_runs() {
    let out = minibatch(&["train", "--all-reduce", "mpi", "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--distributed"), "{}", stderr(&out));
}

/// Test image `index` of MNIST as a user might photograph it: dark ink on a light background,
/// three times the size, off centre, saved as PNG.
fn users_picture(index: usize, path: &std::path::Path) -> u8 {
    let data = minibatch::Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist")).unwrap();
    let item = minibatch::Dataset::get(&data.test, index).unwrap();
    let mut img = image::GrayImage::from_pixel(100, 90, image::Luma([230]));
    for (i, &v) in item.pixels.iter().enumerate() {
        let (x, y) = ((i % 28) as u32, (i / 28) as u32);
        for (dx, dy) in [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)] {
            img.put_pixel(10 + 3 * x + dx, 3 * y + dy, image::Luma([230 - (v as f32 * 230.0 / 255.0) as u8]));
        }
    }
    img.save(path).unwrap();
    item.label as u8
}

/// A PNG of a few dozen bytes whose header claims `w` x `h` grey pixels (its data a few zeros):
/// what a decompression bomb looks like before it is decoded.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let ihdr = [&w.to_be_bytes()[..], &h.to_be_bytes(), &[8, 0, 0, 0, 0]].concat();
    chunk(&mut png, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &[0; 64]).unwrap();
    chunk(&mut png, b"IDAT", &z.finish().unwrap());
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn predict_classifies_a_users_own_pictures_and_refuses_what_is_not_one() {
    let dir = std::env::temp_dir().join(format!("minibatch-predict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.safetensors");
    let out = minibatch(&["train", "--model", "cnn-bn", "--epochs", "1", "--json", "--save", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pictures: Vec<(std::path::PathBuf, u8)> = (0..5)
        .map(|i| {
            let p = dir.join(format!("digit{i}.png"));
            let label = users_picture(i, &p);
            (p, label)
        })
        .collect();
    let mut args = vec!["predict", "--json", "--load", model.to_str().unwrap()];
    args.extend(pictures.iter().map(|(p, _)| p.to_str().unwrap()));
    let out = minibatch(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let answers = json_lines(&out);
    assert_eq!(answers.len(), 5);
    for ((_, label), answer) in pictures.iter().zip(&answers) {
        let top = answer["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0]["class"].as_u64().unwrap(), *label as u64, "{answer}");
        assert!(top[0]["probability"].as_f64().unwrap() > top[1]["probability"].as_f64().unwrap());
    }
    // Ink on a transparent canvas, as drawing programs export it: the ink is the opaque part.
    let data = minibatch::Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist")).unwrap();
    let item = minibatch::Dataset::get(&data.test, 0).unwrap();
    let canvas =
        image::RgbaImage::from_fn(56, 56, |x, y| image::Rgba([0, 0, 0, item.pixels[(y / 2 * 28 + x / 2) as usize]]));
    let drawn = dir.join("drawn.png");
    canvas.save(&drawn).unwrap();
    let blank = dir.join("blank.png");
    image::GrayImage::from_pixel(40, 40, image::Luma([200])).save(&blank).unwrap();
    let bad = dir.join("not-a-picture.png");
    std::fs::write(&bad, b"hello").unwrap();
    let bomb = dir.join("bomb.png");
    std::fs::write(&bomb, png_claiming(20_000, 20_000)).unwrap();
    // A JPEG cut in half (PIL refuses it too).
    let mut jpeg = Vec::new();
    let photo = image::GrayImage::from_fn(400, 400, |x, y| image::Luma([((x * 7 + y * 13) % 251) as u8]));
    photo.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &jpeg[..jpeg.len() / 2]).unwrap();
    let paths = [&bad, &drawn, &blank, &bomb, &cut].map(|p| p.to_str().unwrap().to_string());
    let model = model.to_str().unwrap();
    let mut args = vec!["predict", "--json", "--load", model];
    args.extend(paths.iter().map(String::as_str));
    let out = minibatch(&args);
    assert_eq!(out.status.code(), Some(1), "a picture failed");
    let err = stderr(&out);
    assert!(err.contains("not-a-picture.png: not a PNG or JPEG"), "{err}");
    assert!(err.contains("blank.png: no digit found"), "{err}");
    assert!(err.contains("bomb.png: 20000x20000 pixels, more than the 48000000"), "{err}");
    assert!(err.contains("cut.jpg: the JPEG is cut short"), "{err}");
    let answers = json_lines(&out);
    assert_eq!(answers.len(), 1, "the readable picture is still classified");
    assert_eq!(answers[0]["top"][0]["class"].as_u64().unwrap(), item.label as u64, "{}", answers[0]);
    // A file name with a line break cannot forge a line of the text output.
    let forged = dir.join("x.png: 7 (99.0%)\ny.png");
    std::fs::copy(&drawn, &forged).unwrap();
    let out = minibatch(&["predict", "--load", model, forged.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && text.lines().count() == 1 && text.contains("\\ny.png"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_mlps_size_flags_are_refused_with_a_cnn() {
    for flags in [&["--hidden", "10"][..], &["--layers", "5,5"]] {
        let out = minibatch(&[&["train", "--model", "cnn", "--epochs", "1"][..], flags].concat());
        assert_eq!(out.status.code(), Some(2), "flags that cannot go together are bad flags");
        assert!(stderr(&out).contains("--model cnn has its own layers"), "{}", stderr(&out));
    }
    let out = minibatch(&["summary", "--model", "cnn-bn", "--hidden", "10"]);
    assert!(out.status.code() == Some(2) && stderr(&out).contains("own layers"), "{}", stderr(&out));
    let out = minibatch(&["lr-find", "--start-lr", "1", "--end-lr", "0.1"]);
    assert!(out.status.code() == Some(2) && stderr(&out).contains("must be below --end-lr"), "{}", stderr(&out));
}

// Lessons 10b-11a: `--model xresnet18`, `--mixup`, `--label-smoothing`, `--pretrained` with
// `--freeze-epochs`, on a small copy of MNIST.

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

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_xresnet_trains_saves_and_is_rebuilt_by_eval_and_summary() {
    let d = tmp("xresnet");
    small_mnist(&d);
    let w = d.join("xresnet.safetensors");
    let args = ["train", "--model", "xresnet18", "--epochs", "1", "--valid-size", "200", "--json"];
    let out = minibatch(&[&args[..], &["--data-dir", path_str(&d), "--save", path_str(&w)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let epoch = &json_lines(&out)[0];
    // Sixteen batches: it has learnt something (chance is 0.1), no more.
    assert!(epoch["valid_accuracy"].as_f64().unwrap() > 0.2, "{epoch}");
    let ev = minibatch(&[
        "eval",
        "--load",
        path_str(&w),
        "--split",
        "valid",
        "--json",
        "--data-dir",
        path_str(&d),
        "--valid-size",
        "200",
    ]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    let v = &json_lines(&ev)[0];
    assert_eq!((&v["loss"], &v["accuracy"]), (&epoch["valid_loss"], &epoch["valid_accuracy"]));
    let summary = minibatch(&["summary", "--load", path_str(&w)]);
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
    let data = ["--data-dir", path_str(&d)];
    let out = minibatch(
        &[
            &base[..],
            &data,
            &["--epochs", "2", "--mixup", "0.4", "--label-smoothing", "0.1"],
            &["--save", path_str(&body), "--checkpoint-dir", path_str(&d.join("ck"))],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let epochs = json_lines(&out);
    assert_eq!(epochs.len(), 2);
    // eval scores a checkpoint with its run's loss, label smoothing included.
    let ck = d.join("ck");
    let ev = minibatch(&[&["eval", "--load", path_str(&ck), "--split", "valid", "--json"][..], &data].concat());
    assert!(ev.status.success(), "{}", stderr(&ev));
    assert_eq!(json_lines(&ev)[0]["loss"], epochs[1]["valid_loss"]);
    // Twelve classes: the head is new, the body kept, and frozen for the first epoch.
    let tuned = ["--epochs", "2", "--classes", "12", "--pretrained", path_str(&body), "--freeze-epochs", "1"];
    let out =
        minibatch(&[&["train", "--model", "cnn-bn", "--valid-size", "200", "--bs", "50"][..], &data, &tuned].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pretrained: 24 tensors kept") && text.contains("new: 7.weight, 7.bias"), "{text}");
    // With --json the line goes to standard error (the same classes: the head is kept too); a
    // body frozen for the whole run is warned of.
    let frozen = ["--epochs", "1", "--json", "--pretrained", path_str(&body), "--freeze-epochs", "1"];
    let out = minibatch(&[&["train", "--model", "cnn-bn", "--valid-size", "200"][..], &data, &frozen].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("minibatch: pretrained: 26 tensors kept"), "{}", stderr(&out));
    assert!(stderr(&out).contains("the body never trains"), "{}", stderr(&out));
    // A body of another model is refused: the mlp shares nothing, the plain cnn needs the conv
    // biases a cnn-bn has not.
    for (model, why) in [("mlp", "its `0.weight` should be [50, 784], the file has nothing"), ("cnn", "its `1.0.bias`")]
    {
        let other =
            ["train", "--model", model, "--epochs", "1", "--valid-size", "200", "--pretrained", path_str(&body)];
        let out = minibatch(&[&other[..], &data].concat());
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(why), "{model}: {}", stderr(&out));
    }
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = minibatch(&[&["train", "--pretrained", path_str(&empty)][..], &data].concat());
    assert!(stderr(&out).contains("a folder, but not one of a run's checkpoints"), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_new_flags_are_checked_by_the_parser() {
    for (args, why) in [
        (&["--mixup", "0"][..], "above 0"),
        (&["--label-smoothing", "1"][..], "below 1"),
        (&["--freeze-epochs", "1"][..], "--pretrained"),
        (&["--model", "xresnet99"][..], "xresnet18"),
        (&["--precision", "fp16"][..], "fp32, bf16"),
    ] {
        let out = minibatch(&[&["train"][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn bench_images_times_an_image_folders_loader() {
    let d = tmp("bench-images");
    for (c, class) in ["a", "b"].iter().enumerate() {
        std::fs::create_dir_all(d.join(class)).unwrap();
        for i in 0..3u32 {
            let img = image::RgbImage::from_fn(40 + i, 30, |x, y| image::Rgb([x as u8, y as u8, c as u8 * 90]));
            img.save(d.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    let out = minibatch(&["bench", "images", "--data-dir", path_str(&d), "--size", "16", "--bs", "4", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = &json_lines(&out)[0];
    assert!(v["images_per_second"].as_f64().unwrap() > 0.0 && v["pictures"] == 6, "{v}");
    let none = minibatch(&["bench", "images"]);
    assert!(stderr(&none).contains("needs --data-dir"), "{}", stderr(&none));
    let flat = minibatch(&["bench", "images", "--data-dir", path_str(&d.join("a"))]);
    assert!(stderr(&flat).contains("not an image folder"), "{}", stderr(&flat));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_bf16_run_resumes_bit_identically_and_saves_fp32_weights() {
    let d = tmp("bf16");
    let base = ["train", "--layers", "128", "--valid-size", "55000", "--json", "--precision", "bf16", "--seed", "3"];
    let (whole, resumed, ck) = (d.join("whole.safetensors"), d.join("resumed.safetensors"), d.join("ck"));
    let out = minibatch(&[&base[..], &["--epochs", "2", "--save", path_str(&whole)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = minibatch(&[&base[..], &["--epochs", "1", "--checkpoint-dir", path_str(&ck)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    // The run's settings hold its precision: --resume needs no --precision.
    let out = minibatch(&["train", "--resume", path_str(&ck), "--epochs", "2", "--json", "--save", path_str(&resumed)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (w, r) = (common::weights(&whole), common::weights(&resumed));
    assert!(w == r, "the resumed bf16 run ended elsewhere");
    // eval scores the checkpoint in its run's precision: the last epoch's numbers exactly.
    let last = json_lines(&out).pop().unwrap();
    let ev = minibatch(&["eval", "--load", path_str(&ck), "--split", "valid", "--json"]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    assert_eq!(json_lines(&ev)[0]["loss"], last["valid_loss"]);
    let saved = minibatch::module::read_state(&whole).unwrap();
    assert!(saved.into_iter().all(|(_, t)| t.dtype() == minibatch::candle_core::DType::F32));
    // The same run in fp32 ends elsewhere: bf16 was in use.
    let fp32 = d.join("fp32.safetensors");
    let args = ["train", "--layers", "128", "--valid-size", "55000", "--json", "--seed", "3", "--epochs", "2"];
    let out = minibatch(&[&args[..], &["--save", path_str(&fp32)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(common::weights(&fp32) != w);
    std::fs::remove_dir_all(&d).unwrap();
}
