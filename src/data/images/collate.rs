//! Pictures to tensors: the collate with per-channel normalisation, and the statistics it
//! normalises by.

use super::folder::ImageFolder;
use super::picture::Picture;
use crate::data::{Collate, Dataset};
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};

/// Pictures of one size to `[n, 3, h, w]` `f32` tensors, each channel scaled to `[0, 1]` then
/// normalised by its `mean` and `std` (a training set's, as [`channel_stats`] measures), and the
/// labels to `[n]` `u32`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PictureCollate {
    /// Per-channel means (RGB) of the scaled pixels.
    pub mean: [f32; 3],
    /// Per-channel standard deviations.
    pub std: [f32; 3],
}

impl Default for PictureCollate {
    /// No normalisation: pixels in `[0, 1]`.
    fn default() -> Self {
        PictureCollate { mean: [0.0; 3], std: [1.0; 3] }
    }
}

impl Collate<(Picture, u32)> for PictureCollate {
    type Batch = (Tensor, Tensor);

    fn collate(&self, items: Vec<(Picture, u32)>) -> Result<(Tensor, Tensor)> {
        let Some((first, _)) = items.first() else { return Err(Error::invalid("batch", "at least one item", 0)) };
        let (w, h) = first.size();
        if self.std.iter().chain(&self.mean).any(|v| !v.is_finite()) || self.std.iter().any(|&s| s <= 0.0) {
            let found = format!("mean {:?}, std {:?}", self.mean, self.std);
            return Err(Error::invalid("normalisation", "finite means and standard deviations above 0", found));
        }
        let plane = (w * h) as usize;
        if let Some((Picture(img), _)) = items.iter().find(|(Picture(img), _)| img.dimensions() != (w, h)) {
            let found = format!("{}x{}", img.width(), img.height());
            return Err(Error::invalid("batch picture size", format!("{w}x{h}, as the first"), found));
        }
        // Each channel's 256 values, normalised once: the batch is then one lookup a value, in
        // plane order, written without zeroing first.
        let table: [[f32; 256]; 3] =
            std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 / 255.0 - self.mean[c]) / self.std[c]));
        let mut x = Vec::with_capacity(items.len() * 3 * plane);
        let mut y = Vec::with_capacity(items.len());
        for (Picture(img), label) in &items {
            for (c, lut) in table.iter().enumerate() {
                x.extend(img.as_raw().chunks_exact(3).map(|px| lut[px[c] as usize]));
            }
            y.push(*label);
        }
        let n = items.len();
        Ok((Tensor::from_vec(x, (n, 3, h as usize, w as usize), &Device::Cpu)?, Tensor::from_vec(y, n, &Device::Cpu)?))
    }
}

/// The per-channel mean and standard deviation of the pixels (scaled to `[0, 1]`) of `n`
/// pictures of `data` spread evenly over it (every class has its share, as the items are in
/// class order), all of them when it has fewer. Measure it on a training set: a statistic of
/// the validation set would leak it into training, lesson 08's point about processors.
pub fn channel_stats(data: &ImageFolder, n: usize) -> Result<PictureCollate> {
    let (mut sum, mut sq, mut count) = ([0f64; 3], [0f64; 3], 0f64);
    let take = n.min(data.len());
    for k in 0..take {
        let (Picture(img), _) = data.get(k * data.len() / take)?;
        for px in img.pixels() {
            for c in 0..3 {
                let v = px.0[c] as f64 / 255.0;
                sum[c] += v;
                sq[c] += v * v;
            }
        }
        count += (img.width() * img.height()) as f64;
    }
    if count == 0.0 {
        return Err(Error::invalid("channel_stats pictures", "at least one", 0));
    }
    let mean = sum.map(|s| s / count);
    let std = [0, 1, 2].map(|c| ((sq[c] / count - mean[c] * mean[c]).max(0.0)).sqrt().max(1e-6));
    Ok(PictureCollate { mean: mean.map(|m| m as f32), std: std.map(|s| s as f32) })
}
