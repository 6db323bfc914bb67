//! A run keeps the network it trained, and `run --trained` probes it again without training: the
//! trained network's probes, hits and metrics are those of the run that trained it.

use std::path::Path;

use crate::common::*;

/// The rows of a CSV file whose first column is `trained` (the header kept).
fn trained_rows(path: &Path) -> Vec<String> {
    read(path)
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.starts_with("trained,"))
        .map(|(_, l)| l.to_string())
        .collect()
}

fn assert_same_trained_results(a: &Path, b: &Path) {
    for file in ["probes.csv", "metrics_all.csv"] {
        let (x, y) = (trained_rows(&a.join(file)), trained_rows(&b.join(file)));
        assert!(x.len() > 1, "{file}: no trained rows");
        assert_eq!(x, y, "{file}: {} and {}", a.display(), b.display());
    }
    assert_eq!(read(&a.join("metrics.csv")), read(&b.join("metrics.csv")));
}

#[test]
fn a_trained_network_is_probed_again_as_it_was() {
    let dir = tempdir().unwrap();
    let tiny = scenario("tiny.toml");
    let first = dir.path().join("first");
    // The paper probe of the tiny scenario is left out: the same features give it the same fits,
    // but it only slows the test.
    let fast = ["--quiet", "--set", "probe.also=[]"];
    ok(&run_to(&tiny, &first, &fast));
    assert!(first.join("model.safetensors").is_file());
    let again = dir.path().join("again");
    let o = run_to(&tiny, &again, &[&fast[..], &["--trained", s(&first)]].concat());
    ok(&o);
    assert!(text(&o.stderr).contains("not trained"), "{}", text(&o.stderr));
    assert_same_trained_results(&first, &again);
    // Nothing is saved again, and the summary records what was probed.
    assert!(!again.join("model.safetensors").exists());
    let summary = read_json(&again.join("summary.json"));
    let weights = summary["config"]["model"]["weights"].as_str().unwrap();
    assert!(weights.ends_with("model.safetensors"), "{weights}");
    assert!(summary["config"]["train"].is_null());

    // Another architecture is refused with the keys that differ, nothing written.
    let other = dir.path().join("other");
    let o = run_to(
        &tiny,
        &other,
        &[&fast[..], &["--trained", s(&first), "--set", "model.name=vggm-17"]].concat(),
    );
    refused(
        &o,
        &[
            "model.safetensors",
            "model.name = \"vggm-17\" (the saved network's: \"vggm-11\")",
        ],
    );
    assert!(!other.join("summary.json").exists());
    // A folder without a saved network, and a run that keeps none.
    let none = dir.path().join("none");
    ok(&run_to(
        &tiny,
        &none,
        &[&fast[..], &["--set", "save_model=false"]].concat(),
    ));
    assert!(!none.join("model.safetensors").exists());
    let o = run_to(
        &tiny,
        &dir.path().join("x"),
        &[&fast[..], &["--trained", s(&none)]].concat(),
    );
    refused(&o, &["holds no saved network", "save_model = false"]);
    // A corrupt file is named.
    let corrupt = dir.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, b"not a network").unwrap();
    let o = run_to(
        &tiny,
        &dir.path().join("y"),
        &[&fast[..], &["--trained", s(&corrupt)]].concat(),
    );
    refused(&o, &["corrupt.safetensors"]);
}

#[test]
fn replicates_probe_their_own_seeds_networks() {
    let dir = tempdir().unwrap();
    let tiny = scenario("tiny.toml");
    let fast = [
        "--quiet",
        "--set",
        "probe.also=[]",
        "--set",
        "control.random_init=false",
        "--set",
        "replicates=2",
    ];
    let first = dir.path().join("first");
    ok(&run_to(&tiny, &first, &fast));
    let again = dir.path().join("again");
    ok(&run_to(&tiny, &again, &[&fast[..], &["--trained", s(&first)]].concat()));
    for k in 0..2 {
        let seed = format!("seed-{k}");
        assert_same_trained_results(&first.join(&seed), &again.join(&seed));
    }
    // A third replicate has no network to probe: refused before any work, naming it.
    let more = dir.path().join("more");
    let o = run_to(
        &tiny,
        &more,
        &[&fast[..], &["--trained", s(&first), "--set", "replicates=3"]].concat(),
    );
    refused(&o, &["3 replicates", "seed-2/model.safetensors"]);
    assert!(!more.join("seed-0").exists());
}
