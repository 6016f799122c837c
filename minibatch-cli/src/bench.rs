//! `minibatch bench`: training speed of each configuration, plain and fast, against the floor of
//! its matrix multiplies; or the data loader's batches per second.

use crate::args::BenchArgs;
use crate::commands::load_data;
use crate::out::outln;
use anyhow::{bail, Context};
use minibatch::benchmark::{configs, loader_batches_per_second, peak_rss_bytes, run_in, Engine};
use minibatch::DataLoader;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Instant;

pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    if let Some(child) = &a.child {
        return run_child(&a, child);
    }
    if a.what == "data" {
        return bench_data(&a);
    }
    if a.what == "images" {
        return crate::bench_images::bench_images(&a);
    }
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for config in &a.configs {
        for path in &a.paths {
            let mut cmd = Command::new(&exe);
            cmd.args(["bench", "--child", &format!("{config}:{path}"), "--epochs", &a.epochs.to_string()]);
            cmd.args(["--precision", &a.precision.to_string()]);
            if let Some(dir) = &a.data.data_dir {
                cmd.arg("--data-dir").arg(dir);
            }
            if let Some(threads) = a.threads {
                cmd.arg("--threads").arg(threads.to_string());
            }
            let out = cmd.output().context("running a benchmark child")?;
            if !out.status.success() {
                bail!("{config}:{path}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            let row: Value = serde_json::from_slice(&out.stdout).context("reading a benchmark child's result")?;
            if a.json {
                outln!("{row}");
            }
            rows.push(row);
        }
    }
    if !a.json {
        print_table(&rows);
        if a.precision == minibatch::Precision::Bf16 {
            if rows.iter().any(|r| r["path"] == "plain") {
                outln!("(the plain path, candle's own operations, multiplies in fp32 under --precision bf16)");
            }
            print_floors(&rows);
        }
    }
    Ok(())
}

fn run_child(a: &BenchArgs, spec: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let (name, path) = spec.split_once(':').context("--child takes CONFIG:PATH")?;
    let config = configs().into_iter().find(|c| c.name == name).with_context(|| format!("no configuration {name}"))?;
    let path = match path {
        "plain" => Engine::Plain,
        "fast" => Engine::Fast,
        other => bail!("no path {other}: plain or fast"),
    };
    let data = load_data(&a.data)?.0;
    let startup = started.elapsed().as_secs_f64();
    let result = run_in(&config, path, a.precision, a.epochs, &data)?;
    let mut v = serde_json::to_value(&result)?;
    v["peak_rss_mb"] = json!(peak_rss_bytes().map(|b| b as f64 / 1048576.0));
    v["kernel_threads"] = json!(minibatch::threads::kernel_threads());
    v["seconds_to_first_step"] = json!(startup);
    outln!("{v}");
    Ok(())
}

fn print_table(rows: &[Value]) {
    outln!(
        "{:<9} {:<5} {:<4} {:>9} {:>10} {:>9} {:>8} {:>8} {:>9} {:>7}  {}",
        "config",
        "path",
        "prec",
        "s/epoch",
        "samples/s",
        "us/step",
        "peak MB",
        "acc",
        "floor s",
        "x floor",
        "forward/backward/step/data s (mean epoch)"
    );
    for r in rows {
        let phase = |name: &str| r["phase_seconds"][name].as_f64().unwrap_or(f64::NAN);
        outln!(
            "{:<9} {:<5} {:<4} {:>9.3} {:>10.0} {:>9.1} {:>8.1} {:>8.4} {:>9} {:>7}  {:.3}/{:.3}/{:.3}/{:.3}",
            r["config"].as_str().unwrap_or(""),
            r["path"].as_str().unwrap_or(""),
            r["precision"].as_str().unwrap_or(""),
            r["median_epoch_seconds"].as_f64().unwrap_or(f64::NAN),
            r["samples_per_second"].as_f64().unwrap_or(f64::NAN),
            r["us_per_step"].as_f64().unwrap_or(f64::NAN),
            r["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
            r["valid_accuracy"].as_f64().unwrap_or(f64::NAN),
            Dash(r["floor_seconds"].as_f64(), 3),
            Dash(r["ratio_to_floor"].as_f64(), 2),
            phase("forward") + phase("loss"),
            phase("backward"),
            phase("step") + phase("other"),
            phase("data"),
        );
    }
}

/// A figure with this many decimals, or `-` where there is none (a CNN has no matmul floor).
struct Dash(Option<f64>, usize);

impl std::fmt::Display for Dash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self.0 {
            Some(v) => format!("{v:.*}", self.1),
            None => "-".into(),
        };
        f.pad(&text)
    }
}

/// The bf16 and fp32 matmul floors of each MLP configuration, side by side.
fn print_floors(rows: &[Value]) {
    if !rows.iter().any(|r| r["fp32_floor_seconds"].is_number()) {
        return;
    }
    outln!();
    outln!("{:<9} {:>13} {:>13} {:>7}", "config", "bf16 floor s", "fp32 floor s", "ratio");
    for r in rows.iter().filter(|r| r["path"] == "fast") {
        let (bf16, fp32) = (r["floor_seconds"].as_f64(), r["fp32_floor_seconds"].as_f64());
        if let (Some(bf16), Some(fp32)) = (bf16, fp32) {
            outln!("{:<9} {bf16:>13.3} {fp32:>13.3} {:>7.2}", r["config"].as_str().unwrap_or(""), fp32 / bf16);
        }
    }
}

fn bench_data(a: &BenchArgs) -> anyhow::Result<()> {
    let data = load_data(&a.data)?.0;
    let runs = a.epochs.max(3);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // The floor: copying the same bytes, a batch's f32 pixels and u32 labels, as often.
    let src = vec![0.5f32; 64 * 784 + 64];
    let batches = data.train.len() / 64;
    let memcpy = median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..batches {
                    std::hint::black_box(src.clone());
                }
                batches as f64 / t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let mut rows = vec![];
    for workers in [0usize, 1, 2] {
        let b = DataLoader::builder(data.train.clone()).batch_size(64).shuffle(0);
        let loader = if workers == 0 { b.build()? } else { b.num_workers(workers).prefetch(4).build()? };
        let speed = median((0..runs).map(|_| loader_batches_per_second(&loader)).collect::<Result<_, _>>()?);
        rows.push(json!({"what": "data", "workers": workers, "batches_per_second": speed, "memcpy_batches_per_second": memcpy}));
    }
    for r in &rows {
        if a.json {
            outln!("{r}");
        } else {
            let (w, s) = (r["workers"].as_u64().unwrap_or(0), r["batches_per_second"].as_f64().unwrap_or(f64::NAN));
            let workers = if w == 1 { "1 worker" } else { &format!("{w} workers") };
            outln!("shuffled MNIST batches of 64, {workers}: {s:>8.0} batches/s ({:.2} of memcpy)", s / memcpy);
        }
    }
    if !a.json {
        outln!("memcpy of the same bytes:            {memcpy:>8.0} batches/s");
    }
    Ok(())
}
