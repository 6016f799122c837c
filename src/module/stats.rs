//! `ActivationStats` (lesson 06): the mean, standard deviation and histogram of each layer's
//! output, batch after batch, through forward hooks.

use super::{register_forward_hook, HookHandle, Module};
use crate::error::Result;
use candle_core::Tensor;
use std::sync::{Arc, Mutex};

/// One layer's record: a value per training batch.
#[derive(Debug, Clone, Default)]
pub struct LayerStats {
    /// The layer's name among the model's children (`1`, `2`, ... in a `Sequential`).
    pub name: String,
    /// The mean of the layer's output.
    pub means: Vec<f64>,
    /// The standard deviation of the layer's output (unbiased, as PyTorch's `std()`).
    pub stds: Vec<f64>,
    /// The histogram of the layer's output (`bins` counts over `[lo, hi]`, values outside left
    /// out, as PyTorch's `histc`).
    pub histograms: Vec<Vec<u32>>,
}

impl LayerStats {
    /// For each batch, the fraction of the histogram's values in its first two bins: after a
    /// ReLU, the share of activations that are zero or nearly so (the lesson's measure of dead
    /// units).
    pub fn near_zero(&self) -> Vec<f64> {
        let frac = |h: &Vec<u32>| {
            let total: u32 = h.iter().sum();
            h.iter().take(2).sum::<u32>() as f64 / total.max(1) as f64
        };
        self.histograms.iter().map(frac).collect()
    }
}

/// The histogram's bins and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramConfig {
    /// Number of bins.
    pub bins: usize,
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
}

impl Default for HistogramConfig {
    /// The lesson's `histc(40, 0, 10)`, for ReLU outputs.
    fn default() -> Self {
        HistogramConfig { bins: 40, lo: 0.0, hi: 10.0 }
    }
}

/// Records every child layer's output statistics on each training batch (forward passes with
/// gradients on: validation, under [`no_grad`](super::no_grad), is left out). Hooks are removed
/// when it is dropped. Zero-sized children (a `Flatten`) are left out. The
/// children's hooks fire when a [`Sequential`](super::Sequential) runs them; a model with its own
/// `forward` calls its layers through [`forward_with_hooks`](super::forward_with_hooks) (`forward_with_hooks(&self.conv, x)`) for them to.
///
/// ```
/// use minibatch::{ActivationStats, Linear, Module, ReLU, Rng, Sequential};
/// let mut rng = Rng::new(0);
/// let block = Sequential::new().add(Linear::new(4, 8, &mut rng)?).add(ReLU);
/// let model = Sequential::new().add(block).add(Linear::new(8, 2, &mut rng)?);
/// let stats = ActivationStats::new(&model, Default::default())?;
/// let x = candle_core::Tensor::ones((16, 4), candle_core::DType::F32, &candle_core::Device::Cpu)?;
/// model.forward(&x)?;
/// model.forward(&x)?;
/// let layers = stats.layers();
/// assert_eq!(layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["0", "1"]);
/// assert_eq!(layers[0].means.len(), 2);
/// assert_eq!(layers[0].histograms[0].iter().sum::<u32>() as usize, 16 * 8 - layers[0].histograms[0].len() * 0);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub struct ActivationStats {
    layers: Arc<Mutex<Vec<LayerStats>>>,
    _handles: Vec<HookHandle>,
}

impl ActivationStats {
    /// Hooks each child of `model` (each layer of a `Sequential`).
    pub fn new(model: &dyn Module, hist: HistogramConfig) -> Result<Self> {
        let layers = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for (name, child) in model.named_children() {
            if std::mem::size_of_val(child) == 0 {
                continue;
            }
            let index = {
                let mut l = layers.lock().unwrap_or_else(|e| e.into_inner());
                l.push(LayerStats { name, ..Default::default() });
                l.len() - 1
            };
            let sink = layers.clone();
            handles.push(register_forward_hook(child, move |module, _, y| {
                // The lesson's `if mod.training`, and no records while validating without
                // gradients either.
                if module.is_training() != Some(false) && super::is_grad_enabled() {
                    if let Some((mean, std, h)) = summarise(y, hist) {
                        let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                        let layer = &mut l[index];
                        layer.means.push(mean);
                        layer.stds.push(std);
                        layer.histograms.push(h);
                    }
                }
            })?);
        }
        Ok(ActivationStats { layers, _handles: handles })
    }

    /// A copy of the records so far, one per hooked layer in the model's order.
    pub fn layers(&self) -> Vec<LayerStats> {
        self.layers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Mean, unbiased standard deviation and histogram of a tensor's values (`None` if it cannot be
/// read as `f32`).
fn summarise(y: &Tensor, hist: HistogramConfig) -> Option<(f64, f64, Vec<u32>)> {
    let v: Vec<f32> = y.flatten_all().ok()?.to_dtype(candle_core::DType::F32).ok()?.to_vec1().ok()?;
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n.max(1.0);
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let mut h = vec![0u32; hist.bins.max(1)];
    let width = (hist.hi - hist.lo) / h.len() as f64;
    for &x in &v {
        let x = x as f64;
        if x >= hist.lo && x <= hist.hi {
            let bin = (((x - hist.lo) / width) as usize).min(h.len() - 1);
            h[bin] += 1;
        }
    }
    Some((mean, var.sqrt(), h))
}
