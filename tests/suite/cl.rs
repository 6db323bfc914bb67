//! End-to-end test of a continual-learning scenario: every output exists and the metrics in
//! cl_metrics.json are what the method §8.3 formulas give on accuracy_matrix.csv.

use crate::common::{accuracy_matrices, assert_files, ok, read_json, run_to, scenario, tempdir};

#[test]
fn cl_metrics_follow_from_the_accuracy_matrix() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("cl");
    ok(&run_to(&scenario("tiny-cl.toml"), &out, &["--quiet"]));
    assert_files(
        &out,
        &[
            "accuracy_matrix.csv",
            "layer_probes.csv",
            "cl_metrics.json",
            "cl_summary.csv",
            "swap.csv",
            "swap.md",
            "accuracy_matrix.png",
            "accuracy_matrix.svg",
            "probe_forgetting.png",
        ],
    );
    let json = read_json(&out.join("cl_metrics.json"));
    let variants = json["variants"].as_array().unwrap();
    // 2 strategies x (full, truncated).
    assert_eq!(variants.len(), 4);
    let m = accuracy_matrices(&out.join("accuracy_matrix.csv"));
    for v in variants {
        for (eval, key) in [("task-aware", "task_aware"), ("task-agnostic", "task_agnostic")] {
            let k = [
                v["architecture"].as_str().unwrap().to_string(),
                v["variant"].as_str().unwrap().to_string(),
                v["strategy"].as_str().unwrap().to_string(),
                eval.to_string(),
            ];
            let r = &m[&k];
            let (r11, r12, r21, r22, b2) = (r[&(1, 1)], r[&(1, 2)], r[&(2, 1)], r[&(2, 2)], r[&(0, 2)]);
            let got = &v[key];
            let close = |name: &str, want: f64| {
                let g = got[name]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name} undefined in {got}"));
                assert!((g - want).abs() < 1e-9, "{k:?} {name}: {g} vs {want}");
            };
            // method §8.3, two tasks.
            close("acc", (r21 + r22) / 2.0);
            close("forgetting", r11 - r21);
            close("bwt", r21 - r11);
            close("fwt", r12 - b2);
            close("aia", (r11 + (r21 + r22) / 2.0) / 2.0);
        }
    }
    let swap = std::fs::read_to_string(out.join("swap.csv")).unwrap();
    assert_eq!(swap.lines().count(), 1 + 6, "{swap}");
    let layers = std::fs::read_to_string(out.join("layer_probes.csv")).unwrap();
    // full: 2 strategies x 2 after-tasks x 2 tasks x 10 layers; truncated: the same with 4 layers.
    assert_eq!(layers.lines().count(), 1 + 2 * 2 * 2 * 10 + 2 * 2 * 2 * 4);
}
