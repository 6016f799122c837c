//! The notebook's ten SGD steps on MNIST against PyTorch (`tests/golden/mnist_sgd_steps.json`,
//! from `make_golden.py`'s `mnist_steps()`): `Sequential(Linear(784,50), ReLU(), Linear(50,10))`,
//! SGD lr 0.5, cross-entropy, the first 640 training images in order, batches of 64.

mod common;
use common::*;
use minibatch::{accuracy, cross_entropy, DataLoader, Linear, Mnist, Module, Optimizer, ReLU, Sequential, Sgd};

#[test]
fn ten_sgd_steps_match_pytorch() {
    let g = golden("mnist_sgd_steps.json");
    let init = &g["initial_parameters"];
    let layer = |i: usize| {
        Linear::from_tensors(tensor(&init[format!("{i}.weight")]), Some(tensor(&init[format!("{i}.bias")]))).unwrap()
    };
    let model = Sequential::new().add(layer(0)).add(ReLU).add(layer(2));
    let mut opt = Sgd::new(model.parameters(), 0.5).unwrap();

    let data = Mnist::load(mnist_dir()).unwrap();
    let dl = DataLoader::new(data.train.slice(0, 640).unwrap(), 64).unwrap();
    let (mut losses, mut accs) = (vec![], vec![]);
    for batch in &dl {
        let (xb, yb) = batch.unwrap();
        let pred = model.forward(&xb).unwrap();
        let loss = cross_entropy(&pred, &yb).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap() as f64);
        accs.push(accuracy(&pred, &yb).unwrap().to_scalar::<f32>().unwrap() as f64);
        model.backward(&loss).unwrap();
        opt.step().unwrap();
        opt.zero_grad();
    }
    assert_close("loss before each step", &losses, &golden_flat_list(&g["loss_before_step"]), 1e-4, 0.0);
    assert_close("batch accuracy", &accs, &golden_flat_list(&g["batch_accuracy_before_step"]), 1e-6, 0.0);
    for (name, p) in model.named_parameters() {
        assert_close(&name, &flat(&p.tensor()), &golden_flat(&g["final_parameters"][&name]), 1e-4, 0.0);
    }
}

fn golden_flat_list(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}
