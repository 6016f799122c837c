//! Helpers shared by the integration tests: reading `tests/golden/` (made by PyTorch with
//! `tests/golden/make_golden.py`) and the bundled MNIST.
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use serde_json::Value;
use std::path::PathBuf;

/// The folder of PyTorch's reference values, in the repository.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A golden JSON file.
pub fn golden(name: &str) -> Value {
    let path = golden_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The bundled MNIST folder.
pub fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

/// A golden tensor `{"shape": [...], "data": [...]}` as `f32`.
pub fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f32> = v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap() as f32).collect();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

/// A golden tensor of integers as `u32`.
pub fn index_tensor(v: &Value) -> Tensor {
    let data: Vec<u32> = v["data"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as u32).collect();
    let n = data.len();
    Tensor::from_vec(data, n, &Device::Cpu).unwrap()
}

/// The values of a tensor, flattened, as `f64`.
pub fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(candle_core::DType::F64).unwrap().to_vec1().unwrap()
}

/// Asserts `|a - b| <= atol + rtol * |b|` element-wise.
pub fn assert_close(what: &str, a: &[f64], b: &[f64], atol: f64, rtol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.is_finite(), "{what}[{i}] is {x}");
        assert!((x - y).abs() <= atol + rtol * y.abs(), "{what}[{i}]: got {x}, PyTorch {y}");
    }
}

/// Golden floats of a tensor as `f64`.
pub fn golden_flat(v: &Value) -> Vec<f64> {
    v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect()
}

/// The output of `model` on `x` and, after the backward of `sum(y²)`, the gradient of every
/// parameter and of each of `inputs` (gradients zeroed first), flattened: what the fused kernels
/// are compared on against `minibatch::fast::with_candle_ops` of the same call.
pub fn output_and_grads(model: &dyn minibatch::Module, x: &Tensor, inputs: &[minibatch::Param]) -> Vec<Vec<f64>> {
    model.zero_grad();
    inputs.iter().for_each(minibatch::Param::zero_grad);
    let y = model.forward(x).unwrap();
    let loss = (&y * &y).unwrap().sum_all().unwrap();
    let mut params = model.parameters();
    params.extend(inputs.iter().cloned());
    minibatch::backward(&loss, &params).unwrap();
    std::iter::once(flat(&y)).chain(params.iter().map(|p| flat(&p.grad().unwrap()))).collect()
}

/// Asserts that the fused kernels and candle's own operations give the same output and gradients.
pub fn assert_fused_matches_candle(what: &str, run: impl Fn() -> Vec<Vec<f64>>, atol: f64, rtol: f64) {
    let (fused, plain) = (run(), minibatch::fast::with_candle_ops(&run));
    assert!(fused[0].iter().any(|&v| v != 0.0), "{what}: an output of zeros compares nothing");
    for (i, (a, b)) in fused.iter().zip(&plain).enumerate() {
        assert_close(&format!("{what}, tensor {i}"), a, b, atol, rtol);
    }
}

/// Every parameter of a learner's model, flattened in order: what "the same weights, bit for
/// bit" compares.
pub fn weights(l: &minibatch::learner::Learner) -> Vec<f64> {
    l.model.parameters().iter().flat_map(|p| flat(&p.tensor())).collect()
}

/// A callback that stops training after `n` steps in all (to interrupt a run at a known point).
pub struct StopAfter(pub usize);

impl minibatch::learner::Callback for StopAfter {
    fn after_batch(&mut self, cx: &mut minibatch::learner::Ctx) -> minibatch::learner::Flow {
        if cx.state.iter >= self.0 {
            minibatch::learner::Flow::StopFit
        } else {
            minibatch::learner::Flow::Continue
        }
    }
}
