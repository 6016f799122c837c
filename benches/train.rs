//! `cargo bench`: the training benchmark of `minibatch bench`, in-process, on the notebook's
//! configuration (plain and fast paths) and, with `--all`, on `wide` and `deep` too.
//!
//! It runs as a library user's code runs, and as the program does: the system allocator and no
//! set-up call. For peak memory per configuration and PyTorch
//! side by side, use `minibatch bench` and `python3 bench/pytorch_bench.py` (see docs/speed.md). Run it with `cargo bench --features bench`.

use minibatch::benchmark::{configs, run, Engine};

fn main() -> minibatch::Result<()> {
    let all = std::env::args().any(|a| a == "--all");
    let data = minibatch::Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))?;
    println!("{:<9} {:<5} {:>9} {:>9} {:>8}", "config", "path", "s/epoch", "us/step", "x floor");
    for config in configs().into_iter().filter(|c| all || c.name == "notebook") {
        // candle's own convolution takes about half a minute an epoch: the CNNs time the fast path.
        let paths: &[Engine] = if matches!(config.arch, minibatch::Architecture::Mlp(_)) {
            &[Engine::Plain, Engine::Fast]
        } else {
            &[Engine::Fast]
        };
        for &path in paths {
            let r = run(&config, path, 3, &data)?;
            println!(
                "{:<9} {:<5} {:>9.3} {:>9.1} {:>8.2}",
                r.config,
                format!("{:?}", r.path).to_lowercase(),
                r.median_epoch_seconds,
                r.us_per_step,
                r.ratio_to_floor.unwrap_or(f64::NAN)
            );
        }
    }
    Ok(())
}
