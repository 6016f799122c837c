//! Notebook stage 11: `fit` with validation, and training in three lines.
//!
//! Validation runs in evaluation mode without recording gradients, and its averages are weighted
//! by batch size: MNIST's 10,000 validation images in batches of 128 end with a batch of 16,
//! which counts as 16 examples, not as a full batch.
//!
//! Run: `cargo run --release --example 11_fit [N_TRAIN] [EPOCHS]`.
//!
//! The questions of this stage are answered in the guide: `guide/08-validation.md`.

use minibatch::{cross_entropy, fit, get_dls, get_model, Mnist, Result};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(50_000);
    let epochs = args.next().flatten().unwrap_or(5);
    let data = Mnist::load("data/mnist")?;
    let train = data.train.slice(0, n)?;

    let (train_dl, valid_dl) = get_dls(train, data.valid, 64)?;
    let (model, mut opt) = get_model(784, 50, 10, 0.5, 0)?;
    let stats = fit(epochs, &model, cross_entropy, &mut opt, &train_dl, &valid_dl)?;

    for s in &stats {
        println!(
            "epoch {}: train_loss {:.4} valid_loss {:.4} valid_accuracy {:.4}",
            s.epoch, s.train_loss, s.valid_loss, s.valid_accuracy
        );
    }
    Ok(())
}
