//! Folders of pictures as data (lessons 08 and 10), behind the `images` feature: the ImageNet
//! layout (`DIR/<class>/*.png`), its grandparent split (`DIR/train/<class>`, `DIR/valid/<class>`),
//! decoding to RGB, the per-item transforms of augmentation and the collate to tensors.
//!
//! Transforms are per item and take the loader's generator, seeded by (seed, epoch, index), so a
//! run's augmentation is the same whatever the number of workers and on resume.

use crate::data::{Collate, Dataset};
use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use image::imageops;
use image::RgbImage;
use std::path::{Path, PathBuf};

/// The most pixels a picture may have (48 megapixels): a header that claims more is refused
/// before anything is decoded, so a decompression bomb costs nothing.
pub const MAX_PIXELS: u64 = 48_000_000;

/// The file endings read as pictures (compared without case).
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// A decoded picture, 8-bit RGB whatever the file held (grey, RGBA, palette, 16-bit, CMYK).
#[derive(Debug, Clone, PartialEq)]
pub struct Picture(pub RgbImage);

impl Picture {
    /// Decodes the file at `path`, after checking its header's size against [`MAX_PIXELS`].
    pub fn open(path: &Path) -> Result<Picture> {
        let failed = |f| match f {
            Unreadable::Io(source) => Error::Io { path: path.to_path_buf(), source },
            Unreadable::Bad(reason) => {
                Error::BadFile { path: path.to_path_buf(), format: "picture (PNG or JPEG)", reason }
            }
        };
        let decoder = checked_decoder(path).map_err(failed)?;
        let decoded = image::DynamicImage::from_decoder(decoder).map_err(|e| failed(Unreadable::Bad(e.to_string())))?;
        Ok(Picture(decoded.to_rgb8()))
    }

    /// Width and height.
    pub fn size(&self) -> (u32, u32) {
        self.0.dimensions()
    }
}

/// Pictures in class folders: every PNG and JPEG under `DIR/<class>/` (searched recursively),
/// labelled by the class folder, the classes sorted by name into the vocabulary. torchvision's
/// `ImageFolder`; fastai's `ImageList.from_files` with a parent-folder labeller.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    items: Vec<(PathBuf, u32)>,
    classes: Vec<String>,
    skipped: Vec<(PathBuf, String)>,
}

impl ImageFolder {
    /// The pictures of `dir`'s class folders. Files whose header does not read as a PNG or JPEG
    /// of a valid size are left out and listed by [`skipped`](ImageFolder::skipped).
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let classes = class_folders(dir)?;
        Self::with_classes(dir, &classes)
    }

    /// The pictures of `dir`'s class folders, labelled by their place in `classes` (a training
    /// set's vocabulary, for its validation set); a class folder not in it is an error.
    pub fn with_classes(dir: impl AsRef<Path>, classes: &[String]) -> Result<Self> {
        // Decoded pictures are large blocks: glibc's thresholds raised once, so that they are
        // reused rather than mapped and faulted in afresh each time (see `fast/tune.rs`).
        crate::fast::tune();
        let dir = dir.as_ref();
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for name in class_folders(dir)? {
            let Some(label) = classes.iter().position(|c| *c == name) else {
                let expected = format!("one of the training classes {classes:?}");
                return Err(Error::invalid("class folder", expected, dir.join(&name).display()));
            };
            let mut files = Vec::new();
            find_pictures(&dir.join(&name), &mut files)?;
            files.sort();
            for file in files {
                match header_check(&file) {
                    Ok(()) => items.push((file, label as u32)),
                    Err(why) => skipped.push((file, why)),
                }
            }
        }
        Ok(ImageFolder { items, classes: classes.to_vec(), skipped })
    }

    /// Lesson 08's grandparent split: the training set from `dir/train`, the validation set from
    /// `dir/valid` with the training set's vocabulary.
    pub fn split(dir: impl AsRef<Path>) -> Result<(ImageFolder, ImageFolder)> {
        let dir = dir.as_ref();
        let train = ImageFolder::new(dir.join("train"))?;
        let valid = ImageFolder::with_classes(dir.join("valid"), &train.classes)?;
        Ok((train, valid))
    }

    /// The class names, in label order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Each picture's file and label.
    pub fn items(&self) -> &[(PathBuf, u32)] {
        &self.items
    }

    /// The files left out, with why.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }
}

impl Dataset for ImageFolder {
    type Item = (Picture, u32);

    fn len(&self) -> usize {
        self.items.len()
    }

    /// The picture decoded, and its label.
    fn get(&self, index: usize) -> Result<(Picture, u32)> {
        let (path, label) = self
            .items
            .get(index)
            .ok_or_else(|| Error::invalid("image folder index", format!("below {}", self.items.len()), index))?;
        Ok((Picture::open(path)?, *label))
    }
}

/// The sub-folders of `dir`, sorted by name.
fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(Error::invalid("image folder", "class folders (DIR/<class>/*.png)", dir.display()));
    }
    Ok(names)
}

/// Every picture file under `dir`, recursively.
fn find_pictures(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            find_pictures(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Why a file is not a picture: it cannot be read, or what it holds is not one.
enum Unreadable {
    Io(std::io::Error),
    Bad(String),
}

/// The file's decoder, its header read once and its size checked against [`MAX_PIXELS`] before
/// anything is decoded.
fn checked_decoder(path: &Path) -> std::result::Result<impl image::ImageDecoder, Unreadable> {
    use image::ImageDecoder;
    let reader = image::ImageReader::open(path).map_err(Unreadable::Io)?;
    let reader = reader.with_guessed_format().map_err(Unreadable::Io)?;
    let decoder = reader.into_decoder().map_err(|e| Unreadable::Bad(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 || w as u64 * h as u64 > MAX_PIXELS {
        return Err(Unreadable::Bad(format!("{w}x{h} pixels: expected at least 1x1 and at most {MAX_PIXELS}")));
    }
    Ok(decoder)
}

/// Whether the file's header reads as a picture of an acceptable size.
fn header_check(path: &Path) -> std::result::Result<(), String> {
    match checked_decoder(path) {
        Ok(_) => Ok(()),
        Err(Unreadable::Io(e)) => Err(e.to_string()),
        Err(Unreadable::Bad(why)) => Err(why),
    }
}

/// The validation transform: the short side resized to `size` (bilinear, antialiased), then the
/// centre `size` x `size` square (torchvision's `Resize(size)` then `CenterCrop(size)`).
pub fn resize_centre_crop(size: u32) -> impl Fn((Picture, u32), &mut Rng) -> Result<(Picture, u32)> + Send + Sync {
    move |(Picture(img), label), _| {
        let (w, h) = img.dimensions();
        let (nw, nh) = if w <= h { (size, scaled(h, size, w)) } else { (scaled(w, size, h), size) };
        let resized = resize(&img, (0, 0, w, h), nw, nh)?;
        let (x, y) = ((nw - size) / 2, (nh - size) / 2);
        Ok((Picture(imageops::crop_imm(&resized, x, y, size, size).to_image()), label))
    }
}

/// The `(x, y, w, h)` region of `img` resized to `nw` x `nh` in one pass (SIMD convolution with a
/// bilinear filter widened when shrinking, as torchvision's antialiased resize).
fn resize(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32), nw: u32, nh: u32) -> Result<RgbImage> {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    let failed =
        |e: &dyn std::fmt::Display| Error::invalid("picture resize", "a region inside the picture", e.to_string());
    let (iw, ih) = img.dimensions();
    let src = ImageRef::new(iw, ih, img.as_raw(), PixelType::U8x3).map_err(|e| failed(&e))?;
    let mut dst = Image::new(nw, nh, PixelType::U8x3);
    let options = ResizeOptions::new()
        .crop(x as f64, y as f64, w as f64, h as f64)
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&src, &mut dst, &options).map_err(|e| failed(&e))?;
    RgbImage::from_raw(nw, nh, dst.into_vec()).ok_or_else(|| failed(&"a buffer of the wrong size"))
}

/// The long side `n` when the short side `of` becomes `size`: `n * size / of` truncated, as
/// torchvision's `Resize` computes it.
fn scaled(n: u32, size: u32, of: u32) -> u32 {
    (n as u64 * size as u64 / of as u64).max(size as u64) as u32
}

/// The training transform of lesson 10 and torchvision's `RandomResizedCrop(size)`: a region of
/// a random area (`scale`, a fraction of the picture's) and aspect ratio (`ratio`, drawn
/// log-uniformly), resized to `size` x `size`; after ten draws that do not fit, the centre crop
/// of the largest square-ish region. What it does to the scale of objects: a region of a tenth of
/// the picture, blown up to the full size, shows its objects three times as large.
pub fn random_resized_crop(
    size: u32,
    scale: (f64, f64),
    ratio: (f64, f64),
) -> impl Fn((Picture, u32), &mut Rng) -> Result<(Picture, u32)> + Send + Sync {
    move |(Picture(img), label), rng| {
        let (w, h) = img.dimensions();
        let region = crop_box(w, h, scale, ratio, rng);
        Ok((Picture(resize(&img, region, size, size)?), label))
    }
}

/// torchvision's `RandomResizedCrop.get_params`.
fn crop_box(w: u32, h: u32, scale: (f64, f64), ratio: (f64, f64), rng: &mut Rng) -> (u32, u32, u32, u32) {
    let area = (w as f64) * (h as f64);
    let (lo, hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.uniform(scale.0, scale.1);
        let aspect = rng.uniform(lo, hi).exp();
        let cw = (target * aspect).sqrt().round() as u32;
        let ch = (target / aspect).sqrt().round() as u32;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let x = rng.below((w - cw + 1) as usize) as u32;
            let y = rng.below((h - ch + 1) as usize) as u32;
            return (x, y, cw, ch);
        }
    }
    // The fallback: the whole picture cropped to the nearest allowed ratio, centred.
    let in_ratio = w as f64 / h as f64;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, ((w as f64 / ratio.0).round() as u32).clamp(1, h))
    } else if in_ratio > ratio.1 {
        (((h as f64 * ratio.1).round() as u32).clamp(1, w), h)
    } else {
        (w, h)
    };
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// torchvision's `RandomResizedCrop` defaults: 8% to all of the area, ratios 3/4 to 4/3.
pub const CROP_SCALE: (f64, f64) = (0.08, 1.0);
/// See [`CROP_SCALE`].
pub const CROP_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

/// A horizontal flip with probability `p` (lesson 10's first augmentation; torchvision's
/// `RandomHorizontalFlip`).
pub fn flip(p: f64) -> impl Fn((Picture, u32), &mut Rng) -> Result<(Picture, u32)> + Send + Sync {
    move |(Picture(img), label), rng| {
        let img = if rng.next_f64() < p { imageops::flip_horizontal(&img) } else { img };
        Ok((Picture(img), label))
    }
}

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
        let plane = (w * h) as usize;
        let mut x = vec![0f32; items.len() * 3 * plane];
        let mut y = Vec::with_capacity(items.len());
        for (i, (Picture(img), label)) in items.iter().enumerate() {
            if img.dimensions() != (w, h) {
                let found = format!("{}x{}", img.width(), img.height());
                return Err(Error::invalid("batch picture size", format!("{w}x{h}, as the first"), found));
            }
            let out = &mut x[i * 3 * plane..(i + 1) * 3 * plane];
            for (p, px) in img.pixels().enumerate() {
                for c in 0..3 {
                    out[c * plane + p] = (px.0[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
                }
            }
            y.push(*label);
        }
        let n = items.len();
        Ok((Tensor::from_vec(x, (n, 3, h as usize, w as usize), &Device::Cpu)?, Tensor::from_vec(y, n, &Device::Cpu)?))
    }
}

/// The per-channel mean and standard deviation of the pixels (scaled to `[0, 1]`) of the first
/// `n` pictures of `data` (a training set: a statistic measured on the validation set would leak
/// it into training, lesson 08's point about processors).
pub fn channel_stats(data: &ImageFolder, n: usize) -> Result<PictureCollate> {
    let (mut sum, mut sq, mut count) = ([0f64; 3], [0f64; 3], 0f64);
    for i in 0..n.min(data.len()) {
        let (Picture(img), _) = data.get(i)?;
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
