//! `minibatch predict`: a user's own pictures classified by a saved model. For an MNIST model they
//! are made into what MNIST's are (grayscale, 28x28, a white digit about 20 pixels tall on black,
//! centred by its centre of mass); for a model of an image folder, resized and normalised as its
//! validation pictures were, and answered with its class names.

use crate::args::PredictArgs;
use crate::commands::load_model;
use crate::folder::FolderNotes;
use crate::out::outln;
use crate::Outcome;
use anyhow::{bail, Context};
use image::imageops::FilterType;
use image::GrayImage;
use minibatch::candle_core::{Device, Tensor};
use minibatch::data::images::{resize_centre_crop, Picture};
use minibatch::{no_grad, softmax, Collate, Module};
use serde_json::json;
use std::path::Path;

pub fn predict(a: PredictArgs) -> anyhow::Result<Outcome> {
    let (model, arch, notes) = load_model(&a.load)?;
    if notes.is_none() && arch.inputs() != 28 * 28 {
        bail!("{}: the model takes {} inputs, not 28x28 images", a.load.display(), arch.inputs());
    }
    model.eval();
    // Every picture gets its answer or its error; a failure ends the run with status 1 after all.
    let mut failed = 0;
    for path in &a.images {
        if minibatch::learner::interrupted() {
            eprintln!("minibatch: predict: interrupted before {}", path.display());
            return Ok(Outcome::Interrupted);
        }
        let x = match &notes {
            Some(notes) => picture_input(path, notes),
            None => mnist_like(path).and_then(|p| Ok(Tensor::from_vec(p, (1, 28 * 28), &Device::Cpu)?)),
        };
        let x = match x {
            Ok(x) => x,
            Err(e) => {
                eprintln!("minibatch: {}", crate::message(&e));
                failed += 1;
                continue;
            }
        };
        let probs: Vec<f32> =
            no_grad(|| -> anyhow::Result<Vec<f32>> { Ok(softmax(&model.forward(&x)?)?.flatten_all()?.to_vec1()?) })?;
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|p, q| q.1.total_cmp(&p.1));
        ranked.truncate(3);
        // A model of pictures answers with its class names, one of digits with the digits.
        let class = |c: usize| match &notes {
            Some(n) => json!(n.classes[c]),
            None => json!(c),
        };
        if a.json {
            let top: Vec<_> = ranked.iter().map(|&(c, p)| json!({"class": class(c), "probability": p})).collect();
            outln!("{}", json!({"image": path.display().to_string(), "top": top}));
        } else {
            let name = |c: usize| notes.as_ref().map_or(c.to_string(), |n| n.classes[c].escape_debug().to_string());
            let top: Vec<String> = ranked.iter().map(|&(c, p)| format!("{} ({:.1}%)", name(c), 100.0 * p)).collect();
            // A name with a line break (or any control character) is printed escaped, so that it
            // cannot forge a line of results.
            let name = path.display().to_string();
            let name = if name.contains(char::is_control) { name.escape_debug().to_string() } else { name };
            outln!("{name}: {}", top.join(", "));
        }
    }
    if failed > 0 {
        bail!("{failed} of {} pictures could not be classified", a.images.len());
    }
    Ok(Outcome::Done)
}

/// The most pixels a picture may have (a 48-megapixel photo; a digit needs far fewer). Each
/// picture is decoded alone, so memory stays bounded by one picture of this size.
const MAX_PIXELS: u64 = 48_000_000;

/// Whether JPEG `bytes` end with the end-of-image marker (`FF D9`), padding of zero bytes aside.
fn ends_whole(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].ends_with(&[0xff, 0xd9])
}

/// The picture at `path` as MNIST draws a digit: 784 values in [0, 1], white ink on black.
pub fn mnist_like(path: &Path) -> anyhow::Result<Vec<f32>> {
    // Only a regular file: a FIFO or a device would hang or never end.
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let unreadable = || format!("{}: not a PNG or JPEG picture that can be read", path.display());
    let reader = || image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format();
    // The size its header claims, before anything is decoded: a few hundred bytes can claim
    // gigabytes of pixels.
    let header = reader()?;
    let jpeg = header.format() == Some(image::ImageFormat::Jpeg);
    let (w, h) = header.into_dimensions().with_context(unreadable)?;
    if jpeg && !ends_whole(&bytes) {
        // The decoder fills what is missing with grey and calls it a picture.
        bail!("{}: the JPEG is cut short (it has no end-of-image marker)", path.display());
    }
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        bail!("{}: {w}x{h} pixels, more than the {MAX_PIXELS} a picture may have", path.display());
    }
    let img = reader()?.decode().with_context(unreadable)?;
    if img.width() == 0 || img.height() == 0 {
        bail!("{}: the picture is empty", path.display());
    }
    let rgba = img.to_rgba8();
    let alpha_varies = rgba.pixels().any(|p| p.0[3] != rgba.get_pixel(0, 0).0[3]);
    let mut gray = if alpha_varies {
        // Strokes drawn on a transparent canvas (what drawing programs export): the ink is
        // where the picture is opaque, whatever its colour.
        GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| image::Luma([rgba.get_pixel(x, y).0[3]]))
    } else {
        img.to_luma8()
    };
    // MNIST's digits are light on dark; most photos and drawings are dark on light. The border
    // tells which: its mean is the background.
    if border_mean(&gray) > 127.0 {
        image::imageops::invert(&mut gray);
    }
    let background = border_mean(&gray);
    centred(&gray, background).with_context(|| format!("{}: no digit found (the picture is blank)", path.display()))
}

fn border_mean(g: &GrayImage) -> f64 {
    let (w, h) = g.dimensions();
    let border = g.enumerate_pixels().filter(|(x, y, _)| *x == 0 || *y == 0 || *x == w - 1 || *y == h - 1);
    let (sum, n) = border.fold((0f64, 0usize), |(s, n), (_, _, p)| (s + p.0[0] as f64, n + 1));
    sum / n.max(1) as f64
}

/// The ink's bounding box scaled to fit 20x20, pasted into 28x28 with its centre of mass in the
/// middle (MNIST's own preparation); `None` for a picture without ink (all one shade).
fn centred(g: &GrayImage, background: f64) -> Option<Vec<f32>> {
    // Ink is what stands out from the background by a fifth of the range.
    let ink = |p: u8| p as f64 > background + 50.0;
    let (w, h) = g.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in g.enumerate_pixels() {
        if ink(p.0[0]) {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x0 > x1 {
        return None;
    }
    let crop = image::imageops::crop_imm(g, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let scale = 20.0 / crop.width().max(crop.height()) as f64;
    let (cw, ch) =
        (((crop.width() as f64 * scale).round() as u32).max(1), ((crop.height() as f64 * scale).round() as u32).max(1));
    let small = image::imageops::resize(&crop, cw, ch, FilterType::Triangle);
    let (mut mx, mut my, mut mass) = (0f64, 0f64, 0f64);
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0] as f64;
        (mx, my, mass) = (mx + x as f64 * v, my + y as f64 * v, mass + v);
    }
    let (cx, cy) = if mass > 0.0 { (mx / mass, my / mass) } else { (cw as f64 / 2.0, ch as f64 / 2.0) };
    let (ox, oy) = ((14.0 - cx).round() as i64, (14.0 - cy).round() as i64);
    let mut out = vec![0f32; 28 * 28];
    for (x, y, p) in small.enumerate_pixels() {
        let (tx, ty) = (x as i64 + ox, y as i64 + oy);
        if (0..28).contains(&tx) && (0..28).contains(&ty) {
            out[(ty * 28 + tx) as usize] = p.0[0] as f32 / 255.0;
        }
    }
    Some(out)
}

/// A picture as the model of `notes` saw its validation pictures: RGB, the short side resized
/// and the centre cropped to its size, normalised by its training pictures' statistics.
fn picture_input(path: &Path, notes: &FolderNotes) -> anyhow::Result<Tensor> {
    let picture = Picture::open(path)?;
    let (picture, _) = resize_centre_crop(notes.size())((picture, 0), &mut minibatch::Rng::new(0))?;
    Ok(notes.collate().collate(vec![(picture, 0)])?.0)
}
