//! The data a training run reads: IDX files (shuffled, or in a distributed run each process's
//! share) or an image folder, as loaders for the Learner and what the model is built for.

use crate::args::TrainArgs;
use crate::commands::load_data;
use crate::world::World;
use anyhow::bail;
use minibatch::data::images::UnreadableLog;
use minibatch::data::ShardSampler;
use minibatch::learner::Loader;
use minibatch::{get_dls_with, DataLoader, Dataset, DistributedSampler, DlsOptions};

/// The training loaders: the whole training set shuffled, or in a distributed run this process's
/// share of it (every process the same number of batches) and of the validation set.
fn loaders(a: &TrainArgs, data: minibatch::Mnist, world: &World) -> anyhow::Result<(TrainLoader, TrainLoader)> {
    let Some(w) = world else {
        let options = DlsOptions { seed: a.seed, workers: a.workers, ..Default::default() };
        return Ok(get_dls_with(data.train, data.valid, a.bs(), options)?);
    };
    let (n, nv) = (data.train.len(), data.valid.len());
    let sampler = DistributedSampler::new(n, w.size(), w.rank(), a.seed)?;
    let train = DataLoader::builder(data.train).sampler(sampler).batch_size(a.bs()).drop_last(true).seed(a.seed);
    let valid = DataLoader::builder(data.valid).sampler(ShardSampler::new(nv, w.size(), w.rank())?);
    let valid = valid.batch_size(a.bs().saturating_mul(2));
    if a.workers == 0 {
        return Ok((train.build()?, valid.build()?));
    }
    Ok((train.num_workers(a.workers).build()?, valid.num_workers(a.workers).build()?))
}

type TrainLoader = DataLoader<minibatch::ImageDataset>;

/// The run's data, ready to train on.
pub struct Prepared {
    pub train: Box<dyn Loader>,
    pub valid: Box<dyn Loader>,
    /// One input's `[channels, height, width]`.
    pub input: [usize; 3],
    pub classes: usize,
    /// Training and validation examples.
    pub counts: (usize, usize),
    /// Where an image folder notes the pictures that did not decode.
    pub unreadable: Vec<UnreadableLog>,
}

/// The loaders of the run's data (IDX files or an image folder), its settings completed with
/// what was found, so that resuming or evaluating elsewhere reads the same data.
pub fn prepare(a: &mut TrainArgs, world: &World) -> anyhow::Result<Prepared> {
    let dir = crate::commands::data_dir(&a.data);
    if !dir.is_dir() {
        bail!("{}: no such folder (--data-dir takes a folder of IDX files or of pictures)", dir.display());
    }
    if crate::folder::is_image_folder(&dir) {
        if world.as_ref().is_some_and(|w| w.size() > 1) {
            bail!("{}: image folders train in one process (--distributed reads IDX files)", dir.display());
        }
        let (dls, notes) = crate::folder::loaders(a, &dir, crate::world::first(world))?;
        a.data.data_dir = Some(std::path::absolute(&dir).unwrap_or(dir));
        a.data.notes = Some(notes.clone());
        let counts = (dls.train.dataset().len(), dls.valid.dataset().len());
        if a.bs() > counts.0 {
            bail!("batch size {} is larger than the {} training pictures: give a smaller --bs", a.bs(), counts.0);
        }
        let unreadable = vec![dls.train.dataset().unreadable(), dls.valid.dataset().unreadable()];
        let (train, valid) = (Box::new(dls.train), Box::new(dls.valid));
        return Ok(Prepared { train, valid, input: notes.input, classes: notes.classes.len(), counts, unreadable });
    }
    if a.size.is_some() || a.augment.is_some() || a.data.valid_pct.is_some() {
        bail!("--size, --augment and --valid-pct are for image folders; {} holds IDX files", dir.display());
    }
    let (data, dir) = load_data(&a.data)?;
    if let Some(w) = world.as_ref().filter(|w| w.size() > 1) {
        crate::agree::agree(a, &data, w.as_ref())?;
    }
    if a.bs() > data.train.len() {
        bail!("batch size {} is larger than the {} training images", a.bs(), data.train.len());
    }
    a.data.data_dir = Some(std::path::absolute(&dir).unwrap_or(dir));
    a.data.valid_size = Some(data.valid.len());
    a.data.classes = Some(data.classes());
    let (rows, cols) = data.train.image_shape();
    let (classes, counts) = (data.classes(), (data.train.len(), data.valid.len()));
    let (train, valid) = loaders(a, data, world)?;
    let (train, valid) = (Box::new(train), Box::new(valid));
    Ok(Prepared { train, valid, input: [1, rows, cols], classes, counts, unreadable: Vec::new() })
}
