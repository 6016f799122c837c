//! Notebook stage 4: layers kept in a `Vec` and registered one by one, as
//! `self.add_module(f'layer_{i}', l)` does.
//!
//! Run: `cargo run --release --example 04_add_module`.
//!
//! The questions of this stage are answered in the guide: `guide/04-parameters-and-optim.md`.

use minibatch::candle_core::Tensor;
use minibatch::{Linear, Module, ReLU, Registered, Result, Rng};

struct Model {
    layers: Vec<(String, Box<dyn Module>)>,
}

impl Model {
    fn new() -> Self {
        Model { layers: Vec::new() }
    }

    /// PyTorch's `add_module`: a child under a chosen name.
    fn add_module(&mut self, name: &str, module: impl Module + 'static) {
        self.layers.push((name.to_string(), Box::new(module)));
    }
}

impl Registered for Model {
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.layers.iter().map(|(n, l)| (n.clone(), l.as_ref())).collect()
    }
}

impl Module for Model {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layers.iter().try_fold(x.clone(), |x, (_, l)| l.forward(&x))
    }
}

fn main() -> Result<()> {
    let mut rng = Rng::new(0);
    let mut model = Model::new();
    model.add_module("layer_0", Linear::new(784, 50, &mut rng)?);
    model.add_module("layer_1", ReLU);
    model.add_module("layer_2", Linear::new(50, 10, &mut rng)?);
    println!("{}", &model as &dyn Module);
    let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    println!("{names:?}");
    Ok(())
}
