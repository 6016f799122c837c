//! The fused kernels against PyTorch's numbers (`tests/golden/`, made by `make_golden.py`)
//! and against the plain path (`fast::with_candle_ops`), through every way a user composes the
//! layers: a `Sequential`, a derived struct with its own `forward`, a `ModuleList`.

mod common;
use candle_core::Tensor;
use common::*;
use minibatch::fast::{self, with_candle_ops};
use minibatch::{
    cross_entropy, mlp, DataLoader, Linear, Mnist, Module, ModuleList, Optimizer, Param, ReLU, Registered, Rng, Sgd,
};

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

fn golden_mlp() -> minibatch::Sequential {
    let g = golden("mnist_sgd_steps.json");
    let model = mlp(&[784, 50, 10], 0).unwrap();
    for (name, p) in model.named_parameters() {
        p.set(&tensor(&g["initial_parameters"][&name])).unwrap();
    }
    model
}

#[test]
fn the_fused_layers_reproduce_the_notebooks_ten_steps() {
    let g = golden("mnist_sgd_steps.json");
    let model = golden_mlp();
    let mut opt = Sgd::new(model.parameters(), 0.5).unwrap();
    let data = Mnist::load(mnist_dir()).unwrap();
    let mut losses = vec![];
    for batch in &DataLoader::new(data.train.slice(0, 640).unwrap(), 64).unwrap() {
        let (xb, yb) = batch.unwrap();
        let loss = cross_entropy(&model.forward(&xb).unwrap(), &yb).unwrap();
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
fn fused_and_plain_paths_agree_over_an_epoch_of_a_slice() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let dl = DataLoader::builder(data.train.slice(0, 3200).unwrap()).batch_size(64).shuffle(5).build().unwrap();
    let run = || {
        let model = mlp(&[784, 50, 10], 9).unwrap();
        let mut opt = Sgd::new(model.parameters(), 0.5).unwrap();
        let mut losses = vec![];
        for batch in dl.iter_epoch(0) {
            let (xb, yb) = batch.unwrap();
            let loss = cross_entropy(&model.forward(&xb).unwrap(), &yb).unwrap();
            losses.push(loss.to_scalar::<f32>().unwrap() as f64);
            opt.backward_step(&loss).unwrap();
        }
        losses
    };
    let (fused, plain) = (run(), with_candle_ops(run));
    assert_ne!(fused, plain, "two different paths, so not the same bits");
    assert_close("fast against plain", &fused, &plain, 1e-4, 1e-4);
}

/// A user's own model: layers in fields, a `forward` of its own, candle's `relu` between them.
#[derive(Registered)]
struct Deep {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    l4: Linear,
}

impl Module for Deep {
    fn forward(&self, x: &Tensor) -> minibatch::Result<Tensor> {
        let x = self.l1.forward(x)?.relu()?;
        let x = ReLU.forward(&self.l2.forward(&x)?)?;
        let x = self.l3.forward(&x)?.relu()?;
        self.l4.forward(&x)
    }
}

/// The same layers in a `ModuleList`, called in a loop.
#[derive(Registered)]
struct Listed {
    layers: ModuleList,
}

impl Module for Listed {
    fn forward(&self, x: &Tensor) -> minibatch::Result<Tensor> {
        let mut x = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(&x)?;
            if i + 1 < self.layers.len() {
                x = ReLU.forward(&x)?;
            }
        }
        Ok(x)
    }
}

const SIZES: [usize; 5] = [784, 40, 24, 16, 10];

fn layers(seed: u64) -> Vec<Linear> {
    let mut rng = Rng::new(seed);
    SIZES.windows(2).map(|w| Linear::new(w[0], w[1], &mut rng).unwrap()).collect()
}

fn deep() -> Box<dyn Module> {
    let mut l = layers(3).into_iter();
    let mut next = || l.next().unwrap();
    Box::new(Deep { l1: next(), l2: next(), l3: next(), l4: next() })
}

fn listed() -> Box<dyn Module> {
    let mut list = ModuleList::default();
    layers(3).into_iter().for_each(|l| list.push(l));
    Box::new(Listed { layers: list })
}

fn sequential() -> Box<dyn Module> {
    Box::new(mlp(&SIZES, 3).unwrap())
}

/// The logits and every parameter's gradient of one batch.
fn logits_and_grads(model: &dyn Module, xb: &Tensor, yb: &Tensor) -> (Vec<f64>, Vec<(String, Vec<f64>)>) {
    let out = model.forward(xb).unwrap();
    assert_eq!(out.dims(), &[48, 10]);
    minibatch::backward(&cross_entropy(&out, yb).unwrap(), &model.parameters()).unwrap();
    let grads = model.named_parameters().into_iter().map(|(n, p)| (n, flat(&p.grad().unwrap()))).collect();
    (flat(&out), grads)
}

/// Hidden activations stored feature-major, products in other layouts than the plain path's:
/// whichever way the layers are composed, the gradients of every parameter must be the plain
/// path's, and the three compositions must agree with each other.
#[test]
fn every_composition_of_the_layers_has_the_plain_paths_gradients() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let (xb, yb) = DataLoader::new(data.train.slice(0, 48).unwrap(), 48).unwrap().iter().next().unwrap().unwrap();
    let (want_logits, want_grads) = with_candle_ops(|| logits_and_grads(sequential().as_ref(), &xb, &yb));
    assert_eq!(want_grads.len(), 8);
    for (what, model) in [("Sequential", sequential()), ("derived struct", deep()), ("ModuleList", listed())] {
        let (logits, grads) = logits_and_grads(model.as_ref(), &xb, &yb);
        assert_close(&format!("{what} logits"), &logits, &want_logits, 1e-5, 1e-5);
        for ((name, g), (_, want)) in grads.iter().zip(&want_grads) {
            assert!(want.iter().any(|v| v.abs() > 1e-4), "{name}: a gradient of zeros proves nothing");
            assert_close(&format!("{what} grad {name}"), g, want, 1e-5, 1e-4);
        }
    }
}

#[test]
fn a_wide_layers_output_is_an_ordinary_batch_major_tensor() {
    let mut rng = Rng::new(1);
    let layer = Linear::new(4, 32, &mut rng).unwrap();
    let x = Tensor::new(&[[1f32, -2., 0.5, 3.], [0., 1., 1., -1.]], &candle_core::Device::Cpu).unwrap();
    let y = layer.forward(&x).unwrap();
    assert_eq!(y.dims(), &[2, 32]);
    assert!(y.is_contiguous());
    let plain = with_candle_ops(|| layer.forward(&x)).unwrap();
    assert_close("wide layer", &flat(&y), &flat(&plain), 1e-6, 1e-6);
    // Read by candle's own ops, then by the layers again.
    let z = ReLU.forward(&(y.relu().unwrap() * 2.0).unwrap()).unwrap();
    let z_plain = with_candle_ops(|| ReLU.forward(&(plain.relu().unwrap() * 2.0).unwrap())).unwrap();
    assert_close("after candle ops", &flat(&z), &flat(&z_plain), 1e-6, 1e-6);
}

/// Two layers with candle's own operations between them, as a model's `forward` writes them:
/// the fused layers must keep the meaning of whatever sits there, down to a backward of the
/// user's own (a straight-through estimator has ReLU's values and the identity's gradient).
fn two_layers(between: fn(&Tensor) -> candle_core::Result<Tensor>) -> (Vec<f64>, Option<Vec<f64>>) {
    let mut rng = Rng::new(4);
    let (l1, l2) = (Linear::new(6, 32, &mut rng).unwrap(), Linear::new(32, 3, &mut rng).unwrap());
    let x: Vec<f32> = (0..30).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let x = Tensor::from_vec(x, (5, 6), &candle_core::Device::Cpu).unwrap();
    let y = l2.forward(&between(&l1.forward(&x).unwrap()).unwrap()).unwrap();
    let params = [l1.weight().clone(), l1.bias().unwrap().clone(), l2.weight().clone()];
    minibatch::backward(&y.sqr().unwrap().sum_all().unwrap(), &params).unwrap();
    (flat(&y), l1.bias().unwrap().grad().map(|g| flat(&g)))
}

#[test]
fn candles_own_operations_between_layers_keep_their_meaning() {
    let (_, grad) = two_layers(|h| Ok(h.relu()?.detach()));
    assert!(grad.is_none(), "a detached relu must not reach the first layer: {grad:?}");
    for (what, f) in [
        ("relu", (|h| h.relu()) as fn(&Tensor) -> candle_core::Result<Tensor>),
        ("detached relu", |h| Ok(h.relu()?.detach())),
        ("straight-through relu", |h| h + (h.relu()? - h)?.detach()),
        ("abs", |h| h.abs()),
        ("relu of a shifted copy", |h| (h + 0.5)?.relu()),
        ("relu, scaled", |h| h.relu()? * 2.0),
        ("relu plus its input", |h| h.relu()? + h),
    ] {
        let ((y, g), (y_plain, g_plain)) = (two_layers(f), with_candle_ops(|| two_layers(f)));
        assert_close(&format!("{what}: outputs"), &y, &y_plain, 1e-6, 1e-5);
        match (g, g_plain) {
            (Some(g), Some(g_plain)) => assert_close(&format!("{what}: bias gradient"), &g, &g_plain, 1e-6, 1e-5),
            (None, None) => assert!(what.starts_with("detached"), "{what}: no gradient reached the first layer"),
            (g, g_plain) => panic!("{what}: a gradient on one path only: {g:?} against {g_plain:?}"),
        }
    }
    // The straight-through estimator's gradient is the identity's, not ReLU's.
    let (_, ste) = two_layers(|h| h + (h.relu()? - h)?.detach());
    let (_, relu) = two_layers(|h| h.relu());
    assert_ne!(ste, relu);
}

#[test]
fn a_shape_error_names_the_layer() {
    let layer = Linear::new(2, 64, &mut Rng::new(0)).unwrap();
    let x = Tensor::zeros((8, 3), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let err = layer.forward(&x).unwrap_err().to_string();
    assert_eq!(err, "Linear(in_features=2, out_features=64, bias=True) got input [8, 3]: expected 2 features");
    let err = layer.forward(&x.narrow(1, 0, 2).unwrap().to_dtype(candle_core::DType::F64).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Linear(in_features=2, out_features=64, bias=True) got input F64 [8, 2]: expected F32, as its weight"
    );
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
    let ones = |dims: &[usize]| Tensor::ones(dims, candle_core::DType::F32, &dev).unwrap();
    let layer = Linear::from_tensors(ones(&[300, 200]), Some(ones(&[300]))).unwrap();
    let (w, b) = (layer.weight().clone(), layer.bias().unwrap().clone());
    for _ in 0..3 {
        // Earlier steps leave freed gradient memory behind for the allocator to hand out again.
        let y = layer.forward(&ones(&[4, 200])).unwrap();
        minibatch::backward(&y.sum_all().unwrap(), &[w.clone(), b.clone()]).unwrap();
        w.zero_grad();
        b.zero_grad();
    }
    let x = Tensor::zeros((0, 200), candle_core::DType::F32, &dev).unwrap();
    let y = ReLU.forward(&layer.forward(&x).unwrap()).unwrap();
    assert_eq!(y.dims(), &[0, 300]);
    minibatch::backward(&y.sum_all().unwrap(), &[w.clone(), b.clone()]).unwrap();
    assert!(flat(&w.grad().unwrap()).iter().all(|&v| v == 0.0));
    assert!(flat(&b.grad().unwrap()).iter().all(|&v| v == 0.0));
}

/// Trains a 784-512-512-10 `Sequential` for a few SGD steps on fixed batches: products large
/// enough to go to the kernels' pool, a layer's two backward products at once.
fn train_a_few_steps(seed: u64) -> Vec<f64> {
    let model = mlp(&[784, 512, 512, 10], seed).unwrap();
    let mut opt = Sgd::new(model.parameters(), 0.1).unwrap();
    let mut rng = Rng::new(seed);
    for _ in 0..4 {
        let x: Vec<f32> = (0..64 * 784).map(|_| rng.next_f64() as f32).collect();
        let y: Vec<u32> = (0..64).map(|_| (rng.next_f64() * 10.0) as u32).collect();
        let x = Tensor::from_vec(x, (64, 784), &candle_core::Device::Cpu).unwrap();
        let y = Tensor::from_vec(y, 64, &candle_core::Device::Cpu).unwrap();
        let loss = cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
        minibatch::backward(&loss, &model.parameters()).unwrap();
        opt.step().unwrap();
        opt.zero_grad();
    }
    model.parameters().iter().flat_map(|p| flat(&p.tensor())).collect()
}

#[test]
fn two_models_training_at_once_share_the_kernels_and_keep_their_bits() {
    let alone = [train_a_few_steps(1), train_a_few_steps(2)];
    for _ in 0..3 {
        let together = std::thread::scope(|s| {
            let a = s.spawn(|| train_a_few_steps(1));
            let b = s.spawn(|| train_a_few_steps(2));
            [a.join().unwrap(), b.join().unwrap()]
        });
        assert!(together == alone, "training beside another model changed the weights");
    }
}

#[test]
fn fused_linear_of_no_outputs_or_no_examples_has_empty_gradients() {
    use candle_core::{Device, Tensor, Var};
    for (batch, out) in [(4, 0), (0, 3), (0, 0)] {
        let x = Var::from_tensor(&Tensor::ones((batch, 5), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::ones((out, 5), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::zeros(out, candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap();
        for relu in [false, true] {
            let y = minibatch::fast::linear(x.as_tensor(), w.as_tensor(), b.as_tensor(), relu).unwrap();
            assert_eq!(y.dims(), [batch, out]);
            let grads = y.sum_all().unwrap().backward().unwrap();
            let dw = grads.get(w.as_tensor()).expect("a weight gradient");
            assert_eq!(dw.dims(), [out, 5]);
            assert!(dw.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().all(|&v| v == 0.0));
            assert_eq!(grads.get(b.as_tensor()).expect("a bias gradient").dims(), [out]);
        }
    }
}

#[test]
fn a_single_example_without_a_batch_dimension_goes_through_as_in_pytorch() {
    let model = mlp(&[4, 8, 3], 0).unwrap();
    let x = Tensor::new(&[0.5f32, -1.0, 2.0, 0.25], &candle_core::Device::Cpu).unwrap();
    let one: Vec<f32> = model.forward(&x).unwrap().to_vec1().unwrap();
    let batched: Vec<Vec<f32>> = model.forward(&x.unsqueeze(0).unwrap()).unwrap().to_vec2().unwrap();
    assert_eq!(one, batched[0]);
    let scalar = Tensor::new(1f32, &candle_core::Device::Cpu).unwrap();
    let err = model.forward(&scalar).unwrap_err().to_string();
    assert!(err.contains("got input []: expected 4 features"), "{err}");
}

#[test]
fn a_loss_function_that_returns_more_than_one_number_is_named() {
    use minibatch::learner::Learner;
    let data = Mnist::load(mnist_dir()).unwrap();
    let (train, valid) =
        minibatch::get_dls(data.train.slice(0, 128).unwrap(), data.valid.slice(0, 64).unwrap(), 64).unwrap();
    let (model, opt) = minibatch::get_model(784, 16, 10, 0.1, 0).unwrap();
    let logits = |preds: &Tensor, _: &Tensor| -> minibatch::Result<Tensor> { Ok(preds.clone()) };
    let err = Learner::new(model, logits, opt, train, valid).fit(1).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid loss: expected one number (a tensor of shape [], as `cross_entropy` returns), found a tensor of shape [64, 10]"
    );
}
