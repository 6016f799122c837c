//! A distributed run's processes check, before they train, that they were started alike: the
//! same settings and the same data. Processes started with different flags (mpirun's `:` form,
//! or a wrapper that varies them) would otherwise wait for each other for ever in an exchange of
//! different sizes, or train to a silently wrong result.

use crate::args::TrainArgs;
use minibatch::distributed::Collective;
use minibatch::Mnist;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The processes' settings or data differ; process 0 says so, the others end quietly.
#[derive(Debug)]
pub struct Disagreement(pub String);

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Disagreement {}

/// Settings that may differ between processes without changing the run: the kernel threads and
/// loader workers (results do not depend on them), and the data folder's path (its content is
/// compared instead).
const MAY_DIFFER: [&str; 4] = ["threads", "workers", "data_dir", "world"];

/// Compares this process's settings and data with process 0's, through process 0's broadcast;
/// every process learns which differ anywhere, so all end alike. The exchange has the same size
/// on every process, whatever the flags.
pub fn agree(a: &TrainArgs, data: &Mnist, w: &dyn Collective) -> anyhow::Result<()> {
    let mine = digests(a, data);
    // Each 64-bit digest as two 32-bit halves, exact in f64.
    let halves: Vec<f64> = mine.iter().flat_map(|(_, d)| [(d >> 32) as f64, (d & 0xffff_ffff) as f64]).collect();
    let mut first = halves.clone();
    w.broadcast(&mut first, 0)?;
    let mut differs: Vec<f64> =
        halves.chunks(2).zip(first.chunks(2)).map(|(m, z)| f64::from(u8::from(m != z))).collect();
    w.all_reduce_sum_f64(&mut differs)?;
    let names: Vec<String> =
        mine.iter().zip(&differs).filter(|(_, &n)| n > 0.0).map(|((name, _), _)| name.clone()).collect();
    if names.is_empty() {
        return Ok(());
    }
    let most = differs.iter().fold(0f64, |m, &n| m.max(n));
    Err(Disagreement(format!(
        "the {} processes were not started alike: {} of them differ from process 0 in {}",
        w.size(),
        most,
        names.join(", ")
    ))
    .into())
}

/// A digest of each setting (named as its flag, `--bs`) and of the data (`the data`), in a fixed
/// order.
fn digests(a: &TrainArgs, data: &Mnist) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(a) {
        flatten(&map, &mut out);
    }
    let mut h = DefaultHasher::new();
    for split in [&data.train, &data.valid] {
        split.len().hash(&mut h);
        for i in 0..split.len() {
            split.pixels(i).hash(&mut h);
            split.label(i).hash(&mut h);
        }
    }
    out.push(("the data".to_string(), h.finish()));
    out
}

/// Each value of the settings' object (nested objects flattened), by flag name.
fn flatten(map: &serde_json::Map<String, serde_json::Value>, out: &mut Vec<(String, u64)>) {
    for (key, value) in map {
        match value {
            serde_json::Value::Object(inner) => flatten(inner, out),
            _ if MAY_DIFFER.contains(&key.as_str()) => {}
            _ => {
                let mut h = DefaultHasher::new();
                value.to_string().hash(&mut h);
                out.push((format!("--{}", key.replace('_', "-")), h.finish()));
            }
        }
    }
}
