//! Lesson 10c: mixed precision. The same model and data trained twice, once in fp32 and once with
//! bf16 products (fp32 master weights, loss, batch norm and optimizer), with the lesson's dynamic
//! loss scaling on the bf16 run (harmless there: bf16 has fp32's range), then both timed and
//! scored. On processors with Intel AMX or AVX512-BF16 the bf16 run is the faster one; elsewhere
//! bf16 rounds the same way without the speed.
//!
//! Guide page 18 answers the lesson's questions. Run: `cargo run --release --example
//! 16_mixed_precision [N_TRAIN] [EPOCHS]`.

use minibatch::learner::{Learner, LossScaler};
use minibatch::{cross_entropy, get_dls, mlp, Mnist, Module, Precision, Result, Sgd, SgdConfig};
use std::time::Instant;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(50_000);
    let epochs = args.next().flatten().unwrap_or(2);
    let data = Mnist::load("data/mnist")?;
    println!("bf16 products in hardware: {}", minibatch::fast::bf16_in_hardware());
    for precision in [Precision::Fp32, Precision::Bf16] {
        let (train_dl, valid_dl) = get_dls(data.train.slice(0, n.min(data.train.len()))?, data.valid.clone(), 256)?;
        let model = mlp(&[784, 1024, 10], 0)?;
        let opt = Sgd::with_config(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() })?;
        let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl).precision(precision);
        if precision == Precision::Bf16 {
            learn.add_callback(LossScaler::default());
        }
        let start = Instant::now();
        learn.fit(epochs)?;
        let seconds = start.elapsed().as_secs_f64();
        let accuracy = learn.state.metric("accuracy").unwrap_or(f64::NAN);
        let dtype = learn.model.parameters()[0].tensor().dtype();
        println!("{precision}: accuracy {accuracy:.4} in {seconds:.2} s; the weights stay {dtype:?}");
        if let Some(scaler) = learn.callback::<LossScaler>() {
            println!("  loss scale {} after the run, {} steps skipped", scaler.scale, scaler.skipped);
        }
    }
    Ok(())
}
