//! The IDX reader on arbitrary bytes, raw or gzip, as images (3 dimensions) and labels (1): it
//! must return an error or data, never panic, hang or allocate more than the input justifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    for ndim in [1u8, 3] {
        if let Ok(idx) = minibatch::mnist::parse_idx(data, ndim, Path::new("fuzz")) {
            assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
        }
    }
});
