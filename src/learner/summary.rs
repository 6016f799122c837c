//! A model's layers with their output shapes and parameter counts.

use crate::error::Result;
use crate::module::{no_grad, Module};
use candle_core::{DType, Device, Tensor};

/// Each direct child of `model` with its type, output shape for an input of `input_shape` and
/// parameter count, then the totals, like fastai's `summary`. Output shapes are found by running
/// the children in order on zeros, which is right for a chain (`Sequential`); for another
/// structure, where that does not give the model's own output shape, they are shown as `?`.
///
/// ```
/// let model = minibatch::mlp(&[784, 50, 10], 0)?;
/// let s = minibatch::learner::summary(&model, &[64, 784])?;
/// assert!(s.contains("Linear") && s.contains("[64, 50]") && s.contains("Total params: 39,760"));
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn summary(model: &dyn Module, input_shape: &[usize]) -> Result<String> {
    let children = model.named_children();
    let x = Tensor::zeros(input_shape, DType::F32, &Device::Cpu)?;
    let shapes: Option<Vec<Vec<usize>>> = no_grad(|| {
        let mut x = x.clone();
        let mut shapes = Vec::new();
        for (_, c) in &children {
            x = c.forward(&x).ok()?;
            shapes.push(x.dims().to_vec());
        }
        let whole = model.forward(&Tensor::zeros(input_shape, DType::F32, &Device::Cpu).ok()?).ok()?;
        (whole.dims() == x.dims()).then_some(shapes)
    });
    let mut out = format!(
        "{} (input {:?})\n{:<24} {:<16} {:>10}\n",
        model.type_name(),
        input_shape,
        "Layer (type)",
        "Output shape",
        "Param #"
    );
    out.push_str(&format!("{}\n", "=".repeat(52)));
    for (i, (name, child)) in children.iter().enumerate() {
        let shape = shapes.as_ref().map_or("?".to_string(), |s| format!("{:?}", s[i]));
        let label = format!("{name} ({})", child.type_name());
        out.push_str(&format!("{label:<24} {shape:<16} {:>10}\n", thousands(child.num_parameters())));
    }
    out.push_str(&format!("{}\nTotal params: {}\n", "=".repeat(52), thousands(model.num_parameters())));
    Ok(out)
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
