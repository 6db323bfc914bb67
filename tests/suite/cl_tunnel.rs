//! The tunnel-aware continual-learning options end to end: three tasks, the tunnel-aware
//! strategies, a capacity-matched sweep of truncated networks, and what trains on later tasks.

use std::collections::BTreeMap;

use crate::common::{
    AccuracyMatrices, accuracy_matrices as matrices, ok, read, run_cl, run_to, scenario, tempdir, text,
};

/// Runs tiny-cl-tunnel.toml quietly with each of `sets` as a `--set`; returns its accuracy matrices.
fn matrices_with(sets: &[&str]) -> AccuracyMatrices {
    let dir = tempdir().unwrap();
    let out = dir.path().join("cl");
    let mut args = vec!["--quiet"];
    for set in sets {
        args.extend(["--set", set]);
    }
    ok(&run_to(&scenario("tiny-cl-tunnel.toml"), &out, &args));
    matrices(&out.join("accuracy_matrix.csv"))
}

/// The task-aware accuracy matrix of the sequence that `v` (an entry of cl_metrics.json's
/// `variants`) describes.
fn task_aware<'a>(m: &'a AccuracyMatrices, v: &serde_json::Value) -> &'a BTreeMap<(usize, usize), f64> {
    let name = |k: &str| v[k].as_str().unwrap().to_string();
    &m[&[
        name("architecture"),
        name("variant"),
        name("strategy"),
        "task-aware".into(),
    ]]
}

#[test]
fn tunnel_aware_strategies_and_a_matched_sweep_run_on_three_tasks() {
    let (_dir, out, json) = run_cl("tiny-cl-tunnel.toml");
    // 4 strategies × (full, truncated-2, truncated-5).
    let variants = json["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 12);
    let m = matrices(&out.join("accuracy_matrix.csv"));
    for v in variants {
        let r = task_aware(&m, v);
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
        let tunnel_aware = v["strategy"] != "finetune";
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
    let m = matrices_with(&[
        "continual.later_tasks_train=head",
        "continual.strategies=[\"finetune\"]",
        "continual.truncate.sweep=[2]",
        "continual.extractor_layers=4",
    ]);
    // With the whole body and the earlier heads frozen (batch norm on its running statistics),
    // the task-aware accuracy on every earlier task stays exactly where it was.
    for (key, r) in m {
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
fn a_kept_optimizer_state_changes_only_the_later_tasks() {
    let sets = ["continual.strategies=[\"finetune\"]", "continual.truncate.sweep=[2]"];
    let fresh = matrices_with(&sets);
    let kept = matrices_with(&[sets[0], sets[1], "continual.keep_optimizer_state=true"]);
    for (key, r) in fresh.iter().filter(|(key, _)| key[3] == "task-aware") {
        let k = &kept[key];
        // Task 1 trains from a fresh optimizer either way; from task 2 on, Adam goes on with its
        // moments and step count, and the weights take other steps.
        for j in 1..=3 {
            assert_eq!(r[&(1, j)], k[&(1, j)], "{key:?}: after task 1, on task {j}");
        }
        assert!(
            (2..=3).any(|i| (1..=3).any(|j| r[&(i, j)] != k[&(i, j)])),
            "{key:?}: {r:?}"
        );
    }
}

#[test]
fn mixup_and_cutmix_train_across_task_heads() {
    let m = matrices_with(&[
        "train.mixup_cutmix=true",
        "continual.strategies=[\"replay\", \"joint\"]",
        "continual.truncate.sweep=[3]",
    ]);
    // Every accuracy is defined: no sample was mixed with a partner outside its head's classes.
    for (key, r) in m {
        if key[3] == "task-aware" {
            assert!(r.values().all(|v| v.is_finite()), "{key:?}: {r:?}");
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
        ("train.mixup_cutmix=\"yes\"", "train.mixup_cutmix"),
        ("continual.keep_optimizer_state=1", "continual.keep_optimizer_state"),
        ("continual.sequence=\"datasets\"", "continual.datasets"),
        (
            "continual.datasets=[{ kind = \"shapes\", classes = 2 }]",
            "continual.datasets",
        ),
        (
            "continual.published=[{ source = \"x\", heads = \"shared\", strategy = \"finetune\", metric = \"accuracy\", mean = 50.0, sem = 1.0, n = 10 }]",
            "continual.published[0].metric",
        ),
        (
            "continual.published=[{ source = \"x\", heads = \"shared\", strategy = \"finetune\", metric = \"acc\", mean = 50.0, sem = 1.0, n = 1 }]",
            "continual.published[0]",
        ),
        (
            "continual.published=[{ source = \"x\", heads = \"shared\", strategy = \"finetune\", metric = \"acc\", mean = 50.0, sem = 1.0 }]",
            "continual.published",
        ),
    ] {
        let out = dir.path().join("bad");
        let o = run_to(&scenario("tiny-cl-tunnel.toml"), &out, &["--set", set]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{set}: {err}");
        assert!(err.contains(key) && err.contains("tiny-cl-tunnel.toml"), "{set}: {err}");
        assert!(!out.exists(), "{set}: a refused scenario wrote {}", out.display());
    }
}

#[test]
fn a_sequence_of_three_data_sets_gives_a_3x3_matrix() {
    let (_dir, out, json) = run_cl("tiny-cl-datasets.toml");
    // Classes numbered on from set to set: shapes 0..3, mnist 3..7, texture 7..9.
    assert_eq!(json["tasks"], serde_json::json!([[0, 1, 2], [3, 4, 5, 6], [7, 8]]));
    let m = matrices(&out.join("accuracy_matrix.csv"));
    for v in json["variants"].as_array().unwrap() {
        let r = task_aware(&m, v);
        assert_eq!(r.len(), 4 * 3, "{v}");
        let last = (r[&(3, 1)] + r[&(3, 2)] + r[&(3, 3)]) / 3.0;
        let bwt = (r[&(3, 1)] - r[&(1, 1)] + r[&(3, 2)] - r[&(2, 2)]) / 2.0;
        assert!((v["task_aware"]["acc"].as_f64().unwrap() - last).abs() < 1e-9, "{v}");
        assert!((v["task_aware"]["bwt"].as_f64().unwrap() - bwt).abs() < 1e-9, "{v}");
    }
}
