//! Checkpoints: everything needed to resume training exactly, written so that a crash never
//! leaves a broken one.

use super::{Callback, CallbackState, Ctx, Flow, Learner};
use crate::error::{Error, Result};
use crate::module::{load_state, read_state, save_state, save_tensors};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a checkpoint records beside the weights and the optimizer's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The epoch to resume (from 0).
    pub epoch: usize,
    /// The batch of that epoch to resume at (0 at an epoch's end).
    pub batch: usize,
    /// Training steps done.
    pub iter: usize,
    /// The epoch's mean training loss so far.
    pub train_loss: f64,
    /// The size of the batches trained so far this epoch (to weight that mean on resuming).
    #[serde(default)]
    pub batch_size: usize,
    /// The sum behind `train_loss` and its examples ([`State::train_loss_sum`](super::State)),
    /// so that the resumed epoch's mean is exactly an uninterrupted one's; a checkpoint without
    /// them resumes the mean from `train_loss`, `batch` and `batch_size`.
    #[serde(default)]
    pub train_loss_sum: Option<f64>,
    /// See `train_loss_sum`.
    #[serde(default)]
    pub train_examples: Option<usize>,
    /// The hyperparameters of the run (the program's flags), so that it resumes or evaluates
    /// without being told them again.
    pub hyper: serde_json::Value,
    /// The state of each callback that has one (a best score, a patience count, the divergence
    /// guard's reference loss), restored into the learner's callbacks when the run resumes.
    #[serde(default)]
    pub callbacks: Vec<CallbackState>,
    /// Which run wrote it (kept across resumes): a folder that two runs wrote into never falls
    /// back from one run's checkpoints to the other's. Empty in checkpoints that predate it.
    #[serde(default)]
    pub run: String,
    /// The precision of the run's products, which a learner without one of its own takes back
    /// on [`Learner::load_checkpoint`] (none in checkpoints that predate it: fp32).
    #[serde(default)]
    pub precision: Option<crate::precision::Precision>,
    /// The checkpoint's folder.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// Writes a checkpoint at the end of every epoch, and when training is interrupted, into `dir`:
/// a folder per checkpoint (`model.safetensors`, `optimizer.safetensors`, `state.json`) written
/// under a temporary name and renamed when complete, then `dir/latest` (also written and renamed)
/// names it. A process killed at any point leaves the previous checkpoint whole and `latest`
/// pointing at a complete one. The two newest are kept. `dir/latest-run` names the run that
/// wrote them, so that a folder two runs wrote into never mixes them up.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    hyper: serde_json::Value,
    error: Option<String>,
    run: String,
}

impl Checkpoint {
    /// Checkpoints into `dir` (created if need be), recording `hyper` with each. The run gets a
    /// name of its own (from the clock and the process), which a resumed run takes back from its
    /// checkpoint (this callback's state).
    pub fn new(dir: impl Into<PathBuf>, hyper: serde_json::Value) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let run = format!("{nanos:x}-{:x}", std::process::id());
        Checkpoint { dir: dir.into(), hyper, error: None, run }
    }

    fn save(&self, cx: &Ctx, callbacks: &[CallbackState]) -> Result<()> {
        let s = cx.state;
        // Stopped mid-epoch (Ctrl-C, a callback): resume at the next batch of this epoch.
        let (epoch, batch) = if s.epoch_complete() { (s.epoch + 1, 0) } else { (s.epoch, s.batch) };
        let info = CheckpointInfo {
            epoch,
            batch,
            iter: s.iter,
            train_loss: s.train_loss,
            batch_size: s.batch_size,
            train_loss_sum: Some(s.train_loss_sum),
            train_examples: Some(s.train_examples),
            hyper: self.hyper.clone(),
            callbacks: callbacks.to_vec(),
            run: self.run.clone(),
            // The loop runs its hooks in the run's precision.
            precision: Some(crate::precision::current()),
            dir: PathBuf::new(),
        };
        let name = format!("epoch-{epoch:04}-batch-{batch:06}");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let tmp = self.dir.join(format!(".tmp-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        save_state(cx.model, tmp.join("model.safetensors"))?;
        save_tensors(&cx.opt.state_dict(), &tmp.join("optimizer.safetensors"))?;
        let json = serde_json::to_vec_pretty(&info).map_err(|e| Error::BadFile {
            path: tmp.join("state.json"),
            format: STATE_FORMAT,
            reason: e.to_string(),
        })?;
        std::fs::write(tmp.join("state.json"), json).map_err(io(&tmp.join("state.json")))?;
        let done = self.dir.join(&name);
        // A folder of this name (an earlier run's in the same folder, which `latest` may name) is
        // moved aside whole, never removed in place: killed in between, `latest` still finds it.
        let aside = self.dir.join(format!(".old-{name}"));
        let _ = std::fs::remove_dir_all(&aside);
        if done.exists() {
            std::fs::rename(&done, &aside).map_err(io(&aside))?;
        }
        std::fs::rename(&tmp, &done).map_err(io(&done))?;
        let latest_tmp = self.dir.join(".latest.tmp");
        // The run's name beside `latest` (written first): what the fallback of
        // `latest_checkpoint` keeps to.
        let run_tmp = self.dir.join(".latest-run.tmp");
        std::fs::write(&run_tmp, &self.run).map_err(io(&run_tmp))?;
        std::fs::rename(&run_tmp, self.dir.join("latest-run")).map_err(io(&self.dir.join("latest-run")))?;
        std::fs::write(&latest_tmp, &name).map_err(io(&latest_tmp))?;
        std::fs::rename(&latest_tmp, self.dir.join("latest")).map_err(io(&self.dir.join("latest")))?;
        let _ = std::fs::remove_dir_all(&aside);
        self.prune(&name);
        Ok(())
    }

    /// Removes checkpoints older than the two newest.
    fn prune(&self, newest: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("epoch-") && n.as_str() <= newest)
            .collect();
        names.sort();
        for old in names.iter().rev().skip(2) {
            let _ = std::fs::remove_dir_all(self.dir.join(old));
        }
    }
}

impl Callback for Checkpoint {
    fn checkpoint(&mut self, cx: &mut Ctx, states: &[CallbackState]) -> Flow {
        match self.save(cx, states) {
            Ok(()) => Flow::Continue,
            Err(e) => {
                self.error = Some(format!("checkpoint failed: {e}"));
                Flow::StopFit
            }
        }
    }
    fn failure(&self) -> Option<String> {
        self.error.clone()
    }
    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "run": self.run }))
    }
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        #[derive(Deserialize)]
        struct S {
            run: String,
        }
        self.run = super::callback::from_state::<S>("Checkpoint", state)?.run;
        Ok(())
    }
}

/// The newest complete checkpoint of `dir` (or `dir` itself, when it is a checkpoint folder):
/// the one `latest` names, or, when that one is gone (removed by hand, say), the newest other
/// `epoch-*` folder of the same run that reads whole (never one of another run that wrote into
/// the same folder). `latest` must name a folder inside `dir`.
pub fn latest_checkpoint(dir: impl AsRef<Path>) -> Result<CheckpointInfo> {
    let dir = dir.as_ref();
    if dir.join("state.json").exists() {
        return read_checkpoint(dir);
    }
    let latest = dir.join("latest");
    let name = crate::files::read_text(&latest, STATE_FORMAT)?;
    let name = name.trim();
    // Which run `latest` belongs to (absent in folders that predate it: any run is taken).
    let run = std::fs::read_to_string(dir.join("latest-run")).ok();
    let run = run.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let plain = Path::new(name).components().count() == 1 && name.starts_with("epoch-");
    if !plain {
        let reason = format!("`latest` names {name:?}, not a checkpoint folder of {}", dir.display());
        return Err(Error::BadFile { path: latest, format: STATE_FORMAT, reason });
    }
    let named = read_checkpoint(&dir.join(name));
    if named.is_ok() || dir.join(name).exists() {
        return named;
    }
    // Killed while a checkpoint of the same name replaced it: the one `latest` named, moved aside.
    if let Ok(info) = read_checkpoint(&dir.join(format!(".old-{name}"))) {
        return Ok(info);
    }
    let mut older: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io { path: dir.to_path_buf(), source })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("epoch-"))
        .collect();
    older.sort();
    let same_run = |info: &CheckpointInfo| run.is_none_or(|r| info.run == r);
    older.iter().rev().find_map(|n| read_checkpoint(&dir.join(n)).ok().filter(same_run)).map_or(named, Ok)
}

/// How errors name a checkpoint's `state.json` and `latest`.
const STATE_FORMAT: &str = "checkpoint state";

fn read_checkpoint(folder: &Path) -> Result<CheckpointInfo> {
    let state = folder.join("state.json");
    let text = crate::files::read_text(&state, STATE_FORMAT)?;
    let mut info = parse_checkpoint_state(&text, &state)?;
    info.dir = folder.to_path_buf();
    Ok(info)
}

/// A checkpoint's `state.json` (`path` names it in errors): what the fuzzer drives. A position
/// that no run reaches (a batch of an epoch counted past the steps taken) is refused, naming the
/// field; whether it fits a given loader is checked by [`Learner::load_checkpoint`].
pub fn parse_checkpoint_state(text: &str, path: &Path) -> Result<CheckpointInfo> {
    let bad = |reason: String| Error::BadFile { path: path.to_path_buf(), format: STATE_FORMAT, reason };
    let info: CheckpointInfo = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if info.batch > 0 && info.batch_size == 0 {
        return Err(bad(format!("`batch_size` is 0 but `batch` is {}: batches were trained", info.batch)));
    }
    if !info.train_loss.is_finite() {
        return Err(bad(format!("`train_loss` is {}", info.train_loss)));
    }
    if let Some(sum) = info.train_loss_sum.filter(|s| !s.is_finite()) {
        return Err(bad(format!("`train_loss_sum` is {sum}")));
    }
    Ok(info)
}

/// Refuses a checkpoint position that a loader of `per_epoch` batches cannot reach: a batch past
/// the end of an epoch, or more steps than the epochs and batches before the position hold. The
/// error is an [`Error::BadFile`] naming the field.
pub fn check_position(info: &CheckpointInfo, per_epoch: usize) -> Result<()> {
    let bad = |reason: String| Error::BadFile { path: info.dir.join("state.json"), format: STATE_FORMAT, reason };
    if info.batch >= per_epoch.max(1) {
        return Err(bad(format!("`batch` is {}, past the {per_epoch} batches of an epoch", info.batch)));
    }
    let reachable = info.epoch.checked_mul(per_epoch).and_then(|n| n.checked_add(info.batch));
    if reachable.is_none_or(|n| info.iter > n) {
        return Err(bad(format!(
            "`iter` is {}, more steps than epoch {} batch {} can have taken ({per_epoch} batches an epoch)",
            info.iter, info.epoch, info.batch
        )));
    }
    Ok(())
}

impl Learner {
    /// Restores the newest checkpoint of `dir`: weights, optimizer state (schedule position
    /// included), loop position and, unless [`Learner::precision`] set one, the run's precision,
    /// so that `fit` continues as if never interrupted.
    ///
    /// A position that this learner's data cannot reach (a batch past the end of an epoch, more
    /// steps than the epochs and batches before it hold) is an [`Error::BadFile`] naming the field.
    pub fn load_checkpoint(&mut self, dir: impl AsRef<Path>) -> Result<CheckpointInfo> {
        let info = latest_checkpoint(dir)?;
        check_position(&info, self.train_dl.len())?;
        load_state(self.model.as_ref(), info.dir.join("model.safetensors"))?;
        let opt = info.dir.join("optimizer.safetensors");
        self.opt.load_state_dict(&read_state(&opt)?).map_err(|e| Error::BadFile {
            path: opt.clone(),
            format: "optimizer state",
            reason: e.to_string(),
        })?;
        self.state.epoch = info.epoch;
        self.state.batch = info.batch;
        self.state.iter = info.iter;
        self.state.train_loss = info.train_loss;
        self.state.batch_size = info.batch_size;
        let examples = info.train_examples.unwrap_or(info.batch * info.batch_size);
        self.state.train_examples = examples;
        self.state.train_loss_sum = info.train_loss_sum.unwrap_or(info.train_loss * examples as f64);
        self.restored = info.callbacks.clone();
        if self.precision.is_none() {
            self.precision = info.precision;
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    /// A checkpoint's numbers (the epoch's loss sum among them) read back to the bit: serde_json
    /// parses them with `float_roundtrip`, without which about one in six read back one bit off.
    #[test]
    fn stored_numbers_read_back_to_the_bit() {
        let mut rng = crate::rng::Rng::new(7);
        for _ in 0..10_000 {
            let x = f64::from_bits(rng.next_u64() >> 2 | 0x3f00_0000_0000_0000);
            let back: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e}");
        }
    }
}
