//! The learning-rate finder on MNIST: a curve that falls then diverges, suggestions in range, and
//! the model and optimizer put back as they were.

mod common;
use common::{flat, mnist_dir};
use minibatch::{cross_entropy, get_dls, get_model, lr_find, LrFindConfig, Mnist, Module, Optimizer};

#[test]
fn sweeps_suggests_and_restores() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train_dl, _) = get_dls(data.train, data.valid, 64).unwrap();
    let (model, mut opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    let before: Vec<Vec<f64>> = model.parameters().iter().map(|p| flat(&p.tensor())).collect();
    let found = lr_find(&model, cross_entropy, &mut opt, &train_dl, LrFindConfig::default()).unwrap();

    assert!(found.lrs.len() > 50 && found.lrs.len() <= 100, "{}", found.lrs.len());
    assert!(found.lrs.windows(2).all(|w| w[1] > w[0]), "rates grow");
    let last = *found.losses.last().unwrap();
    let best = found.losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(last > 2.0 * best || found.lrs.len() == 100, "the sweep ends by diverging or by its length");
    // Suggestions within the range that trains this model (the sweep in docs/training.md: best SGD rate 0.5).
    for s in [found.steepest, found.minimum] {
        let s = s.expect("a full sweep suggests a rate");
        assert!((0.05..=5.0).contains(&s), "suggested {s}");
    }
    let after: Vec<Vec<f64>> = model.parameters().iter().map(|p| flat(&p.tensor())).collect();
    assert_eq!(before, after, "weights restored");
    assert_eq!(opt.lr(), 0.5, "learning rate restored");
    assert!(model.parameters().iter().all(|p| p.grad().is_none()));
}

#[test]
fn a_sweep_longer_than_an_epoch_goes_on_into_the_next() {
    let data = Mnist::load(mnist_dir()).unwrap();
    // 20 batches an epoch, 60 steps asked for.
    let (train_dl, _) = get_dls(data.train.slice(0, 1280).unwrap(), data.valid, 64).unwrap();
    let (model, mut opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    let config = LrFindConfig { start_lr: 1e-4, end_lr: 1e-1, num_it: 60, ..Default::default() };
    let found = lr_find(&model, cross_entropy, &mut opt, &train_dl, config).unwrap();
    assert_eq!(found.lrs.len(), 60, "three epochs of batches");
    assert!((found.lrs[59] - 1e-1).abs() < 1e-9, "the sweep reaches end_lr: {}", found.lrs[59]);
}

#[test]
fn a_sweep_too_short_to_judge_suggests_nothing() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train_dl, _) = get_dls(data.train.slice(0, 1280).unwrap(), data.valid, 64).unwrap();
    let (model, mut opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    // Rates that diverge at once.
    let config = LrFindConfig { start_lr: 10.0, end_lr: 1000.0, num_it: 100, ..Default::default() };
    let found = lr_find(&model, cross_entropy, &mut opt, &train_dl, config).unwrap();
    assert!(found.lrs.len() < minibatch::train::MIN_POINTS, "{} steps", found.lrs.len());
    assert_eq!((found.steepest, found.minimum), (None, None));
}
