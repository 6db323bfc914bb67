//! IDX parsing of arbitrary bytes: an error or a well-formed array, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tunnelbench::{encode_idx, parse_idx};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = parse_idx(data, Path::new("fuzz.idx")) {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        assert_eq!(encode_idx(&a.dims, &a.data), data);
    }
});
