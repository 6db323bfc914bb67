//! CL outputs: tidy CSVs, metrics JSON, the swap table, and heatmaps.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ClSummary, SequenceResult, TruncationChoice};
use crate::error::{Error, Result};
use crate::isa::Machine;
use crate::metrics::continual::{ClMetrics, probe_forgetting};
use crate::metrics::tunnel::Value;
use crate::plot::{Figure, Heatmap, Legend, LineChart, Series, write_chart};
use crate::results::{ClSummaryRecord, LayerProbeRecord, MatrixRecord, csv_bytes, write_atomic};
use crate::scenario::Scenario;
use crate::scenario::continual::{Heads, Published};
use crate::stats::describe::finite;

/// What a CL run was: its scenario, tasks and heads, the truncation choices, how long it took, and
/// the scenario's published numbers (kept for the replicates' aggregate).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClRun {
    pub scenario: String,
    /// The resolved scenario, every default filled in (absent in files of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Scenario>,
    /// The backend that trained the networks (empty in files of earlier versions).
    #[serde(default)]
    pub backend: String,
    pub tasks: Vec<Vec<u32>>,
    pub heads: Heads,
    pub truncation: Vec<TruncationChoice>,
    pub secs: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
}

/// `cl_metrics.json`: the run's CL metrics per sequence, written last (its presence marks a
/// finished run) and read back by `compare`, `collect` and the replicates' aggregate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClMetricsFile {
    #[serde(flatten)]
    pub run: ClRun,
    pub variants: Vec<SequenceMetrics>,
    pub machine: Machine,
    pub swap_architecture: Option<String>,
}

/// The metrics of one (architecture, variant, strategy) sequence under both evaluations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SequenceMetrics {
    pub architecture: String,
    pub variant: String,
    pub strategy: String,
    pub layers: usize,
    pub extractor_layers: Option<usize>,
    pub task_aware: MetricValues,
    pub task_agnostic: MetricValues,
}

/// The metrics of one accuracy matrix (method §8.3), in the order `compare` names them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MetricValues {
    pub acc: MetricValue,
    pub aia: MetricValue,
    pub bwt: MetricValue,
    pub forgetting: MetricValue,
    pub fwt: MetricValue,
    pub plasticity: MetricValue,
    pub relative_forgetting: MetricValue,
}

/// A metric: its value, or why it is undefined.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricValue {
    Defined(f64),
    Undefined {
        value: Option<f64>,
        undefined: Option<String>,
    },
}

impl MetricValue {
    /// The value, `None` when undefined.
    pub fn get(&self) -> Option<f64> {
        match self {
            MetricValue::Defined(v) => finite(*v),
            MetricValue::Undefined { .. } => None,
        }
    }
}

impl From<&Value> for MetricValue {
    fn from(v: &Value) -> Self {
        if v.is_defined() {
            MetricValue::Defined(v.value)
        } else {
            MetricValue::Undefined {
                value: None,
                undefined: v.reason.map(String::from),
            }
        }
    }
}

impl MetricValues {
    fn of(m: &ClMetrics) -> Self {
        MetricValues {
            acc: (&m.acc).into(),
            aia: (&m.aia).into(),
            bwt: (&m.bwt).into(),
            forgetting: (&m.forgetting).into(),
            fwt: (&m.fwt).into(),
            plasticity: (&m.plasticity).into(),
            relative_forgetting: (&m.relative_forgetting).into(),
        }
    }

    /// (name, value) of every metric.
    pub fn named(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("acc", self.acc.get()),
            ("aia", self.aia.get()),
            ("bwt", self.bwt.get()),
            ("forgetting", self.forgetting.get()),
            ("fwt", self.fwt.get()),
            ("plasticity", self.plasticity.get()),
            ("relative_forgetting", self.relative_forgetting.get()),
        ]
    }
}

pub fn write(dir: &Path, s: &ClSummary) -> Result<()> {
    let mut acc = Vec::new();
    let mut probes = Vec::new();
    let mut summary = Vec::new();
    let mut metrics = Vec::new();
    for r in &s.sequences {
        let (architecture, variant, strategy) = (&r.architecture, &r.variant, r.strategy.name());
        for (eval, matrix, base) in [
            ("task-aware", &r.aware, &r.baseline_aware),
            ("task-agnostic", &r.agnostic, &r.baseline_agnostic),
        ] {
            // Row 0: the untrained baseline b of each task.
            let rows = std::iter::once(base).chain(matrix.iter());
            for (after_task, row) in rows.enumerate() {
                for (j, v) in row.iter().enumerate() {
                    acc.push(MatrixRecord {
                        architecture: architecture.clone(),
                        variant: variant.clone(),
                        strategy: strategy.to_string(),
                        eval: eval.to_string(),
                        after_task,
                        task: j + 1,
                        accuracy: finite(*v),
                    });
                }
            }
        }
        for (i, after) in r.probes.iter().enumerate() {
            for (j, curve) in after.iter().enumerate() {
                for (l, v) in curve.iter().enumerate() {
                    probes.push(LayerProbeRecord {
                        architecture: architecture.clone(),
                        variant: variant.clone(),
                        strategy: strategy.to_string(),
                        after_task: i + 1,
                        task: j + 1,
                        layer_index: l + 1,
                        layer_name: r.layer_names.get(l).cloned().unwrap_or_default(),
                        accuracy: finite(*v),
                    });
                }
            }
        }
        let (g, a) = (&r.metrics_agnostic, &r.metrics_aware);
        summary.push(ClSummaryRecord {
            architecture: architecture.clone(),
            variant: variant.clone(),
            strategy: strategy.to_string(),
            layers: r.layers,
            acc_task_agnostic: finite(g.acc.value),
            forgetting_task_agnostic: finite(g.forgetting.value),
            bwt_task_agnostic: finite(g.bwt.value),
            acc_task_aware: finite(a.acc.value),
            forgetting_task_aware: finite(a.forgetting.value),
            bwt_task_aware: finite(a.bwt.value),
            fwt_task_aware: finite(a.fwt.value),
            plasticity_task_agnostic: finite(g.plasticity.value),
            relative_forgetting_task_agnostic: finite(g.relative_forgetting.value),
            plasticity_task_aware: finite(a.plasticity.value),
            relative_forgetting_task_aware: finite(a.relative_forgetting.value),
        });
        metrics.push(SequenceMetrics {
            architecture: r.architecture.clone(),
            variant: r.variant.clone(),
            strategy: strategy.to_string(),
            layers: r.layers,
            extractor_layers: r.extractor_layers,
            task_aware: MetricValues::of(a),
            task_agnostic: MetricValues::of(g),
        });
    }
    write_atomic(&dir.join("accuracy_matrix.csv"), &csv_bytes(&acc)?)?;
    write_atomic(&dir.join("layer_probes.csv"), &csv_bytes(&probes)?)?;
    write_atomic(&dir.join("cl_summary.csv"), &csv_bytes(&summary)?)?;
    let doc = ClMetricsFile {
        run: s.run.clone(),
        variants: metrics,
        machine: Machine::current(),
        swap_architecture: s.swap.as_ref().map(|w| w.architecture.clone()),
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(sw) = &s.swap {
        write_atomic(&dir.join("swap.csv"), &csv_bytes(&sw.rows)?)?;
        write_atomic(&dir.join("swap.md"), swap_table(s).as_bytes())?;
    }
    charts(dir, s)?;
    // Last: its presence marks a finished run.
    write_atomic(&dir.join("cl_metrics.json"), text.as_bytes())
}

fn labels(n: usize, prefix: &str) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

fn charts(dir: &Path, s: &ClSummary) -> Result<()> {
    if s.sequences.is_empty() {
        return Ok(());
    }
    let n = s.sequences.len();
    let cols = n.min(4);
    let rows = n.div_ceil(cols);
    let mut fig = Figure::new(rows, cols).title(format!("{}: accuracy on task j after task i", s.run.scenario));
    for r in &s.sequences {
        let (matrix, eval) = if r.agnostic.iter().flatten().any(|v| v.is_finite()) {
            (&r.agnostic, "task-agnostic")
        } else {
            (&r.aware, "task-aware")
        };
        let t = matrix.len();
        fig = fig.push(
            Heatmap::new(
                format!("{} {} {} ({eval})", r.architecture, r.variant, r.strategy.name()),
                matrix.clone(),
            )
            .x_label("evaluated task j")
            .y_label("after task i")
            .row_labels(labels(t, "after "))
            .col_labels(labels(t, "task "))
            .range(0.0, 1.0)
            .build()?,
        );
    }
    write_chart(&fig.build()?, dir, "accuracy_matrix")?;

    probe_forgetting_lines(dir, s)
}

/// Δ_l against layer l after the last task (method §8.4), in points and averaged over the earlier
/// tasks: a panel per network (architecture and variant), a line per strategy, and the
/// extractor/tunnel boundary marked where one was used (a tunnel-aware strategy's, else the
/// truncation rule's cut of that architecture).
fn probe_forgetting_lines(dir: &Path, s: &ClSummary) -> Result<()> {
    let mut panels: Vec<(&str, &str)> = Vec::new();
    for r in s.sequences.iter().filter(|r| r.probes.len() >= 2) {
        if !panels.contains(&(r.architecture.as_str(), r.variant.as_str())) {
            panels.push((&r.architecture, &r.variant));
        }
    }
    if panels.is_empty() {
        return Ok(());
    }
    let cols = panels.len().min(3);
    let mut fig = Figure::new(panels.len().div_ceil(cols), cols).title(format!(
        "{}: probe forgetting Δ_l after the last task (mean over earlier tasks, points)",
        s.run.scenario
    ));
    for (architecture, variant) in panels {
        let mut chart = LineChart::new(format!("{architecture} {variant}"))
            .x_label("probed layer l")
            .y_label("Δ_l (points)")
            .legend(Legend::Outside);
        let mut boundary = None;
        for r in s
            .sequences
            .iter()
            .filter(|r| r.probes.len() >= 2 && r.architecture == architecture && r.variant == variant)
        {
            let t = r.probes.len();
            let delta: Vec<f64> = (0..r.layers)
                .map(|l| {
                    let p: Vec<Vec<f64>> = (0..t).map(|i| (0..t).map(|j| r.probes[i][j][l]).collect()).collect();
                    let last = &probe_forgetting(&p)[t - 1];
                    100.0 * last[..t - 1].iter().sum::<f64>() / (t - 1) as f64
                })
                .collect();
            chart = chart.series(Series::new(r.strategy.name(), delta));
            boundary = boundary.or(r.extractor_layers);
        }
        let boundary = boundary.or_else(|| {
            (variant == "full")
                .then(|| {
                    s.run
                        .truncation
                        .iter()
                        .find(|c| c.architecture == architecture && c.rule.is_some())
                })
                .flatten()
                .map(|c| c.k)
        });
        if let Some(k) = boundary {
            chart = chart.vline(k as f64 + 0.5, format!("extractor | tunnel (k = {k})"));
        }
        fig = fig.push(chart.build()?);
    }
    write_chart(&fig.build()?, dir, "probe_forgetting")?;
    Ok(())
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}", 100.0 * v)
    } else {
        "–".into()
    }
}

fn swap_table(s: &ClSummary) -> String {
    let Some(sw) = &s.swap else { return String::new() };
    let mut out = format!(
        "### Swap protocol ({}, tunnel = layers {}..{} of {})\n\nChanges in points: swaps from the original-task row (E1+T1 for task 1, E2+T2 for task 2), fine-tunes from E2+T2's task-1 accuracy.\n\n| Combination | Task 1 | Task 2 |\n|---|---|---|\n",
        sw.architecture,
        sw.k + 1,
        sw.layers,
        sw.layers
    );
    for r in &sw.rows {
        let ch = |v: Option<f64>| v.map(|d| format!(" ({d:+.2})")).unwrap_or_default();
        let acc = |v: Option<f64>| pct(v.unwrap_or(f64::NAN));
        let _ = writeln!(
            out,
            "| {} | {}{} | {}{} |",
            r.combination,
            acc(r.task1_accuracy),
            ch(r.task1_change_points),
            acc(r.task2_accuracy),
            ch(r.task2_change_points)
        );
    }
    out.push_str("\nAssumptions used:\n");
    for a in &sw.assumptions {
        let _ = writeln!(out, "- {a}");
    }
    out
}

/// The table printed at the end of a CL run: per sequence the accuracy, forgetting, backward
/// transfer, plasticity and forgetting relative to plasticity of the scoring that applies
/// (task-agnostic with a shared head, task-aware with task-specific heads), and the task-aware
/// ACC and forgetting beside them with a shared head.
pub fn table(s: &ClSummary) -> String {
    let multi = s.run.heads == super::Heads::Multi;
    let width =
        |f: &dyn Fn(&SequenceResult) -> usize, min: usize| s.sequences.iter().map(f).max().unwrap_or(0).max(min) + 2;
    let (wa, wv, ws) = (
        width(&|r| r.architecture.len(), 12),
        width(&|r| r.variant.len(), 7),
        width(&|r| r.strategy.name().len(), 8),
    );
    let mut header = format!(
        "{:<wa$}{:<wv$}{:<ws$}{:>7}{:>8}{:>8}{:>8}{:>8}{:>9}",
        "architecture", "variant", "strategy", "layers", "ACC", "forget", "BWT", "plast", "F/plast"
    );
    if !multi {
        header.push_str(&format!("{:>9}{:>10}", "ACC(ta)", "forg(ta)"));
    }
    let mut out = format!("\n== {} — {} tasks ==\n{header}\n", s.run.scenario, s.run.tasks.len());
    for r in &s.sequences {
        let (g, a) = (&r.metrics_agnostic, &r.metrics_aware);
        let m = if multi { a } else { g };
        let _ = write!(
            out,
            "{:<wa$}{:<wv$}{:<ws$}{:>7}{:>8}{:>8}{:>8}{:>8}{:>9}",
            r.architecture,
            r.variant,
            r.strategy.name(),
            r.layers,
            pct(m.acc.value),
            pct(m.forgetting.value),
            pct(m.bwt.value),
            pct(m.plasticity.value),
            pct(m.relative_forgetting.value),
        );
        if !multi {
            let _ = write!(out, "{:>9}{:>10}", pct(a.acc.value), pct(a.forgetting.value));
        }
        out.push('\n');
    }
    out.push_str(if multi {
        "(task-aware scoring, in %; plast: mean accuracy on each task right after learning it; F/plast: forgetting relative to it)\n"
    } else {
        "(task-agnostic scoring, in %; plast: mean accuracy on each task right after learning it; F/plast: forgetting relative to it; (ta): task-aware)\n"
    });
    if s.swap.is_some() {
        out.push('\n');
        out.push_str(&swap_table(s));
    }
    out
}
