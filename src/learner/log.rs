//! Logs of training, as JSON lines (drawn by `plot::plot_log`).

use super::{BatchRecord, Callback, Ctx, EpochRecord, Flow};
use crate::error::{Error, Result};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a JSON object per training batch (`{"kind": "batch", "iter", "epoch", "loss", "lr"}`)
/// and per epoch (`{"kind": "epoch", "epoch", "iter", "train_loss", "valid_loss", ...metrics}`;
/// `epoch` and `iter` count from 0, as the [`Recorder`](super::Recorder)'s do, where the
/// program's printed rows count epochs from 1) to a file, a line at a time: a run killed at any
/// moment loses at most the line being written. `minibatch plot` redraws a run from it.
pub struct JsonlLogger {
    path: PathBuf,
    out: std::io::LineWriter<std::fs::File>,
    error: Option<String>,
    /// What a continued log lacked, or dropped, of the run before its checkpoint.
    missing: Option<String>,
}

impl JsonlLogger {
    /// Creates (or empties) the log file.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let file = std::fs::File::create(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        Ok(JsonlLogger { path, out: std::io::LineWriter::new(file), error: None, missing: None })
    }

    /// Continues the log of a run resumed at `epoch` (from 0) after `iter` steps (the resumed
    /// learner's [`State`](super::State)): keeps the file's batch records of the steps before
    /// `iter` and its epoch records of the epochs before `epoch` (an epoch cut short is logged
    /// again, whole, when it ends), then appends. The log of an interrupted and resumed run is
    /// then that of a run never interrupted. A missing file is created; lines that are not a
    /// record of this logger are dropped. [`missing`](JsonlLogger::missing) says when the file did
    /// not hold exactly the run's steps before `iter` (another run's log, or none).
    pub fn continuing(path: impl Into<PathBuf>, epoch: usize, iter: usize) -> Result<Self> {
        let path = path.into();
        let io = |source| Error::Io { path: path.clone(), source };
        let old = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        // Kept: batches before the checkpoint's step and epochs before its epoch; dropped and
        // counted: lines that are no JSON at all.
        let (mut kept, mut steps, mut dropped) = (Vec::new(), 0, 0);
        for line in old.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                dropped += 1;
                continue;
            };
            let at = |k: &str| v[k].as_u64().map(|n| n as usize);
            let batch = match v["kind"].as_str() {
                Some("batch") if at("iter").is_some_and(|i| i < iter) => true,
                Some("epoch") if at("epoch").is_some_and(|e| e < epoch) => false,
                _ => continue,
            };
            steps += usize::from(batch);
            kept.push(line);
        }
        let mut log = JsonlLogger::create(&path)?;
        for line in kept {
            writeln!(log.out, "{line}").map_err(io)?;
        }
        log.missing = match (steps == iter, dropped) {
            (true, 0) => None,
            (true, 1) => Some(format!("{}: a line that is not a record of a training log was dropped", path.display())),
            (true, n) => Some(format!("{}: {n} lines that are not records of a training log were dropped", path.display())),
            (false, _) => Some(format!(
                "{}: held {steps} of the run's {iter} steps before its checkpoint; the log goes on from step {iter} without the others",
                path.display()
            )),
        };
        Ok(log)
    }

    /// What [`continuing`](JsonlLogger::continuing) found amiss in the file: the run's steps
    /// before the checkpoint not all there (another run's log, or a new file), or lines that were
    /// not records. `None` for a log that goes on whole, and for [`create`](JsonlLogger::create).
    pub fn missing(&self) -> Option<&str> {
        self.missing.as_deref()
    }

    fn write(&mut self, v: serde_json::Value) -> Flow {
        if let Err(e) = writeln!(self.out, "{v}") {
            self.error = Some(format!("{}: {e}", self.path.display()));
            return Flow::StopFit;
        }
        Flow::Continue
    }
}

impl Callback for JsonlLogger {
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        let s = cx.state;
        if s.skipped {
            return Flow::Continue;
        }
        self.write(json!({"kind": "batch", "iter": s.iter - 1, "epoch": s.epoch, "loss": s.loss, "lr": s.lr}))
    }
    fn after_epoch(&mut self, cx: &mut Ctx) -> Flow {
        let s = cx.state;
        let mut v = json!({"kind": "epoch", "epoch": s.epoch, "iter": s.iter, "train_loss": s.train_loss,
            "complete": s.epoch_complete()});
        for (k, m) in &s.metrics {
            v[k] = json!(m);
        }
        let flow = self.write(v);
        if let Err(e) = self.out.flush() {
            self.error = Some(format!("{}: {e}", self.path.display()));
            return Flow::StopFit;
        }
        flow
    }
    fn failure(&self) -> Option<String> {
        self.error.clone()
    }
}

/// How errors name the log's format.
pub(crate) const LOG_FORMAT: &str = "training log (JSON lines)";

/// The batch records, the epoch records and the warnings of a log.
pub type Parsed = (Vec<BatchRecord>, Vec<EpochRecord>, Vec<String>);

/// The records of a JSON-lines log in memory (`log` names it in errors), and a warning for a torn
/// last line: what `plot::plot_log` reads and the fuzzer drives.
pub fn parse_log(text: &str, log: &Path) -> Result<Parsed> {
    let (mut batches, mut epochs, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
    let lines: Vec<(usize, &str)> = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).collect();
    for (i, &(n, line)) in lines.iter().enumerate() {
        match parse_line(line) {
            Ok(Record::Batch(b)) => batches.push(b),
            Ok(Record::Epoch(e)) => epochs.push(e),
            // The last line of a file that does not end in a newline was cut mid-write.
            Err(what) if i + 1 == lines.len() && !text.ends_with('\n') => {
                warnings.push(format!("{}: line {} is cut short and was left out ({what})", log.display(), n + 1))
            }
            Err(what) => {
                let reason = format!("line {}: {what}", n + 1);
                return Err(Error::BadFile { path: log.to_path_buf(), format: LOG_FORMAT, reason });
            }
        }
    }
    Ok((batches, epochs, warnings))
}

enum Record {
    Batch(BatchRecord),
    Epoch(EpochRecord),
}

fn parse_line(line: &str) -> std::result::Result<Record, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let num = |k: &str| v[k].as_f64().ok_or_else(|| format!("no number `{k}`"));
    let count = |k: &str| v[k].as_u64().map(|n| n as usize).ok_or_else(|| format!("no whole number `{k}`"));
    match v["kind"].as_str() {
        Some("batch") => Ok(Record::Batch(BatchRecord {
            iter: count("iter")?,
            epoch: count("epoch")?,
            loss: num("loss")?,
            lr: num("lr")?,
        })),
        Some("epoch") => {
            let skip = ["kind", "epoch", "iter", "train_loss", "complete"];
            let metrics = v
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| !skip.contains(&k.as_str()))
                        .filter_map(|(k, x)| Some((k.clone(), x.as_f64()?)))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Record::Epoch(EpochRecord {
                epoch: count("epoch")?,
                iter: count("iter")?,
                train_loss: num("train_loss")?,
                metrics,
                seconds: 0.0,
                // Logs written before the field was recorded held whole epochs only.
                complete: v.get("complete").and_then(serde_json::Value::as_bool).unwrap_or(true),
            }))
        }
        _ => Err("`kind` is neither `batch` nor `epoch`".into()),
    }
}
