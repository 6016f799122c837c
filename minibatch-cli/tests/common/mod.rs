//! Helpers shared by the program's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// The bundled MNIST folder, at the workspace's root.
pub fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

/// The tensors of a weights file, by name, flattened.
pub fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut t: Vec<_> = minibatch::module::read_state(path)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.flatten_all()
                    .unwrap()
                    .to_dtype(minibatch::candle_core::DType::F32)
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

/// A child's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An empty temporary folder of this test process, named `name`.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("minibatch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The four bundled data files copied into `dir` (created if need be), to be spoilt by a test.
pub fn copy_data(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(mnist_dir().join(f), dir.join(f)).unwrap();
    }
}

/// The names of the digit folders' classes.
pub const DIGITS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/// An image folder of MNIST digits as photos would come: coloured (a foreground and a background
/// colour drawn per picture), of varying sizes (28 to 40 pixels a side, not always square), as
/// PNG and JPEG files in class folders named after the digits. `per_class` pictures of each
/// digit from MNIST's training set, and (`split`) a `valid` folder of a fifth as many from its
/// validation set beside a `train` folder; without `split`, the class folders are `dir`'s own.
pub fn digit_folder(dir: &Path, per_class: usize, split: bool) {
    use image::{imageops, Rgb, RgbImage};
    let data = minibatch::Mnist::load(mnist_dir()).unwrap();
    let sets = if split {
        vec![(dir.join("train"), &data.train, per_class), (dir.join("valid"), &data.valid, per_class / 5)]
    } else {
        vec![(dir.to_path_buf(), &data.train, per_class)]
    };
    for (root, images, n) in sets {
        let mut counts = [0usize; 10];
        for i in 0..images.len() {
            let label = images.label(i).unwrap() as usize;
            if counts[label] == n {
                continue;
            }
            counts[label] += 1;
            let pixels = images.pixels(i).unwrap();
            let mix = |a: u8, b: u8, t: u8| ((a as u32 * (255 - t as u32) + b as u32 * t as u32) / 255) as u8;
            let (fg, bg) = ([200, (i * 37 % 200) as u8, 60 + (i % 3) as u8 * 60], [(i * 11 % 90) as u8, 20, 40]);
            let img = RgbImage::from_fn(28, 28, |x, y| {
                let t = pixels[(y * 28 + x) as usize];
                Rgb([mix(bg[0], fg[0], t), mix(bg[1], fg[1], t), mix(bg[2], fg[2], t)])
            });
            let (w, h) = (28 + (i % 3) as u32 * 6, 28 + (i % 4) as u32 * 4);
            let img = imageops::resize(&img, w, h, imageops::FilterType::Triangle);
            let folder = root.join(DIGITS[label]);
            std::fs::create_dir_all(&folder).unwrap();
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            img.save(folder.join(format!("{i}.{ext}"))).unwrap();
        }
    }
}
