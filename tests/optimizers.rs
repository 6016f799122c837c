//! Optimizers step by step against PyTorch (`tests/golden/optimizers.json`, from
//! `make_golden.py`'s `optimizers()`: one 2x3 parameter, six fixed gradients), and what they do
//! beyond one step: groups, clipping, accumulation, saved state.

mod common;
use common::*;
use minibatch::optim::{Hyper, Rule};
use minibatch::{
    clip_grad_norm, clip_grad_value, Adam, AdamConfig, AdamW, Optimizer, Param, RmsProp, RmsPropConfig, RuleOptimizer,
    Sgd, SgdConfig,
};

fn run<R: Rule>(config: R::Config, name: &str) {
    run_with(|p| RuleOptimizer::<R>::with_config(vec![p], config.clone()).unwrap(), name);
}

/// Six steps of the optimizer that `make` builds on PyTorch's parameter, against PyTorch's.
fn run_with<R: Rule>(make: impl Fn(Param) -> RuleOptimizer<R>, name: &str) {
    let g = golden("optimizers.json");
    let p = Param::new(&tensor(&g["p0"])).unwrap();
    let mut opt = make(p.clone());
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
    run::<minibatch::optim::SgdRule>(SgdConfig { lr: 0.1, ..Default::default() }, "sgd");
    run::<minibatch::optim::SgdRule>(SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }, "sgd_momentum");
    let damp = SgdConfig { lr: 0.1, momentum: 0.9, dampening: 0.5, ..Default::default() };
    run::<minibatch::optim::SgdRule>(damp, "sgd_momentum_dampening");
    let nest = SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.01, ..Default::default() };
    run::<minibatch::optim::SgdRule>(nest, "sgd_nesterov_wd");
}

#[test]
fn adam_family_matches_pytorch() {
    run::<minibatch::optim::AdamRule>(AdamConfig { lr: 0.01, ..Default::default() }, "adam");
    let wd = AdamConfig { lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.1, ..Default::default() };
    run::<minibatch::optim::AdamRule>(wd, "adam_wd");
    run::<minibatch::optim::AdamWRule>(AdamConfig { lr: 0.01, weight_decay: 0.1, ..Default::default() }, "adamw");
}

#[test]
fn the_short_constructors_take_pytorchs_defaults() {
    run_with(|p| Adam::new(vec![p], 0.01).unwrap(), "adam");
    run_with(|p| Sgd::new(vec![p], 0.1).unwrap(), "sgd");
}

#[test]
fn rmsprop_matches_pytorch() {
    run::<minibatch::optim::RmsPropRule>(RmsPropConfig { lr: 0.01, alpha: 0.9, ..Default::default() }, "rmsprop");
}

#[test]
fn bad_hyperparameters_are_refused() {
    let p = || vec![Param::new(&tensor(&golden("optimizers.json")["p0"])).unwrap()];
    for lr in [-0.1, f64::NAN, f64::INFINITY] {
        assert!(Sgd::new(p(), lr).is_err(), "lr {lr}");
    }
    assert!(Sgd::with_config(p(), SgdConfig { nesterov: true, ..Default::default() }).is_err());
    let nan_dampening = SgdConfig { momentum: 0.9, dampening: f64::NAN, ..Default::default() };
    assert!(Sgd::with_config(p(), nan_dampening).is_err());
    assert!(Adam::with_config(p(), AdamConfig { beta1: 1.0, ..Default::default() }).is_err());
    assert!(RmsProp::with_config(p(), RmsPropConfig { alpha: -0.5, ..Default::default() }).is_err());
    assert!(AdamConfig::default().validate().is_ok());
}

fn model_params() -> Vec<(String, Param)> {
    let (model, _) = minibatch::get_model(6, 5, 3, 0.1, 3).unwrap();
    minibatch::Module::named_parameters(&model)
}

#[test]
fn groups_take_their_own_hyperparameters_and_follow_the_schedule() {
    let params = model_params();
    let mut opt = Sgd::with_config(params.clone(), SgdConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() })
        .unwrap()
        .group(|n| n.ends_with("bias"), |c| c.weight_decay = 0.0)
        .unwrap()
        .group(|n| n == "0.weight", |c| c.lr = 0.01)
        .unwrap();
    let members: Vec<Vec<&str>> =
        opt.groups().iter().map(|g| g.members.iter().map(|&i| opt.names()[i].as_str()).collect()).collect();
    assert_eq!(members, vec![vec!["2.weight"], vec!["0.bias", "2.bias"], vec!["0.weight"]]);
    // A bias with a zero gradient: no weight decay, so it does not move.
    let bias = &params[1].1;
    let before = flat(&bias.tensor());
    bias.accumulate_grad(bias.tensor().zeros_like().unwrap()).unwrap();
    opt.step().unwrap();
    assert_eq!(flat(&bias.tensor()), before);
    // A schedule sets the rate; the first layer keeps its tenth.
    opt.set_lr(0.2);
    let lrs: Vec<f64> = opt.groups().iter().map(|g| g.config.lr).collect();
    assert_close("group learning rates", &lrs, &[0.2, 0.2, 0.02], 1e-12, 0.0);
}

#[test]
fn clipping_matches_pytorch_rules() {
    let g = golden("optimizers.json");
    let p = Param::new(&tensor(&g["p0"])).unwrap();
    let grad = tensor(&g["grads"][0]);
    p.accumulate_grad(grad.clone()).unwrap();
    let norm: f64 = flat(&grad).iter().map(|v| v * v).sum::<f64>().sqrt();
    let before = clip_grad_norm(std::slice::from_ref(&p), norm / 2.0).unwrap();
    assert!((before - norm).abs() < 1e-5);
    let after: f64 = flat(&p.grad().unwrap()).iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((after - norm / 2.0).abs() < 1e-5, "{after} vs {}", norm / 2.0);
    clip_grad_value(std::slice::from_ref(&p), 0.1).unwrap();
    assert!(flat(&p.grad().unwrap()).iter().all(|v| v.abs() <= 0.1 + 1e-7));
}

#[test]
fn accumulating_two_half_batches_equals_one_full_batch() {
    let data = minibatch::Mnist::load(mnist_dir()).unwrap();
    let (x, y) = data.train.gather(&(0..64).collect::<Vec<_>>()).unwrap();
    let step = |halves: bool| {
        let (model, sgd) = minibatch::get_model(784, 50, 10, 0.5, 1).unwrap();
        let m = &model as &dyn minibatch::Module;
        let loss = |xb: &candle_core::Tensor, yb: &candle_core::Tensor| {
            minibatch::cross_entropy(&m.forward(xb).unwrap(), yb).unwrap()
        };
        if halves {
            // The usual loop, unchanged: backward, step, zero_grad on each batch of 32.
            let mut opt = minibatch::optim::Accumulate::new(sgd, 2).unwrap();
            for h in 0..2 {
                let (xb, yb) = (x.narrow(0, h * 32, 32).unwrap(), y.narrow(0, h * 32, 32).unwrap());
                opt.backward_step(&loss(&xb, &yb)).unwrap();
                if h == 0 {
                    assert_eq!(
                        m.parameters().iter().flat_map(|p| flat(&p.tensor())).collect::<Vec<_>>(),
                        step_unchanged()
                    );
                }
            }
        } else {
            let mut opt = sgd;
            opt.backward_step(&loss(&x, &y)).unwrap();
        }
        m.parameters().iter().flat_map(|p| flat(&p.tensor())).collect::<Vec<f64>>()
    };
    let (full, halves) = (step(false), step(true));
    assert_close("accumulated update", &halves, &full, 1e-6, 1e-5);
    assert!(full != step_unchanged(), "the step changed the parameters");
}

fn step_unchanged() -> Vec<f64> {
    let (model, _) = minibatch::get_model(784, 50, 10, 0.5, 1).unwrap();
    minibatch::Module::parameters(&model).iter().flat_map(|p| flat(&p.tensor())).collect()
}

#[test]
fn resuming_from_saved_state_is_bit_identical() {
    let g = golden("optimizers.json");
    let grads: Vec<_> = g["grads"].as_array().unwrap().iter().map(tensor).collect();
    let config = AdamConfig { lr: 0.01, amsgrad: true, weight_decay: 0.1, ..Default::default() };
    let fresh = || {
        let p = Param::new(&tensor(&g["p0"])).unwrap();
        (p.clone(), AdamW::with_config(vec![p], config).unwrap())
    };
    let steps = |p: &Param, opt: &mut AdamW, gs: &[candle_core::Tensor]| {
        for gr in gs {
            p.accumulate_grad(gr.clone()).unwrap();
            opt.step().unwrap();
            opt.zero_grad();
        }
    };
    let (p, mut opt) = fresh();
    steps(&p, &mut opt, &grads);
    let uninterrupted = flat(&p.tensor());

    let (p, mut opt) = fresh();
    steps(&p, &mut opt, &grads[..3]);
    let (value, state) = (p.tensor().copy().unwrap(), opt.state_dict());
    assert!(state.contains_key("0.exp_avg") && state.contains_key("0.max_exp_avg_sq") && state.contains_key("0.step"));
    // Through a file, as a checkpoint keeps it.
    let file = std::env::temp_dir().join(format!("minibatch-optstate-{}.safetensors", std::process::id()));
    minibatch::module::save_tensors(&state, &file).unwrap();
    let state = minibatch::module::read_state(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let (p2, mut opt2) = fresh();
    p2.set(&value).unwrap();
    opt2.load_state_dict(&state).unwrap();
    steps(&p2, &mut opt2, &grads[3..]);
    assert_eq!(flat(&p2.tensor()), uninterrupted);
}

#[test]
fn another_optimizers_state_is_refused() {
    let g = golden("optimizers.json");
    let grad = tensor(&g["grads"][0]);
    let p = Param::new(&tensor(&g["p0"])).unwrap();
    let stepped = |opt: &mut dyn Optimizer| {
        p.accumulate_grad(grad.clone()).unwrap();
        opt.step().unwrap();
        opt.zero_grad();
        opt.state_dict()
    };
    let sgd_state = stepped(
        &mut Sgd::with_config(vec![p.clone()], SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }).unwrap(),
    );
    let adam_state = stepped(&mut Adam::new(vec![p.clone()], 0.01).unwrap());
    let mut adam = Adam::new(vec![p.clone()], 0.01).unwrap();
    let err = adam.load_state_dict(&sgd_state).unwrap_err().to_string();
    assert!(err.contains("`momentum_buffer` in 0.momentum_buffer"), "{err}");
    let mut sgd = Sgd::new(vec![p.clone()], 0.1).unwrap();
    let err = sgd.load_state_dict(&adam_state).unwrap_err().to_string();
    assert!(err.contains("in 0.exp_avg"), "{err}");
    adam.load_state_dict(&adam_state).unwrap();
    let mut rms = RmsProp::new(vec![p.clone()], 0.01).unwrap();
    assert!(rms.load_state_dict(&adam_state).is_err());
    // A buffer of another dtype is refused when loaded, not at the next step.
    let mut f64_state = sgd_state.clone();
    let buffer = f64_state["0.momentum_buffer"].to_dtype(candle_core::DType::F64).unwrap();
    f64_state.insert("0.momentum_buffer".into(), buffer);
    let mut sgd = Sgd::with_config(vec![p], SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }).unwrap();
    let err = sgd.load_state_dict(&f64_state).unwrap_err().to_string();
    assert!(err.contains("dtype") && err.contains("F64"), "{err}");
}

#[test]
fn a_saved_state_whose_step_count_is_not_a_count_is_refused() {
    let mut adam = Adam::with_config(model_params(), AdamConfig::default()).unwrap();
    let name = model_params()[0].0.clone();
    for step in [0i64, -3] {
        let state = std::collections::HashMap::from([(
            format!("{name}.step"),
            candle_core::Tensor::new(step, &candle_core::Device::Cpu).unwrap(),
        )]);
        let err = adam.load_state_dict(&state).unwrap_err().to_string();
        assert!(err.contains("step") && err.contains(&step.to_string()), "{err}");
    }
}

#[test]
fn a_rate_set_after_construction_is_checked_at_the_step() {
    let mut sgd = minibatch::Sgd::new(model_params(), 0.1).unwrap();
    sgd.set_lr(f64::NAN);
    let err = sgd.step().unwrap_err().to_string();
    assert!(err.contains("learning rate") && err.contains("NaN"), "{err}");
    sgd.set_lr(0.1);
    sgd.step().unwrap();
}
