//! Notebook stage 6: `Sequential` is the chain with its forward already written, and a training
//! loop over `parameters()`.
//!
//! Run: `cargo run --release --example 06_sequential [N_TRAIN]`.
//!
//! The questions of this stage are answered in the guide: `guide/04-parameters-and-optim.md`.

use minibatch::{accuracy, cross_entropy, no_grad, Linear, Mnist, Module, ReLU, Result, Rng, Sequential};

fn main() -> Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let data = Mnist::load("data/mnist")?;
    let (x_train, y_train) = data.train.slice(0, n)?.tensors()?;
    let mut rng = Rng::new(0);
    let model = Sequential::new().add(Linear::new(784, 50, &mut rng)?).add(ReLU).add(Linear::new(50, 10, &mut rng)?);
    println!("{model}");
    let (bs, lr) = (64, 0.5);
    for i in (0..n).step_by(bs) {
        let len = bs.min(n - i);
        let loss = cross_entropy(&model.forward(&x_train.narrow(0, i, len)?)?, &y_train.narrow(0, i, len)?)?;
        model.backward(&loss)?;
        no_grad(|| -> Result<()> {
            for p in model.parameters() {
                p.set(&(p.tensor() - p.grad().unwrap().affine(lr, 0.)?)?)?;
            }
            Ok(())
        })?;
        model.zero_grad();
    }
    let (xv, yv) = data.valid.tensors()?;
    println!("validation accuracy: {:.4}", no_grad(|| accuracy(&model.forward(&xv)?, &yv))?.to_scalar::<f32>()?);
    Ok(())
}
