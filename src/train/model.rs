//! The notebook's model.

use crate::error::{Error, Result};
use crate::module::{Linear, Module, ReLU, Sequential};
use crate::optim::Sgd;
use crate::rng::Rng;

/// A multi-layer perceptron: `Linear(sizes[0], sizes[1])`, `ReLU`, ..., `Linear(.., sizes[last])`,
/// with no ReLU after the last layer. Initialised from `seed`.
pub fn mlp(sizes: &[usize], seed: u64) -> Result<Sequential> {
    if sizes.len() < 2 || sizes.contains(&0) {
        return Err(Error::invalid("layer sizes", "at least two sizes, none zero", format!("{sizes:?}")));
    }
    let mut rng = Rng::new(seed);
    let mut model = Sequential::new();
    for (i, w) in sizes.windows(2).enumerate() {
        if i > 0 {
            model = model.add(ReLU);
        }
        model = model.add(Linear::new(w[0], w[1], &mut rng)?);
    }
    Ok(model)
}

/// The notebook's `get_model`: a fresh `Sequential(Linear(n_in, nh), ReLU(), Linear(nh, n_out))`
/// and an SGD optimizer over its parameters. It exists so that each experiment starts from a
/// new model: a model trained by an earlier cell would make the next result look better than it is.
pub fn get_model(n_in: usize, nh: usize, n_out: usize, lr: f64, seed: u64) -> Result<(Sequential, Sgd)> {
    let model = mlp(&[n_in, nh, n_out], seed)?;
    let opt = Sgd::new(model.parameters(), lr)?;
    Ok((model, opt))
}
