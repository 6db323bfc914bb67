//! The same scenario and seed give byte-identical results on the CPU backend (flex), on the
//! AVX2 path as on the AVX-512 path; another seed gives other results.

use crate::common::{bin, scenario, tempdir};

use std::path::{Path, PathBuf};

fn tiny() -> PathBuf {
    scenario("tiny.toml")
}

/// Runs tiny.toml on flex into `out` with extra `--set` overrides.
fn run(out: &Path, sets: &[&str]) {
    run_with(out, sets, None);
}

/// [`run`] with `TUNNELBENCH_ISA` set to `isa`.
fn run_with(out: &Path, sets: &[&str], isa: Option<&str>) {
    let mut cmd = bin();
    if let Some(isa) = isa {
        cmd.env("TUNNELBENCH_ISA", isa);
    }
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
    let tmp = tempdir().unwrap();
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

#[test]
fn avx2_path_gives_the_same_bytes() {
    let tmp = tempdir().unwrap();
    // Is the AVX2 path reachable here? Without AVX-512 both runs take it; without CPUID faulting
    // an AVX-512 machine cannot be switched, and the switch says so with exit code 2.
    let probe = bin().env("TUNNELBENCH_ISA", "avx2").arg("backends").output().unwrap();
    if !probe.status.success() {
        let why = String::from_utf8_lossy(&probe.stderr);
        assert_eq!(probe.status.code(), Some(2), "{why}");
        assert!(why.contains("TUNNELBENCH_ISA=avx2"), "{why}");
        eprintln!("SKIPPED: the AVX2 path cannot be forced on this machine: {why}");
        return;
    }
    // Ten classes: a row of logits is one 8-lane vector and a tail on the AVX2 path, a tail alone
    // on the AVX-512 path, so a class-axis sum taken by lanes would round differently. The ViT
    // adds layer norms, GELUs and attention softmaxes.
    for (net, model) in [("cnn", None), ("vit", Some(["model.name=vit-t", "model.width=0.25"]))] {
        let sets: Vec<&str> = ["id.classes=10", "id.train_per_class=20"]
            .into_iter()
            .chain(model.into_iter().flatten())
            .collect();
        let (wide, narrow) = (
            tmp.path().join(format!("{net}-wide")),
            tmp.path().join(format!("{net}-narrow")),
        );
        run_with(&wide, &sets, None);
        run_with(&narrow, &sets, Some("avx2"));
        let isa = |dir: &Path| -> String {
            let v: serde_json::Value = serde_json::from_slice(&read(dir, "summary.json")).unwrap();
            v["machine"]["isa"].as_str().unwrap().to_string()
        };
        assert_eq!(isa(&narrow), "avx2");
        if isa(&wide) == "avx2" {
            eprintln!("note: no AVX-512 on this machine, both runs took the AVX2 path");
        }
        for file in ["probes.csv", "metrics_all.csv"] {
            assert!(
                read(&wide, file) == read(&narrow, file),
                "{net}: {file} differs between the vector paths"
            );
        }
    }
}

#[test]
fn unknown_isa_is_a_usage_error() {
    let o = bin().env("TUNNELBENCH_ISA", "avx9").arg("backends").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TUNNELBENCH_ISA must be `auto` or `avx2`, got `avx9`"));
}
