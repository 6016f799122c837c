//! `minibatch train --distributed` under `mpirun` (built with `--features mpi`; `.ci/run`
//! installs OpenMPI and runs these).
#![cfg(feature = "mpi")]

mod common;
use common::*;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `mpirun -n N minibatch ARGS`, allowed to run as root (CI's containers are root).
fn mpirun(n: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-n", &n.to_string(), "--oversubscribe", env!("CARGO_BIN_EXE_minibatch")])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c
}

fn minibatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minibatch")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The largest difference between two weight files' tensors, and the largest weight.
fn max_difference(a: &std::path::Path, b: &std::path::Path) -> (f32, f32) {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.iter().map(|t| &t.0).collect::<Vec<_>>(), b.iter().map(|t| &t.0).collect::<Vec<_>>());
    let diff =
        a.iter().zip(&b).flat_map(|(x, y)| x.1.iter().zip(&y.1).map(|(p, q)| (p - q).abs())).fold(0f32, f32::max);
    let top = a.iter().flat_map(|x| x.1.iter().map(|v| v.abs())).fold(0f32, f32::max);
    (diff, top)
}

#[test]
fn two_processes_of_32_train_as_one_of_64_seeing_the_same_samples() {
    let dir = tmp("dist-equal");
    let (two, one) = (dir.join("two.safetensors"), dir.join("one.safetensors"));
    let common = ["train", "--epochs", "1", "--valid-size", "55000", "--json", "--save"];
    let out =
        mpirun(2, &[&common[..], &[two.to_str().unwrap(), "--distributed", "--bs", "32"]].concat()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let dist = json_lines(&out);
    assert_eq!(dist.len(), 1, "only process 0 prints");
    let single = minibatch(&[&common[..], &[one.to_str().unwrap(), "--bs", "64"]].concat());
    assert!(single.status.success(), "{}", stderr(&single));
    let single = json_lines(&single);
    // Each global batch is the same 64 images (the shared permutation dealt out), and the mean of
    // the two processes' gradients over 32 is the gradient over 64: the same weights, within the
    // rounding of the different summation order (the reduction of two processes is `a + b` on
    // both, so they hold the same bits).
    let (diff, top) = max_difference(&two, &one);
    assert!(diff <= 1e-5 * top.max(1.0), "weights differ by {diff}");
    let close = |k: &str| (dist[0][k].as_f64().unwrap() - single[0][k].as_f64().unwrap()).abs() < 1e-6;
    assert!(close("valid_loss") && close("valid_accuracy") && close("train_loss"), "{dist:?} {single:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn three_processes_of_20_train_as_one_of_60_summing_either_way() {
    // In shared memory each of three processes sums one slice of the gradients, in the processes'
    // order (slices of 13,264, 13,264 and 13,236 values: the model's 39,760 and the step's four
    // do not divide by three); through MPI_Allreduce MPI sums them. 6,000 training images deal
    // out into the same 100 global batches of 60 that one process sees.
    let dir = tmp("dist-three");
    let common = ["train", "--epochs", "1", "--valid-size", "54000", "--json", "--save"];
    let one = dir.join("one.safetensors");
    let single = minibatch(&[&common[..], &[one.to_str().unwrap(), "--bs", "60"]].concat());
    assert!(single.status.success(), "{}", stderr(&single));
    let single = json_lines(&single);
    for how in ["shared", "mpi"] {
        let three = dir.join(format!("three-{how}.safetensors"));
        let args = [three.to_str().unwrap(), "--distributed", "--bs", "20", "--all-reduce", how];
        let out = mpirun(3, &[&common[..], &args].concat()).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("exchanging gradients"), "{}", stderr(&out));
        let dist = json_lines(&out);
        let (diff, top) = max_difference(&three, &one);
        assert!(diff <= 1e-5 * top.max(1.0), "{how}: weights differ by {diff}");
        let close = |k: &str| (dist[0][k].as_f64().unwrap() - single[0][k].as_f64().unwrap()).abs() < 1e-5;
        assert!(close("valid_loss") && close("valid_accuracy") && close("train_loss"), "{how}: {dist:?} {single:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_distributed_run_resumes_exactly_with_the_same_number_of_processes() {
    let dir = tmp("dist-resume");
    let (full, part, ck) = (dir.join("full.safetensors"), dir.join("part.safetensors"), dir.join("ck"));
    let base = [
        "train",
        "--distributed",
        "--bs",
        "32",
        "--valid-size",
        "55000",
        "--json",
        "--model",
        "cnn-bn",
        "--schedule",
        "const",
    ];
    let run = |extra: &[&str]| {
        let out = mpirun(2, &[&base[..], extra].concat()).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    run(&["--epochs", "2", "--save", full.to_str().unwrap()]);
    run(&["--epochs", "1", "--checkpoint-dir", ck.to_str().unwrap()]);
    run(&["--epochs", "2", "--resume", ck.to_str().unwrap(), "--save", part.to_str().unwrap()]);
    assert_eq!(weights(&full), weights(&part), "bit-identical, batch norm's statistics included");
    // Settings every process refuses alike are refused once, by process 0.
    let other =
        mpirun(3, &["train", "--distributed", "--epochs", "3", "--resume", ck.to_str().unwrap()]).output().unwrap();
    assert!(!other.status.success());
    assert_eq!(stderr(&other).matches("2 process(es), this one has 3").count(), 1, "{}", stderr(&other));
    let alone = minibatch(&["train", "--epochs", "3", "--resume", ck.to_str().unwrap()]);
    assert!(stderr(&alone).contains("this one has 1: resume with the same number (under mpirun, with --distributed)"));
    let done = mpirun(2, &["train", "--distributed", "--resume", ck.to_str().unwrap()]).output().unwrap();
    assert!(!done.status.success());
    assert_eq!(stderr(&done).matches("the run has done its 2 epochs").count(), 1, "{}", stderr(&done));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_error_in_one_process_ends_every_process_naming_it() {
    let start = Instant::now();
    let out =
        mpirun(2, &["train", "--distributed", "--epochs", "1", "--plot", "/no/such/folder/p.png"]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("process 0 of 2") && stderr(&out).contains("--plot"), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(60));
}

/// The processes running our binary with `marker` among their arguments, with their ranks.
fn ranks(marker: &std::path::Path) -> Vec<(u32, usize)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        let ours = args.first().is_some_and(|a| a.ends_with(b"/minibatch"));
        if !ours || !args.iter().any(|a| *a == marker.to_str().unwrap().as_bytes()) {
            continue;
        }
        let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let rank = env
            .split(|&b| b == 0)
            .find_map(|v| std::str::from_utf8(v.strip_prefix(b"OMPI_COMM_WORLD_RANK=")?).ok()?.parse::<usize>().ok());
        found.push((pid, rank.unwrap_or(usize::MAX)));
    }
    found
}

/// Starts `mpirun -n 2` training for a long time, logging to `marker`, and returns once both
/// ranks train.
fn start_training(marker: &std::path::Path, extra: &[&str]) -> std::process::Child {
    let args = [&["train", "--distributed", "--epochs", "1000", "--json", "--log", marker.to_str().unwrap()], extra];
    let run = mpirun(2, &args.concat()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ranks(marker).len() < 2 || !marker.exists() {
        assert!(Instant::now() < deadline, "the ranks did not start training");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    run
}

/// Waits up to `limit` for `run` to end.
fn ended_within(run: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let since = Instant::now();
    loop {
        if let Some(status) = run.try_wait().unwrap() {
            return status;
        }
        if since.elapsed() > limit {
            let _ = run.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killing_one_process_mid_epoch_ends_the_others_within_seconds() {
    let marker = tmp("dist-kill").join("marker.jsonl");
    let mut run = start_training(&marker, &[]);
    let victim = ranks(&marker).iter().find(|r| r.1 == 1).expect("process 1").0;
    assert!(Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap().success());
    assert!(!ended_within(&mut run, Duration::from_secs(20)).success());
    assert!(ranks(&marker).is_empty(), "no process left behind");
    let _ = std::fs::remove_dir_all(marker.parent().unwrap());
}

#[test]
fn a_sigint_to_one_process_interrupts_them_all_at_the_same_batch() {
    let dir = tmp("dist-int");
    let (marker, ck) = (dir.join("marker.jsonl"), dir.join("ck"));
    let mut run = start_training(&marker, &["--layers", "256,256", "--checkpoint-dir", ck.to_str().unwrap()]);
    let victim = ranks(&marker).iter().find(|r| r.1 == 1).expect("process 1").0;
    assert!(Command::new("kill").args(["-INT", &victim.to_string()]).status().unwrap().success());
    let status = ended_within(&mut run, Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    // Process 0, which got no signal, reports the interruption and where the checkpoint is.
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted; checkpoint in"), "{err}");
    assert!(ck.join("latest").exists(), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_diverging_distributed_run_stops_every_process_at_the_same_step() {
    // Each process's loss alone would trip the guard at a different step; the guard judges the
    // whole batch's loss, so all stop together (the run used to hang, one process validating
    // while the other waited in the next exchange).
    let mut run = mpirun(2, &["train", "--distributed", "--lr", "3", "--valid-size", "55000", "--epochs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = ended_within(&mut run, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("minibatch: diverged: the loss is"), "{err}");
}

#[test]
fn too_little_shared_memory_falls_back_to_mpi_and_says_so() {
    // A private /dev/shm of 24 MB (a mount namespace of its own, as root): two processes of
    // 784-1024-1024-10 need 21 MB of it, too close to full for OpenMPI. Where mount namespaces
    // are not allowed (an unprivileged container) there is nothing to test.
    if !Command::new("unshare").args(["-m", "true"]).status().is_ok_and(|s| s.success()) {
        eprintln!("skipped: no mount namespaces here");
        return;
    }
    let mpi = format!(
        "mount -t tmpfs -o size=24m tmpfs /dev/shm && mpirun -n 2 --oversubscribe {} train --distributed --layers 1024,1024 --valid-size 59000 --epochs 1 --json",
        env!("CARGO_BIN_EXE_minibatch")
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &mpi])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("gradients summed through MPI_Allreduce"), "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), 1, "one epoch, trained");
}

/// `mpirun` running one process with `a` and one with `b` (MPI's `:` form), ended within a minute.
fn started_apart(a: &[&str], b: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_minibatch");
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-n", "1", exe]).args(a).args([":", "-n", "1", exe]).args(b);
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("processes started with {a:?} and {b:?} still ran after a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn processes_started_with_different_settings_or_data_refuse_in_one_line() {
    let base = ["train", "--distributed", "--valid-size", "55000", "--json"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> { [&base[..], extra].concat() };
    // Another data folder of the same shape: one training label changed.
    let dir = tmp("dist-data");
    copy_data(&dir);
    let labels = dir.join("train-labels-idx1-ubyte.gz");
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(&labels).unwrap()), &mut raw)
        .unwrap();
    raw[8] = (raw[8] + 1) % 10;
    let mut z = flate2::write::GzEncoder::new(std::fs::File::create(&labels).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &raw).unwrap();
    z.finish().unwrap();
    let data: &'static str = Box::leak(dir.to_str().unwrap().to_string().into_boxed_str());
    let cases: [(Vec<&str>, Vec<&str>, &str); 5] = [
        (with(&["--epochs", "1"]), with(&["--epochs", "2"]), "--epochs"),
        (with(&["--epochs", "1", "--bs", "32"]), with(&["--epochs", "1", "--bs", "64"]), "--bs"),
        (with(&["--epochs", "1"]), with(&["--epochs", "1", "--all-reduce", "mpi"]), "--all-reduce"),
        (with(&["--epochs", "1", "--lr", "0.5"]), with(&["--epochs", "1", "--lr", "3", "--seed", "1"]), "--lr, --seed"),
        (with(&["--epochs", "1"]), with(&["--epochs", "1", "--data-dir", data]), "the data"),
    ];
    for (a, b, named) in cases {
        let out = started_apart(&a, &b);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{a:?} against {b:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("not started alike")).collect();
        assert_eq!(lines.len(), 1, "one line, from process 0: {err}");
        assert!(lines[0].ends_with(&format!("differ from process 0 in {named}")), "{err}");
        assert!(out.stdout.is_empty(), "nothing trained: {}", String::from_utf8_lossy(&out.stdout));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
