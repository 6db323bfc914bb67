//! End-to-end tests of study scenarios: plan, resumable and sharded runs, collect, Slurm scripts.

use crate::common::{bin, ok, read, read_json, refused, root, run, run_to, s, tempdir, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tiny_study() -> PathBuf {
    root().join("tests/scenarios/tiny-study.toml")
}

fn run_ids(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn plan_lists_runs_with_stable_ids() {
    let a = run(&["plan", s(&tiny_study())]);
    ok(&a);
    let out = text(&a.stdout);
    assert!(out.contains(": 4 runs"), "{out}");
    for v in [
        "model.name=vggm-11 train.augment=false",
        "model.name=vggm-17 train.augment=true",
    ] {
        assert!(out.contains(v), "{out}");
    }
    // Same file, same ids; a changed base value changes every id.
    let b = run(&["plan", s(&tiny_study())]);
    assert_eq!(out, text(&b.stdout));
    let c = run(&["plan", s(&tiny_study()), "--set", "train.epochs=3"]);
    let ids = |o: &str| -> Vec<String> {
        o.lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect()
    };
    let (ia, ic) = (ids(&out), ids(&text(&c.stdout)));
    assert_eq!(ia.len(), 4);
    assert!(ia[0].starts_with("vggm-11_no-augment-"), "{ia:?}");
    assert!(ia.iter().zip(&ic).all(|(x, y)| x != y), "{ia:?} {ic:?}");
}

#[test]
fn plan_rejects_bad_study_sections() {
    let dir = tempdir().unwrap();
    let base = read(&tiny_study());
    let cases: &[(&str, &str)] = &[
        ("[[study.exclude]]\nfoo = 1\n", "no study variable is named `foo`"),
        (
            "[[study.exclude]]\n\"train.augment\" = 3\n",
            "is not one of the variable's values",
        ),
        (
            "[[study.vary]]\nkey = \"resolution\"\nvalues = [8]\n",
            "key `resolution`",
        ),
        ("[[study.vary]]\nkey = \"id\"\nvalues = [\"nope\"]\n", "data set `nope`"),
        ("[study.bogus]\nx = 1\n", "bogus"),
    ];
    for (extra, want) in cases {
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, format!("{base}\n{extra}")).unwrap();
        let o = run(&["plan", s(&p)]);
        assert_eq!(o.status.code(), Some(2), "{extra}: {}", text(&o.stderr));
        let e = text(&o.stderr);
        assert!(e.contains(want) && e.contains("bad.toml"), "{extra}: {e}");
    }
    // Excluding one combination leaves three runs.
    let p = dir.path().join("ex.toml");
    std::fs::write(
        &p,
        format!("{base}\n[[study.exclude]]\n\"model.name\" = \"vggm-17\"\n\"train.augment\" = true\n"),
    )
    .unwrap();
    let o = run(&["plan", s(&p)]);
    assert!(text(&o.stdout).contains(": 3 runs"), "{}", text(&o.stdout));
    // The comparison spec is read before any run: missing, or without comparisons.
    let p = dir.path().join("spec.toml");
    std::fs::write(dir.path().join("empty-spec.toml"), "name = \"none\"\n").unwrap();
    std::fs::write(&p, &base).unwrap();
    for (spec, want) in [
        ("nope.toml", "nope.toml: No such file"),
        ("empty-spec.toml", "empty-spec.toml: no [[comparison]] entries"),
    ] {
        let o = run(&["plan", s(&p), "--set", &format!("study.spec=\"{spec}\"")]);
        refused(&o, &[want]);
    }
    // A study without OOD sets would train every run and end with an empty metrics table.
    let o = run(&["plan", s(&p), "--set", "ood=[]"]);
    refused(&o, &["study run 0", "no [[ood]] set"]);
    // A single-run scenario has no plan.
    let o = run(&[
        "plan",
        s(&root().join("tests/scenarios/tiny.toml")),
        "--set",
        "resolution=32",
    ]);
    refused(&o, &["no [study] section"]);
}

/// Interrupt a study after its first finished run, run it again, and compare with an
/// uninterrupted run; then run it as two shards and merge them.
#[test]
fn study_resumes_after_a_kill_and_shards_merge_to_the_same_table() {
    let dir = tempdir().unwrap();
    let full = dir.path().join("full");
    ok(&run_to(&tiny_study(), &full, &["--quiet"]));
    let reference = read(&full.join("study_metrics.csv"));
    assert_eq!(reference.lines().count(), 1 + 4, "{reference}");
    assert!(reference.starts_with("Pearson Correlation,ID OOD Alignment,Percentage OOD retained,Stem,"));
    assert!(full.join("analysis/analysis.json").is_file());
    assert_eq!(run_ids(&full).len(), 4);
    // The scenario changed under a folder of finished runs: refused, naming what changed, since the
    // study's tables would mix both; dropping a level is refused the same way.
    let plan_file = read(&full.join("study.json"));
    let o = run_to(&tiny_study(), &full, &["--quiet", "--set", "train.epochs=1"]);
    refused(
        &o,
        &[
            "holds 4 finished or failed run(s) that this study's plan does not have",
            "the scenario changed since it ran: train.epochs = 1 (finished: 2)",
        ],
    );
    let o = run_to(
        &tiny_study(),
        &full,
        &["--quiet", "--set", r#"study.vary[0].values=["vggm-11"]"#],
    );
    refused(
        &o,
        &[
            "(run with model.name=vggm-17 train.augment=",
            "which the plan no longer has",
        ],
    );
    assert_eq!(run_ids(&full).len(), 4);
    assert_eq!(read(&full.join("study.json")), plan_file);
    assert_eq!(read(&full.join("study_metrics.csv")), reference);

    // Kill midway: as soon as the first run is done.
    let part = dir.path().join("part");
    let mut child = bin()
        .args(["run", s(&tiny_study()), "--out", s(&part), "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let first_done = loop {
        let done = std::fs::read_dir(part.join("runs"))
            .ok()
            .and_then(|rd| rd.filter_map(|e| e.ok()).find(|e| e.path().join("done").is_file()));
        if let Some(e) = done {
            break e.path();
        }
        assert!(t.elapsed() < Duration::from_secs(120), "no run finished");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // A finished run must not be redone: mark it and check the mark survives.
    std::fs::write(first_done.join("sentinel"), "x").unwrap();
    // A half-written run (no marker) is redone from scratch.
    let stale = part.join("runs").join(run_ids(&full).last().unwrap());
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("leftover"), "x").unwrap();
    let o = run_to(&tiny_study(), &part, &["--quiet"]);
    ok(&o);
    assert!(text(&o.stderr).contains("done earlier, skipped"), "{}", text(&o.stderr));
    assert!(first_done.join("sentinel").is_file(), "a finished run was redone");
    assert!(!stale.join("leftover").exists(), "an unfinished run was not restarted");
    assert_eq!(read(&part.join("study_metrics.csv")), reference);

    // Two shards into separate folders, merged by collect.
    let (a, b) = (dir.path().join("s0"), dir.path().join("s1"));
    for (shard, out) in [("0/2", &a), ("1/2", &b)] {
        ok(&run_to(&tiny_study(), out, &["--shard", shard, "--quiet"]));
        assert!(!out.join("study_metrics.csv").exists());
        assert_eq!(run_ids(out).len(), 2);
    }
    assert_ne!(run_ids(&a), run_ids(&b));
    // One shard alone: collect says which planned runs have not run.
    let alone = dir.path().join("alone");
    let o = run(&["collect", s(&a), "--out", s(&alone)]);
    ok(&o);
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(said.contains("not run yet: 2 planned run(s)"), "{said}");
    for id in run_ids(&b) {
        assert!(said.contains(&id), "{id}: {said}");
    }
    ok(&run(&["report", s(&a)]));
    assert!(read(&a.join("report.md")).contains("Not run yet: 2 planned run(s)"));
    let merged = dir.path().join("merged");
    let o = run(&["collect", s(&a), s(&b), "--out", s(&merged)]);
    ok(&o);
    assert!(!format!("{}{}", text(&o.stdout), text(&o.stderr)).contains("not run yet"));
    assert_eq!(read(&merged.join("study_metrics.csv")), reference);
    assert!(read(&merged.join("analysis/analysis.md")).contains("## Findings"));
    // A study set against itself agrees everywhere (agreement.csv, agreement.md).
    let against = dir.path().join("against");
    let csv = merged.join("study_metrics.csv");
    let o = run(&[
        "analyze",
        s(&csv),
        "--resamples",
        "0",
        "--against",
        s(&csv),
        "--out",
        s(&against),
    ]);
    ok(&o);
    assert!(text(&o.stdout).contains("agreement of"), "{}", text(&o.stdout));
    let rows = read(&against.join("agreement.csv"));
    assert!(rows.starts_with("kind,name,metric,this,"), "{rows}");
    assert!(rows.contains(",true,") && !rows.contains(",false,"), "{rows}");
    assert!(against.join("agreement.md").is_file());
    // --out naming a file: said so, for collect and for analyze.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "keep").unwrap();
    let o = run(&["collect", s(&a), s(&b), "--out", s(&file)]);
    refused(&o, &["a-file is a file, not a folder"]);
    let csv = merged.join("study_metrics.csv");
    let o = run(&["analyze", s(&csv), "--resamples", "0", "--out", s(&file)]);
    refused(&o, &["a-file is a file, not a folder"]);
    assert_eq!(read(&file), "keep");

    // A shard run with other settings belongs to another study: collect refuses to merge them.
    let other = dir.path().join("other");
    ok(&run_to(
        &tiny_study(),
        &other,
        &["--shard", "1/2", "--quiet", "--set", "train.epochs=1"],
    ));
    let o = run(&["collect", s(&a), s(&other), "--out", s(&dir.path().join("mixed"))]);
    refused(&o, &["other/study.json: plans another study than", "s0/study.json"]);
    assert!(!dir.path().join("mixed").exists());

    let o = run_to(&tiny_study(), &a, &["--shard", "2/2"]);
    refused(&o, &["--shard `2/2`"]);
}

#[test]
fn diverged_runs_are_recorded_as_failed_and_the_study_goes_on() {
    let dir = tempdir().unwrap();
    let p = dir.path().join("div.toml");
    let base = read(&tiny_study()).replace(
        "key = \"train.augment\"\nvalues = [false, true]",
        "key = \"train.lr\"\nvalues = [3e-3, 1e30]",
    );
    std::fs::write(&p, base).unwrap();
    let out = dir.path().join("out");
    let o = run_to(&p, &out, &["--quiet"]);
    ok(&o);
    let failed: Vec<String> = run_ids(&out)
        .into_iter()
        .filter(|id| out.join("runs").join(id).join("failed").is_file())
        .collect();
    assert_eq!(failed.len(), 2, "{}", text(&o.stderr));
    assert!(read(&out.join("runs").join(&failed[0]).join("failed")).contains("diverged"));
    let csv = read(&out.join("study_metrics.csv"));
    assert_eq!(csv.lines().count(), 1 + 2, "{csv}");
    assert!(text(&o.stdout).contains("2 failed"), "{}", text(&o.stdout));
}

#[test]
fn slurm_scripts_run_the_shards_and_a_dependent_collect() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("study");
    ok(&run(&[
        "slurm",
        s(&tiny_study()),
        "--shards",
        "3",
        "--out",
        s(&out),
        "--sbatch",
        "partition=debug",
        "--set",
        "train.epochs=1",
    ]));
    let array = read(&out.join("slurm/array.sbatch"));
    let scenario = tiny_study();
    let lines: Vec<&str> = array.lines().collect();
    assert_eq!(lines[0], "#!/usr/bin/env bash");
    assert!(lines.contains(&"#SBATCH --array=0-2"), "{array}");
    assert!(lines.contains(&"#SBATCH --partition=debug"), "{array}");
    let exec = lines.iter().find(|l| l.starts_with("exec ")).unwrap();
    assert!(
        exec.ends_with(&format!(
            "run {} --shard \"${{SLURM_ARRAY_TASK_ID}}/3\" --out {} --quiet --set train.epochs=1",
            s(&scenario),
            s(&out)
        )),
        "{exec}"
    );
    assert!(exec.contains(env!("CARGO_BIN_EXE_tunnelbench")), "{exec}");
    let collect = read(&out.join("slurm/collect.sbatch"));
    assert!(
        collect.contains(&format!("collect {} --out {}", s(&out), s(&out))),
        "{collect}"
    );
    assert!(!collect.contains("--array"));
    let submit = read(&out.join("slurm/submit.sh"));
    assert!(submit.contains("sbatch --parsable array.sbatch"), "{submit}");
    assert!(
        submit.contains("--dependency=afterok:${array_id} collect.sbatch"),
        "{submit}"
    );
    // The scripts are valid bash.
    for f in ["array.sbatch", "collect.sbatch", "submit.sh"] {
        let o = Command::new("bash")
            .arg("-n")
            .arg(out.join("slurm").join(f))
            .output()
            .unwrap();
        assert!(o.status.success(), "{f}: {}", text(&o.stderr));
    }
    // More shards than runs: one shard per run, and it says so.
    let many = dir.path().join("many");
    let o = run(&["slurm", s(&tiny_study()), "--shards", "100", "--out", s(&many)]);
    ok(&o);
    let runs: usize = text(&o.stdout).split(' ').next().unwrap().parse().unwrap();
    assert!(text(&o.stdout).starts_with(&format!("{runs} runs in {runs} shards")));
    assert!(text(&o.stderr).contains(&format!("--shards 100 is more than the {runs} runs")));
    let array = read(&many.join("slurm/array.sbatch"));
    assert!(array.contains(&format!("#SBATCH --array=0-{}\n", runs - 1)), "{array}");
}

#[test]
fn compare_against_own_recording_passes_and_an_edited_baseline_regresses() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("study");
    ok(&run_to(&tiny_study(), &out, &["--quiet"]));
    let base = dir.path().join("results/tiny.json");
    ok(&run(&["compare", s(&out), s(&base), "--record"]));
    let o = run(&["compare", s(&out), s(&base)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("verdict: NO CHANGE (0 regressed"),
        "{}",
        text(&o.stdout)
    );
    // The baseline of another scenario shares no metric: exit 2, not a regression of every one.
    let o = run(&["compare", s(&out), s(&root().join("results/cl-quick.json"))]);
    refused(
        &o,
        &["cl-quick.json: recorded from scenario `cl-quick`, which shares no metric"],
    );

    // Move one per-layer accuracy's recorded value far up: with one seed per run there is no
    // spread to test, so the threshold decides: the run is 0.5 lower, it regressed, exit 1.
    let mut json = read_json(&base);
    assert_eq!(json["format"], 2);
    let metrics = json["metrics"].as_array_mut().unwrap();
    let i = metrics
        .iter()
        .position(|m| m["name"].as_str().unwrap().contains("/probe/trained/") && m["values"][0].is_number())
        .unwrap();
    let name = metrics[i]["name"].as_str().unwrap().to_string();
    let v = metrics[i]["values"][0].as_f64().unwrap();
    metrics[i]["values"][0] = serde_json::json!(v + 0.5);
    std::fs::write(&base, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let o = run(&["compare", s(&out), s(&base)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("verdict: REGRESSED (1 regressed"), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with(&name)).unwrap();
    assert!(line.contains("REGRESSED") && line.contains("-0.5000"), "{line}");

    // A per-metric threshold that covers the change makes it no change.
    let mut json = read_json(&base);
    json["metrics"][i]["threshold"] = serde_json::json!(0.6);
    std::fs::write(&base, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    assert_eq!(run(&["compare", s(&out), s(&base)]).status.code(), Some(0));

    // A baseline of the first format (one value per metric, absolute tolerances) still loads.
    let metrics: Vec<serde_json::Value> = json["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_json::json!({"name": m["name"], "kind": m["kind"], "value": m["values"][0]}))
        .collect();
    let v1 = serde_json::json!({"scenario": "tiny", "tolerances": {"accuracy": 0.6}, "metrics": metrics});
    std::fs::write(&base, serde_json::to_string_pretty(&v1).unwrap()).unwrap();
    let o = run(&["compare", s(&out), s(&base)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let v1 = serde_json::json!({"scenario": "tiny", "tolerances": {"accuracy": 0.1}, "metrics": v1["metrics"]});
    std::fs::write(&base, serde_json::to_string_pretty(&v1).unwrap()).unwrap();
    assert_eq!(run(&["compare", s(&out), s(&base)]).status.code(), Some(1));

    // Not a baseline: a usage error, exit 2.
    std::fs::write(&base, "{\"metrics\": 3}").unwrap();
    let o = run(&["compare", s(&out), s(&base)]);
    refused(&o, &["tiny.json"]);

    // The report embeds every run's curves and the analysis' SHAP bars.
    ok(&run(&["report", s(&out)]));
    let md = read(&out.join("report.md"));
    let html = read(&out.join("report.html"));
    assert_eq!(md.matches("/curves.png)").count(), 4, "{md}");
    assert_eq!(html.matches("<img src=\"runs/").count(), 4);
    assert!(html.contains("<img src=\"analysis/shap_slopes_bars.png\""));
    assert!(out.join("analysis/shap_slopes_bars.png").is_file());
    assert!(
        md.contains("## Tunnel classes") && md.contains("## Comparisons"),
        "{md}"
    );
}

#[test]
fn h24_study_plans_the_papers_64_dnns() {
    let o = run(&["plan", s(&root().join("scenarios/h24-study.toml")), "--json"]);
    ok(&o);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 64);
    let var = |r: &serde_json::Value, name: &str| -> Option<String> {
        r["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v[0] == name)
            .map(|v| v[1].as_str().unwrap().to_string())
    };
    let count = |f: &dyn Fn(&serde_json::Value) -> bool| runs.iter().filter(|r| f(r)).count();
    // method §6.2: 40 on full ImageNet-100 + 12 on subsets, 8 on CIFAR-100, 4 on CIFAR-10.
    let subset = |r: &serde_json::Value| var(r, "id.classes").is_some();
    assert_eq!(count(&|r| var(r, "id").as_deref() == Some("in100") && !subset(r)), 40);
    assert_eq!(count(&|r| subset(r)), 12);
    assert_eq!(count(&|r| var(r, "id").as_deref() == Some("cifar100")), 8);
    assert_eq!(count(&|r| var(r, "id").as_deref() == Some("cifar10")), 4);
    assert_eq!(count(&|r| var(r, "train.augment").as_deref() == Some("true")), 32);
    for (res, n) in [("32", 40), ("64", 6), ("128", 6), ("224", 12)] {
        assert_eq!(
            count(&|r| var(r, "resolution").as_deref() == Some(res)),
            n,
            "resolution {res}"
        );
    }
    for (model, n) in [
        ("vggm-11", 4 + 2 + 2 + 12),
        ("vggm-17", 4 + 2 + 2 + 4),
        ("vggm-dagger-11", 2 + 2),
        ("vggm-dagger-17", 2 + 2),
        ("resnet-18", 8),
        ("resnet-34", 4),
        ("vit-t", 4),
        ("vit-t-plus", 8),
    ] {
        assert_eq!(count(&|r| var(r, "model.name").as_deref() == Some(model)), n, "{model}");
    }
    // Block order of the reference CSV: block 0 is VGGm-11, ImageNet-100, 32px, no aug.
    assert_eq!(var(&runs[0], "model.name").as_deref(), Some("vggm-11"));
    assert_eq!(var(&runs[1], "resolution").as_deref(), Some("224"));
    let mut ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 64);
}

#[test]
fn study_with_replicates_averages_over_seeds_per_configuration() {
    let dir = tempdir().unwrap();
    let out = dir.path().join("study");
    let plan = run(&["plan", s(&tiny_study()), "--set", "replicates=2"]);
    let listing = text(&plan.stdout);
    assert!(
        listing.contains(": 8 runs (4 configurations × 2 replicates)"),
        "{listing}"
    );
    // Ids of the configurations do not depend on the number of replicates.
    let single = text(&run(&["plan", s(&tiny_study())]).stdout);
    let first_id = single.lines().nth(1).unwrap().split_whitespace().nth(1).unwrap();
    assert!(listing.contains(&format!("{first_id}/seed-1")), "{listing}");

    let o = run_to(&tiny_study(), &out, &["--set", "replicates=2", "--quiet"]);
    ok(&o);
    assert!(out.join("runs").join(first_id).join("seed-1/done").is_file());
    assert!(
        text(&o.stdout).contains("averaged over the 2 seeds"),
        "{}",
        text(&o.stdout)
    );

    // study_metrics.csv: one row per configuration and OOD set, r averaged over the two seeds.
    let table = read(&out.join("study_metrics.csv"));
    let header: Vec<&str> = table.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 4, "{table}");
    let row = rows.iter().find(|r| r[col("run_id")] == first_id).unwrap();
    let r_of = |seed: usize| -> f64 {
        let m = read(&out.join("runs").join(first_id).join(format!("seed-{seed}/metrics.csv")));
        let head: Vec<&str> = m.lines().next().unwrap().split(',').collect();
        let i = head.iter().position(|h| *h == "retained_pct").unwrap();
        m.lines().nth(1).unwrap().split(',').nth(i).unwrap().parse().unwrap()
    };
    let got: f64 = row[col("Percentage OOD retained")].parse().unwrap();
    assert!((got - (r_of(0) + r_of(1)) / 2.0).abs() < 1e-9, "{got}");
    assert_eq!(read(&out.join("study_metrics_seeds.csv")).lines().count(), 9);
    let configs = read(&out.join("study_configs.csv"));
    assert!(
        configs
            .lines()
            .any(|l| l.starts_with(first_id) && l.contains("mean_retained_pct,")),
        "{configs}"
    );

    // The baseline keeps both seeds of every configuration; the report lists the configurations.
    let base = dir.path().join("base.json");
    assert!(run(&["compare", s(&out), s(&base), "--record"]).status.success());
    let b = read_json(&base);
    assert_eq!(b["replicates"], 2);
    assert!(b["metrics"][0]["name"].as_str().unwrap().starts_with(first_id));
    assert_eq!(b["metrics"][0]["values"].as_array().unwrap().len(), 2);
    assert_eq!(run(&["compare", s(&out), s(&base)]).status.code(), Some(0));
    assert!(run(&["report", s(&out)]).status.success());
    assert!(read(&out.join("report.md")).contains("## Configurations across seeds"));

    // The same study without replicates into this folder would mix the layouts: refused.
    let o = run_to(&tiny_study(), &out, &["--quiet"]);
    refused(&o, &["holds replicates"]);
    assert!(out.join("runs").join(first_id).join("seed-1/done").is_file());
}
