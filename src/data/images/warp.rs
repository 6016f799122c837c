//! Lesson 10's geometric augmentations past flips and crops: a small rotation and a perspective
//! tilt, each a projective map sampled bilinearly, with black outside the picture (torchvision's
//! `RandomRotation` and `RandomPerspective` with their default fill).

use super::picture::Picture;
use crate::error::{Error, Result};
use crate::rng::Rng;
use image::{Rgb, RgbImage};

/// A rotation by an angle drawn uniformly from `-max_degrees..max_degrees` about the picture's
/// centre, the picture keeping its size (corners cut, black brought in). Lesson 10 rotates a few
/// degrees: a photo held slightly askew is still the same object.
pub fn rotate(max_degrees: f64) -> impl Fn((Picture, u32), &mut Rng) -> Result<(Picture, u32)> + Send + Sync {
    move |(Picture(img), label), rng| {
        if !(max_degrees.is_finite() && max_degrees >= 0.0) {
            return Err(Error::invalid(
                "rotation's largest angle",
                "a finite number of degrees, 0 or more",
                max_degrees,
            ));
        }
        let angle = rng.uniform(-max_degrees, max_degrees).to_radians();
        Ok((Picture(rotated(&img, angle)), label))
    }
}

/// `img` turned by `angle` radians (counter-clockwise on screen) about its centre.
pub fn rotated(img: &RgbImage, angle: f64) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (c, s) = (angle.cos(), angle.sin());
    // Output point p maps to input point R(-angle)(p - centre) + centre (y downwards).
    let m = [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy, 0.0, 0.0];
    warp(img, &m)
}

/// With probability `p`, lesson 10's perspective warp (torchvision's `RandomPerspective`): each
/// corner of the picture moved inwards by up to `distortion` times half its width and height, the
/// picture stretched onto that quadrilateral as if seen from another angle.
pub fn perspective(
    distortion: f64,
    p: f64,
) -> impl Fn((Picture, u32), &mut Rng) -> Result<(Picture, u32)> + Send + Sync {
    move |(Picture(img), label), rng| {
        if !(0.0..=1.0).contains(&distortion) || !(0.0..=1.0).contains(&p) {
            let found = format!("distortion {distortion}, probability {p}");
            return Err(Error::invalid("perspective warp", "a distortion and a probability from 0 to 1", found));
        }
        if rng.next_f64() >= p {
            return Ok((Picture(img), label));
        }
        let (w, h) = img.dimensions();
        let (dx, dy) = (distortion * w as f64 / 2.0, distortion * h as f64 / 2.0);
        let (r, b) = (w as f64, h as f64);
        let mut jitter =
            |x: f64, y: f64, sx: f64, sy: f64| (x + sx * rng.uniform(0.0, dx), y + sy * rng.uniform(0.0, dy));
        let moved = [
            jitter(0.0, 0.0, 1.0, 1.0),
            jitter(r, 0.0, -1.0, 1.0),
            jitter(r, b, -1.0, -1.0),
            jitter(0.0, b, 1.0, -1.0),
        ];
        let corners = [(0.0, 0.0), (r, 0.0), (r, b), (0.0, b)];
        // The output's corners show the input's moved corners.
        let m = homography(&corners, &moved).unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        Ok((Picture(warp(&img, &m)), label))
    }
}

/// The projective map `(a x + b y + c, d x + e y + f) / (g x + h y + 1)` taking each of `from`
/// to the same place of `to` (lesson 10's `find_coeffs`), or `None` for a degenerate four.
pub fn homography(from: &[(f64, f64); 4], to: &[(f64, f64); 4]) -> Option<[f64; 8]> {
    let mut a = [[0f64; 9]; 8];
    for (k, (&(x, y), &(u, v))) in from.iter().zip(to).enumerate() {
        a[2 * k] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * k + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting on the 8x8 system.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    Some(std::array::from_fn(|i| a[i][8] / a[i][i]))
}

/// Each output pixel's centre mapped by `m` into `img` and sampled bilinearly (pixel centres at
/// half-integers); black where it falls outside.
fn warp(img: &RgbImage, m: &[f64; 8]) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
        let z = m[6] * px + m[7] * py + 1.0;
        let u = (m[0] * px + m[1] * py + m[2]) / z - 0.5;
        let v = (m[3] * px + m[4] * py + m[5]) / z - 0.5;
        sample(img, u, v)
    })
}

/// Bilinear sample at `(u, v)` in pixel-index coordinates, black beyond the edge.
fn sample(img: &RgbImage, u: f64, v: f64) -> Rgb<u8> {
    let (w, h) = (img.width() as i64, img.height() as i64);
    if !(u > -1.0 && v > -1.0 && u < w as f64 && v < h as f64) {
        return Rgb([0, 0, 0]);
    }
    let (x0, y0) = (u.floor() as i64, v.floor() as i64);
    let (fx, fy) = (u - x0 as f64, v - y0 as f64);
    let at = |x: i64, y: i64| {
        if x < 0 || y < 0 || x >= w || y >= h {
            [0.0; 3]
        } else {
            img.get_pixel(x as u32, y as u32).0.map(f64::from)
        }
    };
    let (a, b, c, d) = (at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1));
    Rgb(std::array::from_fn(|k| {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8
    }))
}
