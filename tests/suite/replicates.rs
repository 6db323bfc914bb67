//! Scenarios with replicates: seed folders with their own markers, resumption that never
//! overwrites a finished replicate, shards, and aggregates that equal what the per-seed files give.

use crate::common::{assert_files, ok, read, read_json, refused, run, run_to, s, scenario, tempdir, text};

use std::collections::BTreeMap;
use std::path::Path;

/// scipy 1.17.1: stats.t.ppf(0.975, 2), the 95% t-quantile for three seeds.
const T_975_DF2: f64 = 4.302_652_729_749_462;

/// Rows of a CSV file as header → cell maps.
fn csv(p: &Path) -> Vec<BTreeMap<String, String>> {
    let t = read(p);
    let mut lines = t.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            head.iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

/// Mean and 95% t-interval of three values.
fn mean_ci(v: &[f64]) -> (f64, f64, f64) {
    assert_eq!(v.len(), 3);
    let m = v.iter().sum::<f64>() / 3.0;
    let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 2.0).sqrt();
    let h = T_975_DF2 * sd / 3f64.sqrt();
    (m, m - h, m + h)
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
}

/// `row`'s `mean_col`, `ci_low` and `ci_high` are the mean and 95% t-interval of `values`.
fn assert_mean_ci(row: &BTreeMap<String, String>, mean_col: &str, values: &[f64]) {
    let (m, lo, hi) = mean_ci(values);
    close(num(row, mean_col), m);
    close(num(row, "ci_low"), lo);
    close(num(row, "ci_high"), hi);
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row[col].parse().unwrap_or_else(|_| panic!("{col} = {:?}", row[col]))
}

#[test]
fn replicates_resume_shard_and_aggregate() {
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("tiny");
    let tiny = scenario("tiny.toml");
    let args = ["run", s(&tiny), "--quiet", "--set", "replicates=3", "--out", s(&out)];
    ok(&run(&args));
    for k in 0..3 {
        assert!(out.join(format!("seed-{k}/done")).is_file(), "seed-{k}");
        assert!(out.join(format!("seed-{k}/probes.csv")).is_file());
    }
    assert_files(
        &out,
        &[
            "metrics_aggregate.csv",
            "probes_aggregate.csv",
            "tunnel_classes.csv",
            "aggregate.json",
            "curves.png",
            "curves.svg",
        ],
    );

    // Replicate 0 is the single-seed run.
    let single = tmp.path().join("single");
    ok(&run_to(&tiny, &single, &["--quiet"]));
    assert_eq!(read(&single.join("probes.csv")), read(&out.join("seed-0/probes.csv")));

    // Every aggregate is the mean and t-interval of the seeds' values.
    let agg = csv(&out.join("metrics_aggregate.csv"));
    let seeds: Vec<Vec<BTreeMap<String, String>>> = (0..3)
        .map(|k| csv(&out.join(format!("seed-{k}/metrics_all.csv"))))
        .collect();
    let mut checked = 0;
    for row in agg
        .iter()
        .filter(|r| r["ood_dataset"] == "texture" && r["metric"] == "retained_pct")
    {
        let values: Vec<f64> = seeds
            .iter()
            .map(|rows| {
                let r = rows
                    .iter()
                    .find(|r| r["model"] == row["model"] && r["probe"] == row["probe"])
                    .unwrap();
                num(r, "retained_pct")
            })
            .collect();
        assert_mean_ci(row, "mean", &values);
        assert_eq!(row["n"], "3");
        checked += 1;
    }
    assert_eq!(checked, 4, "trained and random-init, two probes");
    assert_eq!(
        std::fs::read(single.join("test_hits.bin")).unwrap(),
        std::fs::read(out.join("seed-0/test_hits.bin")).unwrap()
    );

    // r, ρ and A, per OOD set and as means, with their intervals over resamples of the test
    // images shared by the seeds; the other metrics without.
    let mut intervals = 0;
    for row in &agg {
        let ends = (row["test_low"].parse::<f64>(), row["test_high"].parse::<f64>());
        match row["metric"].as_str() {
            "retained_pct" | "pearson" | "alignment" => {
                if let (Ok(lo), Ok(hi)) = ends {
                    assert!(lo <= hi, "{row:?}");
                    intervals += 1;
                }
            }
            _ => assert_eq!(
                (row["test_low"].as_str(), row["test_high"].as_str()),
                ("", ""),
                "{row:?}"
            ),
        }
    }
    assert!(intervals >= 8, "{intervals} test-set intervals");
    let aggregate = read_json(&out.join("aggregate.json"));
    for net in aggregate["networks"].as_array().unwrap() {
        assert!(
            net["test_set"]["alignment"].as_array().is_some_and(|i| i.len() == 2),
            "{net}"
        );
    }

    // The trained network against its random-init control, paired by seed: per probe and mean
    // metric, the seeds' means and their difference, a paired t-test (3 seeds), Holm over the 6.
    let control = csv(&out.join("control_comparisons.csv"));
    assert_eq!(control.len(), 6, "two probes, three metrics");
    let summaries: Vec<serde_json::Value> = (0..3)
        .map(|k| read_json(&out.join(format!("seed-{k}/summary.json"))))
        .collect();
    let seed_means = |model: &str, probe: &str, key: &str| -> Vec<f64> {
        summaries
            .iter()
            .map(|sm| {
                let m = sm["means"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["model"] == model && m["probe"] == probe)
                    .unwrap();
                m[key].as_f64().unwrap()
            })
            .collect()
    };
    for row in &control {
        let key = format!("mean_{}", row["metric"]);
        let (a, b) = (
            seed_means("trained", &row["probe"], &key),
            seed_means("random-init", &row["probe"], &key),
        );
        close(num(row, "mean_trained"), mean_ci(&a).0);
        close(num(row, "mean_control"), mean_ci(&b).0);
        let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        assert_mean_ci(row, "mean_diff", &d);
        assert_eq!((row["n"].as_str(), row["test"].as_str()), ("3", "paired t"));
        assert!(num(row, "p_holm") >= num(row, "p"), "{row:?}");
    }

    // Running again skips every finished replicate and changes nothing.
    let done0 = read(&out.join("seed-0/done"));
    let o = run(&args);
    ok(&o);
    assert_eq!(
        text(&o.stderr).matches("done earlier").count(),
        3,
        "{}",
        text(&o.stderr)
    );
    assert_eq!(read(&out.join("seed-0/done")), done0);

    // An interrupted replicate (no marker) is run again from nothing, to the same bytes.
    let probes1 = read(&out.join("seed-1/probes.csv"));
    std::fs::remove_file(out.join("seed-1/done")).unwrap();
    std::fs::write(out.join("seed-1/probes.csv"), "half a file").unwrap();
    let o = run(&args);
    ok(&o);
    assert_eq!(text(&o.stderr).matches("done earlier").count(), 2);
    assert_eq!(read(&out.join("seed-1/probes.csv")), probes1);

    // Another scenario into the same folder: refused before any work, nothing overwritten.
    let o = run_to(
        &tiny,
        &out,
        &["--quiet", "--set", "replicates=3", "--set", "train.epochs=1"],
    );
    refused(&o, &["seed-0", "another scenario (train.epochs = 1 (finished: 2))"]);
    assert_eq!(read(&out.join("seed-0/done")), done0);
    // What names the run or bounds its memory is not another scenario: the replicates resume.
    let o = run_to(
        &tiny,
        &out,
        &[
            "--quiet",
            "--set",
            "replicates=3",
            "--set",
            "probe.extraction_batch=16",
            "--set",
            "description='smaller batches'",
        ],
    );
    ok(&o);
    assert_eq!(text(&o.stderr).matches("done earlier").count(), 3);
    assert_eq!(read(&out.join("seed-0/done")), done0);
    // A single-seed run into a folder of replicates, and replicates into a single run's folder.
    refused(&run_to(&tiny, &out, &["--quiet"]), &[]);
    refused(&run_to(&tiny, &single, &["--quiet", "--set", "replicates=3"]), &[]);

    // Shards: 0/2 runs seeds 0 and 2 and leaves the aggregate to whoever finishes last.
    let sharded = tmp.path().join("sharded");
    let shard = |i: &str| run_to(&tiny, &sharded, &["--quiet", "--set", "replicates=3", "--shard", i]);
    let o = shard("0/2");
    ok(&o);
    assert!(sharded.join("seed-0/done").is_file() && sharded.join("seed-2/done").is_file());
    assert!(!sharded.join("seed-1").exists());
    assert!(!sharded.join("metrics_aggregate.csv").exists());
    assert!(
        text(&o.stderr).contains("2 of 3 replicates finished"),
        "{}",
        text(&o.stderr)
    );
    // Collecting before the other shard says what is missing.
    let o = run(&["collect", s(&sharded)]);
    ok(&o);
    let err = text(&o.stderr);
    assert!(err.contains("2 of 3 replicates finished; not run: seed-1"), "{err}");
    ok(&run(&["report", s(&sharded)]));
    assert!(read(&sharded.join("report.md")).contains("Not run yet: seed-1 of the 3 replicates"));
    std::fs::remove_file(sharded.join("metrics_aggregate.csv")).unwrap();
    ok(&shard("1/2"));
    assert_eq!(
        read(&sharded.join("metrics_aggregate.csv")),
        read(&out.join("metrics_aggregate.csv"))
    );
    std::fs::remove_file(sharded.join("metrics_aggregate.csv")).unwrap();
    let o = run(&["collect", s(&sharded)]);
    ok(&o);
    assert!(!text(&o.stderr).contains("not run"), "{}", text(&o.stderr));
    assert!(sharded.join("metrics_aggregate.csv").is_file());

    // A baseline recorded from the replicates keeps every seed's value; the run passes it.
    let base = tmp.path().join("base.json");
    ok(&run(&["compare", s(&out), s(&base), "--record"]));
    let b = read_json(&base);
    assert_eq!(b["replicates"], 3);
    assert_eq!(b["metrics"][0]["values"].as_array().unwrap().len(), 3);
    let o = run(&["compare", s(&out), s(&base)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("verdict: NO CHANGE"), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("settings: the baseline's"),
        "{}",
        text(&o.stdout)
    );
    let o = run(&["compare", s(&out.join("seed-2")), s(&base)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    // A run of other settings is judged, and told to be another experiment.
    let other = tmp.path().join("other");
    ok(&run_to(&tiny, &other, &["--quiet", "--set", "train.lr=0.01"]));
    let o = run(&["compare", s(&other), s(&base)]);
    assert!(
        text(&o.stdout).contains(
            "warning: the run's settings differ from the baseline's in 1: train.lr = 0.01 (baseline: 0.003); the verdict compares different experiments"
        ),
        "{}",
        text(&o.stdout)
    );
    // Another run folder as the baseline: its replicates are the baseline, nothing is written.
    let o = run(&["compare", s(&other), s(&out)]);
    let said = text(&o.stdout);
    assert!(said.contains("baseline: 3 replicate(s)"), "{said}");
    assert!(said.contains("train.lr = 0.01 (baseline: 0.003)"), "{said}");
    refused(
        &run(&["compare", s(&other), s(&out), "--record"]),
        &["is a folder: --record writes a baseline file"],
    );
    // Recording over another scenario's baseline would lose it: refused, the file unchanged.
    let cl_base = tmp.path().join("cl-quick.json");
    std::fs::copy(crate::common::root().join("results/cl-quick.json"), &cl_base).unwrap();
    let before = read(&cl_base);
    refused(
        &run(&["compare", s(&out), s(&cl_base), "--record"]),
        &["cl-quick.json: holds the baseline of scenario `cl-quick`; recording `tiny` over it"],
    );
    assert_eq!(read(&cl_base), before);
}

/// Seeds run by a version without `test_hits.bin` aggregate as before, without test-set
/// intervals.
#[test]
fn seeds_without_test_hits_aggregate_without_test_set_intervals() {
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("tiny");
    let tiny = scenario("tiny.toml");
    ok(&run(&[
        "run",
        s(&tiny),
        "--quiet",
        "--set",
        "replicates=2",
        "--out",
        s(&out),
    ]));
    let with = csv(&out.join("metrics_aggregate.csv"));
    for k in 0..2 {
        std::fs::remove_file(out.join(format!("seed-{k}/test_hits.bin"))).unwrap();
    }
    ok(&run(&["collect", s(&out)]));
    let without = csv(&out.join("metrics_aggregate.csv"));
    assert_eq!(with.len(), without.len());
    for (a, b) in with.iter().zip(&without) {
        assert_eq!((&a["metric"], &a["mean"]), (&b["metric"], &b["mean"]));
        assert_eq!((b["test_low"].as_str(), b["test_high"].as_str()), ("", ""));
    }
    assert!(with.iter().any(|r| !r["test_low"].is_empty()));
}

#[test]
fn cl_aggregates_equal_the_per_seed_metrics() {
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("cl");
    // A published number to set the aggregate beside (one of another head setting is left out).
    let published = r#"continual.published=[
        {source = "a paper", heads = "shared", strategy = "finetune", metric = "acc", mean = 50.0, sem = 1.5, n = 10},
        {source = "a paper", heads = "multi", strategy = "finetune", metric = "acc", mean = 90.0, sem = 1.0, n = 10}]"#;
    let o = run_to(
        &scenario("tiny-cl.toml"),
        &out,
        &["--quiet", "--set", "replicates=3", "--set", published],
    );
    ok(&o);
    let agg = csv(&out.join("cl_aggregate.csv"));
    let per_seed: Vec<serde_json::Value> = (0..3)
        .map(|k| read_json(&out.join(format!("seed-{k}/cl_metrics.json"))))
        .collect();
    // Each replicate records what it ran: its resolved scenario (its own seed) and the backend.
    for (k, m) in per_seed.iter().enumerate() {
        assert_eq!(m["config"]["name"], "tiny-cl", "seed-{k}");
        assert!(m["backend"].as_str().is_some_and(|b| !b.is_empty()));
    }
    assert_ne!(per_seed[0]["config"]["seed"], per_seed[1]["config"]["seed"]);
    let mut checked = 0;
    for (i, variant) in per_seed[0]["variants"].as_array().unwrap().iter().enumerate() {
        for (eval, key) in [("task-aware", "task_aware"), ("task-agnostic", "task_agnostic")] {
            for metric in ["acc", "aia", "forgetting", "bwt", "fwt"] {
                let values: Vec<f64> = per_seed
                    .iter()
                    .filter_map(|j| j["variants"][i][key][metric].as_f64())
                    .collect();
                let row = agg.iter().find(|r| {
                    r["architecture"] == variant["architecture"].as_str().unwrap()
                        && r["variant"] == variant["variant"].as_str().unwrap()
                        && r["strategy"] == variant["strategy"].as_str().unwrap()
                        && r["eval"] == eval
                        && r["metric"] == metric
                });
                if values.len() < 3 {
                    // Undefined in some seed (FWT with task-specific heads, say): no row, or
                    // a row of the defined ones.
                    assert!(row.is_none_or(|r| num(r, "n") < 3.0));
                    continue;
                }
                let row = row.unwrap_or_else(|| panic!("no row for {variant} {eval} {metric}"));
                let (m, lo, hi) = mean_ci(&values);
                close(num(row, "mean"), m);
                if values.iter().any(|v| (v - m).abs() > 1e-12) {
                    close(num(row, "ci_low"), lo);
                    close(num(row, "ci_high"), hi);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "{checked} metrics checked");

    // The swap differences are paired by seed.
    let comps = csv(&out.join("cl_comparisons.csv"));
    let swap: Vec<Vec<BTreeMap<String, String>>> =
        (0..3).map(|k| csv(&out.join(format!("seed-{k}/swap.csv")))).collect();
    let row = comps
        .iter()
        .find(|r| r["kind"] == "swap" && r["a"] == "E1 + T2" && r["b"] == "E1 + T1")
        .unwrap();
    let d: Vec<f64> = swap
        .iter()
        .map(|rows| {
            let get = |c: &str| num(rows.iter().find(|r| r["combination"] == c).unwrap(), "task1_accuracy");
            get("E1 + T2") - get("E1 + T1")
        })
        .collect();
    assert_mean_ci(row, "mean_diff", &d);
    assert_eq!(row["test"], "paired t");
    assert!(read(&out.join("cl_claims.md")).contains("swap E1 + T2 vs E1 + T1"));
    // The stated claims are one family of tests: each one's p adjusted over them (Holm's
    // step-down, statsmodels' multipletests(method="holm")), the others left empty.
    let family: Vec<&BTreeMap<String, String>> = comps.iter().filter(|r| !r["p_holm"].is_empty()).collect();
    let m = family.len();
    let claims_md = read(&out.join("cl_claims.md"));
    assert!(
        m >= 3 && claims_md.contains(&format!("; Holm over {m}: p = ")),
        "{claims_md}"
    );
    let mut p: Vec<(f64, f64)> = family.iter().map(|r| (num(r, "p"), num(r, "p_holm"))).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut running = 0f64;
    for (rank, (raw, adjusted)) in p.iter().enumerate() {
        running = running.max(((m - rank) as f64 * raw).min(1.0));
        close(*adjusted, running);
    }

    // The published number beside the full network's aggregate: ours − published, with the
    // Welch interval of the difference from our standard error and the published SEM.
    let rows = csv(&out.join("published_comparison.csv"));
    assert_eq!(rows.len(), 1, "only the shared-head number applies");
    let (row, acc) = (
        &rows[0],
        agg.iter()
            .find(|r| {
                r["variant"] == "full"
                    && r["strategy"] == "finetune"
                    && r["eval"] == "task-agnostic"
                    && r["metric"] == "acc"
            })
            .unwrap(),
    );
    close(num(row, "mean"), 100.0 * num(acc, "mean"));
    close(num(row, "difference"), num(row, "mean") - 50.0);
    let se = ((100.0 * num(acc, "sd")).powi(2) / 3.0 + 1.5f64.powi(2)).sqrt();
    let half = num(row, "difference_ci_high") - num(row, "difference");
    close(num(row, "difference") - num(row, "difference_ci_low"), half);
    // The Welch interval is wider than ±1.96 s.e. and narrower than the t of 2 degrees of freedom.
    assert!(half > 1.96 * se && half < 4.31 * se, "{half} vs s.e. {se}");
    assert!(read(&out.join("cl_claims.md")).contains("Against published numbers"));
    assert!(text(&o.stderr).contains("claims (paired by seed; significance after Holm's adjustment over the claims)"));
}

/// An OOD label with a comma and quotes: the run's tables quote it, and the aggregates, `collect`,
/// `compare` and `report` read it back whole.
#[test]
fn labels_with_commas_and_quotes_survive_every_reader() {
    let tmp = tempdir().unwrap();
    let label = r#"a, "b""#;
    let sc = read(&scenario("tiny.toml")).replace(
        "[[ood]]\nkind = \"texture\"\n",
        "[[ood]]\nkind = \"texture\"\nlabel = 'a, \"b\"'\n",
    );
    assert!(sc.contains("label ="));
    let path = tmp.path().join("label.toml");
    std::fs::write(&path, sc).unwrap();
    let out = tmp.path().join("run");
    ok(&run_to(&path, &out, &["--quiet", "--set", "replicates=2"]));
    let column = |file: &Path, col: &str| -> Vec<String> {
        let mut rdr = csv::Reader::from_path(file).unwrap();
        let i = rdr.headers().unwrap().iter().position(|h| h == col).unwrap();
        rdr.records().map(|r| r.unwrap()[i].to_string()).collect()
    };
    for file in ["seed-0/metrics.csv", "seed-0/metrics_all.csv", "metrics_aggregate.csv"] {
        let labels = column(&out.join(file), "ood_dataset");
        assert!(labels.iter().any(|l| l == label), "{file}: {labels:?}");
    }
    assert!(
        column(&out.join("seed-1/probes.csv"), "dataset")
            .iter()
            .any(|l| l == label)
    );
    ok(&run(&["collect", s(&out)]));
    let base = tmp.path().join("base.json");
    ok(&run(&["compare", s(&out), s(&base), "--record"]));
    let o = run(&["compare", s(&out), s(&base), "--all"]);
    ok(&o);
    assert!(text(&o.stdout).contains(label), "{}", text(&o.stdout));
    // The report of the replicates and of one run (its curves come from probes.csv).
    for dir in [out.clone(), out.join("seed-0")] {
        ok(&run(&["report", s(&dir)]));
        assert!(dir.join("report.md").is_file());
    }
}

#[test]
fn two_architectures_make_a_leaderboard() {
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("cl");
    let archs =
        r#"continual.architectures=[{ name = "vggm-11", width = 0.0625 }, { name = "mlp", depth = 5, dim = 32 }]"#;
    ok(&run_to(
        &scenario("tiny-cl.toml"),
        &out,
        &["--quiet", "--set", "replicates=2", "--set", archs],
    ));
    let board = csv(&out.join("cl_leaderboard.csv"));
    // Two architectures × two strategies of the full network, ranked by ACC.
    assert_eq!(board.len(), 4);
    let accs: Vec<f64> = board.iter().map(|r| num(r, "acc")).collect();
    assert!(accs.windows(2).all(|w| w[0] >= w[1]), "{accs:?}");
    let agg = csv(&out.join("cl_aggregate.csv"));
    for r in &board {
        let mean = agg
            .iter()
            .find(|a| {
                a["architecture"] == r["architecture"]
                    && a["variant"] == "full"
                    && a["strategy"] == r["strategy"]
                    && a["eval"] == r["eval"]
                    && a["metric"] == "acc"
            })
            .map(|a| num(a, "mean"))
            .unwrap();
        close(num(r, "acc"), 100.0 * mean);
        // Every architecture's tunnel start, from its task-1 probe curve, within its layers.
        assert!(
            num(r, "tunnel_start") >= 1.0 && num(r, "tunnel_start") <= num(r, "layers"),
            "{r:?}"
        );
    }
}
