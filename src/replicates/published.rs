//! Published numbers beside a scenario's replicates (`published_comparison.csv`): each number the
//! scenario names (`continual.published`, a mean ± SEM over n runs) against the replicates'
//! aggregate of the full network, with the difference, its 95% Welch interval and Welch's test
//! from the two summaries.

use serde::{Deserialize, Serialize};

use super::continual::ClAggregateRow;
use crate::cl::ClMetricsFile;
use crate::scenario::continual::Heads;
use crate::stats::describe::{finite, student_t_quantile};
use crate::stats::inference::{Group, LEVEL, welch_t_summary};
use crate::stats::paired::p_text;

/// A row of `published_comparison.csv`: a published number beside the replicates' aggregate of
/// the full network (points; the difference is ours − published, with its Welch 95% interval).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishedRow {
    pub source: String,
    pub architecture: String,
    pub strategy: String,
    pub eval: String,
    pub metric: String,
    pub n: usize,
    pub mean: f64,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub published_n: usize,
    pub published_mean: f64,
    pub published_sem: f64,
    pub difference: f64,
    pub difference_ci_low: Option<f64>,
    pub difference_ci_high: Option<f64>,
    pub p_value: Option<f64>,
}

impl PublishedRow {
    pub(super) fn sentence(&self) -> String {
        let interval = match (self.difference_ci_low, self.difference_ci_high) {
            (Some(lo), Some(hi)) => format!(" [{lo:.2}, {hi:.2}]"),
            _ => String::new(),
        };
        let verdict = match self.p_value {
            Some(p) if p < 1.0 - LEVEL => format!("differs from the published number (Welch p = {})", p_text(p)),
            Some(p) => format!(
                "no significant difference from the published number (Welch p = {})",
                p_text(p)
            ),
            None => "not testable (too few runs on one side)".into(),
        };
        format!(
            "{} {} {} ({}): {:.2} over {} seeds vs {:.2} ± {:.2} SEM over {} runs in {}; difference {:+.2}{interval} points, {verdict}.",
            self.architecture,
            self.strategy,
            self.metric,
            self.eval,
            self.mean,
            self.n,
            self.published_mean,
            self.published_sem,
            self.published_n,
            self.source,
            self.difference
        )
    }
}

/// The scenario's published numbers of its head setting, each beside the full network's
/// aggregate of the first architecture in `eval` (task-aware with task heads, else task-agnostic).
pub(super) fn published_rows(file: &ClMetricsFile, rows: &[ClAggregateRow], eval: &str) -> Vec<PublishedRow> {
    let heads = if eval == "task-aware" {
        Heads::Multi
    } else {
        Heads::Shared
    };
    let Some(architecture) = rows.first().map(|r| r.architecture.clone()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in file.run.published.iter().filter(|p| p.heads == heads) {
        let Some(r) = rows.iter().find(|r| {
            r.architecture == architecture
                && r.variant == "full"
                && r.strategy == p.strategy.name()
                && r.eval == eval
                && r.metric == p.metric
        }) else {
            continue;
        };
        let scale = |v: Option<f64>| v.map(|v| 100.0 * v);
        let mean = 100.0 * r.mean;
        let ours = Group {
            mean,
            se: scale(r.sd).unwrap_or(f64::NAN) / (r.n as f64).sqrt(),
            n: r.n,
        };
        let theirs = Group {
            mean: p.mean,
            se: p.sem,
            n: p.n,
        };
        let test = welch_t_summary(ours, theirs, mean.abs().max(p.mean.abs()));
        let difference = mean - p.mean;
        let half = student_t_quantile(0.5 + LEVEL / 2.0, test.df) * (ours.se.powi(2) + p.sem.powi(2)).sqrt();
        out.push(PublishedRow {
            source: p.source.clone(),
            architecture: architecture.clone(),
            strategy: r.strategy.clone(),
            eval: eval.into(),
            metric: p.metric.clone(),
            n: r.n,
            mean,
            ci_low: scale(r.ci_low),
            ci_high: scale(r.ci_high),
            published_n: p.n,
            published_mean: p.mean,
            published_sem: p.sem,
            difference,
            difference_ci_low: finite(difference - half),
            difference_ci_high: finite(difference + half),
            p_value: finite(test.p),
        });
    }
    out
}
