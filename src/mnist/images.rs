//! A labelled set of `u8` images, shared between its splits without copying.

use super::Idx;
use crate::data::{Collate, Dataset, DefaultCollate};
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use std::sync::Arc;

/// Appends the pixels scaled to `[0, 1]` as PyTorch's `x / 255.` computes them: correctly
/// rounded (multiplying by `1/255` alone is off by one unit in the last place for some bytes).
fn scale_pixels(out: &mut Vec<f32>, pixels: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { scale_pixels_fma(out, pixels) };
    }
    out.extend(pixels.iter().map(|&p| p as f32 / 255.0));
}

/// `p / 255` without a division: `q = p · (1/255)`, then one Newton step on the remainder
/// `p - 255 q` (computed exactly by a fused multiply-add). Equal to the division for all 256
/// bytes (tested), and faster than AVX2's divisions (docs/speed.md, kernel choices).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scale_pixels_fma(out: &mut Vec<f32>, pixels: &[u8]) {
    const R: f32 = 1.0 / 255.0;
    out.extend(pixels.iter().map(|&p| {
        let x = p as f32;
        let q = x * R;
        (-q).mul_add(255.0, x).mul_add(R, q)
    }));
}

/// A batch from image rows and their labels: `x` is `[rows, pixels]` `f32` in `[0, 1]`, `y` is
/// `[rows]` `u32`. Used by [`ImageDataset::gather`] and by the default collate of
/// [`ImageItem`]s. Rows of different lengths are an error naming the first that differs.
pub(crate) fn images_to_batch(rows: &[&[u8]], labels: Vec<u32>) -> Result<(Tensor, Tensor)> {
    let n = rows.first().map_or(0, |r| r.len());
    let mut x = Vec::with_capacity(rows.len() * n);
    for (i, row) in rows.iter().enumerate() {
        if let Some(ahead) = rows.get(i + 8) {
            prefetch(ahead);
        }
        if row.len() != n {
            return Err(Error::invalid("image size in batch", n.to_string(), format!("{} at position {i}", row.len())));
        }
        scale_pixels(&mut x, row);
    }
    let b = rows.len();
    Ok((Tensor::from_vec(x, (b, n), &Device::Cpu)?, Tensor::from_vec(labels, b, &Device::Cpu)?))
}

/// Asks the CPU to start loading `bytes` into cache: the images of a shuffled batch sit at
/// random places in 47 MB, and waiting for each in turn costs more than converting it.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: prefetching is a hint; the address is inside a live slice.
        unsafe { std::arch::x86_64::_mm_prefetch(line.as_ptr() as *const i8, std::arch::x86_64::_MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Labelled images of one size, stored as bytes. Cloning and slicing share the bytes.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    pixels: Arc<Vec<u8>>,
    labels: Arc<[u8]>,
    start: usize,
    len: usize,
    rows: usize,
    cols: usize,
    classes: usize,
}

/// One image and its label, as [`ImageDataset::get`] gives it: pixels still bytes, scaled to
/// `[0, 1]` by the collate function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    /// `rows * cols` bytes, row-major.
    pub pixels: Pixels,
    /// The class.
    pub label: u32,
}

/// The bytes of one image, shared with the dataset rather than copied (a batch of 64 MNIST items
/// costs 64 reference counts, not 64 allocations). Reads as a `&[u8]`.
#[derive(Clone)]
pub struct Pixels {
    data: Arc<Vec<u8>>,
    start: usize,
    len: usize,
}

impl std::ops::Deref for Pixels {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Self {
        let len = v.len();
        Pixels { data: Arc::new(v), start: 0, len }
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Pixels {}

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pixels({} bytes)", self.len)
    }
}

impl ImageDataset {
    /// Images from an IDX file of dimensions `[n, rows, cols]` and `n` labels below `classes`.
    pub fn new(images: Idx, labels: Arc<[u8]>, classes: usize) -> Result<Self> {
        let &[n, rows, cols] = images.dims.as_slice() else {
            return Err(Error::invalid("image dimensions", "[n, rows, cols]", format!("{:?}", images.dims)));
        };
        if labels.len() != n {
            return Err(Error::invalid("label count", n.to_string(), labels.len()));
        }
        let pixels = Arc::new(images.data);
        Ok(ImageDataset { pixels, labels, start: 0, len: n, rows, cols, classes })
    }

    /// The images `start..start + len` of this set, sharing its bytes.
    pub fn slice(&self, start: usize, len: usize) -> Result<Self> {
        if start.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(Error::invalid(
                "slice",
                format!("within 0..{}", self.len),
                format!("{start}..{}", start.saturating_add(len)),
            ));
        }
        Ok(ImageDataset { start: self.start + start, len, ..self.clone() })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pixels per image (784 for MNIST).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// Image height and width.
    pub fn image_shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The number of classes labels are drawn from.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The bytes of image `i`, or `None` past the end.
    pub fn pixels(&self, i: usize) -> Option<&[u8]> {
        (i < self.len).then(|| {
            let n = self.image_len();
            &self.pixels[(self.start + i) * n..(self.start + i + 1) * n]
        })
    }

    /// The label of image `i`, or `None` past the end.
    pub fn label(&self, i: usize) -> Option<u32> {
        (i < self.len).then(|| self.labels[self.start + i] as u32)
    }

    /// The images as one `f32` tensor `[n, rows*cols]` scaled to `[0, 1]`, and the labels as a `u32`
    /// tensor `[n]`: the notebook's `x_train, y_train`.
    pub fn tensors(&self) -> Result<(Tensor, Tensor)> {
        let all: Vec<usize> = (0..self.len).collect();
        self.gather(&all)
    }

    /// The batch of the given indices, gathered straight from the bytes: `x` is `[len, rows*cols]`
    /// `f32` in `[0, 1]`, `y` is `[len]` `u32`. An index past the end is an [`Error::Item`].
    pub fn gather(&self, indices: &[usize]) -> Result<(Tensor, Tensor)> {
        let rows =
            indices.iter().map(|&i| self.pixels(i).ok_or_else(|| self.out_of_range(i))).collect::<Result<Vec<_>>>()?;
        let labels = indices.iter().map(|&i| self.labels[self.start + i] as u32).collect();
        images_to_batch(&rows, labels)
    }

    fn out_of_range(&self, index: usize) -> Error {
        let source = Error::invalid("index", format!("below {}", self.len), index);
        Error::Item { index, source: Box::new(source) }
    }
}

impl Dataset for ImageDataset {
    type Item = ImageItem;

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<ImageItem> {
        if index >= self.len {
            return Err(self.out_of_range(index));
        }
        let n = self.image_len();
        let pixels = Pixels { data: self.pixels.clone(), start: (self.start + index) * n, len: n };
        Ok(ImageItem { pixels, label: self.labels[self.start + index] as u32 })
    }

    fn prefetch(&self, indices: &[usize]) {
        let n = self.image_len();
        for &i in indices.iter().filter(|&&i| i < self.len) {
            prefetch(&self.pixels[(self.start + i) * n..][..n]);
        }
    }
}

/// A batch of images as the default collate makes it: pixels `f32` in `[0, 1]`, labels `u32`.
impl Collate<ImageItem> for DefaultCollate {
    type Batch = (Tensor, Tensor);
    fn collate(&self, items: Vec<ImageItem>) -> Result<(Tensor, Tensor)> {
        let rows: Vec<&[u8]> = items.iter().map(|i| &*i.pixels).collect();
        images_to_batch(&rows, items.iter().map(|i| i.label).collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scaled_pixels_equal_pytorchs_division_for_every_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = vec![];
        super::scale_pixels(&mut out, &bytes);
        for (p, v) in bytes.iter().zip(&out) {
            assert_eq!(v.to_bits(), (*p as f32 / 255.0).to_bits(), "byte {p}");
        }
    }
}
