//! Notebook stage 7: the optimizer takes the update out of the loop. First the notebook's own
//! `Optimizer` class, written against the `Optimizer` trait; then the library's `Sgd`, which
//! gives the same numbers to the last bit.
//!
//! Run: `cargo run --release --example 07_optimizer [N_TRAIN]`.
//!
//! The questions of this stage are answered in the guide: `guide/04-parameters-and-optim.md`.

use minibatch::{cross_entropy, evaluate, get_model, no_grad, DataLoader, Mnist, Module, Optimizer, Param, Result};

/// The notebook's `Optimizer`: `p -= p.grad * lr` for each parameter, without recording
/// gradients (the update is not part of the model).
struct MyOptimizer {
    params: Vec<Param>,
    lr: f64,
}

impl Optimizer for MyOptimizer {
    fn step(&mut self) -> Result<()> {
        no_grad(|| {
            for p in &self.params {
                if let Some(g) = p.grad() {
                    p.set(&(p.tensor() - g.affine(self.lr, 0.)?)?)?;
                }
            }
            Ok(())
        })
    }

    fn params(&self) -> &[Param] {
        &self.params
    }
}

fn train(model: &dyn Module, opt: &mut dyn Optimizer, dl: &DataLoader<minibatch::ImageDataset>) -> Result<()> {
    for batch in dl {
        let (xb, yb) = batch?;
        let loss = cross_entropy(&model.forward(&xb)?, &yb)?;
        model.backward(&loss)?;
        opt.step()?;
        opt.zero_grad(); // gradients accumulate until zeroed
    }
    Ok(())
}

fn main() -> Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let data = Mnist::load("data/mnist")?;
    let train_dl = DataLoader::new(data.train.slice(0, n)?, 64)?;
    let valid_dl = DataLoader::new(data.valid, 128)?;

    // get_model makes a fresh model each time, so that neither run starts from the other's weights.
    let (model, _) = get_model(784, 50, 10, 0.5, 0)?;
    let mut mine = MyOptimizer { params: model.parameters(), lr: 0.5 };
    train(&model, &mut mine, &train_dl)?;
    let a = evaluate(&model, cross_entropy, &valid_dl)?;
    println!("notebook's optimizer: loss {:.6} accuracy {:.4}", a.loss, a.accuracy);

    let (model, mut sgd) = get_model(784, 50, 10, 0.5, 0)?;
    train(&model, &mut sgd, &train_dl)?;
    let b = evaluate(&model, cross_entropy, &valid_dl)?;
    println!("Sgd:                  loss {:.6} accuracy {:.4}", b.loss, b.accuracy);
    println!("identical: {}", a == b);
    Ok(())
}
