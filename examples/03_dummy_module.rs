//! Notebook stage 3: `DummyModule`, registration written by hand. What the derive of stage 2
//! generates is exactly this `impl Registered`: a list of the children with their names.
//!
//! Run: `cargo run --release --example 03_dummy_module`.
//!
//! The questions of this stage are answered in the guide: `guide/04-parameters-and-optim.md`.

use minibatch::candle_core::{Device, Tensor};
use minibatch::{relu, Linear, Module, Registered, Result, Rng};

struct DummyModule {
    l1: Linear,
    l2: Linear,
}

impl Registered for DummyModule {
    // PyTorch's __setattr__ records `l1` and `l2` in `self._modules` as they are assigned; here the
    // list is written out.
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        vec![("l1".to_string(), &self.l1), ("l2".to_string(), &self.l2)]
    }
}

impl Module for DummyModule {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.l2.forward(&relu(&self.l1.forward(x)?)?)
    }
}

fn main() -> Result<()> {
    let mut rng = Rng::new(0);
    let mdl = DummyModule { l1: Linear::new(784, 50, &mut rng)?, l2: Linear::new(50, 10, &mut rng)? };
    println!("{}", &mdl as &dyn Module);
    let shapes: Vec<Vec<usize>> = mdl.parameters().iter().map(|p| p.dims().to_vec()).collect();
    println!("parameter shapes: {shapes:?}");
    let out = mdl.forward(&Tensor::zeros((2, 784), minibatch::candle_core::DType::F32, &Device::Cpu)?)?;
    println!("output shape: {:?}", out.dims());
    Ok(())
}
