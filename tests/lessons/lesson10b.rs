//! Lesson 10b against PyTorch (`tests/golden/lesson10b.json`, from `make_golden.py`'s
//! `label_smoothing_and_mixup()`): label smoothing, cross-entropy of class probabilities, and
//! MixUp's step; and MixUp in the training loop, seeded and resumed.

use crate::common::*;
use minibatch::learner::{mix_batch, Callback, Checkpoint, Learner, MixUp, State};
use minibatch::{cross_entropy, get_dls, get_model, LabelSmoothingCrossEntropy, Mnist, Param};

fn scalar(t: &candle_core::Tensor) -> Vec<f64> {
    vec![t.to_scalar::<f32>().unwrap() as f64]
}

#[test]
fn label_smoothing_and_class_probabilities_match_pytorch_with_their_gradients() {
    let g = golden("lesson10b.json");
    let (logits, target, probs) = (tensor(&g["logits"]), index_tensor(&g["target"]), tensor(&g["probs"]));
    let cases = [("smoothing", &target), ("soft", &probs)];
    for (name, target) in cases {
        for case in g[name].as_array().unwrap() {
            let eps = case["eps"].as_f64().unwrap();
            let p = Param::new(&logits).unwrap();
            let loss = LabelSmoothingCrossEntropy::new(eps).unwrap().forward(&p.tensor(), target).unwrap();
            let what = format!("{name} eps {eps}");
            assert_close(&what, &scalar(&loss), &[case["loss"].as_f64().unwrap()], 1e-5, 1e-5);
            minibatch::backward(&loss, std::slice::from_ref(&p)).unwrap();
            assert_close(&format!("{what} grad"), &flat(&p.grad().unwrap()), &golden_flat(&case["grad"]), 1e-6, 1e-5);
        }
    }
    // cross_entropy takes class probabilities as PyTorch's does.
    let soft = cross_entropy(&logits, &probs).unwrap();
    assert_close(
        "cross_entropy of probabilities",
        &scalar(&soft),
        &[g["soft"][0]["loss"].as_f64().unwrap()],
        1e-5,
        1e-5,
    );
    assert!(LabelSmoothingCrossEntropy::new(1.5).is_err() && LabelSmoothingCrossEntropy::new(f64::NAN).is_err());
}

#[test]
fn the_mixup_step_matches_the_lessons() {
    let m = &golden("lesson10b.json")["mixup"];
    let draws = golden_flat(&m["draws"]);
    let lambdas: Vec<f64> = draws.iter().map(|&l| l.max(1.0 - l)).collect();
    assert_close("lambda", &lambdas, &golden_flat(&m["lambda"]), 1e-7, 0.0);
    let shuffle: Vec<usize> = m["shuffle"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let (x, y) = (tensor(&m["x"]), index_tensor(&m["y"]));
    let (mixed, probs) = mix_batch(&x, &y, &lambdas, &shuffle, 3).unwrap();
    assert_close("mixed inputs", &flat(&mixed), &golden_flat(&m["mixed"]), 1e-6, 1e-6);
    // The lesson's loss, lambda * loss(y) + (1 - lambda) * loss(y shuffled), is cross-entropy
    // against the mixed labels.
    let p = Param::new(&tensor(&m["preds"])).unwrap();
    let loss = cross_entropy(&p.tensor(), &probs).unwrap();
    assert_close("mixed loss", &scalar(&loss), &[m["loss"].as_f64().unwrap()], 1e-5, 1e-5);
    minibatch::backward(&loss, std::slice::from_ref(&p)).unwrap();
    assert_close("mixed loss grad", &flat(&p.grad().unwrap()), &golden_flat(&m["grad"]), 1e-6, 1e-5);
    assert!(mix_batch(&x, &y, &lambdas[..3], &shuffle, 3).is_err(), "a weight per example");
    assert!(mix_batch(&x, &y, &lambdas, &shuffle, 2).is_err(), "label 2 of 2 classes");
}

#[test]
fn mixup_leaves_validation_alone_and_its_weights_follow_beta() {
    let mut mixup = MixUp::new(0.4, 10, 7).unwrap();
    let x = candle_core::Tensor::arange(0f32, 512.0, &candle_core::Device::Cpu).unwrap().reshape((512, 1)).unwrap();
    let y = candle_core::Tensor::zeros(512, candle_core::DType::U32, &candle_core::Device::Cpu).unwrap();
    let valid = State { training: false, ..Default::default() };
    let (vx, vy) = mixup.transform_batch(&valid, (x.clone(), y.clone())).unwrap();
    assert_eq!((flat(&vx), vy.dims()), (flat(&x), &[512][..]), "validation batches untouched");
    let (_, probs) = mixup.transform_batch(&State { training: true, ..Default::default() }, (x, y)).unwrap();
    // Every label is class 0, so each row is all on class 0 whatever the mix.
    assert!(flat(&probs).chunks(10).all(|r| (r[0] - 1.0).abs() < 1e-6));
    assert!(MixUp::new(0.0, 10, 0).is_err() && MixUp::new(0.4, 0, 0).is_err());
}

fn learner(seed: u64) -> Learner {
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train, valid) = (data.train.slice(0, 1280).unwrap(), data.valid.slice(0, 500).unwrap());
    let (train_dl, valid_dl) = get_dls(train, valid, 64).unwrap();
    let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    Learner::new(model, cross_entropy, opt, train_dl, valid_dl).with_callback(MixUp::new(0.4, 10, seed).unwrap())
}

#[test]
fn a_mixup_run_is_seeded_and_resumes_to_the_bit() {
    let mut whole = learner(1);
    whole.fit(2).unwrap();
    let figures = whole.validate().unwrap();
    let accuracy = figures.iter().find(|(n, _)| n == "accuracy").map(|(_, v)| *v);
    assert!(accuracy.is_some_and(|a| a > 0.6), "mixup still learns: {figures:?}");
    let mut other_seed = learner(2);
    other_seed.fit(2).unwrap();
    assert!(weights(&other_seed) != weights(&whole), "the seed changes the mixes");

    let dir = std::env::temp_dir().join(format!("minibatch-mixup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut first = learner(1).with_callback(StopAfter(27)).with_callback(Checkpoint::new(&dir, serde_json::json!({})));
    first.fit(2).unwrap();
    let mut resumed = learner(1);
    resumed.load_checkpoint(&dir).unwrap();
    resumed.fit_until(2).unwrap();
    assert!(weights(&resumed) == weights(&whole), "a resumed mixup run ends as the uninterrupted one, bit for bit");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_mixes_and_probability_targets_are_named() {
    use candle_core::{DType, Device, Tensor};
    let cpu = &Device::Cpu;
    let x = Tensor::zeros((2, 3), DType::F32, cpu).unwrap();
    let y = Tensor::new(&[0i64, -1], cpu).unwrap();
    let err = mix_batch(&x, &y, &[0.5, 0.5], &[1, 0], 3).unwrap_err().to_string();
    assert!(err.contains("-1"), "{err}");
    let y = Tensor::new(&[0u32, 1], cpu).unwrap();
    assert!(mix_batch(&x, &y, &[1.5, 0.5], &[1, 0], 3).is_err(), "a weight above 1");
    assert!(mix_batch(&x, &y, &[f64::NAN, 0.5], &[1, 0], 3).is_err(), "a NaN weight");
    let bytes = Tensor::zeros((2, 3), DType::U8, cpu).unwrap();
    assert!(mix_batch(&bytes, &y, &[0.5, 0.5], &[1, 0], 3).is_err(), "bytes cannot be mixed");
    // Logits of rank 3 are named as such, not as a shape mismatch.
    let logits = Tensor::zeros((2, 2, 3), DType::F32, cpu).unwrap();
    let err = cross_entropy(&logits, &logits).unwrap_err().to_string();
    assert!(err.contains("rank 2"), "{err}");
    // An empty batch: NaN, as with class indices.
    let empty = Tensor::zeros((0, 3), DType::F32, cpu).unwrap();
    let loss = cross_entropy(&empty, &empty).unwrap().to_scalar::<f32>().unwrap();
    let smoothed = LabelSmoothingCrossEntropy::new(0.1).unwrap().forward(&empty, &empty).unwrap();
    assert!(loss.is_nan() && smoothed.to_scalar::<f32>().unwrap().is_nan());
}
