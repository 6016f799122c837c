//! MNIST as a folder of photos (`images` feature): to try the image-folder pipeline, and test it,
//! without a download.

use super::Mnist;
use crate::error::{Error, Result};
use image::{imageops, Rgb, RgbImage};
use std::path::Path;

/// The class folders' names, digit by digit.
pub const DIGIT_NAMES: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/// Writes MNIST digits as a folder of photos would come: `dir/train/<name>/` with the first
/// `per_class` training images of each digit, `dir/valid/<name>/` with a fifth as many validation
/// images, named by [`DIGIT_NAMES`]. Each picture is coloured (a foreground and a background
/// colour that vary from picture to picture), 28 to 40 pixels a side and not always square, and
/// saved as PNG or JPEG in turn. Returns the number of files written.
///
/// ```no_run
/// let data = minibatch::Mnist::load("data/mnist")?;
/// minibatch::mnist::write_picture_folder(&data, std::path::Path::new("digits"), 500)?;
/// // minibatch train --data-dir digits --size 32 --augment none
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn write_picture_folder(data: &Mnist, dir: &Path, per_class: usize) -> Result<usize> {
    let (rows, cols) = data.train.image_shape();
    if (rows, cols) != (28, 28) || data.classes() > DIGIT_NAMES.len() {
        return Err(Error::invalid("digits to draw", "MNIST's 28x28 images of 10 digits", format!("{rows}x{cols}")));
    }
    let mut written = 0;
    for (split, images, n) in [("train", &data.train, per_class), ("valid", &data.valid, per_class / 5)] {
        let mut counts = [0usize; 10];
        for i in 0..images.len() {
            let (Some(label), Some(pixels)) = (images.label(i), images.pixels(i)) else { break };
            let label = label as usize;
            if counts[label] >= n {
                continue;
            }
            counts[label] += 1;
            let folder = dir.join(split).join(DIGIT_NAMES[label]);
            std::fs::create_dir_all(&folder).map_err(|source| Error::Io { path: folder.clone(), source })?;
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            let path = folder.join(format!("{i}.{ext}"));
            photo(pixels, i).save(&path).map_err(|e| Error::BadFile {
                path: path.clone(),
                format: "picture (PNG or JPEG)",
                reason: e.to_string(),
            })?;
            written += 1;
        }
    }
    Ok(written)
}

/// Digit `i`'s 28x28 grey pixels as a coloured picture of its own size.
fn photo(pixels: &[u8], i: usize) -> RgbImage {
    let mix = |a: u8, b: u8, t: u8| ((a as u32 * (255 - t as u32) + b as u32 * t as u32) / 255) as u8;
    let (fg, bg) = ([200, (i * 37 % 200) as u8, 60 + (i % 3) as u8 * 60], [(i * 11 % 90) as u8, 20, 40]);
    let img = RgbImage::from_fn(28, 28, |x, y| {
        let t = pixels[(y * 28 + x) as usize];
        Rgb([mix(bg[0], fg[0], t), mix(bg[1], fg[1], t), mix(bg[2], fg[2], t)])
    });
    let (w, h) = (28 + (i % 3) as u32 * 6, 28 + (i % 4) as u32 * 4);
    imageops::resize(&img, w, h, imageops::FilterType::Triangle)
}
