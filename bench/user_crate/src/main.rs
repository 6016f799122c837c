//! Seconds per epoch of a user's own `deep` model trained by the notebook's `fit`:
//! `cargo run --release -- MODEL [EPOCHS] [train-only]`, MODEL `seq`, `derived` or `lib`, from
//! this folder. With `train-only`, validation runs on one batch of 128 images, so the time is the
//! training epoch's, as `minibatch bench` reports it; without it, on the 10,000 validation images.
use minibatch::candle_core::Tensor;
use minibatch::{
    cross_entropy, fit, get_dls, mlp, Linear, Mnist, Module, ReLU, Registered, Result, Rng, Sgd, SgdConfig,
};
use std::time::Instant;

#[derive(Registered)]
struct Deep {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    l4: Linear,
}

impl Module for Deep {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.l1.forward(x)?.relu()?;
        let x = self.l2.forward(&x)?.relu()?;
        let x = self.l3.forward(&x)?.relu()?;
        self.l4.forward(&x)
    }
}

#[derive(Registered)]
struct DeepLib {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    l4: Linear,
}

impl Module for DeepLib {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = ReLU.forward(&self.l1.forward(x)?)?;
        let x = ReLU.forward(&self.l2.forward(&x)?)?;
        let x = ReLU.forward(&self.l3.forward(&x)?)?;
        self.l4.forward(&x)
    }
}

fn main() -> Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "seq".into());
    let epochs: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    // Relative to this folder: run from here.
    let data = Mnist::load("../../data/mnist")?;
    let train_only = std::env::args().nth(3).is_some();
    let valid = if train_only { data.valid.slice(0, 128)? } else { data.valid };
    let (train_dl, valid_dl) = get_dls(data.train, valid, 128)?;
    let mut rng = Rng::new(0);
    let model: Box<dyn Module> = match which.as_str() {
        "seq" => Box::new(mlp(&[784, 512, 512, 512, 10], 0)?),
        "derived" => Box::new(Deep {
            l1: Linear::new(784, 512, &mut rng)?,
            l2: Linear::new(512, 512, &mut rng)?,
            l3: Linear::new(512, 512, &mut rng)?,
            l4: Linear::new(512, 10, &mut rng)?,
        }),
        "lib" => Box::new(DeepLib {
            l1: Linear::new(784, 512, &mut rng)?,
            l2: Linear::new(512, 512, &mut rng)?,
            l3: Linear::new(512, 512, &mut rng)?,
            l4: Linear::new(512, 10, &mut rng)?,
        }),
        other => panic!("no model {other}: seq, derived or lib"),
    };
    let mut opt = Sgd::with_config(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() })?;
    let mut times = vec![];
    for _ in 0..epochs {
        let t = Instant::now();
        let s = fit(1, &model, cross_entropy, &mut opt, &train_dl, &valid_dl)?;
        times.push(t.elapsed().as_secs_f64());
        let on = if train_only { "128" } else { "10,000" };
        eprintln!(
            "{which} {:.3} s, accuracy {:.4} on {on} validation images",
            times.last().unwrap(),
            s[0].valid_accuracy
        );
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{which} median {:.3}", times[times.len() / 2]);
    Ok(())
}
