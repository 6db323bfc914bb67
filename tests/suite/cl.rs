//! End-to-end test of a continual-learning scenario: every output exists and the metrics in
//! cl_metrics.json are what the method §8.3 formulas give on accuracy_matrix.csv.

use crate::common::{bin, scenario, tempdir};

use std::collections::BTreeMap;

type Key = (String, String, String, String);

fn matrices(csv: &str) -> BTreeMap<Key, BTreeMap<(usize, usize), f64>> {
    let mut out: BTreeMap<Key, BTreeMap<(usize, usize), f64>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let key = (f[0].to_string(), f[1].to_string(), f[2].to_string(), f[3].to_string());
        let v: f64 = if f[6].is_empty() {
            f64::NAN
        } else {
            f[6].parse().unwrap()
        };
        out.entry(key)
            .or_default()
            .insert((f[4].parse().unwrap(), f[5].parse().unwrap()), v);
    }
    out
}

#[test]
fn cl_metrics_follow_from_the_accuracy_matrix() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("cl");
    let scenario = scenario("tiny-cl.toml");
    let o = bin()
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "accuracy_matrix.csv",
        "layer_probes.csv",
        "cl_metrics.json",
        "cl_summary.csv",
        "swap.csv",
        "swap.md",
        "accuracy_matrix.png",
        "accuracy_matrix.svg",
        "probe_forgetting.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let acc = std::fs::read_to_string(out.join("accuracy_matrix.csv")).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cl_metrics.json")).unwrap()).unwrap();
    let variants = json["variants"].as_array().unwrap();
    // 2 strategies x (full, truncated).
    assert_eq!(variants.len(), 4);
    let m = matrices(&acc);
    for v in variants {
        for (eval, key) in [("task-aware", "task_aware"), ("task-agnostic", "task_agnostic")] {
            let k = (
                v["architecture"].as_str().unwrap().to_string(),
                v["variant"].as_str().unwrap().to_string(),
                v["strategy"].as_str().unwrap().to_string(),
                eval.to_string(),
            );
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
