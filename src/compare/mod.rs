//! `tunnelbench compare RUN_DIR BASELINE`: judges a run (one seed or several replicates) or a
//! study against a recorded baseline; `--record` writes the baseline.
//!
//! A baseline holds, per metric, every replicate's value (`values`, null for an undefined one)
//! with their n, mean and s.d., and the machine and backend they came from. A metric is judged
//! in two steps, as criterion separates its noise threshold from its significance level:
//!
//! 1. a test of the new value(s) against the baseline's spread, with the run's hundreds of metrics
//!    taken together:
//!    - one new run: the prediction statistic t = (x − mean) / (sd·√(1 + 1/n)) of every metric,
//!      judged against the baseline's own seeds (Westfall–Young max-t, by leave-one-out): each
//!      baseline seed is scored against the other seeds in the same way, its largest |t| over the
//!      metrics is its deviation, and a metric is significant where the new run's |t| exceeds
//!      the ⌈0.95·(n + 1)⌉-th smallest of the n deviations (with 20 seeds, the largest). A run
//!      like the baseline's seeds is then flagged with probability at most 5% whatever the
//!      metrics' distributions and correlations. With fewer than 19 seeds no order statistic
//!      reaches 95%, and the normal-theory p-values of the prediction test are adjusted instead;
//!    - several new runs: Welch's t-test per metric, the p-values adjusted together;
//!    - the adjustment is Holm's, or Benjamini–Hochberg's where the baseline's `correction` says;
//! 2. a practical threshold per kind of metric (accuracy 1 point, r 2 points, ρ 0.05, A 0.02, CL
//!    metrics 1 point): a difference below it is "no change" whatever its test says, and the
//!    leave-one-out deviations count only differences beyond it.
//!
//! A significant difference beyond the threshold is "improved" or "regressed" by the metric's
//! direction (higher is better, except forgetting). A metric missing from the run, or undefined
//! in every new replicate where the baseline had values, has regressed. Baselines of the first
//! format (one `value` per metric with absolute `tolerances`) still load: with one value there is
//! no spread to test against, so their tolerances are the thresholds and nothing else is tested.

mod baseline;
mod collect;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::isa::Machine;
use crate::results::write_atomic;
use crate::scenario::diff::{Difference, NOT_THE_EXPERIMENT, differences};
use crate::stats::describe::{finite, mean};
use crate::stats::inference::{benjamini_hochberg, holm, prediction_t, welch_t};

pub use baseline::{Baseline, Entry};
pub use collect::{Collected, collect_metrics};

/// The baseline file format written by `--record`.
pub const FORMAT: u32 = 2;

/// Significance level of the adjusted p-values.
pub const ALPHA: f64 = 0.05;

/// How normal-theory p-values of a run's metrics are adjusted for their number (several new
/// replicates, or a baseline of fewer than 19 seeds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm: bounds the chance of any false alarm, whatever changed.
    #[default]
    Holm,
    /// Benjamini–Hochberg: bounds the expected share of false alarms among the flagged metrics;
    /// more power, but a cluster of correlated moderate deviations (one unusual seed moving many
    /// metrics) is flagged more easily.
    BenjaminiHochberg,
}

impl Correction {
    fn name(self) -> &'static str {
        match self {
            Correction::BenjaminiHochberg => "Benjamini–Hochberg",
            Correction::Holm => "Holm",
        }
    }

    fn adjust(self, p: &[f64]) -> Vec<f64> {
        match self {
            Correction::BenjaminiHochberg => benjamini_hochberg(p),
            Correction::Holm => holm(p),
        }
    }
}

/// Kinds of metrics, each with its own practical threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Accuracies in [0, 1] (per-layer probe accuracies, backbone accuracy).
    Accuracy,
    /// % OOD retained, in percent.
    RetainedPct,
    /// Pearson ρ.
    Pearson,
    /// ID/OOD alignment A.
    Alignment,
    /// Continual-learning metrics (cl_metrics.json), fractions.
    Cl,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Accuracy,
        Kind::RetainedPct,
        Kind::Pearson,
        Kind::Alignment,
        Kind::Cl,
    ];

    /// The difference below which a change is "no change".
    pub fn default_threshold(self) -> f64 {
        match self {
            Kind::Accuracy => 0.01,
            Kind::RetainedPct => 2.0,
            Kind::Pearson => 0.05,
            Kind::Alignment => 0.02,
            Kind::Cl => 0.01,
        }
    }
}

/// Whether a higher value of metric `name` is better.
fn higher_is_better(name: &str) -> bool {
    !name.contains(".forgetting")
}

/// What a metric did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Written `no_change`, as the verdict files have always named it.
    #[serde(rename = "no_change")]
    Unchanged,
    Improved,
    Regressed,
}

/// One judged metric.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub name: String,
    pub baseline_n: usize,
    pub baseline_mean: Option<f64>,
    pub baseline_sd: Option<f64>,
    /// Defined values of the run.
    pub now_n: usize,
    pub now_mean: Option<f64>,
    pub diff: Option<f64>,
    pub threshold: f64,
    /// Raw normal-theory p-value of the test (None without a test: one baseline value, or
    /// nothing to compare).
    pub p: Option<f64>,
    /// |t| of the prediction test of one new run.
    pub t: Option<f64>,
    /// The p-value for the whole run: the share of baseline seeds (counting the new run) whose
    /// leave-one-out deviation reaches this metric's |t|, or the adjusted normal-theory p-value.
    pub p_adjusted: Option<f64>,
    /// Present in the run at all.
    pub present: bool,
    pub change: Change,
    /// Why, in a few words.
    pub why: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub lines: Vec<Line>,
    /// Metrics of the run that the baseline does not have.
    pub new_metrics: Vec<String>,
    /// Replicates of the run.
    pub replicates: usize,
    pub baseline_replicates: usize,
    pub baseline_machine: Option<Machine>,
    pub machine: Option<Machine>,
    /// The leave-one-out max-t threshold, when it judged the run.
    pub max_t: Option<f64>,
    pub correction: Correction,
    pub thresholds: BTreeMap<Kind, f64>,
    /// The settings in which the run differs from the baseline's runs (none when either does not
    /// record them: a study, a baseline of an earlier version).
    pub settings: Option<Vec<Difference>>,
}

impl Verdict {
    pub fn regressed(&self) -> bool {
        self.lines.iter().any(|l| l.change == Change::Regressed)
    }

    fn count(&self, c: Change) -> usize {
        self.lines.iter().filter(|l| l.change == c).count()
    }

    /// The report: every changed metric (every metric with `all`), then the totals and verdict.
    pub fn text(&self, all: bool) -> String {
        let num = |v: Option<f64>| v.map_or_else(|| "undefined".to_string(), |v| format!("{v:.4}"));
        let shown: Vec<&Line> = self
            .lines
            .iter()
            .filter(|l| all || l.change != Change::Unchanged)
            .collect();
        let w = shown.iter().map(|l| l.name.len()).max().unwrap_or(6).max(6);
        let mut s = String::new();
        if !shown.is_empty() {
            s.push_str(&format!(
                "{:<w$}  {:>20}  {:>14}  {:>9}  {:>8}  {:>9}  verdict\n",
                "metric", "baseline mean ± sd", "now (n)", "diff", "thresh.", "p (adj.)"
            ));
        }
        for l in shown {
            let base = match (l.baseline_mean, l.baseline_sd) {
                (Some(m), Some(sd)) => format!("{m:.4} ± {sd:.4}"),
                (m, _) => num(m),
            };
            let now = if l.present {
                format!("{} ({})", num(l.now_mean), l.now_n)
            } else {
                "missing".into()
            };
            s.push_str(&format!(
                "{:<w$}  {:>20}  {:>14}  {:>9}  {:>8}  {:>9}  {}{}\n",
                l.name,
                base,
                now,
                l.diff.map_or_else(|| "-".to_string(), |d| format!("{d:+.4}")),
                format!("{:.4}", l.threshold),
                l.p_adjusted
                    .map_or_else(|| "-".to_string(), crate::stats::paired::p_text),
                match l.change {
                    Change::Unchanged => "no change",
                    Change::Improved => "IMPROVED",
                    Change::Regressed => "REGRESSED",
                },
                if l.why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", l.why)
                }
            ));
        }
        if !self.new_metrics.is_empty() {
            s.push_str(&format!(
                "{} metrics of the run are not in the baseline (not judged; --record to add them)\n",
                self.new_metrics.len()
            ));
        }
        let machine = |m: &Option<Machine>| {
            m.as_ref().map_or_else(
                || "an unrecorded machine".to_string(),
                |m| format!("{}, {} path, {} threads", m.cpu, m.isa, m.threads),
            )
        };
        s.push_str(&format!(
            "baseline: {} replicate(s) on {}; run: {} replicate(s) on {}\n",
            self.baseline_replicates,
            machine(&self.baseline_machine),
            self.replicates,
            machine(&self.machine)
        ));
        let thresholds: Vec<String> = Kind::ALL
            .iter()
            .map(|k| {
                format!(
                    "{} {}",
                    serde_json::to_value(k)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    self.thresholds.get(k).copied().unwrap_or_else(|| k.default_threshold())
                )
            })
            .collect();
        let test = match self.max_t {
            _ if self.baseline_replicates < 2 => "none (one baseline value: thresholds only)".to_string(),
            Some(t) => format!(
                "prediction t of one new run against the baseline seeds' own leave-one-out deviations (|t| > {t:.2}; a run like them is flagged with probability <= {ALPHA})"
            ),
            None if self.replicates == 1 => format!(
                "prediction interval of one new run, {} over the metrics at α = {ALPHA}",
                self.correction.name()
            ),
            None => format!(
                "Welch's t-test, {} over the metrics at α = {ALPHA}",
                self.correction.name()
            ),
        };
        s.push_str(&format!(
            "test: {test}; no-change thresholds: {}\n",
            thresholds.join(", ")
        ));
        match &self.settings {
            Some(d) if d.is_empty() => s.push_str("settings: the baseline's\n"),
            Some(d) => {
                const SHOWN: usize = 8;
                let listed: Vec<String> = d.iter().take(SHOWN).map(|d| d.text("baseline")).collect();
                let more = d.len().saturating_sub(SHOWN);
                s.push_str(&format!(
                    "warning: the run's settings differ from the baseline's in {}: {}{}; the verdict compares different experiments\n",
                    d.len(),
                    listed.join("; "),
                    if more > 0 { format!("; (+{more} more)") } else { String::new() }
                ));
            }
            None => {}
        }
        let (reg, imp, same) = (
            self.count(Change::Regressed),
            self.count(Change::Improved),
            self.count(Change::Unchanged),
        );
        let missing = self.lines.iter().filter(|l| !l.present).count();
        let missing = if missing > 0 {
            format!(" ({missing} missing)")
        } else {
            String::new()
        };
        s.push_str(&format!(
            "verdict: {} ({reg} regressed{missing}, {imp} improved, {same} no change of {} metrics)\n",
            if reg > 0 {
                "REGRESSED"
            } else if imp > 0 {
                "IMPROVED"
            } else {
                "NO CHANGE"
            },
            self.lines.len()
        ));
        s
    }
}

/// Judges the run in `run_dir` against the baseline in `baseline_path`: a recorded baseline file,
/// or another run folder, whose replicates are then the baseline (default thresholds).
pub fn compare(run_dir: &Path, baseline_path: &Path) -> Result<Verdict> {
    let baseline = if baseline_path.is_dir() {
        baseline_of(collect_metrics(baseline_path)?, None)
    } else {
        Baseline::load(baseline_path)?
    };
    let now = collect_metrics(run_dir)?;
    // Not one metric in common: a baseline of another scenario, not a regression.
    if !baseline
        .metrics
        .iter()
        .any(|e| now.metrics.iter().any(|(n, ..)| *n == e.name))
    {
        return Err(Error::input(
            baseline_path,
            format!(
                "recorded from scenario `{}`, which shares no metric with {} (scenario `{}`): give the baseline \
                 of that scenario, or record one with --record",
                baseline.scenario,
                run_dir.display(),
                now.scenario
            ),
        ));
    }
    Ok(judge(&baseline, &now))
}

/// The verdict of `now` against `baseline`.
pub fn judge(baseline: &Baseline, now: &Collected) -> Verdict {
    let by_name: BTreeMap<&str, &Vec<Option<f64>>> = now.metrics.iter().map(|(n, _, v)| (n.as_str(), v)).collect();
    let mut lines = Vec::new();
    for e in &baseline.metrics {
        let threshold = baseline.threshold(e);
        let present = by_name.get(e.name.as_str());
        let x: Vec<f64> = present
            .map(|v| v.iter().flatten().copied().filter(|v| v.is_finite()).collect())
            .unwrap_or_default();
        let b = e.defined();
        let (now_mean, base_mean) = (finite(mean(&x)), finite(mean(&b)));
        let diff = now_mean.zip(base_mean).map(|(n, m)| n - m);
        let test = match (b.len(), x.len()) {
            (0 | 1, _) | (_, 0) => None,
            (_, 1) => Some(prediction_t(&b, x[0])),
            _ => Some(welch_t(&x, &b)),
        };
        let p = test.and_then(|t| finite(t.p));
        let t = test.filter(|_| x.len() == 1).map(|t| t.t.abs()).filter(|t| !t.is_nan());
        lines.push(Line {
            name: e.name.clone(),
            baseline_n: b.len(),
            baseline_mean: base_mean,
            baseline_sd: e.sd,
            now_n: x.len(),
            now_mean,
            diff,
            threshold,
            p,
            t,
            p_adjusted: None,
            present: present.is_some(),
            change: Change::Unchanged,
            why: String::new(),
        });
    }
    let max_t = if now.replicates == 1 { MaxT::of(baseline) } else { None };
    let raw: Vec<f64> = lines.iter().map(|l| l.p.unwrap_or(f64::NAN)).collect();
    for (l, adj) in lines.iter_mut().zip(baseline.correction.adjust(&raw)) {
        l.p_adjusted = match (&max_t, l.t) {
            (Some(m), Some(t)) => Some(m.p(t)),
            _ => finite(adj),
        };
        let significant = match (&max_t, l.t) {
            (Some(m), Some(t)) => t > m.threshold,
            _ => l.p_adjusted.is_some_and(|p| p <= ALPHA),
        };
        let better = |d: f64| if higher_is_better(&l.name) { d > 0.0 } else { d < 0.0 };
        let direction = |d: f64| if better(d) { Change::Improved } else { Change::Regressed };
        (l.change, l.why) = match (l.present, l.baseline_n, l.now_n, l.diff) {
            (false, ..) => (Change::Regressed, "missing from the run".into()),
            (_, 0, 0, _) => (Change::Unchanged, "undefined in both".into()),
            (_, 0, _, _) => (Change::Improved, "defined now, undefined in the baseline".into()),
            (_, _, 0, _) => (Change::Regressed, "undefined now".into()),
            (_, _, _, Some(d)) if d.abs() <= l.threshold + 1e-12 => (Change::Unchanged, String::new()),
            (_, 1, _, Some(d)) => (direction(d), "beyond the threshold (one baseline value)".into()),
            (_, _, _, Some(d)) if significant => (direction(d), String::new()),
            (_, _, _, Some(_)) => (Change::Unchanged, "within the baseline's spread".into()),
            (_, _, _, None) => (Change::Unchanged, String::new()),
        };
    }
    let known: std::collections::BTreeSet<&str> = baseline.metrics.iter().map(|e| e.name.as_str()).collect();
    let new_metrics = now
        .metrics
        .iter()
        .filter(|(n, _, _)| !known.contains(n.as_str()))
        .map(|(n, _, _)| n.clone())
        .collect();
    Verdict {
        lines,
        new_metrics,
        replicates: now.replicates,
        baseline_replicates: baseline.replicates,
        baseline_machine: baseline.machine.clone(),
        machine: now.machine.clone(),
        max_t: max_t.map(|m| m.threshold),
        correction: baseline.correction,
        thresholds: baseline.thresholds.clone(),
        settings: baseline
            .settings
            .as_ref()
            .zip(now.settings.as_ref())
            .map(|(before, now)| {
                // What a seed is, and how many were run, is what the baseline's spread is about.
                let ignore: Vec<&str> = NOT_THE_EXPERIMENT
                    .iter()
                    .copied()
                    .chain(["seed", "replicates"])
                    .collect();
                differences(now, before, &ignore)
            }),
    }
}

/// The family-wise threshold of one new run's prediction |t|, from the baseline's own seeds.
struct MaxT {
    /// Each baseline seed's largest |t| against the other seeds, over the metrics where it
    /// differs from their mean by more than the threshold.
    deviations: Vec<f64>,
    threshold: f64,
}

impl MaxT {
    /// None below the seeds that a 1 − α order statistic needs (19 for α = 0.05), or for a
    /// baseline whose metrics do not all hold one value per seed.
    fn of(baseline: &Baseline) -> Option<MaxT> {
        let n = baseline.replicates;
        let k = ((1.0 - ALPHA) * (n + 1) as f64).ceil() as usize;
        if n < 2 || k > n || baseline.metrics.iter().any(|e| e.values.len() != n) {
            return None;
        }
        let mut deviations = vec![0f64; n];
        for e in &baseline.metrics {
            let threshold = baseline.threshold(e);
            for (i, dev) in deviations.iter_mut().enumerate() {
                let Some(x) = e.values[i].filter(|v| v.is_finite()) else {
                    continue;
                };
                let rest: Vec<f64> = (0..n)
                    .filter(|&j| j != i)
                    .filter_map(|j| e.values[j].filter(|v| v.is_finite()))
                    .collect();
                if rest.len() < 2 || (x - mean(&rest)).abs() <= threshold + 1e-12 {
                    continue;
                }
                let t = prediction_t(&rest, x).t.abs();
                if !t.is_nan() {
                    *dev = dev.max(t);
                }
            }
        }
        let mut sorted = deviations.clone();
        sorted.sort_by(f64::total_cmp);
        Some(MaxT {
            threshold: sorted[k - 1],
            deviations,
        })
    }

    /// (1 + the seeds whose deviation reaches |t|) / (n + 1).
    fn p(&self, t: f64) -> f64 {
        let at_least = self.deviations.iter().filter(|&&d| d >= t).count();
        (1 + at_least) as f64 / (self.deviations.len() + 1) as f64
    }
}

/// Record a run folder's metrics (every replicate's value) as a baseline, keeping the thresholds
/// and correction of an existing file.
pub fn record(run_dir: &Path, baseline_path: &Path) -> Result<Baseline> {
    if baseline_path.is_dir() {
        return Err(Error::usage(format!(
            "{} is a folder: --record writes a baseline file, e.g. results/NAME.json",
            baseline_path.display()
        )));
    }
    let now = collect_metrics(run_dir)?;
    let old = if baseline_path.is_file() {
        let old = Baseline::load(baseline_path)?;
        if !old.scenario.is_empty() && old.scenario != now.scenario {
            return Err(Error::input(
                baseline_path,
                format!(
                    "holds the baseline of scenario `{}`; recording `{}` over it would lose it: give another file, or delete this one first",
                    old.scenario, now.scenario
                ),
            ));
        }
        Some(old).filter(|old| old.format == FORMAT)
    } else {
        None
    };
    let b = baseline_of(now, old.as_ref());
    let json = serde_json::to_string_pretty(&b).map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(parent) = baseline_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    write_atomic(baseline_path, (json + "\n").as_bytes())?;
    Ok(b)
}

/// The baseline of a run folder's metrics, with the thresholds and correction of `old` (the
/// defaults without it).
fn baseline_of(now: Collected, old: Option<&Baseline>) -> Baseline {
    let mut thresholds: BTreeMap<Kind, f64> = Kind::ALL.iter().map(|k| (*k, k.default_threshold())).collect();
    let mut own: BTreeMap<String, f64> = BTreeMap::new();
    let mut correction = Correction::default();
    if let Some(old) = old {
        correction = old.correction;
        thresholds.extend(old.thresholds.iter().map(|(k, v)| (*k, *v)));
        own = old
            .metrics
            .iter()
            .filter_map(|m| m.threshold.map(|t| (m.name.clone(), t)))
            .collect();
    }
    Baseline {
        format: FORMAT,
        scenario: now.scenario,
        backend: now.backend,
        tunnelbench_version: env!("CARGO_PKG_VERSION").to_string(),
        machine: now.machine,
        replicates: now.replicates,
        correction,
        thresholds,
        metrics: now
            .metrics
            .into_iter()
            .map(|(name, kind, values)| Entry {
                threshold: own.get(&name).copied(),
                ..Entry::new(name, kind, values)
            })
            .collect(),
        settings: now.settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(values: &[Option<f64>], name: &str) -> Baseline {
        Baseline {
            format: FORMAT,
            scenario: String::new(),
            backend: String::new(),
            tunnelbench_version: String::new(),
            machine: None,
            replicates: values.len(),
            correction: Correction::default(),
            thresholds: BTreeMap::new(),
            metrics: vec![Entry::new(name.into(), Kind::Accuracy, values.to_vec())],
            settings: None,
        }
    }

    fn run(values: &[Option<f64>], name: &str) -> Collected {
        Collected {
            metrics: vec![(name.into(), Kind::Accuracy, values.to_vec())],
            replicates: values.len(),
            scenario: String::new(),
            backend: String::new(),
            machine: None,
            settings: None,
        }
    }

    const B: [Option<f64>; 5] = [Some(0.81), Some(0.79), Some(0.83), Some(0.80), Some(0.78)];

    #[test]
    fn one_new_run_is_judged_by_the_prediction_interval() {
        // The 95% prediction interval of B is (0.7435, 0.8605) (scipy, see stats::inference).
        let b = baseline(&B, "acc");
        let v = judge(&b, &run(&[Some(0.85)], "acc"));
        assert_eq!(v.lines[0].change, Change::Unchanged);
        let v = judge(&b, &run(&[Some(0.70)], "acc"));
        assert_eq!(v.lines[0].change, Change::Regressed);
        // scipy 1.17.1: 2·t.sf(4.84070577833776, 4) = 0.00839578278514691, alone in its family.
        assert!((v.lines[0].p.unwrap() - 0.008_395_782_785_146_91).abs() < 1e-9);
        assert!(v.regressed());
        let v = judge(&b, &run(&[Some(0.90)], "acc"));
        assert_eq!(v.lines[0].change, Change::Improved);
        assert!(!v.regressed());
        // Lower is better for forgetting.
        let b = baseline(&B, "cl.x.forgetting");
        assert_eq!(
            judge(&b, &run(&[Some(0.70)], "cl.x.forgetting")).lines[0].change,
            Change::Improved
        );
    }

    #[test]
    fn threshold_and_spread_both_have_to_be_exceeded() {
        // Every baseline value equal: any difference is significant, but 0.5 points is below the
        // accuracy threshold of 1 point.
        let same = [Some(0.8); 5];
        let b = baseline(&same, "acc");
        assert_eq!(
            judge(&b, &run(&[Some(0.795)], "acc")).lines[0].change,
            Change::Unchanged
        );
        assert_eq!(judge(&b, &run(&[Some(0.78)], "acc")).lines[0].change, Change::Regressed);
        // Several new runs: Welch's test. scipy 1.17.1: ttest_ind(Y, X, equal_var=False).pvalue
        // = 0.02277666807192051 for Y = [.76, .77, .80, .74, .75] against X = B.
        let b = baseline(&B, "acc");
        let y = [Some(0.76), Some(0.77), Some(0.80), Some(0.74), Some(0.75)];
        let v = judge(&b, &run(&y, "acc"));
        assert!((v.lines[0].p.unwrap() - 0.022_776_668_071_920_51).abs() < 1e-9);
        assert_eq!(v.lines[0].change, Change::Regressed);
    }

    #[test]
    fn missing_and_undefined_metrics() {
        let b = baseline(&B, "acc");
        let v = judge(&b, &run(&[Some(0.8)], "other"));
        assert_eq!(v.lines[0].change, Change::Regressed);
        assert!(!v.lines[0].present);
        assert_eq!(v.new_metrics, ["other"]);
        assert_eq!(judge(&b, &run(&[None], "acc")).lines[0].change, Change::Regressed);
        let b = baseline(&[None, None], "acc");
        assert_eq!(judge(&b, &run(&[None], "acc")).lines[0].change, Change::Unchanged);
    }

    #[test]
    fn many_metrics_are_adjusted_together() {
        // 100 metrics: 99 unchanged, one at raw p ≈ 0.0084; Holm (the default) multiplies it by
        // 100: 0.84.
        let mut b = baseline(&B, "m0");
        let mut now = run(&[Some(0.70)], "m0");
        for i in 1..100 {
            b.metrics.push(Entry::new(format!("m{i}"), Kind::Accuracy, B.to_vec()));
            now.metrics.push((format!("m{i}"), Kind::Accuracy, vec![Some(0.80)]));
        }
        let v = judge(&b, &now);
        assert!((v.lines[0].p_adjusted.unwrap() - 0.839_578_278_514_691).abs() < 1e-9);
        assert_eq!(v.lines[0].change, Change::Unchanged);
        assert!(!v.regressed());
        // Benjamini–Hochberg gives the smallest p-value the same factor, the others larger ones.
        b.correction = Correction::BenjaminiHochberg;
        assert!(judge(&b, &now).lines[0].p_adjusted.unwrap() > 0.8);
        // Alone, the metric regressed.
        b.metrics.truncate(1);
        now.metrics.truncate(1);
        assert_eq!(judge(&b, &now).lines[0].change, Change::Regressed);
    }

    #[test]
    fn one_new_run_against_twenty_seeds_uses_their_own_deviations() {
        // Twenty seeds of two metrics: normal quantiles around 0.8 (sd ≈ 0.01), and a second metric
        // with one seed 8 sd out, as a heavy-tailed metric has.
        let z: Vec<f64> = (0..20)
            .map(|i| crate::stats::describe::student_t_quantile((i as f64 + 0.5) / 20.0, 1e9))
            .collect();
        let a: Vec<Option<f64>> = z.iter().map(|z| Some(0.8 + 0.01 * z)).collect();
        let mut heavy = a.clone();
        heavy[0] = Some(0.8 + 0.08);
        let mut b = baseline(&a, "a");
        b.metrics.push(Entry::new("heavy".into(), Kind::Accuracy, heavy));
        let m = MaxT::of(&b).unwrap();
        // The outlier seed is itself the largest deviation: nothing short of it is flagged.
        assert_eq!(m.threshold, m.deviations[0]);
        assert!(m.threshold > 7.0, "{}", m.threshold);
        let judged = |x: f64| {
            let mut now = run(&[Some(x)], "a");
            now.metrics.push(("heavy".into(), Kind::Accuracy, vec![Some(0.8)]));
            judge(&b, &now)
        };
        let v = judged(0.75);
        assert_eq!(v.max_t, Some(m.threshold));
        assert_eq!(
            v.lines[0].change,
            Change::Unchanged,
            "5 sd: within the seeds' own deviations"
        );
        let v = judged(0.60);
        assert_eq!(v.lines[0].change, Change::Regressed, "20 sd");
        assert!((v.lines[0].p_adjusted.unwrap() - 1.0 / 21.0).abs() < 1e-12);
        // Several new runs: Welch and Holm, not the leave-one-out threshold.
        let mut now = run(&[Some(0.75), Some(0.76)], "a");
        now.metrics
            .push(("heavy".into(), Kind::Accuracy, vec![Some(0.8), Some(0.8)]));
        assert_eq!(judge(&b, &now).max_t, None);
        // Fewer than 19 seeds: normal theory.
        assert!(MaxT::of(&baseline(&a[..18], "a")).is_none());
    }
}
