//! minibatch's own text formats on arbitrary bytes: a checkpoint's `state.json` parsed and its
//! position checked against a loader of any length, and a training log (JSON lines) parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibatch::learner::{check_position, parse_checkpoint_state, parse_log};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&per_epoch, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    if let Ok(info) = parse_checkpoint_state(text, Path::new("state.json")) {
        let _ = check_position(&info, per_epoch as usize);
    }
    let _ = parse_log(text, Path::new("log.jsonl"));
});
