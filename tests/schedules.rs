//! Schedules against PyTorch (`tests/golden/schedules.json`, from `make_golden.py`'s
//! `schedules()`): OneCycleLR's rate and momentum over 100 steps, CosineAnnealingLR over 60.

mod common;
use common::*;
use minibatch::schedule::{Constant, Cosine, OneCycle, Schedule, Scheduled};
use minibatch::{Optimizer, Param, Sgd, SgdConfig};

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

#[test]
fn a_scheduled_optimizer_applies_the_rate_of_each_step_and_the_momentum() {
    // The OneCycleLR run of make_golden.py: SGD with momentum 0.95 on a parameter with no
    // gradient records the rate and momentum each step trains with.
    let g = golden("schedules.json");
    let p = Param::new(&candle_core::Tensor::zeros(1, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap())
        .unwrap();
    let sgd = Sgd::with_config(vec![p], SgdConfig { lr: 0.1, momentum: 0.95, ..Default::default() }).unwrap();
    let mut opt = Scheduled::new(sgd, OneCycle::new(0.1, 100));
    let (mut lrs, mut moms) = (vec![], vec![]);
    for _ in 0..100 {
        opt.step().unwrap();
        lrs.push(opt.lr());
        moms.push(opt.inner().config().momentum);
    }
    assert_close("applied lr", &lrs, &list(&g["one_cycle"]["lr"]), 1e-12, 1e-9);
    assert_close("applied momentum", &moms, &list(&g["one_cycle"]["momentum"]), 1e-12, 1e-9);
    assert_eq!(opt.state_dict()["schedule.step"].to_scalar::<i64>().unwrap(), 100);
    assert_eq!(Constant(0.3).lr_at(1000), 0.3);
}
