//! Batch norm and layer norm against PyTorch (`tests/golden/norm.json`, from `make_golden.py`'s
//! `batch_norm()`): outputs and gradients over three training steps, the running statistics after
//! each, evaluation on the running statistics, and a state dict that carries them.

mod common;
use common::*;
use minibatch::{BatchNorm, LayerNorm, Module, Param};

fn load_affine(weight: Option<&Param>, bias: Option<&Param>, case: &serde_json::Value) {
    weight.unwrap().set(&tensor(&case["weight"])).unwrap();
    bias.unwrap().set(&tensor(&case["bias"])).unwrap();
}

#[test]
fn batch_norm_matches_pytorch_in_training_and_evaluation() {
    check_batch_norm();
}

#[test]
fn batch_norm_on_candles_operations_matches_pytorch_too() {
    minibatch::fast::with_candle_ops(check_batch_norm);
}

#[test]
fn batch_norm_folds_the_relu_after_it_in_a_sequential() {
    let model = minibatch::Sequential::new().add(BatchNorm::new_2d(3).unwrap()).add(minibatch::ReLU);
    let x = Param::new(&tensor(&golden("norm.json")["batch_norm"][0]["steps"][0]["x"])).unwrap();
    let run = || output_and_grads(&model, &x.tensor(), std::slice::from_ref(&x));
    let y = run().remove(0);
    assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0), "the ReLU cut some");
    assert_fused_matches_candle("batch norm then ReLU", run, 1e-5, 1e-4);
}

fn check_batch_norm() {
    let g = golden("norm.json");
    for case in g["batch_norm"].as_array().unwrap() {
        let channels = tensor(&case["weight"]).dims()[0];
        let bn = if case["kind"] == "2d" { BatchNorm::new_2d(channels) } else { BatchNorm::new_1d(channels) }.unwrap();
        let name = case["repr"].as_str().unwrap();
        assert_eq!(bn.to_string(), name);
        load_affine(bn.weight(), bn.bias(), case);
        for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let what = |s: &str| format!("{name} step {i} {s}");
            bn.zero_grad();
            let x = Param::new(&tensor(&step["x"])).unwrap();
            let y = bn.forward(&x.tensor()).unwrap();
            assert_close(&what("y"), &flat(&y), &golden_flat(&step["y"]), 1e-5, 1e-5);
            let loss = (y * tensor(&step["w"])).unwrap().sum_all().unwrap();
            let mut params = bn.parameters();
            params.push(x.clone());
            minibatch::backward(&loss, &params).unwrap();
            let grad = |p: &Param| flat(&p.grad().unwrap());
            assert_close(&what("grad x"), &grad(&x), &golden_flat(&step["grad_x"]), 1e-4, 1e-4);
            assert_close(
                &what("grad weight"),
                &grad(bn.weight().unwrap()),
                &golden_flat(&step["grad_weight"]),
                1e-4,
                1e-4,
            );
            assert_close(&what("grad bias"), &grad(bn.bias().unwrap()), &golden_flat(&step["grad_bias"]), 1e-4, 1e-4);
            assert_close(
                &what("running mean"),
                &flat(&bn.running_mean()),
                &golden_flat(&step["running_mean"]),
                1e-6,
                1e-5,
            );
            assert_close(
                &what("running var"),
                &flat(&bn.running_var()),
                &golden_flat(&step["running_var"]),
                1e-6,
                1e-5,
            );
            let tracked = minibatch::state_dict(&bn)["num_batches_tracked"].to_scalar::<i64>().unwrap();
            assert_eq!(tracked, step["num_batches_tracked"].as_i64().unwrap());
        }
        bn.eval();
        let y = bn.forward(&tensor(&case["eval"]["x"])).unwrap();
        assert_close(&format!("{name} eval"), &flat(&y), &golden_flat(&case["eval"]["y"]), 1e-5, 1e-5);
    }
}

#[test]
fn batch_norm_state_carries_the_running_statistics_under_pytorchs_names() {
    let bn = BatchNorm::new_2d(3).unwrap();
    let x = candle_core::Tensor::arange(0f32, 48., &candle_core::Device::Cpu).unwrap().reshape((4, 3, 2, 2)).unwrap();
    bn.forward(&x).unwrap();
    let mut names: Vec<String> = minibatch::state_dict(&bn).into_keys().collect();
    names.sort();
    assert_eq!(names, ["bias", "num_batches_tracked", "running_mean", "running_var", "weight"]);
    let params: Vec<String> = bn.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(params, ["weight", "bias"], "buffers are not parameters: no optimizer sees them");
    let path = std::env::temp_dir().join(format!("minibatch-bn-{}.safetensors", std::process::id()));
    minibatch::save_state(&bn, &path).unwrap();
    let fresh = BatchNorm::new_2d(3).unwrap();
    minibatch::load_state(&fresh, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(flat(&fresh.running_mean()), flat(&bn.running_mean()));
    assert_eq!(flat(&fresh.running_var()), flat(&bn.running_var()));
    fresh.eval();
    bn.eval();
    assert_eq!(flat(&fresh.forward(&x).unwrap()), flat(&bn.forward(&x).unwrap()));
}

#[test]
fn batch_norm_refuses_what_pytorch_refuses() {
    let bn = BatchNorm::new_1d(4).unwrap();
    let one = candle_core::Tensor::zeros((1, 4), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let err = bn.forward(&one).unwrap_err().to_string();
    assert!(err.contains("more than one value per channel"), "{err}");
    bn.eval();
    assert!(bn.forward(&one).is_ok(), "evaluation works on one sample");
    let wrong = candle_core::Tensor::zeros((2, 3), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let err = bn.forward(&wrong).unwrap_err().to_string();
    assert!(err.starts_with("BatchNorm1d(4,") && err.contains("[2, 3]"), "{err}");
    assert!(BatchNorm::new_2d(0).is_err());
}

#[test]
fn layer_norm_matches_pytorch() {
    let g = golden("norm.json");
    for case in g["layer_norm"].as_array().unwrap() {
        let shape: Vec<usize> =
            case["normalized_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let ln = LayerNorm::new(&shape).unwrap();
        let name = case["repr"].as_str().unwrap();
        assert_eq!(ln.to_string(), name);
        load_affine(Some(ln.weight()), Some(ln.bias()), case);
        let x = Param::new(&tensor(&case["x"])).unwrap();
        let y = ln.forward(&x.tensor()).unwrap();
        assert_close(&format!("{name} y"), &flat(&y), &golden_flat(&case["y"]), 1e-5, 1e-5);
        let loss = (y * tensor(&case["w"])).unwrap().sum_all().unwrap();
        let mut params = ln.parameters();
        params.push(x.clone());
        minibatch::backward(&loss, &params).unwrap();
        let grad = |p: &Param| flat(&p.grad().unwrap());
        assert_close(&format!("{name} grad x"), &grad(&x), &golden_flat(&case["grad_x"]), 1e-4, 1e-4);
        assert_close(
            &format!("{name} grad weight"),
            &grad(ln.weight()),
            &golden_flat(&case["grad_weight"]),
            1e-4,
            1e-4,
        );
        assert_close(&format!("{name} grad bias"), &grad(ln.bias()), &golden_flat(&case["grad_bias"]), 1e-4, 1e-4);
    }
}

#[test]
fn batch_norm_without_scale_and_shift_matches_candles_operations() {
    let config = minibatch::BatchNormConfig { affine: false, ..Default::default() };
    let bn = BatchNorm::new_2d_with(3, config).unwrap();
    assert!(bn.parameters().is_empty());
    let x = Param::new(&tensor(&golden("norm.json")["batch_norm"][0]["steps"][1]["x"])).unwrap();
    let run = || output_and_grads(&bn, &x.tensor(), std::slice::from_ref(&x));
    assert_fused_matches_candle("affine false", run, 1e-5, 1e-4);
}

#[test]
fn running_statistics_that_no_layer_can_use_are_refused_at_load() {
    let model = minibatch::cnn(true, 10, 0).unwrap();
    let path = std::env::temp_dir().join(format!("minibatch-bn-stats-{}.safetensors", std::process::id()));
    let before = minibatch::state_dict(&model);
    let var = "1.1.running_var";
    for (name, bad, shows) in
        [(var, f32::NAN, "NaN"), (var, -1.0, "-1"), (var, f32::INFINITY, "inf"), ("1.1.running_mean", f32::NAN, "NaN")]
    {
        let mut state = before.clone();
        let t = &state[name];
        let mut values = t.to_vec1::<f32>().unwrap();
        values[3] = bad;
        state.insert(name.to_string(), candle_core::Tensor::new(values, t.device()).unwrap());
        // Every tensor but the broken one differs from the model's, to see that none is loaded.
        for (k, v) in state.iter_mut().filter(|(k, _)| k.as_str() != name) {
            *v = (v.to_dtype(candle_core::DType::F32).unwrap() + 1.0).unwrap().to_dtype(before[k].dtype()).unwrap();
        }
        minibatch::module::save_tensors(&state, &path).unwrap();
        let err = minibatch::load_state(&model, &path).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(&format!("{shows} at index 3")), "{err}");
        let after = minibatch::state_dict(&model);
        for (k, v) in &before {
            let same = (v.to_dtype(candle_core::DType::F64).unwrap()
                - after[k].to_dtype(candle_core::DType::F64).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
            assert_eq!(same, 0.0, "{k} changed by a refused file");
        }
    }
    std::fs::remove_file(&path).unwrap();
}
