//! Notebook stage 1: the first model keeps its layers in a plain list, and the training loop
//! updates each layer's weight and bias by hand.
//!
//! The four steps every training loop repeats: predictions, loss, gradients (backward), update
//! (then zero the gradients). Run: `cargo run --release --example 01_manual_loop [N_TRAIN]`.
//!
//! The questions of this stage are answered in the guide: `guide/01-initial-setup.md` and `guide/03-training-loop.md`.

use minibatch::candle_core::Tensor;
use minibatch::{accuracy, cross_entropy, no_grad, relu, Linear, Mnist, Module, Result, Rng};

/// The notebook's first `Model`: `self.layers = [nn.Linear(n_in,nh), nn.ReLU(), nn.Linear(nh,n_out)]`.
/// A plain `Vec` registers nothing: the loop has to know which layers have weights.
struct Model {
    l1: Linear,
    l2: Linear,
}

impl Model {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.l2.forward(&relu(&self.l1.forward(x)?)?)
    }
}

fn main() -> Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let data = Mnist::load("data/mnist")?;
    let (x_train, y_train) = data.train.slice(0, n)?.tensors()?;
    let mut rng = Rng::new(0);
    let model = Model { l1: Linear::new(784, 50, &mut rng)?, l2: Linear::new(50, 10, &mut rng)? };
    let (bs, lr) = (64, 0.5);

    // One batch before training: the loss is about ln(10) = 2.3, the accuracy about 0.1.
    let (xb, yb) = (x_train.narrow(0, 0, bs)?, y_train.narrow(0, 0, bs)?);
    let preds = model.forward(&xb)?;
    println!(
        "before: loss {:.4}, accuracy {:.4}",
        cross_entropy(&preds, &yb)?.to_scalar::<f32>()?,
        accuracy(&preds, &yb)?.to_scalar::<f32>()?
    );

    for i in (0..n).step_by(bs) {
        let len = bs.min(n - i);
        let (xb, yb) = (x_train.narrow(0, i, len)?, y_train.narrow(0, i, len)?);
        let loss = cross_entropy(&model.forward(&xb)?, &yb)?; // 1. predictions, 2. loss
        let layers = [&model.l1, &model.l2];
        let params: Vec<_> = layers.iter().flat_map(|l| [l.weight().clone(), l.bias().unwrap().clone()]).collect();
        minibatch::backward(&loss, &params)?; // 3. gradients
        no_grad(|| -> Result<()> {
            for p in &params {
                // 4. update: p -= p.grad * lr, then zero the gradient
                p.set(&(p.tensor() - p.grad().unwrap().affine(lr, 0.)?)?)?;
                p.zero_grad();
            }
            Ok(())
        })?;
    }
    // One batch says little (64 images); the validation set below says more.
    let preds = model.forward(&xb)?;
    println!(
        "after one epoch, same batch: loss {:.4}, accuracy {:.4}",
        cross_entropy(&preds, &yb)?.to_scalar::<f32>()?,
        accuracy(&preds, &yb)?.to_scalar::<f32>()?
    );
    let (xv, yv) = data.valid.tensors()?;
    let acc = no_grad(|| accuracy(&model.forward(&xv)?, &yv))?.to_scalar::<f32>()?;
    println!("validation accuracy: {acc:.4}");
    Ok(())
}
