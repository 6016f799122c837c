//! Pictures in a grid with their captions: fastai's `show_batch`.

use super::register_font;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// One picture of a grid: 8-bit RGB pixels row by row, and the caption drawn below it.
#[derive(Debug, Clone, Copy)]
pub struct Tile<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, RGB, row by row.
    pub rgb: &'a [u8],
    /// The text below the picture (its label).
    pub caption: &'a str,
}

/// The smallest side a picture is drawn at: smaller ones (MNIST's 28 pixels) are enlarged by a
/// whole factor, pixel for pixel.
const MIN_SIDE: u32 = 96;
/// Room below each picture for its caption.
const CAPTION: u32 = 22;

/// Draws `tiles` into a PNG, `columns` to a row, each enlarged by the same whole factor to at
/// least 96 pixels a side, with its caption below it.
pub fn plot_pictures(path: impl AsRef<Path>, tiles: &[Tile], columns: usize) -> Result<()> {
    register_font();
    let path = path.as_ref();
    let err = |e: &dyn std::fmt::Display| Error::Plot { path: path.to_path_buf(), reason: e.to_string() };
    if tiles.is_empty() || columns == 0 {
        return Err(Error::invalid("pictures to draw", "at least one, in at least one column", tiles.len()));
    }
    for t in tiles {
        if t.rgb.len() as u64 != t.width as u64 * t.height as u64 * 3 || t.width == 0 || t.height == 0 {
            return Err(Error::invalid("picture bytes", format!("{}x{}x3", t.width, t.height), t.rgb.len()));
        }
    }
    let side = tiles.iter().map(|t| t.width.max(t.height)).max().unwrap_or(1);
    let scale = MIN_SIDE.div_ceil(side).max(1);
    let (cell_w, cell_h) = (side * scale + 8, side * scale + CAPTION + 8);
    let rows = tiles.len().div_ceil(columns) as u32;
    let cols = columns.min(tiles.len()) as u32;
    if cell_w as u64 * cols as u64 * cell_h as u64 * rows as u64 > 100_000_000 {
        return Err(Error::invalid("picture grid", "at most 100 million pixels", tiles.len()));
    }
    let root = BitMapBackend::new(path, (cell_w * cols, cell_h * rows)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let style = TextStyle::from(("sans-serif", 14).into_font()).color(&BLACK);
    for (i, t) in tiles.iter().enumerate() {
        let (x0, y0) = ((i as u32 % cols) * cell_w + 4, (i as u32 / cols) * cell_h + 4);
        for (p, px) in t.rgb.chunks_exact(3).enumerate() {
            let (x, y) = (p as u32 % t.width, p as u32 / t.width);
            let color = RGBColor(px[0], px[1], px[2]);
            for dy in 0..scale {
                for dx in 0..scale {
                    let at = ((x0 + x * scale + dx) as i32, (y0 + y * scale + dy) as i32);
                    root.draw_pixel(at, &color).map_err(|e| err(&e))?;
                }
            }
        }
        // As many characters as fit under the picture (about 9 pixels each); line breaks shown
        // as spaces.
        let fits = (cell_w as usize / 9).max(3);
        let caption: String = t.caption.chars().map(|c| if c.is_control() { ' ' } else { c }).take(fits).collect();
        root.draw_text(&caption, &style, (x0 as i32, (y0 + side * scale + 3) as i32)).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}
