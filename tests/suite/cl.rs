//! End-to-end test of a continual-learning scenario: every output exists and the metrics in
//! cl_metrics.json are what the method §8.3 formulas give on accuracy_matrix.csv.

use crate::common::{accuracy_matrices, assert_files, ok, read_json, run_cl, scenario, tempdir};

#[test]
fn cl_metrics_follow_from_the_accuracy_matrix() {
    let (_dir, out, json) = run_cl("tiny-cl.toml");
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

/// `TUNNELBENCH_TRACE` records each training call: the training set, every step's loss and batch,
/// and the weights before the first step and after the last.
#[test]
fn a_trace_records_the_data_the_steps_and_the_weights() {
    let dir = tempdir().unwrap();
    let trace = dir.path().join("trace");
    let o = crate::common::bin()
        .args(["run", crate::common::s(&scenario("tiny.toml")), "--out"])
        .arg(dir.path().join("run"))
        .arg("--quiet")
        .env("TUNNELBENCH_TRACE", &trace)
        .output()
        .unwrap();
    ok(&o);
    let rec = read_json(&trace.join("call0.json"));
    let shape: Vec<usize> = rec["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    // 3 classes × 40 training images of 3 × 32 × 32 bytes, some held out for validation at most.
    assert_eq!(&shape[1..], &[3, 32, 32]);
    assert!(shape[0] > 0 && shape[0] <= 120);
    assert_eq!(rec["labels"].as_array().unwrap().len(), shape[0]);
    let images = std::fs::metadata(trace.join("call0.images.u8")).unwrap().len() as usize;
    assert_eq!(images, shape.iter().product::<usize>());
    // 2 epochs of batches of 32 (a last batch of one image skipped).
    let steps = rec["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2 * (shape[0] / 32 + usize::from(shape[0] % 32 >= 2)));
    for step in steps {
        assert!(step[0].as_f64().unwrap().is_finite());
        let batch = step[1].as_array().unwrap();
        assert!(batch.len() >= 2 && batch.iter().all(|i| (i.as_u64().unwrap() as usize) < shape[0]));
    }
    let (start, end) = (
        std::fs::read(trace.join("call0.start.safetensors")).unwrap(),
        std::fs::read(trace.join("call0.end.safetensors")).unwrap(),
    );
    assert_eq!(start.len(), end.len());
    assert_ne!(start, end, "training changed no weight");
}
