//! The fused kernels against PyTorch's numbers (`tests/golden/`, made by `make_golden.py`)
//! and against the plain path.

mod common;
use common::*;
use minibatch::fast::{self, Mlp};
use minibatch::{cross_entropy, DataLoader, Mnist, Module, Optimizer, Param, Sgd};

#[test]
fn fused_cross_entropy_matches_pytorch_values_and_gradients() {
    let g = golden("losses.json");
    for (case, v) in g.as_object().unwrap() {
        let p = Param::new(&tensor(&v["logits"])).unwrap();
        let target = index_tensor(&v["target"]);
        let ce = fast::cross_entropy(&p.tensor(), &target).unwrap();
        let got = ce.to_scalar::<f32>().unwrap() as f64;
        assert_close(&format!("{case}/ce"), &[got], &[v["cross_entropy"].as_f64().unwrap()], 1e-5, 1e-5);
        minibatch::backward(&ce, std::slice::from_ref(&p)).unwrap();
        assert_close(
            &format!("{case}/grad"),
            &flat(&p.grad().unwrap()),
            &golden_flat(&v["cross_entropy_grad"]),
            1e-6,
            1e-5,
        );
    }
    let logits = tensor(&g["small"]["logits"]);
    let bad = candle_core::Tensor::new(&[0u32, 1, 2, 3, 4, 99], &candle_core::Device::Cpu).unwrap();
    assert!(fast::cross_entropy(&logits, &bad).unwrap_err().to_string().contains("target class 99"));
}

#[test]
fn fused_linear_relu_matches_pytorch_values_and_gradients() {
    let g = golden("linear.json");
    let (w, b) = (Param::new(&tensor(&g["weight"])).unwrap(), Param::new(&tensor(&g["bias"])).unwrap());
    let x = Param::new(&tensor(&g["x"])).unwrap();
    let y = fast::linear(&x.tensor(), &w.tensor(), &b.tensor(), true).unwrap();
    assert_close("relu(linear(x))", &flat(&y), &golden_flat(&g["relu_linear_out"]), 1e-6, 1e-5);
    minibatch::backward(&y.sum_all().unwrap(), &[w.clone(), b.clone(), x.clone()]).unwrap();
    assert_close("grad weight", &flat(&w.grad().unwrap()), &golden_flat(&g["grad_weight"]), 1e-6, 1e-5);
    assert_close("grad bias", &flat(&b.grad().unwrap()), &golden_flat(&g["grad_bias"]), 1e-6, 1e-5);
    assert_close("grad x", &flat(&x.grad().unwrap()), &golden_flat(&g["grad_x"]), 1e-6, 1e-5);

    // A batch of data gets no gradient: nothing asked for it.
    let data = tensor(&g["x"]);
    let grads = fast::linear(&data, &w.tensor(), &b.tensor(), true).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&data).is_none());
    assert!(grads.get(w.var().as_tensor()).is_some());
}

fn golden_mlp() -> Mlp {
    let g = golden("mnist_sgd_steps.json");
    let model = Mlp::new(&[784, 50, 10], 0).unwrap();
    for (name, p) in model.named_parameters() {
        p.set(&tensor(&g["initial_parameters"][&name])).unwrap();
    }
    model
}

#[test]
fn fast_mlp_reproduces_the_notebooks_ten_steps() {
    minibatch::set_num_threads(1);
    let g = golden("mnist_sgd_steps.json");
    let model = golden_mlp();
    let mut opt = Sgd::new(model.parameters(), 0.5).unwrap();
    let data = Mnist::load(mnist_dir()).unwrap();
    let mut losses = vec![];
    for batch in &DataLoader::new(data.train.slice(0, 640).unwrap(), 64).unwrap() {
        let (xb, yb) = batch.unwrap();
        let loss = fast::cross_entropy(&model.forward(&xb).unwrap(), &yb).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap() as f64);
        opt.backward_step(&loss).unwrap();
    }
    let want: Vec<f64> = g["loss_before_step"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_close("fast losses", &losses, &want, 1e-4, 0.0);
    for (name, p) in model.named_parameters() {
        assert_close(&name, &flat(&p.tensor()), &golden_flat(&g["final_parameters"][&name]), 1e-4, 0.0);
    }
}

#[test]
fn fast_and_plain_paths_agree_over_an_epoch_of_a_slice() {
    minibatch::set_num_threads(1);
    let data = Mnist::load(mnist_dir()).unwrap();
    let dl = DataLoader::builder(data.train.slice(0, 3200).unwrap()).batch_size(64).shuffle(5).build().unwrap();
    let run = |model: &dyn Module, fused: bool| {
        let mut opt = Sgd::new(model.parameters(), 0.5).unwrap();
        let mut losses = vec![];
        for batch in dl.iter_epoch(0) {
            let (xb, yb) = batch.unwrap();
            let out = model.forward(&xb).unwrap();
            let loss = if fused { fast::cross_entropy(&out, &yb) } else { cross_entropy(&out, &yb) }.unwrap();
            losses.push(loss.to_scalar::<f32>().unwrap() as f64);
            opt.backward_step(&loss).unwrap();
        }
        losses
    };
    let fast_losses = run(&Mlp::new(&[784, 50, 10], 9).unwrap(), true);
    let plain_losses = run(&minibatch::mlp(&[784, 50, 10], 9).unwrap(), false);
    assert_close("fast against plain", &fast_losses, &plain_losses, 1e-4, 1e-4);
}

/// A deep model stores its hidden activations feature-major and multiplies in other layouts than
/// the plain path: the gradients of every parameter must still be the plain path's.
#[test]
fn deep_fast_mlp_has_the_plain_paths_gradients() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let (xb, yb) = DataLoader::new(data.train.slice(0, 48).unwrap(), 48).unwrap().iter().next().unwrap().unwrap();
    let sizes = [784, 40, 24, 16, 10];
    let (fast_model, plain_model) = (Mlp::new(&sizes, 3).unwrap(), minibatch::mlp(&sizes, 3).unwrap());
    let fast_out = fast_model.forward(&xb).unwrap();
    let plain_out = plain_model.forward(&xb).unwrap();
    assert_eq!(fast_out.dims(), &[48, 10]);
    assert_close("logits", &flat(&fast_out), &flat(&plain_out), 1e-5, 1e-5);
    minibatch::backward(&fast::cross_entropy(&fast_out, &yb).unwrap(), &fast_model.parameters()).unwrap();
    minibatch::backward(&cross_entropy(&plain_out, &yb).unwrap(), &plain_model.parameters()).unwrap();
    let (fast_params, plain_params) = (fast_model.named_parameters(), plain_model.named_parameters());
    assert_eq!(fast_params.len(), 8);
    for ((name, f), (_, p)) in fast_params.iter().zip(&plain_params) {
        let (fg, pg) = (flat(&f.grad().unwrap()), flat(&p.grad().unwrap()));
        assert!(pg.iter().any(|v| v.abs() > 1e-4), "{name}: a gradient of zeros proves nothing");
        assert_close(&format!("grad {name}"), &fg, &pg, 1e-5, 1e-4);
    }
}

/// The backward reuses the softmax its forward kept; a second backward of the same loss finds it
/// gone and computes it again: both must give the same gradient.
#[test]
fn fused_cross_entropy_backward_twice_gives_the_same_gradient() {
    let g = golden("losses.json");
    let p = Param::new(&tensor(&g["small"]["logits"])).unwrap();
    let loss = fast::cross_entropy(&p.tensor(), &index_tensor(&g["small"]["target"])).unwrap();
    let first = loss.backward().unwrap();
    let second = loss.backward().unwrap();
    let grad = |store: &candle_core::backprop::GradStore| flat(store.get(p.var().as_tensor()).unwrap());
    let want = golden_flat(&g["small"]["cross_entropy_grad"]);
    assert_close("first backward", &grad(&first), &want, 1e-6, 1e-5);
    assert_close("second backward", &grad(&second), &want, 1e-6, 1e-5);
}

/// An empty batch: the weight gradient is a product over nothing, written without zeroing its
/// memory first, and must come out as zeros, not whatever the memory held.
#[test]
fn an_empty_batch_gives_zero_weight_gradients() {
    let dev = candle_core::Device::Cpu;
    let w = Param::new(&candle_core::Tensor::ones((300, 200), candle_core::DType::F32, &dev).unwrap()).unwrap();
    let b = Param::new(&candle_core::Tensor::ones(300, candle_core::DType::F32, &dev).unwrap()).unwrap();
    for _ in 0..3 {
        // Earlier steps leave freed gradient memory behind for the allocator to hand out again.
        let x = candle_core::Tensor::ones((4, 200), candle_core::DType::F32, &dev).unwrap();
        let y = fast::linear_params(&x, &w, &b, false).unwrap();
        minibatch::backward(&y.sum_all().unwrap(), &[w.clone(), b.clone()]).unwrap();
        w.zero_grad();
        b.zero_grad();
    }
    let x = candle_core::Tensor::zeros((0, 200), candle_core::DType::F32, &dev).unwrap();
    let y = fast::linear_params(&x, &w, &b, true).unwrap();
    assert_eq!(y.dims(), &[0, 300]);
    minibatch::backward(&y.sum_all().unwrap(), &[w.clone(), b.clone()]).unwrap();
    assert!(flat(&w.grad().unwrap()).iter().all(|&v| v == 0.0));
    assert!(flat(&b.grad().unwrap()).iter().all(|&v| v == 0.0));
}
