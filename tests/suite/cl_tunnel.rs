//! The tunnel-aware continual-learning options end to end: three tasks, the tunnel-aware
//! strategies, a capacity-matched sweep of truncated networks, and what trains on later tasks.

use std::collections::BTreeMap;

use crate::common::{read, run, s, scenario, tempdir};

/// accuracy_matrix.csv as (architecture, variant, strategy, eval) -> (after_task, task) -> accuracy.
fn matrices(path: &std::path::Path) -> BTreeMap<[String; 4], BTreeMap<(usize, usize), f64>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let mut out: BTreeMap<[String; 4], BTreeMap<(usize, usize), f64>> = BTreeMap::new();
    for rec in rdr.records() {
        let r = rec.unwrap();
        let key = [0, 1, 2, 3].map(|i| r[i].to_string());
        let v = r[6].parse().unwrap_or(f64::NAN);
        out.entry(key)
            .or_default()
            .insert((r[4].parse().unwrap(), r[5].parse().unwrap()), v);
    }
    out
}

#[test]
fn tunnel_aware_strategies_and_a_matched_sweep_run_on_three_tasks() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("cl");
    let o = run(&["run", s(&scenario("tiny-cl-tunnel.toml")), "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&read(&out.join("cl_metrics.json"))).unwrap();
    // 4 strategies × (full, truncated-2, truncated-5).
    let variants = json["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 12);
    let m = matrices(&out.join("accuracy_matrix.csv"));
    for v in variants {
        let name = |k: &str| v[k].as_str().unwrap().to_string();
        let r = &m[&[
            name("architecture"),
            name("variant"),
            name("strategy"),
            "task-aware".into(),
        ]];
        // Rows 1..3 (after each task) × 3 tasks, plus the random-init row 0.
        assert_eq!(r.len(), 4 * 3, "{v}");
        let got = |k: &str| {
            v["task_aware"][k]
                .as_f64()
                .unwrap_or_else(|| panic!("{k} undefined in {v}"))
        };
        let (r11, r22, r33) = (r[&(1, 1)], r[&(2, 2)], r[&(3, 3)]);
        let f1 = r[&(1, 1)].max(r[&(2, 1)]) - r[&(3, 1)];
        let f2 = r[&(1, 2)].max(r[&(2, 2)]) - r[&(3, 2)];
        let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-9, "{what}: {a} vs {b} in {v}");
        close(got("acc"), (r[&(3, 1)] + r[&(3, 2)] + r33) / 3.0, "acc");
        close(got("forgetting"), (f1 + f2) / 2.0, "forgetting");
        close(got("plasticity"), (r11 + r22 + r33) / 3.0, "plasticity");
        close(
            got("relative_forgetting"),
            (f1 + f2) / 2.0 / ((r11 + r22 + r33) / 3.0),
            "relative forgetting",
        );
        let tunnel_aware = name("strategy") != "finetune";
        assert_eq!(v["extractor_layers"].is_u64(), tunnel_aware, "{v}");
    }
    let truncation = json["truncation"].as_array().unwrap();
    assert_eq!(truncation.len(), 2);
    for t in truncation {
        let (full, cut) = (
            t["parameters_full"].as_f64().unwrap(),
            t["parameters"].as_f64().unwrap(),
        );
        assert!((cut / full - 1.0).abs() < 0.05, "not capacity-matched: {t}");
        assert!(t["width"].as_f64().unwrap() > 0.0625, "{t}");
    }
    let summary = read(&out.join("cl_summary.csv"));
    let header = summary.lines().next().unwrap();
    for col in ["plasticity_task_aware", "relative_forgetting_task_aware"] {
        assert!(header.contains(col), "{header}");
    }
}

#[test]
fn training_only_the_new_head_leaves_earlier_tasks_untouched() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("cl");
    let o = run(&[
        "run",
        s(&scenario("tiny-cl-tunnel.toml")),
        "--out",
        s(&out),
        "--quiet",
        "--set",
        "continual.later_tasks_train=head",
        "--set",
        "continual.strategies=[\"finetune\"]",
        "--set",
        "continual.truncate.sweep=[2]",
        "--set",
        "continual.extractor_layers=4",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // With the whole body and the earlier heads frozen (batch norm on its running statistics),
    // the task-aware accuracy on every earlier task stays exactly where it was.
    for (key, r) in matrices(&out.join("accuracy_matrix.csv")) {
        if key[3] != "task-aware" {
            continue;
        }
        for j in 1..=3 {
            for i in j + 1..=3 {
                assert_eq!(r[&(i, j)], r[&(j, j)], "{key:?}: task {j} after task {i}");
            }
        }
    }
}

#[test]
fn tunnel_options_are_checked() {
    let dir = tempdir().unwrap();
    for (set, key) in [
        ("continual.later_tasks_train=\"middle\"", "later_tasks_train"),
        (
            "continual.later_tasks_train=\"extractor\"",
            "continual.later_tasks_train",
        ),
        ("continual.extractor_layers=11", "continual.extractor_layers"),
        ("continual.truncate.sweep=[2, 10]", "continual.truncate.sweep"),
        ("continual.truncate.sweep=\"most\"", "continual.truncate.sweep"),
        ("continual.truncate.rule=\"id95\"", "continual.truncate"),
        ("continual.strategies=[\"freeze-everything\"]", "strategies"),
    ] {
        let out = dir.path().join("bad");
        let o = run(&[
            "run",
            s(&scenario("tiny-cl-tunnel.toml")),
            "--out",
            s(&out),
            "--set",
            set,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{set}: {err}");
        assert!(err.contains(key) && err.contains("tiny-cl-tunnel.toml"), "{set}: {err}");
        assert!(!out.exists(), "{set}: a refused scenario wrote {}", out.display());
    }
}
