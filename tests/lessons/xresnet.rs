//! Lesson 11's XResNet against the lesson's PyTorch code (`tests/golden/xresnet.json`, from
//! `make_golden.py`'s `xresnet()`): the names and shapes of xresnet18/34/50's state, and two
//! small ones (basic and bottleneck blocks) loaded from PyTorch's weights, value by value, forward
//! and backward, on the fused kernels and on candle's own operations.

use crate::common::*;
use minibatch::{state_dict, Module, Param, XResNet, XResNetConfig};
use std::collections::HashMap;

#[test]
fn the_state_has_the_lessons_names_and_shapes() {
    let g = golden("xresnet.json");
    for (name, config) in [
        ("xresnet18", XResNetConfig::xresnet18(3, 10)),
        ("xresnet34", XResNetConfig::xresnet34(3, 10)),
        ("xresnet50", XResNetConfig::xresnet50(3, 10)),
    ] {
        let model = XResNet::new(&config, 0).unwrap();
        let ours: HashMap<String, Vec<usize>> =
            state_dict(&model).into_iter().map(|(k, v)| (k, v.dims().to_vec())).collect();
        let theirs: HashMap<String, Vec<usize>> = g["names"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let shape = e[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                (e[0].as_str().unwrap().to_string(), shape)
            })
            .collect();
        assert_eq!(ours, theirs, "{name}: every tensor of PyTorch's state_dict, no other");
    }
}

fn small(case: &serde_json::Value) -> XResNet {
    let numbers = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let config = XResNetConfig {
        expansion: case["expansion"].as_u64().unwrap() as usize,
        layers: numbers(&case["layers"]),
        c_in: case["c_in"].as_u64().unwrap() as usize,
        classes: 5,
        widths: numbers(&case["widths"]),
    };
    let model = XResNet::new(&config, 0).unwrap();
    let mut tensors: HashMap<String, candle_core::Tensor> =
        case["state"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), tensor(v))).collect();
    // PyTorch's counters, which the golden file leaves out, as a fresh model has them.
    for (name, t) in state_dict(&model) {
        tensors.entry(name).or_insert(t);
    }
    minibatch::module::load_tensors(&model, &tensors, std::path::Path::new("xresnet.json")).unwrap();
    model
}

/// Output, input gradient, parameter gradients and buffers by name.
type Run = (Vec<f64>, Vec<f64>, HashMap<String, Vec<f64>>, HashMap<String, Vec<f64>>);

#[test]
fn small_xresnets_match_pytorch_forward_backward_and_running_statistics() {
    let g = golden("xresnet.json");
    for (name, case) in g["cases"].as_object().unwrap() {
        let run = |fused: bool| {
            let model = small(case);
            let x = Param::new(&tensor(&case["x"])).unwrap();
            let go = || -> Run {
                let y = model.forward(&x.tensor()).unwrap();
                let loss = (&y * &tensor(&case["w"])).unwrap().sum_all().unwrap();
                let mut params = model.parameters();
                params.push(x.clone());
                minibatch::backward(&loss, &params).unwrap();
                let grads = model.named_parameters().into_iter().map(|(n, p)| (n, flat(&p.grad().unwrap()))).collect();
                let running = model.named_buffers().into_iter().map(|(n, b)| (n, flat(&b.get()))).collect();
                (flat(&y), flat(&x.grad().unwrap()), grads, running)
            };
            if fused {
                go()
            } else {
                minibatch::fast::with_candle_ops(go)
            }
        };
        for fused in [true, false] {
            let what = format!("{name} ({})", if fused { "fused" } else { "candle" });
            let (y, x_grad, grads, running) = run(fused);
            assert_close(&format!("{what} output"), &y, &golden_flat(&case["y"]), 1e-4, 1e-4);
            assert_close(&format!("{what} input grad"), &x_grad, &golden_flat(&case["x_grad"]), 1e-4, 1e-3);
            let theirs = case["grads"].as_object().unwrap();
            assert_eq!(grads.len(), theirs.len(), "{what}: a gradient for every parameter");
            for (n, g) in theirs {
                assert_close(&format!("{what} grad {n}"), &grads[n], &golden_flat(g), 1e-4, 1e-3);
            }
            for (n, r) in case["running"].as_object().unwrap() {
                assert_close(&format!("{what} {n}"), &running[n], &golden_flat(r), 1e-5, 1e-4);
            }
        }
    }
}

#[test]
fn the_last_batch_norm_of_each_block_starts_at_zero_and_flat_rows_are_square_images() {
    let model = XResNet::new(&XResNetConfig::xresnet18(1, 10), 3).unwrap();
    let zeroed: Vec<String> = model
        .named_parameters()
        .into_iter()
        .filter(|(n, p)| n.ends_with(".weight") && p.dims().len() == 1 && flat(&p.tensor()).iter().all(|&v| v == 0.0))
        .map(|(n, _)| n)
        .collect();
    // Two blocks in each of four stages, each with its second conv_layer's batch norm at zero.
    assert_eq!(zeroed.len(), 8, "{zeroed:?}");
    assert!(zeroed.iter().all(|n| n.ends_with("convs.1.1.weight")), "{zeroed:?}");
    // MNIST's loader gives rows of 784: they are taken as 28x28 images of one channel.
    let x = candle_core::Tensor::zeros((2, 784), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    assert_eq!(model.forward(&x).unwrap().dims(), &[2, 10]);
    let bad = candle_core::Tensor::zeros((2, 785), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    assert!(model.forward(&bad).is_err());
    // Pictures small enough that a shortcut pools a 1x1 map (ceil_mode keeps its one pixel), as
    // the lesson's PyTorch model takes them.
    model.eval();
    for side in [16, 8, 1] {
        let x = candle_core::Tensor::ones((2, 1, side, side), candle_core::DType::F32, &candle_core::Device::Cpu);
        assert_eq!(model.forward(&x.unwrap()).unwrap().dims(), &[2, 10], "{side}x{side}");
    }
}

#[test]
fn sizes_an_xresnet_cannot_have_are_refused_when_built() {
    let base = XResNetConfig::xresnet18(1, 10);
    let bad = [
        XResNetConfig { expansion: 0, ..base.clone() },
        XResNetConfig { expansion: 2, ..base.clone() },
        XResNetConfig { widths: vec![1 << 20, 8, 8, 8], ..base.clone() },
        XResNetConfig { widths: vec![8, 8, 8], ..base.clone() },
        XResNetConfig { classes: 0, ..base.clone() },
        XResNetConfig { widths: vec![6, 8, 12, 16], expansion: 4, ..base.clone() },
    ];
    for config in bad {
        assert!(XResNet::new(&config, 0).is_err(), "{config:?}");
    }
    let mut rng = minibatch::Rng::new(0);
    assert!(minibatch::ResBlock::new(1, 4, 8, 3, &mut rng).is_err(), "the shortcut pools 2x2: stride 1 or 2");
    assert!(minibatch::ResBlock::new(1, 4, 8, 2, &mut rng).is_ok());
}

#[test]
fn a_saved_xresnet_is_told_by_its_names() {
    for (depth, config) in [
        (18, XResNetConfig::xresnet18(1, 7)),
        (34, XResNetConfig::xresnet34(1, 7)),
        (50, XResNetConfig::xresnet50(1, 7)),
    ] {
        let state = state_dict(&XResNet::new(&config, 0).unwrap());
        let arch = minibatch::Architecture::from_state(&state);
        assert_eq!(arch, Some(minibatch::Architecture::XResNet { depth, classes: 7, input: [1, 28, 28] }));
    }
}
