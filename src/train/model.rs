//! The notebook's model.

use crate::error::{Error, Result};
use crate::module::{Linear, Module, ReLU, Sequential};
use crate::optim::Sgd;
use crate::rng::Rng;
use candle_core::Tensor;
use std::collections::HashMap;

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

/// The layer sizes of an [`mlp`] from its saved parameters (`0.weight`, `2.weight`, ...), or
/// `None` when they are not such a chain: what `minibatch eval` needs to rebuild a saved model
/// without being told its sizes.
pub fn mlp_sizes(state: &HashMap<String, Tensor>) -> Option<Vec<usize>> {
    let layers = state.keys().filter(|k| k.ends_with(".weight")).count();
    let mut sizes = Vec::with_capacity(layers + 1);
    for i in 0..layers {
        let (out, inp) = state.get(&format!("{}.weight", 2 * i))?.dims2().ok()?;
        if sizes.last().is_some_and(|&prev| prev != inp) || state.get(&format!("{}.bias", 2 * i))?.dims() != [out] {
            return None;
        }
        if i == 0 {
            sizes.push(inp);
        }
        sizes.push(out);
    }
    (layers > 0 && state.len() == 2 * layers).then_some(sizes)
}
