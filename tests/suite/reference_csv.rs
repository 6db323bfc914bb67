//! Checks against the released [H24] metric file (method §10.1, §10.2, §10.6).
//! Skipped, with a printed reason, when the file is not available.

use crate::common::{read_json, root};

use std::path::PathBuf;

use tunnelbench_stats::analyze::analyze;
use tunnelbench_stats::inference::holm;
use tunnelbench_stats::study::{Metric, TunnelClass};

fn reference_csv() -> Option<PathBuf> {
    let name = "h24_experiments_results.csv";
    let mut candidates = Vec::new();
    if let Ok(dir) = std::env::var("TUNNELBENCH_SHARED") {
        candidates.push(PathBuf::from(dir).join("reference").join(name));
    }
    let manifest = root().to_path_buf();
    candidates.push(manifest.join("../shared/reference").join(name));
    candidates.into_iter().find(|p| p.is_file())
}

macro_rules! require_reference {
    () => {
        match reference_csv() {
            Some(p) => p,
            None => {
                eprintln!("skipped: reference CSV not found (set TUNNELBENCH_SHARED)");
                return;
            }
        }
    };
}

/// §10.6: (mean r, mean ρ, mean A, class) per CSV block.
#[allow(clippy::approx_constant)] // 0.318 is a mean alignment, not 1/π
const PER_MODEL: [(f64, f64, f64, &str); 64] = [
    (78.63, 0.914, 0.173, "strong"),
    (85.70, 0.914, 0.305, "medium"),
    (86.94, 0.931, 0.260, "medium"),
    (97.61, 0.970, 0.411, "negligible"),
    (46.15, 0.579, 0.102, "strong"),
    (63.83, 0.811, 0.258, "strong"),
    (66.00, 0.691, 0.218, "strong"),
    (89.06, 0.941, 0.420, "medium"),
    (41.29, 0.782, 0.048, "strong"),
    (80.79, 0.966, 0.256, "medium"),
    (71.83, 0.921, 0.159, "strong"),
    (88.20, 0.978, 0.411, "medium"),
    (38.52, 0.695, 0.040, "strong"),
    (64.86, 0.855, 0.224, "strong"),
    (68.55, 0.800, 0.147, "strong"),
    (79.21, 0.927, 0.397, "strong"),
    (95.25, 0.962, 0.106, "negligible"),
    (63.55, 0.659, 0.183, "strong"),
    (95.87, 0.979, 0.105, "negligible"),
    (93.27, 0.975, 0.263, "weak"),
    (91.98, 0.934, 0.098, "weak"),
    (55.30, 0.601, 0.151, "strong"),
    (94.56, 0.980, 0.133, "weak"),
    (93.05, 0.972, 0.329, "weak"),
    (87.25, 0.931, 0.234, "medium"),
    (98.98, 0.962, 0.325, "negligible"),
    (64.97, 0.841, 0.195, "strong"),
    (86.44, 0.927, 0.318, "medium"),
    (67.35, 0.844, 0.176, "strong"),
    (79.49, 0.924, 0.261, "strong"),
    (45.37, 0.383, 0.110, "strong"),
    (48.86, 0.489, 0.156, "strong"),
    (93.10, 0.951, 0.275, "weak"),
    (92.70, 0.964, 0.291, "weak"),
    (84.55, 0.912, 0.237, "medium"),
    (67.18, 0.873, 0.223, "strong"),
    (33.09, 0.495, 0.102, "strong"),
    (38.53, 0.580, 0.143, "strong"),
    (25.55, 0.159, 0.084, "strong"),
    (24.78, 0.159, 0.095, "strong"),
    (66.92, 0.814, 0.202, "strong"),
    (73.72, 0.854, 0.308, "strong"),
    (68.98, 0.855, 0.258, "strong"),
    (81.05, 0.911, 0.375, "medium"),
    (54.22, 0.534, 0.098, "strong"),
    (92.55, 0.970, 0.232, "weak"),
    (56.29, 0.604, 0.138, "strong"),
    (94.06, 0.974, 0.303, "weak"),
    (51.50, 0.865, 0.098, "strong"),
    (79.78, 0.956, 0.272, "strong"),
    (75.33, 0.955, 0.204, "strong"),
    (87.78, 0.976, 0.379, "medium"),
    (74.01, 0.916, 0.059, "strong"),
    (85.14, 0.896, 0.103, "medium"),
    (69.72, 0.884, 0.077, "strong"),
    (78.84, 0.885, 0.142, "strong"),
    (72.70, 0.891, 0.128, "strong"),
    (83.37, 0.914, 0.223, "medium"),
    (70.65, 0.890, 0.138, "strong"),
    (83.73, 0.924, 0.246, "medium"),
    (24.07, 0.357, 0.039, "strong"),
    (35.15, 0.490, 0.079, "strong"),
    (64.73, 0.816, 0.072, "strong"),
    (72.72, 0.863, 0.144, "strong"),
];

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[test]
fn reference_classes_models_and_augmentation() {
    let csv = require_reference!();
    let out = std::env::temp_dir().join(format!("tunnelbench-analysis-{}", std::process::id()));
    let a = analyze(&csv, None, &out).unwrap();
    print!("{}", a.summary());
    assert_eq!(a.n_rows, 512);
    assert_eq!(a.n_models, 64);
    let c = a.tunnel_classes;
    assert_eq!((c.negligible, c.weak, c.medium, c.strong), (4, 8, 13, 39));

    for (i, (m, want)) in a.models.iter().zip(PER_MODEL.iter()).enumerate() {
        assert!(
            (m.mean_retained_pct - want.0).abs() <= 0.01,
            "block {i}: r {}",
            m.mean_retained_pct
        );
        assert!(
            (m.mean_pearson - want.1).abs() <= 0.001,
            "block {i}: ρ {}",
            m.mean_pearson
        );
        assert!(
            (m.mean_alignment - want.2).abs() <= 0.001,
            "block {i}: A {}",
            m.mean_alignment
        );
        assert_eq!(m.class.map(TunnelClass::name), Some(want.3), "block {i}");
    }

    let expect = [
        (Metric::RetainedPct, 64.26, 78.41, 0.370, 0.002),
        (Metric::Pearson, 0.77, 0.86, 0.377, 0.005),
        (Metric::Alignment, 0.15, 0.25, 0.358, 0.002),
    ];
    for (metric, ma, mb, d, tol) in expect {
        let r = a.comparison("augmentation", metric).unwrap();
        assert_eq!(r.n_pairs, 256);
        assert_eq!(round2(r.mean_a), ma, "{metric:?}");
        assert_eq!(round2(r.mean_b), mb, "{metric:?}");
        assert!(
            (r.cliffs_delta_abs - d).abs() <= tol,
            "{metric:?}: |δ| {}",
            r.cliffs_delta_abs
        );
        assert!(r.cliffs_delta < 0.0, "no-aug values are smaller");
        assert_eq!(r.magnitude.map(|m| m.as_str()), Some("medium"));
        assert!(r.p_value.unwrap() < 0.001, "{metric:?}: p {:?}", r.p_value);
        assert_eq!(r.wilcoxon_method.as_deref(), Some("normal"));
    }

    // Every §7.4 group of the built-in spec forms its pairs on the reference file.
    assert!(a.skipped_comparisons.is_empty(), "{:?}", a.skipped_comparisons);
    let pairs = |name: &str| a.comparison(name, Metric::RetainedPct).unwrap().n_pairs;
    assert_eq!(pairs("resolution_32_vs_224"), 48);
    assert_eq!(pairs("spatial_reduction_1_vs_0.5"), 64);
    assert_eq!(pairs("stem_3_vs_7"), 64);
    assert_eq!(pairs("depth_11_vs_17"), 48);
    assert_eq!(pairs("depth_12_vs_18V"), 32);
    assert_eq!(pairs("overparam_44.28_vs_168.37"), 32);
    assert_eq!(pairs("id_data_CIFAR-10_vs_CIFAR-100"), 16);
    assert_eq!(pairs("samples_C100xS100_vs_C100xS500"), 16);
    let fam = a.comparison("family_VGGm_vs_ViT", Metric::RetainedPct).unwrap();
    assert_eq!((fam.n_a, fam.n_b, fam.p_value), (96, 96, None));

    let json = read_json(&out.join("analysis.json"));
    for k in ["n_rows", "n_models", "tunnel_classes", "comparisons", "shap"] {
        assert!(json.get(k).is_some(), "analysis.json lacks {k}");
    }
    assert_eq!(json["tunnel_classes"]["strong"], 39);
    let c0 = &json["comparisons"][0];
    for k in [
        "name",
        "a",
        "b",
        "metric",
        "n_pairs",
        "mean_a",
        "mean_b",
        "wilcoxon_statistic",
        "p_value",
        "cliffs_delta",
        "magnitude",
    ] {
        assert!(c0.get(k).is_some(), "comparison lacks {k}");
    }
    assert_eq!(json["shap"]["retained_pct"]["slopes"].as_object().unwrap().len(), 8);
    assert!(out.join("analysis.md").is_file() && out.join("shap_slopes.svg").is_file());

    // The tidy tables: one row per (comparison, metric) with both tests' p adjusted (Holm) over
    // the metric's comparisons, and one per (metric, variable) with the slope's interval.
    let mut rows = csv::Reader::from_path(out.join("comparisons.csv")).unwrap();
    let header: Vec<String> = rows.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..4], ["comparison", "metric", "a", "b"]);
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), a.comparisons.len());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let num = |r: &csv::StringRecord, c: &str| r[col(c)].parse::<f64>().unwrap_or(f64::NAN);
    for metric in Metric::ALL {
        let family: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[col("metric")] == metric.key()).collect();
        for (raw, adjusted) in [("p", "p_holm"), ("p_models", "p_models_holm")] {
            let p: Vec<f64> = family.iter().map(|r| num(r, raw)).collect();
            for (r, want) in family.iter().zip(holm(&p)) {
                let got = num(r, adjusted);
                assert!(
                    got == want || (got.is_nan() && want.is_nan()),
                    "{}: {adjusted} {got} vs {want}",
                    &r[0]
                );
            }
        }
    }
    // What docs/method.md §7.4 states: of the 53 paired comparisons of r, 41 have p < 0.05 over
    // rows and 31 after Holm; over models 5, and after Holm the augmentation comparison alone.
    let below = |metric: &str, col: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| &r[1] == metric && num(r, col) < 0.05)
            .map(|r| r[0].to_string())
            .collect()
    };
    let counts: Vec<usize> = ["p", "p_holm", "p_models"]
        .iter()
        .map(|c| below("retained_pct", c).len())
        .collect();
    assert_eq!(counts, [41, 31, 5]);
    for metric in ["retained_pct", "pearson", "alignment"] {
        assert_eq!(below(metric, "p_models_holm"), ["augmentation"], "{metric}");
    }
    // analysis.md opens with it.
    let md = std::fs::read_to_string(out.join("analysis.md")).unwrap();
    assert_eq!(
        md.matches("Comparisons holding over pairs of models after Holm (p < 0.05): augmentation (aug > no aug).")
            .count(),
        3,
        "{md}"
    );
    let aug = rows
        .iter()
        .find(|r| &r[0] == "augmentation" && &r[1] == "retained_pct")
        .unwrap();
    assert!(num(aug, "p_holm") < 1e-30 && num(aug, "p_holm") > num(aug, "p"));

    let mut slopes = csv::Reader::from_path(out.join("shap_slopes.csv")).unwrap();
    let header: Vec<String> = slopes.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[..6],
        ["metric", "variable", "slope", "ci_low", "ci_high", "same_sign"]
    );
    let slopes: Vec<csv::StringRecord> = slopes.records().map(Result::unwrap).collect();
    assert_eq!(slopes.len(), 24);
    // The paper's strongest variable, the ID class count, keeps its sign in every resample of the
    // 64 models for % OOD retained and Pearson ρ, its interval well above zero.
    for metric in ["retained_pct", "pearson"] {
        let r = slopes
            .iter()
            .find(|r| &r[0] == metric && &r[1] == "ID Class Count")
            .unwrap();
        let (lo, hi, same): (f64, f64, f64) = (r[3].parse().unwrap(), r[4].parse().unwrap(), r[5].parse().unwrap());
        println!("{metric} ID Class Count: [{lo:.3}, {hi:.3}], same sign {same}");
        assert!(lo > 0.1 && hi > lo && same == 1.0, "{metric}: [{lo}, {hi}] {same}");
    }
    for r in &a.shap {
        assert_eq!((r.resamples, r.folds), (200, 8));
        let cv = r.r2_cv.unwrap();
        assert!(
            cv > 0.2 && cv < r.r2,
            "{}: cross-validated R² {cv}, in sample {}",
            r.metric.key(),
            r.r2
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
