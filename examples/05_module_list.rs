//! Notebook stage 5: `ModuleList` registers a list of layers for us; the model still decides how
//! to call them.
//!
//! Run: `cargo run --release --example 05_module_list`.
//!
//! The questions of this stage are answered in the guide: `guide/04-parameters-and-optim.md`.

use minibatch::candle_core::{DType, Device, Tensor};
use minibatch::{Linear, Module, ModuleList, ReLU, Registered, Result, Rng};

#[derive(Registered)]
struct SequentialModel {
    layers: ModuleList,
}

impl Module for SequentialModel {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layers.iter().try_fold(x.clone(), |x, l| l.forward(&x))
    }
}

fn main() -> Result<()> {
    let mut rng = Rng::new(0);
    let mut layers = ModuleList::default();
    layers.push(Linear::new(784, 50, &mut rng)?);
    layers.push(ReLU);
    layers.push(Linear::new(50, 10, &mut rng)?);
    let model = SequentialModel { layers };
    println!("{model}");
    let out = model.forward(&Tensor::ones((3, 784), DType::F32, &Device::Cpu)?)?;
    println!("output shape: {:?}, {} parameters", out.dims(), model.num_parameters());
    Ok(())
}
