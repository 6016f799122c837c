//! Optimizers step by step against PyTorch (`../shared/golden/optimizers.json`, from
//! `make_golden.py`'s `optimizers()`): one 2x3 parameter, six fixed gradients.

mod common;
use common::*;
use minibatch::{Optimizer, Param, Sgd, SgdConfig};

fn run(config: SgdConfig, name: &str) {
    let g = golden("optimizers.json");
    let p = Param::new(&tensor(&g["p0"])).unwrap();
    let mut opt = Sgd::with_config(vec![p.clone()], config).unwrap();
    let steps = g["runs"][name]["after_each_step"].as_array().unwrap();
    for (i, (grad, want)) in g["grads"].as_array().unwrap().iter().zip(steps).enumerate() {
        p.accumulate_grad(tensor(grad)).unwrap();
        opt.step().unwrap();
        opt.zero_grad();
        assert_close(&format!("{name} step {i}"), &flat(&p.tensor()), &golden_flat(want), 1e-7, 1e-6);
    }
}

#[test]
fn sgd_matches_pytorch() {
    run(SgdConfig { lr: 0.1, ..Default::default() }, "sgd");
}

#[test]
fn sgd_momentum_matches_pytorch() {
    run(SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }, "sgd_momentum");
}

#[test]
fn sgd_dampening_matches_pytorch() {
    run(SgdConfig { lr: 0.1, momentum: 0.9, dampening: 0.5, ..Default::default() }, "sgd_momentum_dampening");
}

#[test]
fn sgd_nesterov_weight_decay_matches_pytorch() {
    run(
        SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.01, ..Default::default() },
        "sgd_nesterov_wd",
    );
}

#[test]
fn bad_hyperparameters_are_refused() {
    let p = Param::new(&tensor(&golden("optimizers.json")["p0"])).unwrap();
    for lr in [-0.1, f64::NAN, f64::INFINITY] {
        assert!(Sgd::new(vec![p.clone()], lr).is_err(), "lr {lr}");
    }
    let nesterov_without_momentum = SgdConfig { nesterov: true, ..Default::default() };
    assert!(Sgd::with_config(vec![p], nesterov_without_momentum).is_err());
}
