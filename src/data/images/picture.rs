//! A decoded picture, and reading one safely: the header first, its size checked before
//! anything is decoded.

use crate::error::{Error, Result};
use image::RgbImage;
use std::path::Path;

/// The most pixels a picture may have (48 megapixels): a header that claims more is refused
/// before anything is decoded, so a decompression bomb costs nothing.
pub const MAX_PIXELS: u64 = 48_000_000;

/// The file endings read as pictures (compared without case).
pub(super) const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

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
        let decoded = image::DynamicImage::from_decoder(decoder)
            .map_err(|e| failed(Unreadable::Bad(e.to_string().trim_end().to_string())))?;
        // An RGB file is kept as decoded (no copy); any other kind is converted.
        Ok(Picture(decoded.into_rgb8()))
    }

    /// Width and height.
    pub fn size(&self) -> (u32, u32) {
        self.0.dimensions()
    }
}

/// Why a file is not a picture: it cannot be read, or what it holds is not one.
pub(super) enum Unreadable {
    Io(std::io::Error),
    Bad(String),
}

/// The file's decoder, its header read once and its size checked against [`MAX_PIXELS`] before
/// anything is decoded.
pub(super) fn checked_decoder(path: &Path) -> std::result::Result<impl image::ImageDecoder, Unreadable> {
    use image::ImageDecoder;
    // A pipe or a device named `.png` would block or never end: only regular files are read.
    let meta = std::fs::metadata(path).map_err(Unreadable::Io)?;
    if !meta.is_file() {
        return Err(Unreadable::Bad("not a regular file".into()));
    }
    let file = std::fs::File::open(path).map_err(Unreadable::Io)?;
    let reader = image::ImageReader::new(std::io::BufReader::new(file));
    // The format is told by the file's first bytes, whatever its name says.
    let reader = reader.with_guessed_format().map_err(Unreadable::Io)?;
    let decoder = reader.into_decoder().map_err(|e| Unreadable::Bad(e.to_string().trim_end().to_string()))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 || w as u64 * h as u64 > MAX_PIXELS {
        return Err(Unreadable::Bad(format!("{w}x{h} pixels: expected at least 1x1 and at most {MAX_PIXELS}")));
    }
    Ok(decoder)
}

/// Whether the file's header reads as a picture of an acceptable size.
pub(super) fn header_check(path: &Path) -> std::result::Result<(), String> {
    match checked_decoder(path) {
        Ok(_) => Ok(()),
        Err(Unreadable::Io(e)) => Err(e.to_string()),
        Err(Unreadable::Bad(why)) => Err(why),
    }
}
