//! Lesson 10c, mixed precision: the layers' bf16 products, a bf16 run of the notebook's model
//! beside the fp32 one, and dynamic loss scaling.

use crate::common::*;
use candle_core::Var;
use candle_core::{DType, Device, Tensor};
use minibatch::learner::{Learner, LossScaler};
use minibatch::precision::to_bf16;
use minibatch::{
    autocast, cross_entropy, get_dls, get_model, mlp, Conv2d, Conv2dConfig, Mnist, Module, Precision, Rng,
};

fn rounded(t: &Tensor) -> Tensor {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    Tensor::from_vec(v.into_iter().map(to_bf16).collect(), t.dims(), &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// A layer's output under bf16 is the fp32 layer's on bf16-rounded weights and inputs, up to the
/// order of the sums (a Linear, and a Conv2d with its weight gradient); a whole MLP, whose every
/// layer rounds the previous one's output, stays near fp32.
#[test]
fn the_layers_products_take_bf16_operands_and_sum_in_f32() {
    let x = Tensor::randn(0f32, 1., (37, 784), &Device::Cpu).unwrap();
    let model = mlp(&[784, 100, 10], 3).unwrap();
    let params = model.parameters();
    let (w, b) = (params[0].tensor(), params[1].tensor());
    let layer = minibatch::Linear::from_tensors(w.clone(), Some(b.clone())).unwrap();
    let first = values(&autocast(Precision::Bf16, || layer.forward(&x)).unwrap());
    let reference = rounded(&x).matmul(&rounded(&w).t().unwrap()).unwrap().broadcast_add(&b).unwrap();
    let reference = values(&reference);
    let worst = first.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "bf16 layer against the rounded fp32 one: {worst}");
    let fp32 = values(&model.forward(&x).unwrap());
    let bf16 = values(&autocast(Precision::Bf16, || model.forward(&x)).unwrap());
    let worst = fp32.iter().zip(&bf16).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst > 0.0 && worst < 0.05, "bf16 model against fp32: {worst}");

    // A convolution's patch products likewise, forward and weight gradient (144 taps: the
    // layout the fp32 kernel copies pixel-major first). The incoming gradient `r` is made of bf16
    // values, so the reference's weight gradient multiplies the same operands.
    let conv_config = Conv2dConfig { padding: 1, ..Default::default() };
    let conv = Conv2d::new(16, 8, 3, conv_config, &mut Rng::new(5)).unwrap();
    let x = Tensor::randn(0f32, 1., (4, 16, 10, 10), &Device::Cpu).unwrap();
    let r = rounded(&Tensor::randn(0f32, 1., (4, 8, 10, 10), &Device::Cpu).unwrap());
    let y = autocast(Precision::Bf16, || -> minibatch::Result<Tensor> {
        let y = conv.forward(&x)?;
        minibatch::backward(&(&y * &r)?.sum_all()?, &conv.parameters())?;
        Ok(y)
    })
    .unwrap();
    // The weight's gradient does not depend on the weight: the reference's is a rounded copy.
    let w = Var::from_tensor(&rounded(&conv.weight().tensor())).unwrap();
    let bias = conv.bias().unwrap().tensor().reshape((1, 8, 1, 1)).unwrap();
    let reference = rounded(&x).conv2d(w.as_tensor(), 1, 1, 1, 1).unwrap().broadcast_add(&bias).unwrap();
    let worst = diff(&values(&y), &values(&reference));
    assert!(worst < 1e-5, "bf16 convolution against the rounded fp32 one: {worst}");
    let grads = (&reference * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let (got, want) = (values(&conv.weight().grad().unwrap()), values(grads.get(&w).unwrap()));
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(diff(&got, &want) < 1e-5 * scale, "weight gradient: {} (largest {scale})", diff(&got, &want));
    assert!(diff(&values(&conv.forward(&x).unwrap()), &values(&y)) > 0.0, "bf16 changed nothing");
}

fn diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
}

/// The notebook's model trained in bf16 follows the fp32 run: the same loss to within 0.01
/// after an epoch, every parameter still `f32`, and not the same bits (bf16 was used).
#[test]
fn a_bf16_run_of_the_notebooks_model_tracks_the_fp32_one() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let run = |precision| {
        let (train_dl, valid_dl) =
            get_dls(data.train.slice(0, 10_000).unwrap(), data.valid.slice(0, 2000).unwrap(), 64).unwrap();
        let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
        let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl).precision(precision);
        learn.fit(2).unwrap();
        let weights: Vec<Vec<f32>> = learn.model.parameters().iter().map(|p| values(&p.tensor())).collect();
        assert!(learn.model.parameters().iter().all(|p| p.tensor().dtype() == DType::F32));
        let losses: Vec<f64> = learn.recorder.epochs.iter().map(|e| e.metrics[1].1).collect();
        (losses, learn.state.metric("accuracy").unwrap(), weights)
    };
    let (fp32, fp32_acc, fp32_w) = run(Precision::Fp32);
    let (bf16, bf16_acc, bf16_w) = run(Precision::Bf16);
    for (a, b) in fp32.iter().zip(&bf16) {
        assert!((a - b).abs() < 0.01, "valid losses fp32 {fp32:?}, bf16 {bf16:?}");
    }
    assert!((fp32_acc - bf16_acc).abs() < 0.01, "accuracy fp32 {fp32_acc}, bf16 {bf16_acc}");
    assert_ne!(fp32_w, bf16_w);
}

/// Loss scaling by a power of two changes no bit of a bf16 run (bf16 has fp32's exponent); a
/// scale that overflows skips the step, leaves the weights as they were and halves the scale;
/// good steps make it grow.
#[test]
fn loss_scaling_is_harmless_in_bf16_and_skips_overflowing_steps() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let run = |scaler: Option<LossScaler>, batches: usize| {
        let (train_dl, valid_dl) =
            get_dls(data.train.slice(0, 64 * batches).unwrap(), data.valid.slice(0, 256).unwrap(), 64).unwrap();
        let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
        let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl).precision(Precision::Bf16);
        if let Some(s) = scaler {
            learn.add_callback(s);
        }
        learn.fit(1).unwrap();
        let weights: Vec<Vec<f32>> = learn.model.parameters().iter().map(|p| values(&p.tensor())).collect();
        (weights, learn.callback::<LossScaler>().cloned())
    };
    let (plain, _) = run(None, 20);
    let (scaled, scaler) = run(Some(LossScaler { growth_interval: 8, ..LossScaler::default() }), 20);
    assert!(plain == scaled, "a scale of 2^16 changed the bf16 run");
    let scaler = scaler.unwrap();
    assert_eq!((scaler.skipped, scaler.scale, scaler.good), (0, 65536.0 * 4.0, 4)); // 20 = 2 x 8 + 4

    let untrained: Vec<Vec<f32>> =
        get_model(784, 50, 10, 0.5, 0).unwrap().0.parameters().iter().map(|p| values(&p.tensor())).collect();
    let (overflowed, scaler) = run(Some(LossScaler { scale: 1e39, ..LossScaler::default() }), 1);
    assert!(overflowed == untrained, "an overflowing step was taken");
    let scaler = scaler.unwrap();
    assert_eq!((scaler.skipped, scaler.scale), (1, 5e38));

    // Settings that cannot train are refused before the first step, with the reason; a scale so
    // small that the unscaled gradients overflow skips that step, and once halved below fp32's
    // range stops the run with the reason.
    let bad = [(0.0, 2000), (f64::NAN, 2000), (f64::INFINITY, 2000), (-1.0, 2000), (65536.0, 0), (1e-45, 2000)];
    for (scale, growth_interval) in bad {
        let (train_dl, valid_dl) =
            get_dls(data.train.slice(0, 64).unwrap(), data.valid.slice(0, 64).unwrap(), 64).unwrap();
        let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
        let bad = LossScaler { scale, growth_interval, ..LossScaler::default() };
        let err = Learner::new(model, cross_entropy, opt, train_dl, valid_dl).with_callback(bad).fit(1).unwrap_err();
        assert!(err.to_string().contains("LossScaler"), "{scale} {growth_interval}: {err}");
    }
}

/// A learner without a precision of its own follows an enclosing `autocast`, and takes its
/// checkpoint's precision back when it resumes.
#[test]
fn a_learner_follows_autocast_and_its_checkpoints_precision() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let learner = || {
        let (train_dl, valid_dl) =
            get_dls(data.train.slice(0, 640).unwrap(), data.valid.slice(0, 128).unwrap(), 64).unwrap();
        let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
        Learner::new(model, cross_entropy, opt, train_dl, valid_dl)
    };
    let weights = |l: &Learner| -> Vec<Vec<f32>> { l.model.parameters().iter().map(|p| values(&p.tensor())).collect() };
    let mut set = learner().precision(Precision::Bf16);
    set.fit(1).unwrap();
    let mut follows = learner();
    autocast(Precision::Bf16, || follows.fit(1)).unwrap();
    assert!(weights(&set) == weights(&follows));
    assert_eq!(follows.products_precision(), Precision::Fp32); // outside the autocast again

    let dir = std::env::temp_dir().join(format!("minibatch-bf16-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ckpt = minibatch::learner::Checkpoint::new(&dir, serde_json::json!({}));
    let mut first = learner().precision(Precision::Bf16).with_callback(ckpt);
    first.fit(1).unwrap();
    let mut resumed = learner();
    resumed.load_checkpoint(&dir).unwrap();
    assert_eq!(resumed.products_precision(), Precision::Bf16);
    resumed.fit(1).unwrap();
    let mut whole = learner().precision(Precision::Bf16);
    whole.fit(2).unwrap();
    assert!(weights(&resumed) == weights(&whole));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `validate` and `predict` run in the learner's precision, as its `fit` does.
#[test]
fn validate_and_predict_use_the_learners_precision() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let learner = |precision| {
        let (train_dl, valid_dl) =
            get_dls(data.train.slice(0, 64).unwrap(), data.valid.slice(0, 256).unwrap(), 64).unwrap();
        let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
        Learner::new(model, cross_entropy, opt, train_dl, valid_dl).precision(precision)
    };
    let (mut fp32, mut bf16) = (learner(Precision::Fp32), learner(Precision::Bf16));
    let (v32, v16) = (fp32.validate().unwrap(), bf16.validate().unwrap());
    assert_ne!(v32[0].1, v16[0].1);
    let outside = autocast(Precision::Bf16, || learner(Precision::Bf16).validate().unwrap());
    assert_eq!(outside[0].1, v16[0].1);
    let x = Tensor::rand(0f32, 1., (3, 784), &Device::Cpu).unwrap();
    let by_hand = values(&autocast(Precision::Bf16, || bf16.model.forward(&x)).unwrap());
    assert_eq!(values(&bf16.predict(&x).unwrap()), by_hand);
    assert_ne!(values(&fp32.predict(&x).unwrap()), by_hand);
}
