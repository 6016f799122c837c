//! Lessons 10b-11a: MixUp and label smoothing while training a body on the digits 0-4, then
//! transfer learning: the body under a new head for the digits 5-9, frozen for an epoch (batch
//! norm excepted), then trained whole with the body at half the head's rate. Lesson 11's
//! XResNet is built and counted (training it on two cores takes minutes an epoch:
//! `minibatch train --model xresnet18`).
//!
//! Guide pages 13-15 answer the lessons' questions. Run: `cargo run --release --example
//! 14_mixup_transfer [N_TRAIN] [EPOCHS]`.

use minibatch::learner::{FreezeBody, Learner, MixUp};
use minibatch::{
    cnn, load_matching, lr_slice, state_dict, DataLoader, Dataset, ImageDataset, LabelSmoothingCrossEntropy, Mnist,
    Module, Result, Sequential, Sgd, SgdConfig, VecDataset, XResNet, XResNetConfig,
};

/// The images of digits `lo..lo + 5` among the first `n` of `set`, relabelled 0-4.
fn digits(set: &ImageDataset, lo: u32, n: usize) -> Result<VecDataset<(Vec<f32>, u8)>> {
    let mut items = Vec::new();
    for i in 0..n.min(set.len()) {
        let it = set.get(i)?;
        if (lo..lo + 5).contains(&it.label) {
            items.push((it.pixels.iter().map(|&b| b as f32 / 255.0).collect(), (it.label - lo) as u8));
        }
    }
    Ok(VecDataset(items))
}

fn learner(model: Sequential, data: &Mnist, lo: u32, n: usize, opt: Sgd) -> Result<Learner> {
    let train = DataLoader::builder(digits(&data.train, lo, n)?).batch_size(64).shuffle(0).build()?;
    let valid = DataLoader::new(digits(&data.valid, lo, data.valid.len())?, 512)?;
    let loss = LabelSmoothingCrossEntropy::new(0.1)?.into_fn();
    Ok(Learner::new(model, loss, opt, train, valid))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(50_000);
    let epochs = args.next().flatten().unwrap_or(2);
    let data = Mnist::load("data/mnist")?;
    let sgd = SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() };

    // The body: digits 0-4, with MixUp and label smoothing.
    let model = cnn(true, 5, 0)?;
    let opt = Sgd::with_config(model.named_parameters(), sgd)?;
    let mut first = learner(model, &data, 0, n, opt)?.with_callback(MixUp::new(0.4, 5, 0)?);
    first.fit(epochs)?;
    println!(
        "digits 0-4, mixup and label smoothing: accuracy {:.4}",
        first.state.metric("accuracy").unwrap_or(f64::NAN)
    );
    let mut body = state_dict(first.model.as_ref());
    body.retain(|name, _| !name.starts_with("7."));

    // Digits 5-9 from a fiftieth of the images: from scratch, and from the body. Which wins
    // depends on the images and the recipe (guide page 15 measures a case where the body does).
    let few = n / 50;
    let model = cnn(true, 5, 1)?;
    let opt = Sgd::with_config(model.named_parameters(), sgd)?;
    let mut scratch = learner(model, &data, 5, few, opt)?;
    scratch.fit(epochs)?;
    let model = cnn(true, 5, 1)?;
    let report = load_matching(&model, &body, "the 0-4 body".as_ref())?;
    println!("kept {} tensors of the body; new: {}", report.kept.len(), report.new.join(", "));
    let lrs = lr_slice(0.05, 0.1, 2)?;
    let opt = Sgd::with_config(model.named_parameters(), SgdConfig { lr: lrs[1], ..sgd })?
        .group(|name| !name.starts_with("7."), |c| c.lr = lrs[0])?;
    let mut tuned = learner(model, &data, 5, few, opt)?.with_callback(FreezeBody { epochs: 1 });
    tuned.fit(epochs)?;
    let accuracy = |l: &Learner| l.state.metric("accuracy").unwrap_or(f64::NAN);
    println!(
        "digits 5-9 from {few} images: from scratch {:.4}, from the body {:.4}",
        accuracy(&scratch),
        accuracy(&tuned)
    );

    let xresnet = XResNet::new(&XResNetConfig::xresnet18(1, 10), 0)?;
    println!(
        "xresnet18 for MNIST: {} parameters, its head `{}`",
        xresnet.num_parameters(),
        xresnet.layers().layers()[10]
    );
    Ok(())
}
