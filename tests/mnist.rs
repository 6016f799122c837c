//! The bundled MNIST and the IDX reader's errors on bad files.

mod common;
use common::mnist_dir;
use minibatch::{Dataset, Error, IdxProblem, Mnist, MnistConfig};
use std::path::{Path, PathBuf};

#[test]
fn bundled_mnist_has_the_classic_split() {
    let m = Mnist::load(mnist_dir()).unwrap();
    assert_eq!((m.train.len(), m.valid.len(), m.test.len()), (50_000, 10_000, 10_000));
    assert_eq!((m.train.image_shape(), m.classes()), ((28, 28), 10));
    // The training set starts the training file: MNIST's first labels are 5, 0, 4, 1, 9.
    let first: Vec<u32> = (0..5).map(|i| m.train.label(i).unwrap()).collect();
    assert_eq!(first, vec![5, 0, 4, 1, 9]);
    // Validation is the end of the training file: its first image is the file's 50,001st.
    let raw = minibatch::mnist::read_idx(&mnist_dir().join("train-labels-idx1-ubyte.gz"), 1).unwrap();
    let tail: Vec<u32> = raw.data[50_000..50_010].iter().map(|&l| l as u32).collect();
    assert_eq!((0..10).map(|i| m.valid.label(i).unwrap()).collect::<Vec<_>>(), tail);
    let (x, y) = m.valid.tensors().unwrap();
    assert_eq!((x.dims(), y.dims()), (&[10_000, 784][..], &[10_000][..]));
    let (lo, hi) = (x.min_all().unwrap().to_scalar::<f32>().unwrap(), x.max_all().unwrap().to_scalar::<f32>().unwrap());
    assert_eq!((lo, hi), (0.0, 1.0), "pixels scaled to [0, 1]");
    let item = m.test.get(0).unwrap();
    assert_eq!((item.pixels.len(), item.label), (784, 7), "the first test digit is a 7");
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("minibatch-mnist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small IDX data set: `n` images of 2x2 and `n` labels, written with the dotted names.
fn write_set(dir: &Path, prefix: &str, n: u32, labels: &[u8]) {
    let mut img = vec![0, 0, 8, 3];
    for d in [n, 2, 2] {
        img.extend_from_slice(&d.to_be_bytes());
    }
    img.extend((0..n * 4).map(|i| (i % 256) as u8));
    std::fs::write(dir.join(format!("{prefix}-images.idx3-ubyte")), img).unwrap();
    let mut lab = vec![0, 0, 8, 1];
    lab.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    lab.extend_from_slice(labels);
    std::fs::write(dir.join(format!("{prefix}-labels.idx1-ubyte")), lab).unwrap();
}

fn idx_problem(r: minibatch::Result<Mnist>) -> (PathBuf, IdxProblem) {
    match r {
        Err(Error::Idx { path, problem }) => (path, problem),
        other => panic!("expected an IDX error, got {other:?}"),
    }
}

#[test]
fn another_idx_data_set_takes_its_sizes_from_the_data() {
    let d = tmp("other");
    write_set(&d, "train", 12, &[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    write_set(&d, "t10k", 3, &[2, 1, 0]);
    let m = Mnist::load(&d).unwrap();
    assert_eq!((m.train.len(), m.valid.len(), m.test.len()), (10, 2, 3), "the last sixth validates");
    assert_eq!((m.train.image_len(), m.classes()), (4, 3));
    let m = Mnist::load_with(&d, &MnistConfig { valid_size: Some(4), classes: None }).unwrap();
    assert_eq!((m.train.len(), m.valid.len()), (8, 4));
    let (p, problem) = idx_problem(Mnist::load_with(&d, &MnistConfig { valid_size: Some(12), classes: None }));
    assert!(p.ends_with("train-images.idx3-ubyte"));
    assert_eq!(problem, IdxProblem::Split { valid: 12, total: 12 });
}

#[test]
fn mismatched_and_out_of_range_labels_are_named() {
    let d = tmp("mismatch");
    write_set(&d, "train", 6, &[0, 1, 0, 1, 0]);
    write_set(&d, "t10k", 2, &[0, 1]);
    let (p, problem) = idx_problem(Mnist::load(&d));
    assert!(p.ends_with("train-labels.idx1-ubyte"));
    assert_eq!(problem, IdxProblem::CountMismatch { images: 6, labels: 5 });

    write_set(&d, "train", 6, &[0, 1, 0, 1, 0, 1]);
    write_set(&d, "t10k", 2, &[0, 7]);
    let (p, problem) = idx_problem(Mnist::load(&d));
    assert!(p.ends_with("t10k-labels.idx1-ubyte"));
    assert_eq!(problem, IdxProblem::LabelOutOfRange { index: 1, label: 7, classes: 2 });
}

#[test]
fn corrupted_truncated_and_missing_files_are_errors_naming_the_file() {
    let d = tmp("corrupt");
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(mnist_dir().join(f), d.join(f)).unwrap();
    }
    // A truncated gzip of the test images.
    let bytes = std::fs::read(mnist_dir().join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte.gz"), &bytes[..bytes.len() / 2]).unwrap();
    let err = Mnist::load(&d).unwrap_err();
    assert!(err.to_string().contains("t10k-images-idx3-ubyte.gz"), "{err}");
    assert!(matches!(err, Error::Idx { problem: IdxProblem::Gzip(_) | IdxProblem::Length { .. }, .. }), "{err:?}");

    // A label file whose magic number says images.
    std::fs::write(d.join("t10k-images-idx3-ubyte.gz"), &bytes).unwrap();
    let mut labels = vec![0, 0, 8, 3];
    labels.extend_from_slice(&[0; 12]);
    std::fs::write(d.join("t10k-labels-idx1-ubyte.gz"), labels).unwrap();
    let (p, problem) = idx_problem(Mnist::load(&d));
    assert!(p.ends_with("t10k-labels-idx1-ubyte.gz"));
    assert_eq!(problem, IdxProblem::BadMagic { expected: 0x801, found: 0x803 });

    std::fs::remove_file(d.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let err = Mnist::load(&d).unwrap_err();
    assert!(matches!(err, Error::MissingFile { what: "test labels", .. }));
    assert!(err.to_string().contains("t10k-labels.idx1-ubyte"), "names the spellings it tried: {err}");
}

#[test]
fn a_file_of_no_images_or_of_images_without_pixels_is_named_as_such() {
    let d = tmp("empty");
    write_set(&d, "train", 0, &[]);
    write_set(&d, "t10k", 2, &[0, 1]);
    let (p, problem) = idx_problem(Mnist::load(&d));
    assert!(p.ends_with("train-images.idx3-ubyte"));
    assert_eq!(problem, IdxProblem::NoImages);
    // 0x0 and 28x0 images: a header that counts images of no pixels.
    for (rows, cols) in [(0u32, 0u32), (28, 0)] {
        let mut img = vec![0, 0, 8, 3];
        [5u32, rows, cols].iter().for_each(|v| img.extend_from_slice(&v.to_be_bytes()));
        std::fs::write(d.join("train-images.idx3-ubyte"), img).unwrap();
        write_set(&d, "t10k", 2, &[0, 1]);
        let (_, problem) = idx_problem(Mnist::load(&d));
        assert_eq!(problem, IdxProblem::NoPixels { rows: rows as usize, cols: cols as usize });
    }
}
