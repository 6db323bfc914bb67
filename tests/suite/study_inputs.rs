//! Bad inputs give one clear `Error::Input`; tunnelbench's own studies (with `run_id` and
//! `ood_dataset` columns) pair by variables and OOD name; absent groups are skipped.

use crate::common::{self, STUDY_HEADER as HEADER};

use std::path::PathBuf;

use tunnelbench_stats::Error;
use tunnelbench_stats::analyze::{AnalyzeOptions, analyze, compute};
use tunnelbench_stats::study::{ComparisonSpec, Metric, Study};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tunnelbench-stats-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn input_msg(r: Result<Study, Error>) -> String {
    match r {
        Err(Error::Input { path, msg }) => format!("{}: {msg}", path.display()),
        other => panic!("expected Error::Input, got {other:?}"),
    }
}

#[test]
fn bad_csv_inputs_name_the_problem() {
    let p = write("empty.csv", "");
    assert!(input_msg(Study::read(&p)).contains("empty"));

    let p = write("missing.csv", "Pearson Correlation,Stem\n0.5,3\n");
    let m = input_msg(Study::read(&p));
    assert!(
        m.contains("missing column 'ID OOD Alignment'") && m.contains("missing.csv"),
        "{m}"
    );

    let p = write(
        "text.csv",
        &format!("{HEADER}\n0.9,0.1,abc,3,0.5,CNN,0,32,100,74.6,11\n"),
    );
    let m = input_msg(Study::read(&p));
    assert!(
        m.contains("line 2") && m.contains("Percentage OOD retained") && m.contains("abc"),
        "{m}"
    );

    let p = write("nan.csv", &format!("{HEADER}\nNaN,0.1,80,3,0.5,CNN,0,32,100,74.6,11\n"));
    let m = input_msg(Study::read(&p));
    assert!(m.contains("line 2") && m.contains("Pearson Correlation"), "{m}");
    // The same with Windows line ends (the paper's released CSV has them).
    let row = "0.9,0.1,80,3,0.5,CNN,0,32,100,74.6,11";
    for (text, line) in [
        (
            format!("{HEADER}\r\nNaN,0.1,80,3,0.5,CNN,0,32,100,74.6,11\r\n"),
            "line 2,",
        ),
        (
            format!("{HEADER}\r\n{row}\r\n{row}\r\nNaN,0.1,80,3,0.5,CNN,0,32,100,74.6,11\r\n"),
            "line 4,",
        ),
    ] {
        let m = input_msg(Study::read(&write("crlf.csv", &text)));
        assert!(m.contains(line), "{line}: {m}");
    }

    let p = write(
        "var.csv",
        &format!("{HEADER}\n0.9,0.1,80,three,0.5,CNN,0,32,100,74.6,11\n"),
    );
    assert!(input_msg(Study::read(&p)).contains("column 'Stem'"));

    let p = write("header_only.csv", &format!("{HEADER}\n"));
    assert!(input_msg(Study::read(&p)).contains("no data rows"));
}

/// The small study, or that plus a run whose augmented twin is missing.
fn small_study(extra_unpaired: bool) -> String {
    let mut s = common::small_study();
    if extra_unpaired {
        s += "run4,stl10,0.9,0.2,90,3,0.5,CNN,0,64,10,74.6,11\n";
    }
    s
}

#[test]
fn tunnelbench_study_pairs_by_run_and_ood_and_skips_absent_groups() {
    let csv = write("tb.csv", &small_study(false));
    let out = tmp("tb_out");
    let a = analyze(&csv, None, &out).unwrap();
    assert_eq!((a.n_rows, a.n_models), (8, 4));
    let aug = a.comparison("augmentation", Metric::RetainedPct).unwrap();
    assert_eq!(aug.n_pairs, 4);
    assert!((aug.mean_b - aug.mean_a - 20.0).abs() < 1e-9);
    assert_eq!(aug.cliffs_delta, -1.0);
    // Resolution, CIFAR, subsets ... are absent from this study: skipped with a reason.
    assert!(a.skipped_comparisons.iter().any(|s| s.name == "resolution_32_vs_64"));
    let md = std::fs::read_to_string(out.join("analysis.md")).unwrap();
    assert!(md.contains("Skipped comparisons") && md.contains("augmentation"));
    assert!(
        std::fs::read_to_string(out.join("shap_slopes.svg"))
            .unwrap()
            .starts_with("<svg")
    );
}

#[test]
fn unpaired_design_names_the_comparison() {
    let csv = write("tb_unpaired.csv", &small_study(true));
    match compute(&csv, None, &AnalyzeOptions::default()) {
        Err(Error::Input { msg, .. }) => {
            assert!(
                msg.contains("comparison 'augmentation'") && msg.contains("unpaired"),
                "{msg}"
            )
        }
        other => panic!("expected an unpaired-design error, got {:?}", other.map(|a| a.n_rows)),
    }
}

#[test]
fn toml_spec_loads_and_rejects_unknown_keys() {
    let csv = write("tb_spec.csv", &small_study(false));
    let spec = write(
        "spec.toml",
        r#"
name = "arch"
[[comparison]]
name = "cnn_vs_vit"
a_label = "CNN"
b_label = "ViT"
metrics = ["pearson"]
a = { "CNN vs ViT" = ["CNN"] }
b = { "CNN vs ViT" = ["Transformer"] }
vary = ["CNN vs ViT", "Stem", "Spatial Reduction", "OverParam. Level", "Depth"]

[[comparison]]
name = "needs_224"
a_label = "32"
b_label = "224"
a = { Resolution = [32] }
b = { Resolution = [224] }
vary = ["Resolution"]
"#,
    );
    let a = compute(&csv, Some(&spec), &AnalyzeOptions::default()).unwrap();
    assert_eq!(a.spec, "arch");
    let c = a.comparison("cnn_vs_vit", Metric::Pearson).unwrap();
    assert_eq!(c.n_pairs, 4);
    assert_eq!(a.skipped_comparisons.len(), 1);

    let bad = write(
        "bad.toml",
        "[[comparison]]\nname = \"x\"\na_label = \"a\"\nb_label = \"b\"\na = {}\nb = {}\ncolour = 1\n",
    );
    match ComparisonSpec::load(&bad) {
        Err(Error::Input { path, msg }) => {
            assert_eq!(path, bad);
            assert!(msg.contains("colour"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let unknown_col = write(
        "badcol.toml",
        "[[comparison]]\nname = \"x\"\na_label = \"a\"\nb_label = \"b\"\na = { Colour = [1] }\nb = {}\n",
    );
    match compute(&csv, Some(&unknown_col), &AnalyzeOptions::default()) {
        Err(Error::Input { msg, .. }) => assert!(msg.contains("'Colour'"), "{msg}"),
        other => panic!("{:?}", other.map(|a| a.n_rows)),
    }
}
