//! Inputs kept from fuzzing (`fuzz/`, cargo-fuzz) and hand-made edge cases: every file under
//! `tests/fuzz_regressions/<target>/` is fed to the same parser and checked with the same
//! invariants as the fuzz target of that name. None may panic.

use crate::common::root;

use std::path::PathBuf;

use tunnelbench::{CifarKind, ImageDataset, encode_idx, load_scenario_str as load_str, parse_cifar_records, parse_idx};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root().join("tests/fuzz_regressions").join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

#[test]
fn idx_inputs() {
    for (path, data) in inputs("idx") {
        if let Ok(a) = parse_idx(&data, &path) {
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>(), "{}", path.display());
            assert_eq!(encode_idx(&a.dims, &a.data), data, "{}", path.display());
        }
    }
}

#[test]
fn cifar_inputs() {
    for (path, data) in inputs("cifar") {
        for kind in [CifarKind::Cifar10, CifarKind::Cifar100] {
            let names = (0..kind.n_classes()).map(|i| i.to_string()).collect();
            let mut ds = ImageDataset::empty("fuzz", 3, 32, 32, names);
            match parse_cifar_records(&data, &path, kind, &mut ds) {
                Ok(()) => ds.validate().unwrap(),
                Err(_) => assert!(ds.is_empty() && ds.pixels.is_empty(), "{}", path.display()),
            }
        }
    }
}

#[test]
fn scenario_inputs() {
    for (path, data) in inputs("scenario") {
        let text = String::from_utf8_lossy(&data);
        if let Ok(s) = load_str(&text, &path, &[]) {
            tunnelbench::layer_names(&s.model)
                .unwrap_or_else(|e| panic!("{}: valid scenario without layer names: {e}", path.display()));
        }
    }
}
