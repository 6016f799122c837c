//! Folders of pictures as data (lessons 08 and 10), behind the `images` feature: the ImageNet
//! layout (`DIR/<class>/*.png`), its grandparent split (`DIR/train/<class>`, `DIR/valid/<class>`),
//! decoding to RGB, the per-item transforms of augmentation and the collate to tensors.
//!
//! Transforms are per item and take the loader's generator, seeded by (seed, epoch, index), so a
//! run's augmentation is the same whatever the number of workers and on resume.

mod collate;
mod dls;
mod folder;
mod picture;
mod transforms;
mod warp;

pub use collate::{channel_stats, PictureCollate};
pub use dls::{folder_dls, training_transform, Augment, FolderDls, FolderOptions, PictureTransform, MAX_SIZE};
pub use folder::{ImageFolder, UnreadableLog};
pub use picture::{Picture, MAX_PIXELS};
pub use transforms::{flip, random_resized_crop, resize_centre_crop, CROP_RATIO, CROP_SCALE};
pub use warp::{homography, perspective, rotate, rotated};

/// The `image` crate whose `RgbImage` a [`Picture`] holds, at the version this library uses.
pub use image;
