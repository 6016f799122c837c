//! `minibatch eval` of a model trained on an image folder: its split of the folder, resized,
//! cropped and normalised as in training's validation.

use crate::args::{DataArgs, EvalArgs, TrainArgs};
use crate::folder::{warn_skipped, warn_unreadable, FolderNotes};
use crate::out::outln;
use anyhow::{bail, Context};
use minibatch::data::images::{resize_centre_crop, ImageFolder};
use minibatch::{evaluate, DataLoader, Dataset, LabelSmoothingCrossEntropy, Module};

pub fn eval(
    a: &EvalArgs,
    data: &DataArgs,
    run: Option<&TrainArgs>,
    model: &dyn Module,
    notes: &FolderNotes,
    bs: usize,
) -> anyhow::Result<()> {
    let name = a.split.as_deref().unwrap_or("valid");
    let set = split(name, data, notes)?;
    warn_skipped(&[&set]);
    if set.is_empty() {
        bail!("the {name} split has no pictures");
    }
    let n = set.len();
    let dl = DataLoader::builder_with_collate(set.stand_in_for_unreadable(), notes.collate())
        .batch_size(bs)
        .item_transform(resize_centre_crop(notes.size()))
        .build()?;
    let smoothing = run.and_then(|r| r.label_smoothing).unwrap_or(0.0);
    let e = evaluate(model, LabelSmoothingCrossEntropy::new(smoothing)?.into_fn(), &dl)?;
    warn_unreadable(&[dl.dataset().unreadable()]);
    if a.json {
        outln!("{}", serde_json::json!({"split": name, "loss": e.loss, "accuracy": e.accuracy, "count": e.count}));
    } else {
        outln!("{name}: loss {:.4}  accuracy {:.4}  ({n} pictures)", e.loss, e.accuracy);
    }
    Ok(())
}

/// The pictures of split `name` of the folder, labelled by the model's classes.
fn split(name: &str, data: &DataArgs, notes: &FolderNotes) -> anyhow::Result<ImageFolder> {
    let Some(dir) = &data.data_dir else {
        bail!("the model was trained on pictures: give --data-dir, an image folder with its classes");
    };
    if !crate::folder::is_image_folder(dir) {
        bail!(
            "{} is not an image folder, and the model was trained on pictures of {} classes",
            dir.display(),
            notes.classes.len()
        );
    }
    let classes = &notes.classes;
    let read = |sub: &str| {
        ImageFolder::with_classes(dir.join(sub), classes)
            .with_context(|| format!("{}: the {} pictures", dir.join(sub).display(), name))
    };
    if name == "test" {
        if !dir.join("test").is_dir() {
            bail!("{}: no `test` folder; evaluate with --split valid or --split train", dir.display());
        }
        return read("test");
    }
    if ImageFolder::is_split(dir) {
        return read(name);
    }
    let (share, seed) = notes.random_split.unwrap_or((data.valid_pct.unwrap_or(0.2), 0));
    let (train, valid) = ImageFolder::split_random(dir, data.valid_pct.unwrap_or(share), seed)?;
    if train.classes() != classes.as_slice() {
        bail!("{}: its class folders {:?} are not the model's {:?}", dir.display(), train.classes(), classes);
    }
    Ok(if name == "train" { train } else { valid })
}
