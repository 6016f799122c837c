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

/// An image folder of MNIST digits drawn as photos (`DIR/train/<digit name>`, `DIR/valid/...`):
/// `per_class` training pictures of each digit, a fifth as many validation ones.
pub fn digit_folder(dir: &Path, per_class: usize) {
    let data = minibatch::Mnist::load(mnist_dir()).unwrap();
    minibatch::mnist::write_picture_folder(&data, dir, per_class).unwrap();
}
