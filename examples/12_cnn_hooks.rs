//! Lessons 06-07: the CNN, with batch norm, and a look inside it with hooks.
//!
//! `ActivationStats` hooks every block of the model and records, for each training batch, the
//! mean, standard deviation and histogram of its output; batch norm keeps the blocks' activations
//! in place where the plain CNN's spike and collapse (see docs/cnn.md's telemetry pictures, drawn
//! by `minibatch train --telemetry`).
//!
//! Run: `cargo run --release --example 12_cnn_hooks [N_TRAIN] [EPOCHS]`.

use minibatch::learner::Learner;
use minibatch::{cnn, cross_entropy, get_dls, ActivationStats, Mnist, Module, Result, Sgd, SgdConfig};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(50_000);
    let epochs = args.next().flatten().unwrap_or(1);
    let data = Mnist::load("data/mnist")?;
    let (train_dl, valid_dl) = get_dls(data.train.slice(0, n)?, data.valid, 128)?;

    let model = cnn(true, 10, 0)?;
    println!("{model}");
    let stats = ActivationStats::new(&model, Default::default())?;
    let opt = Sgd::with_config(model.parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
    let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl);
    learn.fit(epochs)?;
    println!("valid accuracy {:.4}", learn.state.metric("accuracy").unwrap_or(f64::NAN));

    for layer in stats.layers() {
        let (first, last) = (layer.means.first().copied(), layer.means.last().copied());
        let zero = layer.near_zero().last().copied().unwrap_or(f64::NAN);
        println!(
            "layer {}: mean {:.3} -> {:.3}, std {:.3}, near zero {:.0}% ({} batches)",
            layer.name,
            first.unwrap_or(f64::NAN),
            last.unwrap_or(f64::NAN),
            layer.stds.last().copied().unwrap_or(f64::NAN),
            100.0 * zero,
            layer.means.len()
        );
    }
    Ok(())
}
