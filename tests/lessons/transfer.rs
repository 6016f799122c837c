//! Lesson 11a's transfer learning as a user's crate writes it: a body trained on digits 0-4
//! loaded under a new head for 5-9, frozen but for batch norm, then unfrozen with
//! discriminative learning rates.

use crate::common::{flat, mnist_dir};
use minibatch::learner::Learner;
use minibatch::{
    cnn, cross_entropy, freeze_body, freeze_with, load_matching, lr_slice, state_dict, unfreeze, DataLoader, Dataset,
    Mnist, Module, Sgd, SgdConfig, VecDataset,
};

/// MNIST images of the digits in `digits`, relabelled from 0, at most `n` of them.
fn digits(
    data: &impl Dataset<Item = minibatch::ImageItem>,
    digits: std::ops::Range<u32>,
    n: usize,
) -> VecDataset<(Vec<f32>, u8)> {
    let items = (0..data.len())
        .map(|i| data.get(i).unwrap())
        .filter(|it| digits.contains(&it.label))
        .take(n)
        .map(|it| (it.pixels.iter().map(|&b| b as f32 / 255.0).collect(), (it.label - digits.start) as u8))
        .collect();
    VecDataset(items)
}

fn values(m: &dyn Module, part: &str) -> Vec<f64> {
    m.named_parameters().into_iter().filter(|(n, _)| n.contains(part)).flat_map(|(_, p)| flat(&p.tensor())).collect()
}

#[test]
fn a_frozen_body_keeps_its_weights_while_batch_norm_and_the_head_train() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train, valid) = (digits(&data.train, 5..10, 640), digits(&data.valid, 5..10, 256));
    let model = cnn(true, 5, 0).unwrap();
    let frozen = freeze_body(&model);
    // Four convolutions (no bias beside batch norm) and nothing else: batch norm and the head stay.
    assert_eq!(frozen, 4);
    let (convs, bn, head) = (values(&model, ".0.weight"), values(&model, ".1."), values(&model, "7."));
    let opt =
        Sgd::with_config(model.named_parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }).unwrap();
    let mut learn = Learner::new(
        model,
        cross_entropy,
        opt,
        DataLoader::new(train, 64).unwrap(),
        DataLoader::new(valid, 128).unwrap(),
    );
    learn.fit(1).unwrap();
    assert!(values(&*learn.model, ".0.weight") == convs, "frozen convolutions unchanged, bit for bit");
    assert!(values(&*learn.model, ".1.") != bn, "batch norm trains while the body is frozen");
    assert!(values(&*learn.model, "7.") != head, "the head trains");
    unfreeze(&*learn.model);
    learn.fit(1).unwrap();
    assert!(values(&*learn.model, ".0.weight") != convs, "unfrozen, the body trains");
    // Frozen with its batch norm too: every parameter, the head's included.
    assert_eq!(freeze_with(&*learn.model, false), 4 + 8 + 2);
    let all = values(&*learn.model, "");
    learn.fit(1).unwrap();
    assert!(values(&*learn.model, "") == all, "nothing trains");
}

#[test]
fn a_body_trained_on_other_classes_is_kept_and_its_head_made_new() {
    let trained = cnn(true, 10, 1).unwrap();
    let fresh = cnn(true, 5, 2).unwrap();
    let report = load_matching(&fresh, &state_dict(&trained), "trained.safetensors".as_ref()).unwrap();
    assert_eq!(report.new, ["7.weight", "7.bias"]);
    assert_eq!(report.unused, ["7.bias [10]", "7.weight [10, 32]"]);
    assert_eq!(report.kept.len(), 4 + 4 * 5, "conv weights, batch norm weights, biases and three buffers");
    assert!(values(&fresh, "1.0.weight") == values(&trained, "1.0.weight"));
    // A model with nothing in common is refused, and left as it was.
    let other = minibatch::mlp(&[3, 2], 0).unwrap();
    let before = values(&other, "");
    assert!(load_matching(&other, &state_dict(&trained), "trained.safetensors".as_ref()).is_err());
    assert!(values(&other, "") == before);
}

#[test]
fn discriminative_rates_reach_their_groups() {
    let model = cnn(true, 5, 0).unwrap();
    let lrs = lr_slice(1e-3, 1e-1, 2).unwrap();
    let opt = Sgd::with_config(model.named_parameters(), SgdConfig { lr: lrs[0], ..Default::default() })
        .unwrap()
        .group(|name| name.starts_with("7."), |c| c.lr = lrs[1])
        .unwrap();
    let groups = opt.groups();
    assert_eq!(groups.len(), 2);
    assert_eq!((groups[0].config.lr, groups[1].config.lr), (1e-3, 1e-1));
    let head: Vec<&str> = groups[1].members.iter().map(|&i| opt.names()[i].as_str()).collect();
    assert_eq!(head, ["7.weight", "7.bias"]);
}

#[test]
fn a_models_own_state_loads_back_and_another_architectures_is_refused() {
    let model = cnn(true, 5, 0).unwrap();
    let report = load_matching(&model, &state_dict(&model), "own".as_ref()).unwrap();
    assert!(report.new.is_empty() && report.unused.is_empty());
    minibatch::module::load_tensors(&model, &state_dict(&model), "own".as_ref()).unwrap();
    // xresnet18 shares only batch norm counters' names and shapes with the CNN: no parameter,
    // so it is refused.
    let other = minibatch::XResNet::new(&minibatch::XResNetConfig::xresnet18(1, 5), 0).unwrap();
    let before = values(&model, "");
    match load_matching(&model, &state_dict(&other), "xresnet".as_ref()) {
        Err(minibatch::Error::NothingInCommon { model: 14, .. }) => {}
        other => panic!("expected NothingInCommon, got {other:?}"),
    }
    assert!(values(&model, "") == before, "a refused file changes nothing");
    assert!(lr_slice(0.0, 0.1, 3).is_err() && lr_slice(1e-3, f64::NAN, 2).is_err());
}
