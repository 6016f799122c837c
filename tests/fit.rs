//! `fit` with validation: batch-size-weighted averages, the three-line use, reproducibility.

mod common;
use candle_core::{Device, Tensor};
use common::mnist_dir;
use minibatch::{cross_entropy, evaluate, fit, get_dls, get_model, DataLoader, Linear, Mnist, TensorDataset};

/// 144 examples of class 0 in batches of 128: the first 128 are classified right, the last 16
/// (the short last batch) wrong.
fn short_last_batch() -> (Linear, DataLoader<TensorDataset>) {
    let mut x = vec![];
    for i in 0..144 {
        x.extend(if i < 128 { [1f32, 0.] } else { [0., 1.] });
    }
    let x = Tensor::from_vec(x, (144, 2), &Device::Cpu).unwrap();
    let y = Tensor::zeros(144, candle_core::DType::U32, &Device::Cpu).unwrap();
    let identity = Linear::from_tensors(Tensor::eye(2, candle_core::DType::F32, &Device::Cpu).unwrap(), None).unwrap();
    (identity, DataLoader::new(TensorDataset::new(x, y).unwrap(), 128).unwrap())
}

#[test]
fn validation_averages_are_weighted_by_batch_size() {
    let (model, dl) = short_last_batch();
    let got = evaluate(&model, cross_entropy, &dl).unwrap();
    assert_eq!(got.count, 144);
    assert!((got.accuracy - 128.0 / 144.0).abs() < 1e-9, "a batch of 16 counts as 16: {}", got.accuracy);

    // The same figures from the whole set in one batch.
    let (x, y) = dl.dataset().tensors();
    let whole =
        cross_entropy(&minibatch::Module::forward(&model, x).unwrap(), y).unwrap().to_scalar::<f32>().unwrap() as f64;
    assert!((got.loss - whole).abs() < 1e-6, "{} vs {whole}", got.loss);

    // The notebook's unweighted mean of batch means is off: it gives the 16 as much say as the 128.
    let per_batch = DataLoader::new(dl.dataset().clone(), 128).unwrap();
    let means: Vec<f64> = per_batch
        .iter()
        .map(|b| {
            let (xb, yb) = b.unwrap();
            let out = minibatch::Module::forward(&model, &xb).unwrap();
            minibatch::accuracy(&out, &yb).unwrap().to_scalar::<f32>().unwrap() as f64
        })
        .collect();
    assert_eq!(means, vec![1.0, 0.0]);
    assert_eq!(means.iter().sum::<f64>() / means.len() as f64, 0.5);
}

#[test]
fn three_lines_train_mnist_to_93_percent_in_one_epoch_reproducibly() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let run = || {
        let (train_dl, valid_dl) = get_dls(data.train.clone(), data.valid.clone(), 64).unwrap();
        let (model, mut opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
        fit(1, &model, cross_entropy, &mut opt, &train_dl, &valid_dl).unwrap()
    };
    let a = run();
    assert!(a[0].valid_accuracy >= 0.93, "{:?}", a[0]);
    assert!(a[0].valid_loss < a[0].train_loss * 1.5 && a[0].valid_loss.is_finite());
    let b = run();
    assert_eq!(
        (a[0].train_loss.to_bits(), a[0].valid_loss.to_bits()),
        (b[0].train_loss.to_bits(), b[0].valid_loss.to_bits()),
        "same seed, same bits"
    );
}

#[test]
fn the_loss_curve_is_bit_identical_for_zero_one_and_four_workers() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let train = data.train.slice(0, 5000).unwrap();
    let curve = |workers: usize| {
        let options = minibatch::DlsOptions { seed: 11, workers, ..Default::default() };
        let (train_dl, valid_dl) = minibatch::get_dls_with(train.clone(), data.valid.clone(), 64, options).unwrap();
        let (model, mut opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
        let stats = fit(2, &model, cross_entropy, &mut opt, &train_dl, &valid_dl).unwrap();
        stats.iter().map(|s| (s.train_loss.to_bits(), s.valid_loss.to_bits())).collect::<Vec<_>>()
    };
    let reference = curve(0);
    assert_eq!(curve(1), reference);
    assert_eq!(curve(4), reference);
}
