//! The common case in one call: a folder of pictures to a training and a validation loader,
//! fastai's `ImageDataLoaders.from_folder`.

use super::collate::{channel_stats, PictureCollate};
use super::folder::ImageFolder;
use super::picture::Picture;
use super::transforms::{flip, random_resized_crop, resize_centre_crop, CROP_RATIO, CROP_SCALE};
use super::warp::{perspective, rotate};
use crate::data::{DataLoader, Dataset, DlsOptions};
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::path::Path;

/// The augmentation of training pictures (validation pictures are always resized and centre
/// cropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    /// Resized and centre cropped, as validation pictures.
    None,
    /// Resized and centre cropped, then flipped half the time.
    Flip,
    /// Lesson 10's: a random resized crop (torchvision's defaults), flipped half the time.
    #[default]
    Standard,
    /// `Standard`, then lesson 10's warps: a rotation of up to 10 degrees either way, and half
    /// the time a perspective tilt (corners moved by up to a fifth of the half-size).
    Warp,
}

impl std::fmt::Display for Augment {
    /// `none`, `flip` or `standard`, as the program's `--augment` takes them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Augment::None => "none",
            Augment::Flip => "flip",
            Augment::Standard => "standard",
            Augment::Warp => "warp",
        })
    }
}

/// How [`folder_dls`] reads a folder.
#[derive(Debug, Clone, Copy)]
pub struct FolderOptions {
    /// The side of the square pictures the model sees.
    pub size: u32,
    /// Training batch size (validation batches are twice as large).
    pub bs: usize,
    /// The training pictures' augmentation.
    pub augment: Augment,
    /// For a folder without `train` and `valid`: the share of pictures drawn for validation.
    pub valid_pct: f64,
    /// Pictures the normalisation statistics are measured on (spread over the training set).
    pub stats_pictures: usize,
    /// Seed, workers, prefetch and `drop_last`, as [`get_dls_with`](crate::data::get_dls_with)'s.
    pub loader: DlsOptions,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            size: 128,
            bs: 64,
            augment: Augment::Standard,
            valid_pct: 0.2,
            stats_pictures: 512,
            loader: DlsOptions::default(),
        }
    }
}

/// A folder's loaders, with what a model trained on them needs to be used later: the class names
/// and the normalisation.
pub struct FolderDls {
    /// Training batches: shuffled, augmented, normalised.
    pub train: DataLoader<ImageFolder, PictureCollate>,
    /// Validation batches: in order, resized and centre cropped, normalised alike.
    pub valid: DataLoader<ImageFolder, PictureCollate>,
    /// The class names, in label order.
    pub classes: Vec<String>,
    /// The normalisation, measured on the training pictures.
    pub stats: PictureCollate,
}

/// The loaders of a folder of pictures: split by its `train` and `valid` folders when it has
/// them ([`ImageFolder::split`], lesson 08's grandparent splitter), at random otherwise
/// ([`ImageFolder::split_random`]); labelled by the parent folder; reading on past pictures
/// that do not decode ([`ImageFolder::stand_in_for_unreadable`]); normalised by the training
/// pictures' channel statistics; augmented per item in the loader's workers, from (seed, epoch,
/// index), so a run is the same whatever the number of workers.
///
/// ```no_run
/// use minibatch::data::images::{folder_dls, FolderOptions};
/// let dls = folder_dls("imagenette2-160", &FolderOptions { size: 128, ..Default::default() })?;
/// println!("{} classes, {} training batches", dls.classes.len(), dls.train.len());
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn folder_dls(dir: impl AsRef<Path>, o: &FolderOptions) -> Result<FolderDls> {
    let dir = dir.as_ref();
    let (train, valid) = if ImageFolder::is_split(dir) {
        ImageFolder::split(dir)?
    } else {
        ImageFolder::split_random(dir, o.valid_pct, o.loader.seed)?
    };
    check_sets(dir, &train, &valid, o.size)?;
    let (train, valid) = (train.stand_in_for_unreadable(), valid.stand_in_for_unreadable());
    let stats = channel_stats(&train, o.stats_pictures.max(1))?;
    let classes = train.classes().to_vec();
    let l = o.loader;
    let train = DataLoader::builder_with_collate(train, stats).batch_size(o.bs).shuffle(l.seed).drop_last(l.drop_last);
    let train = train.item_transform(training_transform(o.size, o.augment));
    let valid = DataLoader::builder_with_collate(valid, stats).batch_size(o.bs.saturating_mul(2));
    let valid = valid.item_transform(resize_centre_crop(o.size));
    let (train, valid) = if l.workers > 0 {
        (
            train.num_workers(l.workers).prefetch(l.prefetch).build()?,
            valid.num_workers(l.workers).prefetch(l.prefetch).build()?,
        )
    } else {
        (train.build()?, valid.build()?)
    };
    Ok(FolderDls { train, valid, classes, stats })
}

/// What [`folder_dls`] refuses: fewer than two classes, a class without a training picture, an
/// empty set, a size past [`MAX_SIZE`].
fn check_sets(dir: &Path, train: &ImageFolder, valid: &ImageFolder, size: u32) -> Result<()> {
    if train.classes().len() < 2 {
        let lone = dir.join("train").is_dir() && !dir.join("valid").is_dir();
        let hint = if lone { " (a `train` folder needs a `valid` one beside it)" } else { "" };
        let found = format!("{:?}{hint}", train.classes());
        return Err(Error::invalid("image folder's class folders", "at least 2", found));
    }
    if train.is_empty() || valid.is_empty() {
        let found = format!("{} training and {} validation pictures", train.len(), valid.len());
        return Err(Error::invalid("image folder", "pictures to train on and to validate with", found));
    }
    // A class without a training picture would be an output the model is never taught.
    let mut counts = vec![0usize; train.classes().len()];
    train.items().iter().for_each(|(_, l)| counts[*l as usize] += 1);
    if let Some(empty) = counts.iter().position(|&n| n == 0) {
        let found = format!("none in class folder `{}`", train.classes()[empty]);
        return Err(Error::invalid("training pictures of every class", "at least one", found));
    }
    if size == 0 || size > MAX_SIZE {
        return Err(Error::invalid("picture size", format!("1 to {MAX_SIZE}"), size));
    }
    Ok(())
}

/// The largest picture side [`folder_dls`] makes.
pub const MAX_SIZE: u32 = 4096;

/// The training pictures' transform for `augment`.
pub fn training_transform(size: u32, augment: Augment) -> Box<PictureTransform> {
    let centre = resize_centre_crop(size);
    match augment {
        Augment::None => Box::new(centre),
        Augment::Flip => {
            let flipped = flip(0.5);
            Box::new(move |item, rng: &mut Rng| flipped(centre(item, rng)?, rng))
        }
        Augment::Standard => {
            let (crop, flipped) = (random_resized_crop(size, CROP_SCALE, CROP_RATIO), flip(0.5));
            Box::new(move |item, rng: &mut Rng| flipped(crop(item, rng)?, rng))
        }
        Augment::Warp => {
            let (crop, flipped) = (random_resized_crop(size, CROP_SCALE, CROP_RATIO), flip(0.5));
            let (turn, tilt) = (rotate(10.0), perspective(0.2, 0.5));
            Box::new(move |item, rng: &mut Rng| tilt(turn(flipped(crop(item, rng)?, rng)?, rng)?, rng))
        }
    }
}

/// A transform of one labelled picture.
pub type PictureTransform = dyn Fn((Picture, u32), &mut Rng) -> Result<(Picture, u32)> + Send + Sync;
