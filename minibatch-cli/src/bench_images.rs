//! `minibatch bench images`: the image-folder loader alone, with its augmentation, in pictures
//! per second.

use crate::args::BenchArgs;
use crate::out::outln;
use anyhow::{bail, Context};
use minibatch::data::images::{training_transform, ImageFolder, PictureCollate};
use minibatch::{DataLoader, Dataset};
use std::time::Instant;

pub fn bench_images(a: &BenchArgs) -> anyhow::Result<()> {
    let Some(dir) = &a.data.data_dir else { bail!("bench images needs --data-dir, an image folder") };
    // An Imagenette-like folder (train/ and valid/) is timed on its training pictures.
    let folder = if dir.join("train").is_dir() { dir.join("train") } else { dir.clone() };
    let data = ImageFolder::new(&folder).with_context(|| format!("{}: not an image folder", folder.display()))?;
    // As training does: a picture that does not decode is stood in for by the next one.
    let data = data.stand_in_for_unreadable();
    if data.is_empty() {
        bail!("{}: no PNG or JPEG pictures in its class folders", folder.display());
    }
    let size = a.size as u32;
    let transform = training_transform(size, a.augment);
    let n = data.len();
    let builder = DataLoader::builder_with_collate(data, PictureCollate::default())
        .batch_size(a.bs)
        .shuffle(0)
        .item_transform(transform);
    let dl = if a.workers > 0 { builder.num_workers(a.workers).build()? } else { builder.build()? };
    let mut rates = Vec::new();
    for epoch in 0..a.epochs.max(1) as u64 {
        let t = Instant::now();
        for batch in dl.iter_epoch(epoch) {
            std::hint::black_box(batch?);
        }
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    if a.json {
        let v = serde_json::json!({"images_per_second": median, "pictures": n, "size": size, "workers": a.workers,
            "augment": a.augment, "bs": a.bs, "epochs": rates.len()});
        outln!("{v}");
    } else {
        outln!(
            "{n} pictures to {size}x{size}, augment {}, {} workers: {median:.0} pictures per second (median of {} passes)",
            a.augment,
            a.workers,
            rates.len()
        );
    }
    Ok(())
}
