//! The learning-rate finder on MNIST: a curve that falls then diverges, suggestions in range, and
//! the model and optimizer put back as they were.

mod common;
use common::{flat, mnist_dir};
use minibatch::{cross_entropy, get_dls, get_model, lr_find, LrFindConfig, Mnist, Module, Optimizer};

#[test]
fn sweeps_suggests_and_restores() {
    minibatch::set_num_threads(1);
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
    // Suggestions within the range that trains this model (the README's sweep: best SGD rate 0.5).
    for s in [found.steepest, found.minimum] {
        assert!((0.05..=5.0).contains(&s), "suggested {s}");
    }
    let after: Vec<Vec<f64>> = model.parameters().iter().map(|p| flat(&p.tensor())).collect();
    assert_eq!(before, after, "weights restored");
    assert_eq!(opt.lr(), 0.5, "learning rate restored");
    assert!(model.parameters().iter().all(|p| p.grad().is_none()));
}
