//! Seconds per epoch of a user's own model trained by the notebook's `fit`:
//! `cargo run --release -- MODEL [EPOCHS] [train-only]`. MODEL is the `deep` MLP as `seq`,
//! `derived` or `lib`, or lessons 06-07's CNN (`lesson.rs`) as `cnn-relu` (the program's `cnn`, with the library's `ReLU`),
//! `cnn-grelu` (`GeneralRelu` with the lesson's leak 0.1, sub 0.4, maxv 6), `cnn-own-bn` (the
//! lesson's hand-written batch norm after each activation) or `cnn-lib-bn` (the library's). The
//! data is the project's `data/mnist`, or the folder `MINIBATCH_DATA` names. With `train-only`,
//! validation runs on one batch of 128 images, so the time is the training epoch's, as
//! `minibatch bench` reports it; without it, on the 10,000 validation images.
use minibatch::candle_core::Tensor;
use minibatch::{
    cross_entropy, fit, get_dls, mlp, Linear, Mnist, Module, ReLU, Registered, Result, Rng, Sgd, SgdConfig,
};
use std::time::Instant;

mod lesson;

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

const MODELS: [&str; 9] =
    ["seq", "derived", "lib", "cnn-relu", "cnn-grelu", "cnn-own-bn", "cnn-own-bn-rows", "cnn-lib-bn", "xresnet18"];
const USAGE: &str = "usage: user_crate seq|derived|lib|cnn-relu|cnn-grelu|cnn-own-bn|cnn-own-bn-rows|cnn-lib-bn|xresnet18 [EPOCHS] [train-only]";

/// The model, the epochs and whether to time training alone, from the command line.
fn args() -> std::result::Result<(String, usize, bool), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().cloned().unwrap_or_else(|| "seq".into());
    if !MODELS.contains(&which.as_str()) {
        return Err(format!("no model {which}; {USAGE}"));
    }
    let epochs = match args.get(1) {
        None => 3,
        Some(s) => s.parse().ok().filter(|&n| n > 0).ok_or(format!("EPOCHS is a whole number from 1, not {s}"))?,
    };
    let train_only = match args.get(2).map(String::as_str) {
        None => false,
        Some("train-only") => true,
        Some(other) => return Err(format!("unknown argument {other}; {USAGE}")),
    };
    Ok((which, epochs, train_only))
}

fn main() {
    if let Err(e) =
        args().and_then(|(which, epochs, train_only)| run(&which, epochs, train_only).map_err(|e| e.to_string()))
    {
        eprintln!("user_crate: {e}");
        std::process::exit(1);
    }
}

fn run(which: &str, epochs: usize, train_only: bool) -> Result<()> {
    // The project's data, relative to this folder, unless MINIBATCH_DATA names another.
    let dir = std::env::var("MINIBATCH_DATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist").to_string());
    let data = Mnist::load(dir)?;
    let valid = if train_only { data.valid.slice(0, 128)? } else { data.valid };
    // MINIBATCH_TRAIN_IMAGES: time the first N training images only (the big models).
    let n_train = std::env::var("MINIBATCH_TRAIN_IMAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(data.train.len());
    let train = data.train.slice(0, n_train.min(data.train.len()))?;
    let bs = if which.starts_with("xresnet") { 64 } else { 128 };
    let (train_dl, valid_dl) = get_dls(train, valid, bs)?;
    let mut rng = Rng::new(0);
    let lesson_act = minibatch::GeneralRelu { leak: Some(0.1), sub: Some(0.4), maxv: Some(6.0) };
    let model: Box<dyn Module> = match which {
        "xresnet18" => Box::new(minibatch::XResNet::new(&minibatch::XResNetConfig::xresnet18(1, 10), 0)?),
        "cnn-relu" => Box::new(minibatch::cnn(false, 10, 0)?),
        "cnn-grelu" => Box::new(lesson::cnn(lesson_act, lesson::Norm::None)?),
        "cnn-own-bn" => Box::new(lesson::cnn(minibatch::GeneralRelu::default(), lesson::Norm::Own)?),
        "cnn-own-bn-rows" => Box::new(lesson::cnn(minibatch::GeneralRelu::default(), lesson::Norm::OwnRows)?),
        "cnn-lib-bn" => Box::new(lesson::cnn(minibatch::GeneralRelu::default(), lesson::Norm::Library)?),
        "seq" => Box::new(mlp(&[784, 512, 512, 512, 10], 0)?),
        "derived" => Box::new(Deep {
            l1: Linear::new(784, 512, &mut rng)?,
            l2: Linear::new(512, 512, &mut rng)?,
            l3: Linear::new(512, 512, &mut rng)?,
            l4: Linear::new(512, 10, &mut rng)?,
        }),
        _ => Box::new(DeepLib {
            l1: Linear::new(784, 512, &mut rng)?,
            l2: Linear::new(512, 512, &mut rng)?,
            l3: Linear::new(512, 512, &mut rng)?,
            l4: Linear::new(512, 10, &mut rng)?,
        }),
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
