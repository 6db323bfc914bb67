//! CIFAR-10/100 record parsing of arbitrary bytes: an error that appends nothing, or whole records
//! with in-range labels, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tunnelbench::{CifarKind, ImageDataset, parse_cifar_records};

fuzz_target!(|data: &[u8]| {
    for kind in [CifarKind::Cifar10, CifarKind::Cifar100] {
        let names = (0..kind.n_classes()).map(|i| i.to_string()).collect();
        let mut ds = ImageDataset::empty("fuzz", 3, 32, 32, names);
        match parse_cifar_records(data, Path::new("fuzz.bin"), kind, &mut ds) {
            Ok(()) => ds.validate().expect("parsed records form a valid data set"),
            Err(_) => assert!(ds.is_empty() && ds.pixels.is_empty()),
        }
    }
});
