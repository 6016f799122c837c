//! softmax, log_softmax, logsumexp, nll, cross_entropy and accuracy against PyTorch
//! (`tests/golden/losses.json`, from `make_golden.py`'s `losses()`), including logits of
//! ±1000 and ±1e4 where the naive formulas overflow.

mod common;
use common::*;
use minibatch::{accuracy, cross_entropy, log_softmax, logsumexp, nll, softmax, Param};

#[test]
fn every_loss_matches_pytorch_for_every_case() {
    let g = golden("losses.json");
    for (case, v) in g.as_object().unwrap() {
        let logits = tensor(&v["logits"]);
        let target = index_tensor(&v["target"]);
        let check = |what: &str, got: &candle_core::Tensor, want: &serde_json::Value| {
            assert_close(&format!("{case}/{what}"), &flat(got), &golden_flat(want), 1e-5, 1e-5);
        };
        check("softmax", &softmax(&logits).unwrap(), &v["softmax"]);
        check("log_softmax", &log_softmax(&logits).unwrap(), &v["log_softmax"]);
        check("logsumexp", &logsumexp(&logits).unwrap(), &v["logsumexp"]);
        let scalar = |t: candle_core::Tensor| vec![t.to_scalar::<f32>().unwrap() as f64];
        let nll_v = scalar(nll(&log_softmax(&logits).unwrap(), &target).unwrap());
        assert_close(&format!("{case}/nll"), &nll_v, &[v["nll_of_log_softmax"].as_f64().unwrap()], 1e-5, 1e-5);
        let acc = scalar(accuracy(&logits, &target).unwrap());
        assert_close(&format!("{case}/accuracy"), &acc, &[v["accuracy"].as_f64().unwrap()], 1e-7, 0.0);

        // The gradient of cross_entropy with respect to the logits.
        let p = Param::new(&logits).unwrap();
        let ce = cross_entropy(&p.tensor(), &target).unwrap();
        assert_close(&format!("{case}/ce"), &scalar(ce.clone()), &[v["cross_entropy"].as_f64().unwrap()], 1e-5, 1e-5);
        minibatch::backward(&ce, std::slice::from_ref(&p)).unwrap();
        check("cross_entropy_grad", &p.grad().unwrap(), &v["cross_entropy_grad"]);
    }
}

#[test]
fn bad_targets_are_errors_not_panics() {
    let g = golden("losses.json");
    let logits = tensor(&g["small"]["logits"]);
    let out_of_range = candle_core::Tensor::new(&[0u32, 1, 2, 3, 4, 10], &candle_core::Device::Cpu).unwrap();
    let err = cross_entropy(&logits, &out_of_range).unwrap_err().to_string();
    assert!(err.contains("target class") && err.contains("10"), "{err}");
    let wrong_len = candle_core::Tensor::new(&[0u32, 1], &candle_core::Device::Cpu).unwrap();
    assert!(cross_entropy(&logits, &wrong_len).unwrap_err().to_string().contains("target shape"));
}
