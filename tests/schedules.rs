//! Schedules against PyTorch (`tests/golden/schedules.json`, from `make_golden.py`'s
//! `schedules()`): OneCycleLR's rate and momentum over 100 steps, CosineAnnealingLR over 60.

mod common;
use candle_core::{DType, Device, Tensor};
use common::*;
use minibatch::learner::{Callback, Ctx, Flow, Learner, ParamScheduler};
use minibatch::schedule::{Constant, Cosine, OneCycle, Schedule};
use minibatch::{get_dls, mlp, Module, Sgd, SgdConfig, TensorDataset};
use std::sync::{Arc, Mutex};

fn list(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn one_cycle_matches_pytorch() {
    let g = golden("schedules.json");
    let s = OneCycle::new(0.1, 100);
    let lr: Vec<f64> = (0..100).map(|i| s.lr_at(i)).collect();
    let mom: Vec<f64> = (0..100).map(|i| s.momentum_at(i).unwrap()).collect();
    assert_close("one-cycle lr", &lr, &list(&g["one_cycle"]["lr"]), 1e-12, 1e-9);
    assert_close("one-cycle momentum", &mom, &list(&g["one_cycle"]["momentum"]), 1e-12, 1e-9);
}

#[test]
fn cosine_matches_pytorch() {
    let g = golden("schedules.json");
    let s = Cosine { lr: 0.1, t_max: 50, eta_min: 0.001 };
    let lr: Vec<f64> = (0..60).map(|i| s.lr_at(i)).collect();
    assert_close("cosine lr", &lr, &list(&g["cosine"]["lr"]), 1e-12, 1e-9);
}

/// Records the rate and momentum each step trained with.
struct Applied(Arc<Mutex<Vec<(f64, f64)>>>);

impl Callback for Applied {
    fn after_step(&mut self, cx: &mut Ctx) -> Flow {
        self.0.lock().unwrap().push((cx.opt.lr(), cx.opt.momentum().unwrap()));
        Flow::Continue
    }
}

#[test]
fn the_scheduler_callback_applies_the_rate_of_each_step_and_the_momentum() {
    // The OneCycleLR run of make_golden.py: SGD with momentum 0.95, 100 steps (batches of 1 of a
    // 100-example set, one epoch), recording the rate and momentum each step trains with.
    let g = golden("schedules.json");
    let model = mlp(&[2, 3], 0).unwrap();
    let x = Tensor::zeros((100, 2), DType::F32, &Device::Cpu).unwrap();
    let y = Tensor::zeros(100, DType::U32, &Device::Cpu).unwrap();
    let ds = TensorDataset::new(x, y).unwrap();
    let (train_dl, valid_dl) = get_dls(ds.clone(), ds, 1).unwrap();
    let sgd = Sgd::with_config(model.named_parameters(), SgdConfig { lr: 0.1, momentum: 0.95, ..Default::default() })
        .unwrap();
    let applied = Arc::new(Mutex::new(Vec::new()));
    let mut learn = Learner::new(model, minibatch::cross_entropy, sgd, train_dl, valid_dl)
        .with_callback(ParamScheduler::new(OneCycle::new(0.1, 100)))
        .with_callback(Applied(applied.clone()));
    learn.fit(1).unwrap();
    let (lrs, moms): (Vec<f64>, Vec<f64>) = applied.lock().unwrap().iter().copied().unzip();
    assert_close("applied lr", &lrs, &list(&g["one_cycle"]["lr"]), 1e-12, 1e-9);
    assert_close("applied momentum", &moms, &list(&g["one_cycle"]["momentum"]), 1e-12, 1e-9);
    assert_eq!(Constant(0.3).lr_at(1000), 0.3);
}
