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
//! - `published_comparison.csv`: where the scenario names published numbers, each beside the
//!   replicates' mean, with the difference, its Welch interval and test;
//! - `cl_claims.md`: the comparisons stated as sentences, also printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::leaderboard::{TunnelStarts, leaderboard, tunnel_starts};
use super::published::{PublishedRow, published_rows};
use super::seed_dir;
use crate::cl::ClMetricsFile;
use crate::error::{Error, Result};
use crate::metrics::continual::{ClMetrics, cl_metrics};
use crate::results::{MatrixRecord, SwapRecord, csv_bytes, read_csv, write_atomic};
use crate::scenario::continual::{CL_METRICS, Heads};
use crate::stats::describe::finite;
use crate::stats::inference::Summary;
use crate::stats::paired::Paired;

/// (architecture, variant, strategy).
type Sequence = (String, String, String);

/// One replicate: per sequence and evaluation, its metrics by name; the swap rows.
struct Replicate {
    metrics: BTreeMap<(Sequence, String), BTreeMap<String, f64>>,
    swap: Vec<SwapRecord>,
    tunnel_starts: TunnelStarts,
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
        ("plasticity".to_string(), value(&m.plasticity)),
        ("relative_forgetting".to_string(), value(&m.relative_forgetting)),
    ]);
    for (j, row) in r.iter().enumerate() {
        out.insert(format!("plasticity_task{}", j + 1), row[j]);
    }
    out
}

fn read_replicate(out: &Path, k: usize, order: &mut Vec<Sequence>) -> Result<(Replicate, ClMetricsFile)> {
    let dir = seed_dir(out, k);
    let path = dir.join("cl_metrics.json");
    let file: ClMetricsFile = crate::json::read(&path, "CL metrics")?;
    let multi = file.run.heads == Heads::Multi;
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
    let tunnel_starts = tunnel_starts(&dir)?;
    Ok((
        Replicate {
            metrics,
            swap,
            tunnel_starts,
        },
        file,
    ))
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

/// A row of `cl_comparisons.csv`: what is compared, and the result (an undefined number is an
/// empty cell).
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
    /// `p` adjusted (Holm) over the comparisons stated in `cl_claims.md`; empty for the others.
    #[serde(default)]
    pub p_holm: Option<f64>,
}

/// What a comparison compares: its kind, the two sides, and the context
/// `[architecture, variant, strategy, eval, metric]`.
struct Compared<'a> {
    kind: &'a str,
    a: &'a str,
    b: &'a str,
    context: [&'a str; 5],
}

/// One comparison, as a row and as the result it states.
pub(super) type Comparison = (ComparisonRecord, Paired);

impl Compared<'_> {
    /// Compares `a[k]` with `b[k]`, the bootstrap seeded by what is compared.
    fn of(&self, a: &[f64], b: &[f64]) -> Comparison {
        let [architecture, variant, strategy, eval, metric] = self.context.map(str::to_string);
        let key = format!("{}:{}:{}:{}", self.kind, self.a, self.b, self.context.join(":"));
        let p = Paired::of(a, b, crate::seed::fnv1a(key.as_bytes()));
        let record = ComparisonRecord {
            kind: self.kind.to_string(),
            a: self.a.to_string(),
            b: self.b.to_string(),
            architecture,
            variant,
            strategy,
            eval,
            metric,
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
            p_holm: None,
        };
        (record, p)
    }
}

/// A row of `swap_aggregate.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SwapAggregateRow {
    combination: String,
    task: usize,
    n: usize,
    mean: Option<f64>,
    sd: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
}

/// The swap protocol's differences: (a, b, task), as [H24] Table 2 reads them.
const SWAP_COMPARISONS: [(&str, &str, usize); 3] = [
    ("E1 + T2", "E1 + T1", 1),
    ("E2 + T1", "E2 + T2", 2),
    ("E2 + T1 (FT)", "E2 (FT)", 1),
];

/// The evaluations in the order they are reported.
const EVALS: [&str; 2] = ["task-aware", "task-agnostic"];

/// The replicates of a run: every sequence (in the order first seen) and each seed's results.
struct Seeds {
    order: Vec<Sequence>,
    reps: Vec<Replicate>,
    file: ClMetricsFile,
}

impl Seeds {
    fn read(out: &Path, ks: &[usize]) -> Result<Seeds> {
        let mut order: Vec<Sequence> = Vec::new();
        let mut reps = Vec::new();
        let mut file = None;
        for &k in ks {
            let (r, f) = read_replicate(out, k, &mut order)?;
            reps.push(r);
            file.get_or_insert(f);
        }
        let file = file.ok_or_else(|| Error::Internal("no replicate to aggregate".into()))?;
        Ok(Seeds { order, reps, file })
    }

    /// One metric of one sequence and evaluation, per seed (NaN where undefined).
    fn series(&self, seq: &Sequence, eval: &str, metric: &str) -> Vec<f64> {
        self.reps
            .iter()
            .map(|r| {
                r.metrics
                    .get(&(seq.clone(), eval.to_string()))
                    .and_then(|m| m.get(metric).copied())
                    .unwrap_or(f64::NAN)
            })
            .collect()
    }

    /// One swap combination's accuracy on `task`, per seed.
    fn swap_series(&self, combination: &str, task: usize) -> Vec<f64> {
        self.reps
            .iter()
            .map(|r| {
                r.swap
                    .iter()
                    .find(|s| s.combination == combination)
                    .and_then(|s| if task == 1 { s.task1_accuracy } else { s.task2_accuracy })
                    .unwrap_or(f64::NAN)
            })
            .collect()
    }

    /// `cl_aggregate.csv`: every metric defined in at least one seed.
    fn aggregate_rows(&self) -> Vec<ClAggregateRow> {
        let mut rows = Vec::new();
        for seq in &self.order {
            for eval in EVALS {
                let Some(first) = self
                    .reps
                    .iter()
                    .find_map(|r| r.metrics.get(&(seq.clone(), eval.to_string())))
                else {
                    continue;
                };
                let mut names: Vec<String> = CL_METRICS.iter().map(|s| s.to_string()).collect();
                names.extend(first.keys().filter(|k| k.starts_with("plasticity_task")).cloned());
                for metric in names {
                    let s = Summary::of(&self.series(seq, eval, &metric));
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
        rows
    }

    /// Every metric of sequence `a` against sequence `b`, both evaluations, paired by seed.
    fn compare(
        &self,
        kind: &str,
        (a, b): (&Sequence, &Sequence),
        names: (&str, &str),
        ctx: [&str; 3],
    ) -> Vec<Comparison> {
        let mut out = Vec::new();
        for eval in EVALS {
            for metric in CL_METRICS {
                let what = Compared {
                    kind,
                    a: names.0,
                    b: names.1,
                    context: [ctx[0], ctx[1], ctx[2], eval, metric],
                };
                let c = what.of(&self.series(a, eval, metric), &self.series(b, eval, metric));
                if c.1.n > 0 {
                    out.push(c);
                }
            }
        }
        out
    }

    /// `cl_comparisons.csv`: truncated − full, strategy − finetune, architecture − the first, and
    /// the swap protocol's differences.
    fn comparisons(&self) -> Vec<Comparison> {
        let order = &self.order;
        let has = |s: &Sequence| order.contains(s);
        let mut comps = Vec::new();
        // Every truncated network (one, or one per depth of a sweep) against the full one.
        for full in order.iter().filter(|s| s.1 == "full") {
            for truncated in order
                .iter()
                .filter(|s| s.0 == full.0 && s.2 == full.2 && s.1.starts_with("truncated"))
            {
                let ctx = [full.0.as_str(), "", &full.2];
                comps.extend(self.compare("truncation", (truncated, full), (&truncated.1, "full"), ctx));
            }
        }
        for seq in order.iter().filter(|s| s.2 != "finetune") {
            let finetune = (seq.0.clone(), seq.1.clone(), "finetune".to_string());
            if has(&finetune) {
                let ctx = [seq.0.as_str(), &seq.1, ""];
                comps.extend(self.compare("strategy", (seq, &finetune), (&seq.2, "finetune"), ctx));
            }
        }
        if let Some(first) = order.first().map(|s| s.0.clone()) {
            for seq in order.iter().filter(|s| s.0 != first) {
                let base = (first.clone(), seq.1.clone(), seq.2.clone());
                if has(&base) {
                    let ctx = ["", seq.1.as_str(), &seq.2];
                    comps.extend(self.compare("architecture", (seq, &base), (&seq.0, &first), ctx));
                }
            }
        }
        if self.reps.iter().any(|r| !r.swap.is_empty()) {
            let arch = self.file.swap_architecture.clone().unwrap_or_default();
            for (a, b, task) in SWAP_COMPARISONS {
                let metric = format!("task{task}_accuracy");
                let what = Compared {
                    kind: "swap",
                    a,
                    b,
                    context: [&arch, "full", "finetune", "task-aware", &metric],
                };
                comps.push(what.of(&self.swap_series(a, task), &self.swap_series(b, task)));
            }
        }
        comps
    }

    /// `swap_aggregate.csv`: every combination's accuracy on each task across seeds.
    fn swap_rows(&self) -> Vec<SwapAggregateRow> {
        let Some(first) = self.reps.iter().find(|r| !r.swap.is_empty()) else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for s in &first.swap {
            for task in [1, 2] {
                let sum = Summary::of(&self.swap_series(&s.combination, task));
                rows.push(SwapAggregateRow {
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
        rows
    }
}

/// Writes the aggregates of replicates `ks` of `out`; returns the printed summary.
pub fn aggregate(out: &Path, ks: &[usize]) -> Result<String> {
    let seeds = Seeds::read(out, ks)?;
    let rows = seeds.aggregate_rows();
    write_atomic(&out.join("cl_aggregate.csv"), &csv_bytes(&rows)?)?;
    let mut comps = seeds.comparisons();
    let claims = claims(&mut comps);
    let records: Vec<ComparisonRecord> = comps.iter().map(|(r, _)| r.clone()).collect();
    write_atomic(&out.join("cl_comparisons.csv"), &csv_bytes(&records)?)?;
    let swap_rows = seeds.swap_rows();
    if !swap_rows.is_empty() {
        write_atomic(&out.join("swap_aggregate.csv"), &csv_bytes(&swap_rows)?)?;
    }
    // The headline evaluation: task-aware with task heads, task-agnostic with a shared head.
    let main = if seeds.file.run.heads == Heads::Multi {
        "task-aware"
    } else {
        "task-agnostic"
    };
    let published = published_rows(&seeds.file, &rows, main);
    if !published.is_empty() {
        write_atomic(&out.join("published_comparison.csv"), &csv_bytes(&published)?)?;
    }
    let beside: Vec<String> = published.iter().map(PublishedRow::sentence).collect();
    let papers = super::papers::paper_claims(&comps, main);
    let starts: Vec<TunnelStarts> = seeds.reps.iter().map(|r| r.tunnel_starts.clone()).collect();
    let board = leaderboard(&rows, &starts, main);
    if !board.is_empty() {
        write_atomic(&out.join("cl_leaderboard.csv"), &csv_bytes(&board)?)?;
    }
    let mut md = format!(
        "# {}: claims over {} seeds\n\nDifferences in points (accuracies × 100), mean over seeds ± half-width of its 95% t-interval; the test is paired by seed (paired t below 6 seeds, Wilcoxon signed-rank from 6), and its p-value adjusted over the claims below (Holm) says whether the difference is significant.\n\n",
        seeds.file.run.scenario,
        ks.len()
    );
    for c in &claims {
        let _ = writeln!(md, "- {c}");
    }
    if !papers.is_empty() {
        md.push_str("\n## The papers' claims\n\nDoes the tunnel cause forgetting (Masarczyk et al. 2023, [M23]) or limit it (Harun et al. 2024, [H24])? Each comparison either paper makes a prediction about, paired by seed; a difference counts where its test is significant at the 5% level after Holm's adjustment over these tests.\n\n");
        for c in &papers {
            let _ = writeln!(md, "- {c}");
        }
    }
    if !beside.is_empty() {
        md.push_str("\n## Against published numbers\n\nOurs − published, with the 95% Welch interval of the difference (our seeds' standard error and the published SEM).\n\n");
        for c in &beside {
            let _ = writeln!(md, "- {c}");
        }
    }
    write_atomic(&out.join("cl_claims.md"), md.as_bytes())?;
    let mut printed = text(out, &seeds.file, ks, &rows, &swap_rows, [&claims, &papers, &beside]);
    if !board.is_empty() {
        // After the table of every sequence.
        let at = printed.find(TABLE_END).map_or(0, |i| i + TABLE_END.len());
        printed.insert_str(at, &super::leaderboard::text(&board));
    }
    Ok(printed)
}

/// The last line of the printed table of every sequence.
const TABLE_END: &str = "(in %, mean ± half-width of the 95% interval across seeds)\n";

/// The evaluation a sequence's headline numbers use: task-agnostic where defined (a shared
/// head), task-aware otherwise (task-specific heads).
fn main_eval(rows: &[ClAggregateRow], seq: &Sequence) -> &'static str {
    let agnostic = rows
        .iter()
        .any(|r| r.architecture == seq.0 && r.variant == seq.1 && r.strategy == seq.2 && r.eval == "task-agnostic");
    if agnostic { "task-agnostic" } else { "task-aware" }
}

/// The comparisons worth a sentence: forgetting, ACC and plasticity of truncated − full and of
/// each strategy − finetune, forgetting across architectures, and the swap protocol; each in one
/// evaluation, task-agnostic where it is defined (a shared head), task-aware otherwise. They are
/// one family of tests: each is judged by its p-value adjusted over them (Holm), which is stored
/// in its record's `p_holm`.
fn claims(comps: &mut [Comparison]) -> Vec<String> {
    let same = |x: &ComparisonRecord, y: &ComparisonRecord| {
        (&x.kind, &x.a, &x.b, &x.architecture, &x.variant, &x.strategy, &x.metric)
            == (&y.kind, &y.a, &y.b, &y.architecture, &y.variant, &y.strategy, &y.metric)
    };
    let mut stated = Vec::new();
    for (i, (c, _)) in comps.iter().enumerate() {
        let agnostic = comps.iter().any(|(o, _)| same(o, c) && o.eval == "task-agnostic");
        let wanted = match c.kind.as_str() {
            "truncation" | "strategy" => ["forgetting", "acc", "plasticity"].contains(&c.metric.as_str()),
            "architecture" => c.metric == "forgetting",
            _ => true,
        };
        if !wanted || c.eval != if agnostic { "task-agnostic" } else { "task-aware" } {
            continue;
        }
        let metric = if c.metric == "acc" { "ACC" } else { c.metric.as_str() };
        let what = match c.kind.as_str() {
            "swap" => format!(
                "swap {} vs {} ({}): {}",
                c.a,
                c.b,
                c.architecture,
                c.metric.replace("_accuracy", " accuracy").replace("task", "task ")
            ),
            "truncation" => format!(
                "{} {}: {} − full, {metric} ({})",
                c.architecture, c.strategy, c.a, c.eval
            ),
            "strategy" => format!(
                "{} {}: {} − finetune, {metric} ({})",
                c.architecture, c.variant, c.a, c.eval
            ),
            _ => format!("{} {}: {} − {}, {metric} ({})", c.variant, c.strategy, c.a, c.b, c.eval),
        };
        stated.push((i, what));
    }
    let raw: Vec<f64> = stated.iter().map(|&(i, _)| comps[i].1.p).collect();
    let adjusted = crate::stats::inference::holm(&raw);
    let m = raw.iter().filter(|p| !p.is_nan()).count();
    let mut out = Vec::new();
    for ((i, what), p_holm) in stated.into_iter().zip(adjusted) {
        let (record, p) = &mut comps[i];
        record.p_holm = finite(p_holm);
        out.push(format!("{what} {}", p.text_in_family(100.0, 1, " points", p_holm, m)));
    }
    out
}

fn text(
    out: &Path,
    file: &ClMetricsFile,
    ks: &[usize],
    rows: &[ClAggregateRow],
    swap: &[SwapAggregateRow],
    [claims, papers, beside]: [&[String]; 3],
) -> String {
    // Columns as wide as their longest name, and a space.
    let width = |name: &str, of: fn(&ClAggregateRow) -> &str| {
        rows.iter()
            .map(|r| of(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(name.len())
            + 1
    };
    let (wa, wv, ws) = (
        width("architecture", |r| &r.architecture),
        width("variant", |r| &r.variant),
        width("strategy", |r| &r.strategy),
    );
    let mut s = format!(
        "\n== {} — {} replicates ==\n{:<wa$}{:<wv$}{:<ws$}{:<15}{:>15}{:>15}{:>15}{:>15}\n",
        file.run.scenario,
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
            "{:<wa$}{:<wv$}{:<ws$}{:<15}{:>15}{:>15}{:>15}{:>15}",
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
    s.push_str(TABLE_END);
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
        s.push_str("\nclaims (paired by seed; significance after Holm's adjustment over the claims):\n");
        for c in claims {
            let _ = writeln!(s, "- {c}");
        }
    }
    if !papers.is_empty() {
        s.push_str("\nthe papers' claims (does the tunnel cause or limit forgetting?):\n");
        for c in papers {
            let _ = writeln!(s, "- {c}");
        }
    }
    if !beside.is_empty() {
        s.push_str("\nagainst published numbers (ours − published, 95% Welch interval):\n");
        for c in beside {
            let _ = writeln!(s, "- {c}");
        }
    }
    let _ = writeln!(
        s,
        "results: {} (seed-*/ per replicate; cl_aggregate.csv, cl_comparisons.csv, cl_claims.md{})",
        out.display(),
        if beside.is_empty() {
            ""
        } else {
            ", published_comparison.csv"
        }
    );
    s
}
