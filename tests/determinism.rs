//! The same scenario and seed give byte-identical results on the CPU backend (flex); another seed
//! gives other results.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/tiny.toml")
}

/// Runs tiny.toml on flex into `out` with extra `--set` overrides.
fn run(out: &Path, sets: &[&str]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tunnelbench"));
    cmd.args(["run", tiny().to_str().unwrap(), "--backend", "flex", "--quiet", "--out"])
        .arg(out)
        .args(["--set", "resolution=32"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().expect("binary runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

#[test]
fn same_seed_same_bytes_other_seed_other_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    run(&a, &[]);
    run(&b, &[]);
    for file in ["probes.csv", "metrics.csv", "metrics_all.csv"] {
        let (x, y) = (read(&a, file), read(&b, file));
        assert!(
            x == y,
            "{file} differs between two runs with the same seed:\n{}\n---\n{}",
            String::from_utf8_lossy(&x),
            String::from_utf8_lossy(&y)
        );
    }
    run(&c, &["seed=2"]);
    assert_ne!(
        read(&a, "probes.csv"),
        read(&c, "probes.csv"),
        "seed 2 gave the same probes.csv"
    );
}
