//! Notebook stage 2: a model whose fields register themselves (`#[derive(Registered)]`, the Rust
//! answer to `nn.Module.__setattr__`), so the loop walks `model.parameters()` rather than layers.
//!
//! Run: `cargo run --release --example 02_registered_model [N_TRAIN]`.
//!
//! The questions of this stage are answered in the guide: `guide/04-parameters-and-optim.md`.

use minibatch::candle_core::Tensor;
use minibatch::{accuracy, cross_entropy, no_grad, relu, Linear, Mnist, Module, Registered, Result, Rng};

#[derive(Registered)]
struct Model {
    l1: Linear,
    l2: Linear,
}

impl Module for Model {
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
    for (name, child) in model.named_children() {
        println!("{name}: {child}");
    }
    println!("{model}");
    for (name, p) in model.named_parameters() {
        println!("{name}: {:?}", p.dims());
    }
    let (bs, lr) = (64, 0.5);
    for i in (0..n).step_by(bs) {
        let len = bs.min(n - i);
        let loss = cross_entropy(&model.forward(&x_train.narrow(0, i, len)?)?, &y_train.narrow(0, i, len)?)?;
        model.backward(&loss)?;
        // The loop no longer knows which layers have weights: parameters() has them all.
        no_grad(|| -> Result<()> {
            for p in model.parameters() {
                p.set(&(p.tensor() - p.grad().unwrap().affine(lr, 0.)?)?)?;
            }
            Ok(())
        })?;
        model.zero_grad();
    }
    let (xv, yv) = data.valid.tensors()?;
    let acc = no_grad(|| accuracy(&model.forward(&xv)?, &yv))?.to_scalar::<f32>()?;
    println!("validation accuracy: {acc:.4}");
    Ok(())
}
