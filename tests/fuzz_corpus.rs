//! The fuzz targets' entry points on their seed corpus (`fuzz/corpus/`) and on inputs of the kinds
//! the fuzzer explores: every one must come back as data or an error, never a panic. Findings of
//! `cargo fuzz` are added here as regression cases.

use std::path::Path;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    std::fs::read_dir(dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect()
}

#[test]
fn idx_parser_takes_any_bytes() {
    let mut inputs = corpus("idx");
    assert!(inputs.len() >= 5);
    // Headers that claim more than the input holds, raw and compressed; wrong ranks; garbage.
    inputs.push(vec![0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    inputs.push(vec![0, 0, 8, 255]);
    inputs.push(vec![0x1f, 0x8b]);
    inputs.push((0..=255).collect());
    let mut parsed = 0;
    for bytes in &inputs {
        for ndim in [1, 3] {
            if let Ok(idx) = minibatch::mnist::parse_idx(bytes, ndim, Path::new("input")) {
                assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
                parsed += 1;
            }
        }
    }
    assert_eq!(parsed, 4, "the four valid seeds parse, nothing else does");
}

#[test]
fn weights_loader_takes_any_bytes() {
    let mut inputs = corpus("state");
    inputs.push(vec![]);
    inputs.push(u64::MAX.to_le_bytes().to_vec());
    inputs.push([8u64.to_le_bytes().to_vec(), b"{\"a\":1}".to_vec()].concat());
    let mut loaded = 0;
    for bytes in &inputs {
        let _ = serde_json::from_slice::<minibatch::learner::CheckpointInfo>(bytes);
        let Ok(tensors) = minibatch::module::parse_state(bytes, Path::new("input")) else { continue };
        if let Some(sizes) = minibatch::mlp_sizes(&tensors) {
            let model = minibatch::mlp(&sizes, 0).unwrap();
            minibatch::module::load_tensors(&model, &tensors, Path::new("input")).unwrap();
            loaded += 1;
        }
    }
    assert_eq!(loaded, 2, "the two seed models load");
}

#[test]
fn checkpoint_state_and_log_parsers_take_any_text() {
    use minibatch::learner::{check_position, parse_checkpoint_state, parse_log};
    let mut inputs = corpus("records");
    assert_eq!(inputs.len(), 2);
    let seed_state = inputs.iter().find(|b| b.windows(7).any(|w| w == b"\"hyper\"")).unwrap().clone();
    // Positions no loader reaches, numbers that overflow, a torn last line, the wrong kinds.
    let text = String::from_utf8(seed_state[1..].to_vec()).unwrap();
    inputs.push([&[16u8][..], text.replace("\"iter\": 30", "\"iter\": 18446744073709551615").as_bytes()].concat());
    inputs.push([&[0u8][..], text.replace("\"epoch\": 2", "\"epoch\": 18446744073709551615").as_bytes()].concat());
    inputs.push(
        b"\x10{\"kind\": \"batch\", \"iter\": 0, \"epoch\": 0, \"loss\": 1, \"lr\": 0.1}\n{\"kind\": \"ep".to_vec(),
    );
    inputs.push(b"\x10{\"kind\": 3}\n\n[]\n".to_vec());
    let (mut states, mut positions, mut logs) = (0, 0, 0);
    for bytes in &inputs {
        let Some((&per_epoch, rest)) = bytes.split_first() else { continue };
        let Ok(text) = std::str::from_utf8(rest) else { continue };
        if let Ok(info) = parse_checkpoint_state(text, Path::new("state.json")) {
            states += 1;
            positions += check_position(&info, per_epoch as usize).is_ok() as usize;
        }
        logs += parse_log(text, Path::new("log.jsonl")).is_ok() as usize;
    }
    assert_eq!((states, positions), (3, 1), "the seed and two edits parse; only the seed's position is reachable");
    assert_eq!(logs, 2, "the seed log and the torn one");
}
