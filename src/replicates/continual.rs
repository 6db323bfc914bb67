//! The aggregates of a continual-learning scenario's replicates, computed again from each seed's
//! raw accuracies (`accuracy_matrix.csv`, `swap.csv`):
//!
//! - `cl_aggregate.csv`: `architecture, variant, strategy, eval, metric, n, mean, sd, ci_low,
//!   ci_high` for ACC, AIA, forgetting, BWT, FWT (where defined) and the plasticity R[j][j]
//!   (`plasticity`: its mean over tasks; `plasticity_task<j>`: each task);
//! - `cl_comparisons.csv`: the comparisons the papers make, paired by seed (truncated − full per
//!   strategy, every strategy − finetune, every architecture − the first, and the swap protocol's
//!   differences), each with the mean difference, its t- and bootstrap intervals, the paired test
//!   and Cliff's δ ([`Paired`]);
//! - `swap_aggregate.csv`: the swap table, mean across seeds with its interval;
//! - `cl_claims.md`: the comparisons stated as sentences, also printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::seed_dir;
use crate::error::{Error, Result};
use crate::metrics::continual::{ClMetrics, cl_metrics};
use crate::report::write_atomic;
use crate::stats::inference::Summary;
use crate::stats::paired::Paired;

/// A row of a run's `accuracy_matrix.csv`.
#[derive(Clone, Debug, Deserialize)]
struct MatrixRecord {
    architecture: String,
    variant: String,
    strategy: String,
    eval: String,
    after_task: usize,
    task: usize,
    accuracy: Option<f64>,
}

/// A row of a run's `swap.csv`.
#[derive(Clone, Debug, Deserialize)]
struct SwapRecord {
    combination: String,
    task1_accuracy: Option<f64>,
    task2_accuracy: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
struct MetricsFile {
    scenario: String,
    heads: String,
    #[serde(default)]
    swap_architecture: Option<String>,
}

/// (architecture, variant, strategy).
type Sequence = (String, String, String);

/// One replicate: per sequence and evaluation, its metrics by name; the swap rows.
struct Replicate {
    metrics: BTreeMap<(Sequence, String), BTreeMap<String, f64>>,
    swap: Vec<SwapRecord>,
}

fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| Error::input(path, e.to_string()))?;
    rdr.deserialize()
        .collect::<std::result::Result<Vec<T>, _>>()
        .map_err(|e| Error::input(path, format!("malformed row: {e}")))
}

fn value(v: &crate::metrics::tunnel::Value) -> f64 {
    if v.is_defined() { v.value } else { f64::NAN }
}

/// The metrics of one sequence's accuracy matrix `r` (after task i, on task j) with the
/// random-init accuracies `b`, as the run computed them.
fn metrics_of(r: &[Vec<f64>], b: &[f64], eval: &str, multi: bool) -> BTreeMap<String, f64> {
    let m: ClMetrics = match (eval, multi) {
        ("task-agnostic", true) => cl_metrics(r, None, true),
        _ => cl_metrics(r, Some(b), multi),
    };
    let mut out = BTreeMap::from([
        ("acc".to_string(), value(&m.acc)),
        ("aia".to_string(), value(&m.aia)),
        ("forgetting".to_string(), value(&m.forgetting)),
        ("bwt".to_string(), value(&m.bwt)),
        ("fwt".to_string(), value(&m.fwt)),
    ]);
    let diag: Vec<f64> = (0..r.len()).map(|j| r[j][j]).collect();
    for (j, v) in diag.iter().enumerate() {
        out.insert(format!("plasticity_task{}", j + 1), *v);
    }
    out.insert(
        "plasticity".to_string(),
        if diag.iter().all(|v| v.is_finite()) {
            diag.iter().sum::<f64>() / diag.len().max(1) as f64
        } else {
            f64::NAN
        },
    );
    out
}

fn read_replicate(out: &Path, k: usize, order: &mut Vec<Sequence>) -> Result<(Replicate, MetricsFile)> {
    let dir = seed_dir(out, k);
    let path = dir.join("cl_metrics.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let file: MetricsFile =
        serde_json::from_str(&text).map_err(|e| Error::input(&path, format!("not CL metrics: {e}")))?;
    let multi = file.heads == "multi";
    let rows: Vec<MatrixRecord> = read_csv(&dir.join("accuracy_matrix.csv"))?;
    let mut grouped: BTreeMap<(Sequence, String), Vec<&MatrixRecord>> = BTreeMap::new();
    for r in &rows {
        let seq = (r.architecture.clone(), r.variant.clone(), r.strategy.clone());
        if !order.contains(&seq) {
            order.push(seq.clone());
        }
        grouped.entry((seq, r.eval.clone())).or_default().push(r);
    }
    let mut metrics = BTreeMap::new();
    for ((seq, eval), recs) in grouped {
        let tasks = recs.iter().map(|r| r.task).max().unwrap_or(0);
        let mut r = vec![vec![f64::NAN; tasks]; tasks];
        let mut b = vec![f64::NAN; tasks];
        for rec in recs {
            let v = rec.accuracy.unwrap_or(f64::NAN);
            match rec.after_task {
                0 => b[rec.task - 1] = v,
                i if i <= tasks => r[i - 1][rec.task - 1] = v,
                _ => {}
            }
        }
        let m = metrics_of(&r, &b, &eval, multi);
        metrics.insert((seq, eval), m);
    }
    let swap_path = dir.join("swap.csv");
    let swap = if swap_path.is_file() {
        read_csv(&swap_path)?
    } else {
        Vec::new()
    };
    Ok((Replicate { metrics, swap }, file))
}

/// A row of `cl_aggregate.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClAggregateRow {
    pub architecture: String,
    pub variant: String,
    pub strategy: String,
    pub eval: String,
    pub metric: String,
    pub n: usize,
    pub mean: f64,
    pub sd: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

/// One comparison: what is compared, and the result.
#[derive(Clone, Debug)]
pub struct ComparisonRow {
    pub kind: &'static str,
    pub a: String,
    pub b: String,
    pub architecture: String,
    pub variant: String,
    pub strategy: String,
    pub eval: String,
    pub metric: String,
    pub paired: Paired,
}

/// A row of `cl_comparisons.csv` (an undefined number is an empty cell).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComparisonRecord {
    pub kind: String,
    pub a: String,
    pub b: String,
    pub architecture: String,
    pub variant: String,
    pub strategy: String,
    pub eval: String,
    pub metric: String,
    pub n: usize,
    pub mean_a: Option<f64>,
    pub mean_b: Option<f64>,
    pub mean_diff: Option<f64>,
    pub sd_diff: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub boot_low: Option<f64>,
    pub boot_high: Option<f64>,
    pub test: String,
    pub p: Option<f64>,
    pub p_t: Option<f64>,
    pub p_wilcoxon: Option<f64>,
    pub cliffs_delta: Option<f64>,
}

impl ComparisonRow {
    fn record(&self) -> ComparisonRecord {
        let p = &self.paired;
        ComparisonRecord {
            kind: self.kind.to_string(),
            a: self.a.clone(),
            b: self.b.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
            strategy: self.strategy.clone(),
            eval: self.eval.clone(),
            metric: self.metric.clone(),
            n: p.n,
            mean_a: finite(p.mean_a),
            mean_b: finite(p.mean_b),
            mean_diff: finite(p.mean_diff),
            sd_diff: finite(p.sd_diff),
            ci_low: finite(p.ci_low),
            ci_high: finite(p.ci_high),
            boot_low: finite(p.boot_low),
            boot_high: finite(p.boot_high),
            test: p.test.name().to_string(),
            p: finite(p.p),
            p_t: finite(p.p_t),
            p_wilcoxon: finite(p.p_wilcoxon),
            cliffs_delta: finite(p.cliffs_delta),
        }
    }
}

/// A row of `swap_aggregate.csv`.
#[derive(Clone, Debug, Serialize)]
struct SwapAggregateRow {
    combination: String,
    task: usize,
    n: usize,
    mean: Option<f64>,
    sd: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn csv_bytes<T: Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| Error::Internal(format!("csv: {e}")))?;
    }
    w.into_inner().map_err(|e| Error::Internal(format!("csv: {e}")))
}

/// The swap protocol's differences: (a, b, task), as [H24] Table 2 reads them.
const SWAP_COMPARISONS: [(&str, &str, usize); 3] = [
    ("E1 + T2", "E1 + T1", 1),
    ("E2 + T1", "E2 + T2", 2),
    ("E2 + T1 (FT)", "E2 (FT)", 1),
];

/// The evaluations in the order they are reported.
const EVALS: [&str; 2] = ["task-aware", "task-agnostic"];

/// The metrics compared, in the order they are reported.
const COMPARED: [&str; 6] = ["acc", "aia", "forgetting", "bwt", "fwt", "plasticity"];

/// Writes the aggregates of replicates `ks` of `out`; returns the printed summary.
pub fn aggregate(out: &Path, ks: &[usize]) -> Result<String> {
    let mut order: Vec<Sequence> = Vec::new();
    let mut reps = Vec::new();
    let mut file = None;
    for &k in ks {
        let (r, f) = read_replicate(out, k, &mut order)?;
        reps.push(r);
        file.get_or_insert(f);
    }
    let file = file.ok_or_else(|| Error::Internal("no replicate".into()))?;
    let series = |seq: &Sequence, eval: &str, metric: &str| -> Vec<f64> {
        reps.iter()
            .map(|r| {
                r.metrics
                    .get(&(seq.clone(), eval.to_string()))
                    .and_then(|m| m.get(metric).copied())
                    .unwrap_or(f64::NAN)
            })
            .collect()
    };

    // cl_aggregate.csv
    let mut rows = Vec::new();
    for seq in &order {
        for eval in EVALS {
            let names: Vec<String> = reps
                .iter()
                .find_map(|r| r.metrics.get(&(seq.clone(), eval.to_string())))
                .map(|m| {
                    let mut names: Vec<String> = COMPARED.iter().map(|s| s.to_string()).collect();
                    names.extend(m.keys().filter(|k| k.starts_with("plasticity_task")).cloned());
                    names
                })
                .unwrap_or_default();
            for metric in names {
                let s = Summary::of(&series(seq, eval, &metric));
                if s.n == 0 {
                    continue;
                }
                rows.push(ClAggregateRow {
                    architecture: seq.0.clone(),
                    variant: seq.1.clone(),
                    strategy: seq.2.clone(),
                    eval: eval.to_string(),
                    metric,
                    n: s.n,
                    mean: s.mean,
                    sd: finite(s.sd),
                    ci_low: finite(s.ci_low),
                    ci_high: finite(s.ci_high),
                });
            }
        }
    }
    write_atomic(&out.join("cl_aggregate.csv"), &csv_bytes(&rows)?)?;

    // cl_comparisons.csv
    let mut comps: Vec<ComparisonRow> = Vec::new();
    let archs: Vec<String> = order.iter().fold(Vec::new(), |mut v, s| {
        if !v.contains(&s.0) {
            v.push(s.0.clone());
        }
        v
    });
    let mut compare = |kind: &'static str, a: &Sequence, b: &Sequence, (x, y): (&str, &str), ctx: [&str; 3]| {
        for eval in EVALS {
            for metric in COMPARED {
                let (va, vb) = (series(a, eval, metric), series(b, eval, metric));
                let key = format!("{kind}:{x}:{y}:{}:{eval}:{metric}", ctx.join(":"));
                let paired = Paired::of(&va, &vb, crate::seed::fnv1a(key.as_bytes()));
                if paired.n == 0 {
                    continue;
                }
                comps.push(ComparisonRow {
                    kind,
                    a: x.to_string(),
                    b: y.to_string(),
                    architecture: ctx[0].to_string(),
                    variant: ctx[1].to_string(),
                    strategy: ctx[2].to_string(),
                    eval: eval.to_string(),
                    metric: metric.to_string(),
                    paired,
                });
            }
        }
    };
    for full in order.iter().filter(|s| s.1 == "full") {
        let truncated = (full.0.clone(), "truncated".to_string(), full.2.clone());
        if order.contains(&truncated) {
            compare(
                "truncation",
                &truncated,
                full,
                ("truncated", "full"),
                [&full.0, "", &full.2],
            );
        }
    }
    for seq in order.iter().filter(|s| s.2 != "finetune") {
        let finetune = (seq.0.clone(), seq.1.clone(), "finetune".to_string());
        if order.contains(&finetune) {
            compare("strategy", seq, &finetune, (&seq.2, "finetune"), [&seq.0, &seq.1, ""]);
        }
    }
    if let Some(first) = archs.first() {
        for seq in order.iter().filter(|s| &s.0 != first) {
            let base = (first.clone(), seq.1.clone(), seq.2.clone());
            if order.contains(&base) {
                compare("architecture", seq, &base, (&seq.0, first), ["", &seq.1, &seq.2]);
            }
        }
    }
    let swap_arch = file.swap_architecture.clone().unwrap_or_default();
    let swap_value = |r: &Replicate, combination: &str, task: usize| -> f64 {
        r.swap
            .iter()
            .find(|s| s.combination == combination)
            .and_then(|s| if task == 1 { s.task1_accuracy } else { s.task2_accuracy })
            .unwrap_or(f64::NAN)
    };
    if reps.iter().any(|r| !r.swap.is_empty()) {
        for (a, b, task) in SWAP_COMPARISONS {
            let va: Vec<f64> = reps.iter().map(|r| swap_value(r, a, task)).collect();
            let vb: Vec<f64> = reps.iter().map(|r| swap_value(r, b, task)).collect();
            let key = format!("swap:{a}:{b}:{task}");
            comps.push(ComparisonRow {
                kind: "swap",
                a: a.to_string(),
                b: b.to_string(),
                architecture: swap_arch.clone(),
                variant: "full".into(),
                strategy: "finetune".into(),
                eval: "task-aware".into(),
                metric: format!("task{task}_accuracy"),
                paired: Paired::of(&va, &vb, crate::seed::fnv1a(key.as_bytes())),
            });
        }
    }
    let records: Vec<ComparisonRecord> = comps.iter().map(ComparisonRow::record).collect();
    write_atomic(&out.join("cl_comparisons.csv"), &csv_bytes(&records)?)?;

    // swap_aggregate.csv
    let mut swap_rows = Vec::new();
    if let Some(first) = reps.iter().find(|r| !r.swap.is_empty()) {
        for s in &first.swap {
            for task in [1, 2] {
                let v: Vec<f64> = reps.iter().map(|r| swap_value(r, &s.combination, task)).collect();
                let sum = Summary::of(&v);
                swap_rows.push(SwapAggregateRow {
                    combination: s.combination.clone(),
                    task,
                    n: sum.n,
                    mean: finite(sum.mean),
                    sd: finite(sum.sd),
                    ci_low: finite(sum.ci_low),
                    ci_high: finite(sum.ci_high),
                });
            }
        }
        write_atomic(&out.join("swap_aggregate.csv"), &csv_bytes(&swap_rows)?)?;
    }

    let claims = claims(&comps);
    let mut md = format!(
        "# {}: claims over {} seeds\n\nDifferences in points (accuracies × 100), mean over seeds ± half-width of its 95% t-interval; the test is paired by seed (paired t below 6 seeds, Wilcoxon signed-rank from 6).\n\n",
        file.scenario,
        ks.len()
    );
    for c in &claims {
        let _ = writeln!(md, "- {c}");
    }
    write_atomic(&out.join("cl_claims.md"), md.as_bytes())?;
    Ok(text(out, &file, ks, &rows, &swap_rows, &claims))
}

/// The evaluation a sequence's headline numbers use: task-agnostic where defined (a shared
/// head), task-aware otherwise (task-specific heads).
fn main_eval(rows: &[ClAggregateRow], seq: &Sequence) -> &'static str {
    let agnostic = rows
        .iter()
        .any(|r| r.architecture == seq.0 && r.variant == seq.1 && r.strategy == seq.2 && r.eval == "task-agnostic");
    if agnostic { "task-agnostic" } else { "task-aware" }
}

/// The comparisons worth a sentence: forgetting, ACC and plasticity of truncated − full and of
/// each strategy − finetune, forgetting across architectures, and the swap protocol.
fn claims(comps: &[ComparisonRow]) -> Vec<String> {
    let mut out = Vec::new();
    let eval_of = |c: &ComparisonRow| -> bool {
        // One evaluation per comparison: task-agnostic where it is defined, else task-aware.
        let agnostic_exists = comps.iter().any(|o| {
            o.kind == c.kind
                && o.a == c.a
                && o.b == c.b
                && o.architecture == c.architecture
                && o.variant == c.variant
                && o.strategy == c.strategy
                && o.metric == c.metric
                && o.eval == "task-agnostic"
        });
        c.eval == if agnostic_exists { "task-agnostic" } else { "task-aware" }
    };
    let name = |m: &str| {
        match m {
            "acc" => "ACC",
            "forgetting" => "forgetting",
            other => other,
        }
        .to_string()
    };
    for c in comps.iter().filter(|c| eval_of(c)) {
        let wanted = match c.kind {
            "truncation" | "strategy" => ["forgetting", "acc", "plasticity"].contains(&c.metric.as_str()),
            "architecture" => c.metric == "forgetting",
            _ => true,
        };
        if !wanted || c.paired.n == 0 {
            continue;
        }
        let what = match c.kind {
            "swap" => format!(
                "swap {} vs {} ({}): {}",
                c.a,
                c.b,
                c.architecture,
                c.metric.replace("_accuracy", " accuracy").replace("task", "task ")
            ),
            "truncation" => format!(
                "{} {}: truncated − full, {} ({})",
                c.architecture,
                c.strategy,
                name(&c.metric),
                c.eval
            ),
            "strategy" => format!(
                "{} {}: {} − finetune, {} ({})",
                c.architecture,
                c.variant,
                c.a,
                name(&c.metric),
                c.eval
            ),
            _ => format!(
                "{} {}: {} − {}, {} ({})",
                c.variant,
                c.strategy,
                c.a,
                c.b,
                name(&c.metric),
                c.eval
            ),
        };
        out.push(format!("{what} {}", c.paired.text(100.0, " points")));
    }
    out
}

fn text(
    out: &Path,
    file: &MetricsFile,
    ks: &[usize],
    rows: &[ClAggregateRow],
    swap: &[SwapAggregateRow],
    claims: &[String],
) -> String {
    let mut s = format!(
        "\n== {} — {} replicates ==\n{:<18}{:<11}{:<10}{:<15}{:>15}{:>15}{:>15}{:>15}\n",
        file.scenario,
        ks.len(),
        "architecture",
        "variant",
        "strategy",
        "eval",
        "ACC",
        "forgetting",
        "BWT",
        "plasticity"
    );
    let mut seen: Vec<Sequence> = Vec::new();
    for r in rows {
        let seq = (r.architecture.clone(), r.variant.clone(), r.strategy.clone());
        if seen.contains(&seq) {
            continue;
        }
        let eval = main_eval(rows, &seq);
        let cell = |metric: &str| {
            rows.iter()
                .find(|x| {
                    x.architecture == seq.0
                        && x.variant == seq.1
                        && x.strategy == seq.2
                        && x.eval == eval
                        && x.metric == metric
                })
                .map(|x| {
                    Summary {
                        n: x.n,
                        mean: x.mean,
                        sd: x.sd.unwrap_or(f64::NAN),
                        ci_low: f64::NAN,
                        ci_high: f64::NAN,
                    }
                    .text(100.0, 1)
                })
                .unwrap_or_else(|| "–".into())
        };
        let _ = writeln!(
            s,
            "{:<18}{:<11}{:<10}{:<15}{:>15}{:>15}{:>15}{:>15}",
            seq.0,
            seq.1,
            seq.2,
            eval,
            cell("acc"),
            cell("forgetting"),
            cell("bwt"),
            cell("plasticity")
        );
        seen.push(seq);
    }
    s.push_str("(in %, mean ± half-width of the 95% interval across seeds)\n");
    if !swap.is_empty() {
        s.push_str("\nswap protocol (accuracy %, mean ± half-width)\n");
        let combos: Vec<&str> = swap.iter().fold(Vec::new(), |mut v, r| {
            if !v.contains(&r.combination.as_str()) {
                v.push(&r.combination);
            }
            v
        });
        for c in combos {
            let cell = |task: usize| {
                swap.iter()
                    .find(|r| r.combination == c && r.task == task)
                    .and_then(|r| {
                        r.mean.map(|m| {
                            Summary {
                                n: r.n,
                                mean: m,
                                sd: r.sd.unwrap_or(f64::NAN),
                                ci_low: f64::NAN,
                                ci_high: f64::NAN,
                            }
                            .text(100.0, 1)
                        })
                    })
                    .unwrap_or_else(|| "–".into())
            };
            let _ = writeln!(s, "  {c:<14} task 1 {:>13}   task 2 {:>13}", cell(1), cell(2));
        }
    }
    if !claims.is_empty() {
        s.push_str("\nclaims (paired by seed):\n");
        for c in claims {
            let _ = writeln!(s, "- {c}");
        }
    }
    let _ = writeln!(
        s,
        "results: {} (seed-*/ per replicate; cl_aggregate.csv, cl_comparisons.csv, cl_claims.md)",
        out.display()
    );
    s
}
