//! Helpers shared by the program's tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The bundled MNIST folder, at the workspace's root.
pub fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}
