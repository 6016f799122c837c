//! The weights and checkpoint loaders on arbitrary bytes: a safetensors file read, its shapes
//! turned into a model and loaded into it, and a checkpoint's `state.json` parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibatch::learner::CheckpointInfo;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<CheckpointInfo>(data);
    let Ok(tensors) = minibatch::module::parse_state(data, Path::new("fuzz")) else { return };
    if let Some(sizes) = minibatch::mlp_sizes(&tensors) {
        // Only shapes whose data was in the input reach here, so the model is no larger than it.
        if let Ok(model) = minibatch::mlp(&sizes, 0) {
            let _ = minibatch::module::load_tensors(&model, &tensors, Path::new("fuzz"));
        }
    }
});
