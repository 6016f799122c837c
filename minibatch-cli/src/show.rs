//! `minibatch show --out FILE`: the first batch of a split drawn into a PNG with its labels, as
//! training sees it (fastai's `show_batch`).

use crate::args::ShowArgs;
use crate::commands::{data_dir, load_data, split};
use crate::folder::{is_image_folder, warn_skipped};
use crate::outputs::check_png;
use anyhow::{bail, Context};
use minibatch::candle_core::Tensor;
use minibatch::data::images::{folder_dls, FolderOptions};
use minibatch::plot::{plot_pictures, Tile};
use minibatch::DlsOptions;

/// Columns of the grid.
const COLUMNS: usize = 8;

pub fn show_batch(a: &ShowArgs) -> anyhow::Result<()> {
    let Some(out) = &a.out else { bail!("an image folder is drawn a batch at a time: give --out FILE.png") };
    check_png("--out", out)?;
    let dir = data_dir(&a.data);
    let (pictures, captions) = if is_image_folder(&dir) { folder_batch(a, &dir)? } else { idx_batch(a)? };
    let tiles: Vec<Tile> = pictures
        .iter()
        .zip(&captions)
        .map(|((w, h, rgb), caption)| Tile { width: *w, height: *h, rgb, caption })
        .collect();
    plot_pictures(out, &tiles, COLUMNS)?;
    crate::out::outln!("drew {} pictures into {}", tiles.len(), out.display());
    Ok(())
}

type Pictures = (Vec<(u32, u32, Vec<u8>)>, Vec<String>);

/// The first batch of the folder's split, augmented as training augments it, its normalisation
/// undone for the eye.
fn folder_batch(a: &ShowArgs, dir: &std::path::Path) -> anyhow::Result<Pictures> {
    if a.data.valid_size.is_some() || a.data.classes.is_some() {
        bail!("--valid-size and --classes are for IDX files; an image folder's classes are its folders");
    }
    let options = FolderOptions {
        size: a.size.unwrap_or(128),
        bs: a.bs,
        augment: a.augment.unwrap_or_default(),
        valid_pct: a.data.valid_pct.unwrap_or(0.2),
        stats_pictures: 64,
        loader: DlsOptions { seed: a.seed, drop_last: false, ..Default::default() },
    };
    let dls = folder_dls(dir, &options).with_context(|| format!("{}: the image folder", dir.display()))?;
    warn_skipped(&[dls.train.dataset(), dls.valid.dataset()]);
    let dl = match a.split.as_str() {
        "train" => &dls.train,
        "valid" => &dls.valid,
        _ => bail!("an image folder has a train and a valid split, not {}", a.split),
    };
    let Some(batch) = dl.iter().next() else { bail!("the {} split has no pictures", a.split) };
    let (x, y) = batch?;
    // Validation batches are twice the training ones: the first --bs are drawn.
    let n = a.bs.min(x.dim(0)?);
    let (x, y) = (x.narrow(0, 0, n)?, y.narrow(0, 0, n)?);
    let stats = dls.stats;
    let (mean, std) = (Tensor::new(&stats.mean, x.device())?, Tensor::new(&stats.std, x.device())?);
    let x = x.broadcast_mul(&std.reshape((1, 3, 1, 1))?)?.broadcast_add(&mean.reshape((1, 3, 1, 1))?)?;
    let captions = y.to_vec1::<u32>()?.into_iter().map(|l| dls.classes[l as usize].clone()).collect();
    Ok((rgb_bytes(&x)?, captions))
}

/// The first `--bs` images of an IDX split, in order, with their labels.
fn idx_batch(a: &ShowArgs) -> anyhow::Result<Pictures> {
    if a.size.is_some() || a.augment.is_some() {
        bail!("--size and --augment are for image folders");
    }
    let data = split(load_data(&a.data)?.0, &a.split);
    let (rows, cols) = data.image_shape();
    let n = a.bs.min(data.len());
    let mut pictures = Vec::with_capacity(n);
    let mut captions = Vec::with_capacity(n);
    for i in 0..n {
        let grey = data.pixels(i).unwrap_or_default();
        pictures.push((cols as u32, rows as u32, grey.iter().flat_map(|&v| [v, v, v]).collect()));
        captions.push(data.label(i).unwrap_or_default().to_string());
    }
    Ok((pictures, captions))
}

/// `[n, 3, h, w]` values in `[0, 1]` to RGB bytes, picture by picture.
fn rgb_bytes(x: &Tensor) -> anyhow::Result<Vec<(u32, u32, Vec<u8>)>> {
    let (n, _, h, w) = x.dims4()?;
    let hwc = x.permute((0, 2, 3, 1))?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let bytes: Vec<u8> = hwc.iter().map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect();
    Ok(bytes.chunks_exact(h * w * 3).take(n).map(|c| (w as u32, h as u32, c.to_vec())).collect())
}
