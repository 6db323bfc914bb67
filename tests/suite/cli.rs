//! End-to-end tests of the binary on tiny scenarios.

use crate::common::{
    assert_files, bin, entry_names, ok, read_json, refused, root, run, run_to, s, scenario, tempdir, text,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn tiny() -> PathBuf {
    scenario("tiny.toml")
}

/// Every shipped scenario parses and validates (its data is only needed when it runs); the
/// analysis spec beside a study is not a scenario.
#[test]
fn shipped_scenarios_load() {
    let dir = root().join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") || name.ends_with("-spec.toml") {
            continue;
        }
        tunnelbench::load_scenario(&path, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        n += 1;
    }
    assert!(n >= 9, "only {n} scenarios found in {}", dir.display());
}

#[test]
fn backends_lists_compiled_backends() {
    let o = run(&["backends"]);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("flex     compiled in"), "{s}");
    let ndarray = if cfg!(feature = "ndarray") {
        "ndarray  compiled in"
    } else {
        "ndarray  not compiled"
    };
    assert!(s.contains(ndarray), "{s}");
}

#[test]
fn models_shows_paper_parameter_counts() {
    let o = run(&["models", "--classes", "100"]);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    // method §4.6 exact counts (100-class head) and §3.1 probed-layer counts.
    for (name, params, layers) in [
        ("vggm-11", "9462180", "10"),
        ("vggm-17", "20086692", "16"),
        ("resnet-18", "11227812", "17"),
        ("resnet-34", "21335972", "33"),
        ("vit-t ", "5618608", "12"),
        ("vit-t-plus", "8399542", "18"),
    ] {
        let line = s
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {s}"));
        assert!(
            line.contains(params) && line.split_whitespace().any(|w| w == layers),
            "{line}"
        );
    }
}

/// `bench --json` reports the throughputs and the four stages of a training step, each a positive
/// number of seconds (speed itself is measured by the benches, not here).
#[test]
fn bench_json_reports_the_stages_of_a_training_step() {
    for arch in ["vggm-11", "resnet-18", "vit-t"] {
        let o = run(&[
            "bench",
            "--backend",
            "flex",
            "--arch",
            arch,
            "--width",
            "0.0625",
            "--batch",
            "4",
            "--steps",
            "2",
            "--json",
        ]);
        assert!(o.status.success(), "{arch}: {}", text(&o.stderr));
        let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("bench prints JSON");
        let row = &rows[0];
        assert_eq!(row["arch"], arch);
        assert!(row["train_images_per_sec"].as_f64().is_some_and(|v| v > 0.0), "{row}");
        for stage in ["data", "forward", "backward", "optimizer"] {
            let secs = row["train_stage_secs"][stage].as_f64();
            assert!(secs.is_some_and(|v| v > 0.0), "{arch} {stage}: {row}");
        }
    }
    // Without `--backend`, every CPU backend compiled in (flex alone in a default build).
    let o = run(&[
        "bench", "--arch", "vggm-11", "--width", "0.0625", "--batch", "4", "--steps", "1", "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("bench prints JSON");
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = [
        ("flex", true),
        ("ndarray", cfg!(feature = "ndarray")),
        ("tch", cfg!(feature = "tch")),
    ]
    .into_iter()
    .filter_map(|(name, compiled)| compiled.then_some(name))
    .collect();
    assert_eq!(names, want);
    for (flag, value) in [("--batch", "0"), ("--batch", "1"), ("--steps", "0")] {
        let o = run(&["bench", "--arch", "vggm-11", "--width", "0.0625", flag, value]);
        refused(&o, &["--batch must be at least 2 and --steps at least 1"]);
    }
    // Five 2×2 max-pools need at least 32 pixels.
    let o = run(&["bench", "--arch", "vggm-11", "--resolution", "16"]);
    refused(&o, &["--resolution: 16 is outside what `vggm-11` accepts (32..=1024)"]);
    let o = run(&["bench", "--arch", "vggm-11", "--resolution", "100000"]);
    refused(
        &o,
        &["--resolution: 100000 is outside what `vggm-11` accepts (32..=1024)"],
    );
    // A ViT takes a whole number of patches.
    let o = run(&["bench", "--arch", "vit-t", "--resolution", "36"]);
    refused(&o, &["--resolution: 36 is not a multiple of `vit-t`'s patch size 8"]);
    // An impossible network is the architecture's fault, not the resolution's.
    for (args, says) in [
        (
            ["--arch", "vggm-11", "--width", "0"],
            "architecture `vggm-11`: width must be in (0, 16], got 0",
        ),
        (["--arch", "nope", "--width", "1"], "unknown architecture `nope`"),
    ] {
        let o = run(&[&["bench"][..], &args].concat());
        refused(&o, &[says]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("--resolution"), "{err}");
    }
}

#[test]
fn unknown_or_missing_backend_is_exit_2() {
    let o = run(&["run", tiny().to_str().unwrap(), "--backend", "opencl"]);
    refused(&o, &["unknown backend `opencl`"]);
    for (gpu, compiled) in [("wgpu", cfg!(feature = "wgpu")), ("cuda", cfg!(feature = "cuda"))] {
        if !compiled {
            let o = run(&["run", tiny().to_str().unwrap(), "--backend", gpu]);
            refused(&o, &["not compiled into this binary"]);
        }
    }
}

#[test]
fn unknown_kernel_choice_is_exit_2() {
    let o = bin()
        .arg("backends")
        .env("TUNNELBENCH_KERNELS", "fast")
        .output()
        .unwrap();
    refused(&o, &["TUNNELBENCH_KERNELS must be `own` or `burn`, got `fast`"]);
}

#[test]
fn bad_scenario_keys_and_values_are_exit_2_and_named() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("out");
    let cases: &[(&str, &str)] = &[
        ("train.epochz=3", "train.epochz"),
        ("train.epochs=0", "epochs must be > 0"),
        ("train.lr=-1", "lr must be > 0"),
        ("model.name=vggm-99", "unknown architecture `vggm-99`"),
        ("resolution=4", "key `resolution`"),
        ("train.epochs=\"three\"", "train.epochs"),
        ("id.path=/tmp", "id.path"),
        ("replicates=0", "key `replicates`: 0 is outside 1..=1000"),
        (
            "probe.bootstrap=10",
            "key `probe.bootstrap`: a 95% interval needs at least 40 resamples",
        ),
    ];
    for (set, expect) in cases {
        let o = run_to(&tiny(), &out, &["--set", set]);
        assert_eq!(o.status.code(), Some(2), "--set {set}: {}", text(&o.stderr));
        let e = text(&o.stderr);
        assert!(e.contains(expect) && e.contains("tiny.toml"), "--set {set}: {e}");
    }
    let o = run(&["run", "does/not/exist.toml"]);
    refused(&o, &["does/not/exist.toml"]);
    // --shard needs a study or replicates.
    refused(
        &run_to(&tiny(), &out, &["--shard", "0/2"]),
        &["--shard applies to study scenarios and to scenarios with replicates"],
    );
}

#[test]
fn tiny_run_writes_every_output() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("tiny");
    ok(&run_to(&tiny(), &out, &["--quiet"]));
    assert_files(
        &out,
        &[
            "probes.csv",
            "test_hits.bin",
            "metrics.csv",
            "metrics_all.csv",
            "summary.json",
            "curves.svg",
            "curves.png",
        ],
    );
    // One metrics row per OOD set; one probes row per (model, probe, dataset, layer).
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 1 + 1);
    let probes = std::fs::read_to_string(out.join("probes.csv")).unwrap();
    assert_eq!(probes.lines().count(), 1 + 2 * 2 * 2 * 10);
    assert!(probes.starts_with(
        "model,probe,dataset,role,layer_index,layer_name,feature_dim,n_classes,accuracy,rank,n_test,ci_low,ci_high\n"
    ));
    // Every accuracy lies in its Wilson interval, over the data set's test images.
    for row in probes.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()) {
        let [acc, n_test, lo, hi] = [8, 10, 11, 12].map(|i| row[i].parse::<f64>().unwrap());
        assert!(lo <= acc && acc <= hi && hi - lo < 1.0, "{row:?}");
        assert!(
            n_test > 0.0 && ((acc * n_test) - (acc * n_test).round()).abs() < 1e-6,
            "{row:?}"
        );
    }
    // r, ρ and A with their intervals over resamples of the test images.
    let all = std::fs::read_to_string(out.join("metrics_all.csv")).unwrap();
    let header: Vec<&str> = all.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header[11..],
        [
            "retained_pct_low",
            "retained_pct_high",
            "pearson_low",
            "pearson_high",
            "alignment_low",
            "alignment_high"
        ]
    );
    let mut intervals = 0;
    for row in all.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()) {
        for (lo, hi) in [(11, 12), (13, 14), (15, 16)] {
            // Empty: undefined in more than a tenth of the resamples (tiny test sets).
            if let (Ok(lo), Ok(hi)) = (row[lo].parse::<f64>(), row[hi].parse::<f64>()) {
                assert!(lo <= hi, "{row:?}");
                intervals += 1;
            }
        }
    }
    assert!(intervals >= 6, "{all}");
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["backend"], "flex");
    assert_eq!(summary["probed_layers"], 10);
    let means = summary["means"].as_array().unwrap();
    assert!(means.len() == 4);
    assert!(
        means
            .iter()
            .all(|m| m["intervals"]["alignment"].as_array().is_some_and(|i| i.len() == 2))
    );
    // No temp files are left behind.
    for name in entry_names(&out) {
        assert!(!name.starts_with('.'), "left over {name}");
    }
}

/// A run without OOD sets says what it can give, and gives the ID curves.
#[test]
fn a_run_without_ood_sets_says_so_and_keeps_the_id_curves() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("id-only");
    let o = run_to(&tiny(), &out, &["--set", "ood=[]"]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("note: no [[ood]] set"), "{err}");
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    let probes = std::fs::read_to_string(out.join("probes.csv")).unwrap();
    assert_eq!(probes.lines().count(), 1 + 2 * 2 * 10);
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(snapshot(&p));
        } else {
            files.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
        }
    }
    files
}

#[test]
fn a_finished_run_is_never_overwritten() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("tiny");
    let tiny = tiny();
    let args = ["run", s(&tiny), "--out", s(&out), "--quiet"];
    ok(&run(&args));
    let before = snapshot(&out);
    // Again, and again with another seed: refused, nothing changed.
    for extra in [&[][..], &["--set", "seed=7"][..]] {
        let o = run(&[&args[..], extra].concat());
        refused(&o, &["finished run", "--force"]);
        assert!(snapshot(&out) == before, "a refused run changed the folder");
    }
    // A study is not run into the run's folder either.
    let study = root().join("tests/scenarios/tiny-study.toml");
    let o = run(&["run", s(&study), "--out", s(&out), "--quiet"]);
    refused(&o, &["holds a finished run (summary.json), not a study"]);
    assert!(snapshot(&out) == before, "a refused study changed the folder");
    // --force moves the finished run aside, whole, and runs again.
    ok(&run(&[&args[..], &["--force", "--set", "seed=7"]].concat()));
    assert!(snapshot(&dir.path().join("tiny.previous-1")) == before);
    assert!(snapshot(&out) != before && out.join("summary.json").is_file());
    // A single run into a study's folder is refused the same way.
    let studied = dir.path().join("study");
    ok(&run(&["run", s(&study), "--out", s(&studied), "--quiet"]));
    let before = snapshot(&studied);
    let o = run(&["run", s(&tiny), "--out", s(&studied), "--quiet"]);
    refused(&o, &["holds a study (study.json)", "--force"]);
    assert!(snapshot(&studied) == before, "a refused run changed the study");
    // A file given as the output folder: a run, replicates and a study name it, the file unchanged.
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep").unwrap();
    for extra in [&[][..], &["--set", "replicates=2"][..]] {
        let o = run(&[&["run", s(&tiny), "--out", s(&file), "--quiet"][..], extra].concat());
        refused(&o, &["notes.txt is a file, not a folder"]);
    }
    refused(
        &run(&["run", s(&study), "--out", s(&file), "--quiet"]),
        &["notes.txt is a file, not a folder"],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}

#[test]
fn unwritable_output_is_an_error_before_training() {
    let dir = tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = run_to(&tiny(), &file.join("sub"), &[]);
    refused(&o, &[]);
    assert!(!text(&o.stderr).contains("training"), "{}", text(&o.stderr));
}

/// With the `ndarray` feature the tiny scenario runs on burn's ndarray backend; without it, asking
/// for that backend is refused before anything runs, naming the feature to build with.
#[test]
fn ndarray_backend_runs_the_tiny_scenario_or_names_its_feature() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("nd");
    let o = run_to(
        &tiny(),
        &out,
        &[
            "--backend",
            "ndarray",
            "--quiet",
            "--set",
            "control.random_init=false",
            "--set",
            "probe.also=[]",
        ],
    );
    if cfg!(feature = "ndarray") {
        ok(&o);
        let summary = read_json(&out.join("summary.json"));
        assert_eq!(summary["backend"], "ndarray");
        assert!(out.join("metrics.csv").is_file());
    } else {
        refused(&o, &["backend `ndarray` is not compiled", "--features ndarray"]);
        assert!(!out.exists());
    }
}
