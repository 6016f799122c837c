//! The per-item transforms of lesson 10: resizing, random resized crops and flips, each
//! taking the loader's generator.

use super::picture::Picture;
use crate::error::{Error, Result};
use crate::rng::Rng;
use image::imageops;
use image::RgbImage;

/// The validation transform: the short side resized to `size` (bilinear, antialiased), then the
/// centre `size` x `size` square (torchvision's `Resize(size)` then `CenterCrop(size)`).
pub fn resize_centre_crop(size: u32) -> impl Fn((Picture, u32), &mut Rng) -> Result<(Picture, u32)> + Send + Sync {
    move |(Picture(img), label), _| {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 || size == 0 {
            return Err(Error::invalid(
                "picture and size to resize to",
                "at least 1x1 and 1",
                format!("{w}x{h} and {size}"),
            ));
        }
        let (nw, nh) = if w <= h { (size, scaled(h, size, w)) } else { (scaled(w, size, h), size) };
        // The centre square of the resized picture, found in the picture's own pixels and resized
        // alone: a long thin picture costs its square, not its whole length blown up.
        let (x, y) = ((nw - size) / 2, (nh - size) / 2);
        let (fx, fy) = (w as f64 / nw as f64, h as f64 / nh as f64);
        let region = (x as f64 * fx, y as f64 * fy, size as f64 * fx, size as f64 * fy);
        Ok((Picture(resize(&img, region, size, size)?), label))
    }
}

/// The `(x, y, w, h)` region of `img` resized to `nw` x `nh` in one pass (SIMD convolution with a
/// bilinear filter widened when shrinking, as torchvision's antialiased resize).
fn resize(img: &RgbImage, (x, y, w, h): (f64, f64, f64, f64), nw: u32, nh: u32) -> Result<RgbImage> {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    let failed =
        |e: &dyn std::fmt::Display| Error::invalid("picture resize", "a region inside the picture", e.to_string());
    let (iw, ih) = img.dimensions();
    let src = ImageRef::new(iw, ih, img.as_raw(), PixelType::U8x3).map_err(|e| failed(&e))?;
    let mut dst = Image::new(nw, nh, PixelType::U8x3);
    let options = ResizeOptions::new().crop(x, y, w, h).resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
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
        if w == 0 || h == 0 || size == 0 {
            return Err(Error::invalid(
                "picture and size to crop to",
                "at least 1x1 and 1",
                format!("{w}x{h} and {size}"),
            ));
        }
        let (x, y, cw, ch) = crop_box(w, h, scale, ratio, rng);
        Ok((Picture(resize(&img, (x as f64, y as f64, cw as f64, ch as f64), size, size)?), label))
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
    move |(Picture(mut img), label), rng| {
        if rng.next_f64() < p {
            imageops::flip_horizontal_in_place(&mut img);
        }
        Ok((Picture(img), label))
    }
}
