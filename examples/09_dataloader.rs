//! Notebook stage 9: a `DataLoader` hands out `(xb, yb)` batches, so the loop is
//! `for (xb, yb) in &train_dl`.
//!
//! Run: `cargo run --release --example 09_dataloader [N_TRAIN]`.
//!
//! The questions of this stage are answered in the guide: `guide/05-dataset-dataloader.md`.

use minibatch::{cross_entropy, evaluate, get_model, DataLoader, Mnist, Module, Optimizer, Result};

fn main() -> Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let data = Mnist::load("data/mnist")?;
    let train_dl = DataLoader::new(data.train.slice(0, n)?, 64)?;
    let valid_dl = DataLoader::new(data.valid, 128)?;
    let (xb, yb) = train_dl.iter().next().unwrap()?;
    println!("{} batches; the first: x {:?}, y {:?}", train_dl.len(), xb.dims(), yb.dims());
    println!("{}", minibatch::render_digit(train_dl.dataset().pixels(0).unwrap(), 28, 28));
    println!("label of xb[0]: {}", yb.get(0)?.to_scalar::<u32>()?);

    let (model, mut opt) = get_model(784, 50, 10, 0.5, 0)?;
    for batch in &train_dl {
        let (xb, yb) = batch?;
        opt.backward_step(&cross_entropy(&model.forward(&xb)?, &yb)?)?;
    }
    let e = evaluate(&model, cross_entropy, &valid_dl)?;
    println!("validation: loss {:.4} accuracy {:.4}", e.loss, e.accuracy);
    Ok(())
}
