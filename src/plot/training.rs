//! Charts of a training run: from the [`Recorder`](crate::learner::Recorder)'s records, or
//! redrawn from the log a [`JsonlLogger`](crate::learner::JsonlLogger) wrote.

use super::{plot_png, Chart, Series};
use crate::error::{Error, Result};
use crate::learner::{parse_log, BatchRecord, EpochRecord};
use std::path::Path;

/// Draws training and validation loss, the metrics and the learning rate against the training
/// step into a PNG.
pub fn plot_records(batches: &[BatchRecord], epochs: &[EpochRecord], path: impl AsRef<Path>) -> Result<()> {
    let smooth = smoothed(batches.iter().map(|b| b.loss));
    let train: Vec<(f64, f64)> = batches.iter().zip(smooth).map(|(b, l)| (b.iter as f64, l)).collect();
    let metric = |name: &str| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .filter_map(|e| e.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| (e.iter as f64, *v)))
            .collect()
    };
    let names: Vec<String> = epochs
        .first()
        .map(|e| e.metrics.iter().map(|(n, _)| n.clone()).filter(|n| n != "valid_loss").collect())
        .unwrap_or_default();
    let loss = Chart {
        title: "loss".into(),
        x_label: "training step".into(),
        y_label: "loss".into(),
        log_x: false,
        series: vec![
            Series { name: "train (smoothed)".into(), points: train },
            Series { name: "valid".into(), points: metric("valid_loss") },
        ],
    };
    let metrics = Chart {
        title: format!("validation {}", names.join(", ")),
        x_label: "training step".into(),
        y_label: "value".into(),
        log_x: false,
        series: names.iter().map(|n| Series { name: n.clone(), points: metric(n) }).collect(),
    };
    let lr = Chart {
        title: "learning rate".into(),
        x_label: "training step".into(),
        y_label: "lr".into(),
        log_x: false,
        series: vec![Series { name: "lr".into(), points: batches.iter().map(|b| (b.iter as f64, b.lr)).collect() }],
    };
    plot_png(path, &[loss, metrics, lr], (900, 330))
}

/// fastai's smoothing of the loss curve: a debiased moving average with decay 0.98.
fn smoothed(losses: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut avg = 0.0;
    losses
        .enumerate()
        .map(|(i, l)| {
            avg = 0.98 * avg + 0.02 * l;
            avg / (1.0 - 0.98f64.powi(i as i32 + 1))
        })
        .collect()
}

/// Redraws a run from its JSON-lines log (what [`JsonlLogger`](crate::learner::JsonlLogger) wrote) into a PNG. A last line cut
/// short (a run killed mid-write) is left out with a warning, which is returned; any other bad
/// line is an [`Error::BadFile`] naming it.
pub fn plot_log(log: impl AsRef<Path>, png: impl AsRef<Path>) -> Result<Vec<String>> {
    let log = log.as_ref();
    let text = crate::files::read_text(log, crate::learner::LOG_FORMAT)?;
    let (batches, epochs, warnings) = parse_log(&text, log)?;
    if batches.is_empty() && epochs.is_empty() {
        let reason = "no batch or epoch records".to_string();
        return Err(Error::BadFile { path: log.to_path_buf(), format: crate::learner::LOG_FORMAT, reason });
    }
    plot_records(&batches, &epochs, png)?;
    Ok(warnings)
}
