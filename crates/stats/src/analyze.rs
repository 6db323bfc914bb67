//! The `analyze` command: reads a study's metrics CSV, computes tunnel classes, the paired
//! comparisons of a [`ComparisonSpec`] and the SHAP slopes, and writes `analysis.json`,
//! `analysis.md`, `comparisons.csv`, `shap_slopes.csv` and `shap_slopes.svg`/`.png` (each written to
//! a temporary file and renamed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tunnelbench_plot::{BarChart, Chart, Figure, Legend, write_atomic, write_chart};

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize};

use super::gbm::GbmParams;
use super::inference::holm;
use super::study::{
    ClassCounts, ComparisonResult, ComparisonSpec, Evaluated, FeatureSlope, Metric, ModelSummary, ShapResult,
    ShapUncertainty, SkippedComparison, Study, class_counts, evaluate, shap_analyses,
};
use super::table::csv_bytes;
use super::wilcoxon::WilcoxonOptions;
use crate::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeOptions {
    pub wilcoxon: WilcoxonOptions,
    pub gbm: GbmParams,
    pub uncertainty: ShapUncertainty,
    /// Skip (and list) a comparison the study cannot form, such as an unpaired design, instead of
    /// failing: for a study read beside another one, whose spec was written for the other.
    pub skip_failing_comparisons: bool,
}

/// SHAP slopes of one metric as the JSON object `{"r2": .., "slopes": {feature: slope}, ..}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapJson(pub ShapResult);

/// One number (or pair) per feature as a JSON object, in the features' order.
struct ByFeature<'a, T: Serialize>(&'a ShapResult, fn(&FeatureSlope) -> T);

impl<T: Serialize> Serialize for ByFeature<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.slopes.len()))?;
        for f in &self.0.slopes {
            m.serialize_entry(&f.feature, &(self.1)(f))?;
        }
        m.end()
    }
}

impl Serialize for ShapJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let r = &self.0;
        let mut m = s.serialize_map(Some(9))?;
        m.serialize_entry("r2", &r.r2)?;
        m.serialize_entry("r2_cv", &r.r2_cv)?;
        m.serialize_entry("folds", &r.folds)?;
        m.serialize_entry("resamples", &r.resamples)?;
        m.serialize_entry("expected_value", &r.expected_value)?;
        m.serialize_entry("slopes", &ByFeature(r, |f| f.slope))?;
        m.serialize_entry("slopes_l1", &ByFeature(r, |f| f.slope_l1))?;
        m.serialize_entry("slopes_ci95", &ByFeature(r, |f| f.ci_low.zip(f.ci_high)))?;
        m.serialize_entry("same_sign", &ByFeature(r, |f| f.same_sign))?;
        m.end()
    }
}

/// Everything `analyze` computes; serialises to `analysis.json` and reads back from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub input: PathBuf,
    pub spec: String,
    pub n_rows: usize,
    pub n_models: usize,
    pub tunnel_classes: ClassCounts,
    pub models: Vec<ModelSummary>,
    pub comparisons: Vec<ComparisonResult>,
    pub skipped_comparisons: Vec<SkippedComparison>,
    #[serde(serialize_with = "ser_shap", deserialize_with = "de_shap")]
    pub shap: Vec<ShapResult>,
}

fn ser_shap<S: serde::Serializer>(v: &[ShapResult], s: S) -> std::result::Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(v.len()))?;
    for r in v {
        m.serialize_entry(r.metric.key(), &ShapJson(r.clone()))?;
    }
    m.end()
}

/// The `shap` object of `analysis.json` read back: metric key → [`ShapJson`]'s fields, the
/// features in their written order.
fn de_shap<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<ShapResult>, D::Error> {
    // An analysis written before the intervals and the cross-validated R² has none of them.
    #[derive(Deserialize)]
    struct Entry {
        r2: Option<f64>,
        #[serde(default)]
        r2_cv: Option<f64>,
        #[serde(default)]
        folds: usize,
        #[serde(default)]
        resamples: usize,
        expected_value: Option<f64>,
        slopes: InOrder<Option<f64>>,
        slopes_l1: InOrder<Option<f64>>,
        #[serde(default)]
        slopes_ci95: Option<InOrder<Option<(f64, f64)>>>,
        #[serde(default)]
        same_sign: Option<InOrder<Option<f64>>>,
    }
    let entries = std::collections::BTreeMap::<Metric, Entry>::deserialize(d)?;
    Ok(entries
        .into_iter()
        .map(|(metric, e)| {
            let ci = |i: usize| e.slopes_ci95.as_ref().and_then(|c| c.0.get(i)).and_then(|(_, v)| *v);
            let same = |i: usize| e.same_sign.as_ref().and_then(|c| c.0.get(i)).and_then(|(_, v)| *v);
            ShapResult {
                metric,
                r2: e.r2.unwrap_or(f64::NAN),
                r2_cv: e.r2_cv,
                folds: e.folds,
                resamples: e.resamples,
                expected_value: e.expected_value.unwrap_or(f64::NAN),
                slopes: e
                    .slopes
                    .0
                    .iter()
                    .zip(&e.slopes_l1.0)
                    .enumerate()
                    .map(|(i, ((feature, slope), (_, slope_l1)))| FeatureSlope {
                        feature: feature.clone(),
                        slope: *slope,
                        slope_l1: *slope_l1,
                        ci_low: ci(i).map(|c| c.0),
                        ci_high: ci(i).map(|c| c.1),
                        same_sign: same(i),
                    })
                    .collect(),
            }
        })
        .collect())
}

/// A JSON object, its entries in the order written.
struct InOrder<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for InOrder<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Entries<T> {
            type Value = InOrder<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<InOrder<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(InOrder(entries))
            }
        }
        d.deserialize_map(Entries(std::marker::PhantomData))
    }
}

impl Analysis {
    /// The analysis a folder's `analysis.json` holds.
    pub fn read(path: &Path) -> Result<Analysis> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::input(path, format!("not a tunnelbench analysis: {e}")))
    }

    /// (metric, feature, raw slope) for plotting.
    pub fn shap_slopes(&self) -> Vec<(Metric, String, Option<f64>)> {
        self.shap
            .iter()
            .flat_map(|r| r.slopes.iter().map(move |f| (r.metric, f.feature.clone(), f.slope)))
            .collect()
    }

    pub fn comparison(&self, name: &str, metric: Metric) -> Option<&ComparisonResult> {
        self.comparisons.iter().find(|c| c.name == name && c.metric == metric)
    }

    /// Short plain-text summary for the terminal.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let c = &self.tunnel_classes;
        let _ = writeln!(
            s,
            "{}: {} rows, {} models",
            self.input.display(),
            self.n_rows,
            self.n_models
        );
        let _ = writeln!(
            s,
            "tunnel classes: {} negligible, {} weak, {} medium, {} strong",
            c.negligible, c.weak, c.medium, c.strong
        );
        let _ = writeln!(
            s,
            "{} comparisons ({} skipped, spec '{}')",
            self.comparisons.len(),
            self.skipped_comparisons.len(),
            self.spec
        );
        for r in self.comparisons.iter().filter(|r| r.name == "augmentation") {
            let _ = writeln!(
                s,
                "  augmentation, {}: {:.2} vs {:.2}, p = {}, |δ| = {:.3} ({})",
                r.metric.key(),
                r.mean_a,
                r.mean_b,
                fmt_p(r.p_value),
                r.cliffs_delta_abs,
                r.magnitude.map_or("-", |m| m.as_str())
            );
        }
        for r in &self.shap {
            let _ = write!(s, "SHAP {} ({}):", r.metric.key(), fit_text(r));
            for f in &r.slopes {
                let _ = write!(s, " {}={}", f.feature, fmt_opt(f.slope, 4));
                if let (Some(lo), Some(hi)) = (f.ci_low, f.ci_high) {
                    let _ = write!(s, " [{lo:.3}, {hi:.3}]");
                }
            }
            s.push('\n');
        }
        s
    }

    /// Markdown report with the paper's table layout (Tables 12/13: group means with 95% CIs,
    /// p and |δ|), tunnel classes and SHAP slopes.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Analysis of {}\n", self.input.display());
        let _ = writeln!(
            s,
            "{} rows, {} models, comparison spec `{}`.\n",
            self.n_rows, self.n_models, self.spec
        );
        s.push_str(&self.findings());
        let c = &self.tunnel_classes;
        let _ = writeln!(s, "## Tunnel strength (mean % OOD retained per model)\n");
        let _ = writeln!(s, "| Class | Range | Models |\n|---|---|---|");
        let _ = writeln!(s, "| negligible | [95, 100] | {} |", c.negligible);
        let _ = writeln!(s, "| weak | [90, 95) | {} |", c.weak);
        let _ = writeln!(s, "| medium | [80, 90) | {} |", c.medium);
        let _ = writeln!(s, "| strong | < 80 | {} |\n", c.strong);
        for metric in Metric::ALL {
            let rows: Vec<&ComparisonResult> = self.comparisons.iter().filter(|r| r.metric == metric).collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(s, "## Comparisons: {}\n", metric.label());
            let _ = writeln!(
                s,
                "p: paired Wilcoxon signed-rank test over pairs of rows, one per (model, OOD set), as in the \
                 paper; p (Holm): p adjusted over this metric's comparisons; p (models): the same test over \
                 pairs of models, each pair's differences averaged over its OOD sets, and adjusted the same way.\n"
            );
            let _ = writeln!(
                s,
                "| Comparison | Group A | Mean A [95% CI] | Group B | Mean B [95% CI] | Pairs | p | p (Holm) | Model pairs | p (models) | p (models, Holm) | \\|δ\\| | Magnitude |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            for r in rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.2} [{:.2}, {:.2}] | {} | {:.2} [{:.2}, {:.2}] | {} | {} | {} | {} | {} | {} | {:.3} | {} |",
                    r.name,
                    r.a,
                    r.mean_a,
                    r.ci95_a.0,
                    r.ci95_a.1,
                    r.b,
                    r.mean_b,
                    r.ci95_b.0,
                    r.ci95_b.1,
                    if r.n_pairs > 0 {
                        r.n_pairs.to_string()
                    } else {
                        format!("{}/{} unpaired", r.n_a, r.n_b)
                    },
                    fmt_p(r.p_value),
                    fmt_p(r.p_holm),
                    r.n_model_pairs,
                    fmt_p(r.p_models),
                    fmt_p(r.p_models_holm),
                    r.cliffs_delta_abs,
                    r.magnitude.map_or("-", |m| m.as_str())
                );
            }
            s.push('\n');
        }
        if !self.skipped_comparisons.is_empty() {
            let _ = writeln!(s, "## Skipped comparisons\n");
            for k in &self.skipped_comparisons {
                let _ = writeln!(s, "- {}: {}", k.name, k.reason);
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## SHAP slopes\n");
        let _ = writeln!(
            s,
            "Gradient boosting (Huber) fitted on all rows, path-dependent TreeSHAP; slope of OLS of \
             SHAP on code/max(code). % OOD retained is modelled as a fraction. The intervals are \
             95% percentile intervals over bootstrap resamples of the models (each refitted); \
             \"same sign\" is the share of resamples whose slope has the estimate's sign. The \
             cross-validated R² predicts each model's rows from a fit without that model.\n"
        );
        for r in &self.shap {
            let _ = writeln!(s, "### {} ({})\n", r.metric.label(), fit_text(r));
            let _ = writeln!(
                s,
                "| Variable | Slope [95% CI] | Same sign | Slope (L1) |\n|---|---|---|---|"
            );
            for f in &r.slopes {
                let ci = match (f.ci_low, f.ci_high) {
                    (Some(lo), Some(hi)) => format!(" [{lo:.4}, {hi:.4}]"),
                    _ => String::new(),
                };
                let same = f.same_sign.map_or_else(|| "-".into(), |v| format!("{:.1}%", 100.0 * v));
                let _ = writeln!(
                    s,
                    "| {} | {}{ci} | {same} | {} |",
                    f.feature,
                    fmt_opt(f.slope, 4),
                    fmt_opt(f.slope_l1, 3)
                );
            }
            s.push('\n');
        }
        s
    }

    /// The "Findings" section: per metric, the comparisons that hold with the model as the unit
    /// after Holm's adjustment, the SHAP slopes whose interval excludes zero, and the boosted
    /// model's fit in and out of sample.
    fn findings(&self) -> String {
        let mut s = String::from("## Findings\n\n");
        for metric in Metric::ALL {
            let held: Vec<String> = self
                .comparisons
                .iter()
                .filter(|c| c.metric == metric && c.p_models_holm.is_some_and(|p| p < 0.05))
                .map(|c| {
                    let (high, low) = if c.mean_b > c.mean_a {
                        (&c.b, &c.a)
                    } else {
                        (&c.a, &c.b)
                    };
                    format!("{} ({high} > {low})", c.name)
                })
                .collect();
            let _ = writeln!(
                s,
                "- **{}.** Comparisons holding over pairs of models after Holm (p < 0.05): {}.",
                metric.label(),
                if held.is_empty() {
                    "none".to_string()
                } else {
                    held.join("; ")
                }
            );
            if let Some(r) = self.shap.iter().find(|r| r.metric == metric) {
                let clear: Vec<String> = r
                    .slopes
                    .iter()
                    .filter_map(|f| {
                        let (lo, hi) = (f.ci_low?, f.ci_high?);
                        (lo > 0.0 || hi < 0.0).then(|| format!("{} {}", f.feature, if lo > 0.0 { "+" } else { "−" }))
                    })
                    .collect();
                if r.resamples > 0 {
                    let _ = writeln!(
                        s,
                        "  SHAP slopes whose 95% interval excludes zero: {}.",
                        if clear.is_empty() {
                            "none".to_string()
                        } else {
                            clear.join(", ")
                        }
                    );
                }
                let _ = writeln!(s, "  Boosted model: {}.", fit_text(r));
            }
        }
        s.push('\n');
        s
    }

    /// `comparisons.csv`: one row per (comparison, metric).
    pub fn comparisons_csv(&self) -> Result<Vec<u8>> {
        #[derive(Serialize, Deserialize)]
        struct Row<'a> {
            comparison: &'a str,
            metric: &'static str,
            a: &'a str,
            b: &'a str,
            n_pairs: usize,
            n_a: usize,
            n_b: usize,
            mean_a: f64,
            ci_low_a: f64,
            ci_high_a: f64,
            mean_b: f64,
            ci_low_b: f64,
            ci_high_b: f64,
            wilcoxon_statistic: Option<f64>,
            wilcoxon_method: Option<&'a str>,
            p: Option<f64>,
            p_holm: Option<f64>,
            n_model_pairs: usize,
            p_models: Option<f64>,
            p_models_holm: Option<f64>,
            cliffs_delta: f64,
            magnitude: Option<&'static str>,
        }
        let rows: Vec<Row> = self
            .comparisons
            .iter()
            .map(|c| Row {
                comparison: &c.name,
                metric: c.metric.key(),
                a: &c.a,
                b: &c.b,
                n_pairs: c.n_pairs,
                n_a: c.n_a,
                n_b: c.n_b,
                mean_a: c.mean_a,
                ci_low_a: c.ci95_a.0,
                ci_high_a: c.ci95_a.1,
                mean_b: c.mean_b,
                ci_low_b: c.ci95_b.0,
                ci_high_b: c.ci95_b.1,
                wilcoxon_statistic: c.wilcoxon_statistic,
                wilcoxon_method: c.wilcoxon_method.as_deref(),
                p: c.p_value,
                p_holm: c.p_holm,
                n_model_pairs: c.n_model_pairs,
                p_models: c.p_models,
                p_models_holm: c.p_models_holm,
                cliffs_delta: c.cliffs_delta,
                magnitude: c.magnitude.map(|m| m.as_str()),
            })
            .collect();
        csv_bytes(&rows)
    }

    /// `shap_slopes.csv`: one row per (metric, variable).
    pub fn shap_csv(&self) -> Result<Vec<u8>> {
        #[derive(Serialize, Deserialize)]
        struct Row<'a> {
            metric: &'a str,
            variable: &'a str,
            slope: Option<f64>,
            ci_low: Option<f64>,
            ci_high: Option<f64>,
            same_sign: Option<f64>,
            slope_l1: Option<f64>,
            r2: f64,
            r2_cv: Option<f64>,
            folds: usize,
            resamples: usize,
        }
        let rows: Vec<Row> = self
            .shap
            .iter()
            .flat_map(|r| {
                r.slopes.iter().map(move |f| Row {
                    metric: r.metric.key(),
                    variable: &f.feature,
                    slope: f.slope,
                    ci_low: f.ci_low,
                    ci_high: f.ci_high,
                    same_sign: f.same_sign,
                    slope_l1: f.slope_l1,
                    r2: r.r2,
                    r2_cv: r.r2_cv,
                    folds: r.folds,
                    resamples: r.resamples,
                })
            })
            .collect();
        csv_bytes(&rows)
    }

    /// One horizontal bar chart panel per metric of the raw SHAP slopes.
    pub fn shap_chart(&self) -> Result<Chart> {
        let mut fig = Figure::new(1, self.shap.len().max(1)).title("SHAP slopes (raw) per variable");
        for r in &self.shap {
            let values: Vec<f64> = r.slopes.iter().map(|f| f.slope.unwrap_or(f64::NAN)).collect();
            let intervals: Vec<(f64, f64)> = r
                .slopes
                .iter()
                .map(|f| (f.ci_low.unwrap_or(f64::NAN), f.ci_high.unwrap_or(f64::NAN)))
                .collect();
            let chart = BarChart::new(format!("{} ({})", r.metric.label(), fit_text_short(r)))
                .x_label(if r.resamples > 0 {
                    "SHAP slope, 95% bootstrap interval"
                } else {
                    "SHAP slope"
                })
                .categories(r.slopes.iter().map(|f| f.feature.clone()))
                .group_with_intervals("slope", values, intervals)
                .horizontal(true)
                .value_labels(true)
                .legend(Legend::Hidden)
                .build()?;
            fig = fig.push(chart);
        }
        fig.build()
    }
}

impl std::fmt::Display for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

/// "R² 0.62 in sample, 0.41 cross-validated (8 folds), 200 resamples".
fn fit_text(r: &ShapResult) -> String {
    let mut t = format!("R² {:.3} in sample", r.r2);
    if let Some(cv) = r.r2_cv {
        let _ = write!(t, ", {cv:.3} cross-validated ({} folds)", r.folds);
    }
    if r.resamples > 0 {
        let _ = write!(t, ", {} resamples", r.resamples);
    }
    t
}

/// "R² 0.62, CV 0.41" for a chart title.
fn fit_text_short(r: &ShapResult) -> String {
    match r.r2_cv {
        Some(cv) => format!("R² {:.2}, cross-validated {cv:.2}", r.r2),
        None => format!("R² {:.2}", r.r2),
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn fmt_p(p: Option<f64>) -> String {
    match p {
        None => "-".into(),
        Some(p) if p.is_nan() => "NaN".into(),
        Some(p) if p < 0.001 => format!("{p:.2e}"),
        Some(p) => format!("{p:.3}"),
    }
}

/// Runs the analysis with default options and writes the three output files into `out_dir`.
pub fn analyze(csv_path: &Path, spec: Option<&Path>, out_dir: &Path) -> Result<Analysis> {
    analyze_with(csv_path, spec, out_dir, &AnalyzeOptions::default())
}

pub fn analyze_with(csv_path: &Path, spec: Option<&Path>, out_dir: &Path, opts: &AnalyzeOptions) -> Result<Analysis> {
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(Error::usage(format!(
            "{} is a file, not a folder: give --out a folder",
            out_dir.display()
        )));
    }
    let analysis = compute(csv_path, spec, opts)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let json = serde_json::to_string_pretty(&analysis)
        .map_err(|e| Error::Internal(format!("serialising analysis.json: {e}")))?;
    write_atomic(&out_dir.join("analysis.json"), json.as_bytes())?;
    write_atomic(&out_dir.join("analysis.md"), analysis.markdown().as_bytes())?;
    write_atomic(&out_dir.join("comparisons.csv"), &analysis.comparisons_csv()?)?;
    write_atomic(&out_dir.join("shap_slopes.csv"), &analysis.shap_csv()?)?;
    if !analysis.shap.is_empty() {
        write_chart(&analysis.shap_chart()?, out_dir, "shap_slopes")?;
    }
    Ok(analysis)
}

/// The analysis without writing files.
pub fn compute(csv_path: &Path, spec: Option<&Path>, opts: &AnalyzeOptions) -> Result<Analysis> {
    opts.uncertainty.check()?;
    let study = Study::read(csv_path)?;
    let (spec_def, spec_path) = match spec {
        Some(p) => (ComparisonSpec::load(p)?, p.to_path_buf()),
        None => (ComparisonSpec::h24(), PathBuf::from("built-in h24 comparison spec")),
    };
    let models = study.model_summaries();
    let mut comparisons = Vec::new();
    let mut skipped = Vec::new();
    for def in &spec_def.comparisons {
        match evaluate(&study, &spec_path, def, &opts.wilcoxon) {
            Ok(Evaluated::Done(v)) => comparisons.extend(v),
            Ok(Evaluated::Skipped(s)) => skipped.push(s),
            Err(e) if opts.skip_failing_comparisons => skipped.push(SkippedComparison {
                name: def.name.clone(),
                reason: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    // Each metric's comparisons are a family: both tests' p-values adjusted over it (Holm).
    for metric in Metric::ALL {
        let mut family: Vec<&mut ComparisonResult> = comparisons.iter_mut().filter(|c| c.metric == metric).collect();
        let adjust = |p: Vec<Option<f64>>| -> Vec<Option<f64>> {
            let p: Vec<f64> = p.into_iter().map(|p| p.unwrap_or(f64::NAN)).collect();
            holm(&p).into_iter().map(|a| (!a.is_nan()).then_some(a)).collect()
        };
        let rows = adjust(family.iter().map(|c| c.p_value).collect());
        let models = adjust(family.iter().map(|c| c.p_models).collect());
        for ((c, rows), models) in family.iter_mut().zip(rows).zip(models) {
            c.p_holm = rows;
            c.p_models_holm = models;
        }
    }
    let shap = shap_analyses(&study, &Metric::ALL, &opts.gbm, &opts.uncertainty)?;
    Ok(Analysis {
        input: csv_path.to_path_buf(),
        spec: if spec_def.name.is_empty() {
            spec_path.display().to_string()
        } else {
            spec_def.name
        },
        n_rows: study.rows.len(),
        n_models: study.n_models(),
        tunnel_classes: class_counts(&models),
        models,
        comparisons,
        skipped_comparisons: skipped,
        shap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `analysis.json` reads back to what was written, undefined numbers, intervals and feature
    /// order included; one written before the intervals reads with none.
    #[test]
    fn analysis_json_round_trips() {
        let slope = |feature: &str, slope: Option<f64>| FeatureSlope {
            feature: feature.into(),
            slope,
            slope_l1: slope.map(|s| s / 2.0),
            ci_low: slope.map(|s| s - 1.0),
            ci_high: slope.map(|s| s + 0.5),
            same_sign: slope.map(|_| 0.9),
        };
        let a = Analysis {
            input: "study/metrics.csv".into(),
            spec: "h24".into(),
            n_rows: 3,
            n_models: 1,
            tunnel_classes: ClassCounts {
                weak: 1,
                ..ClassCounts::default()
            },
            models: Vec::new(),
            comparisons: Vec::new(),
            skipped_comparisons: Vec::new(),
            shap: vec![
                ShapResult {
                    metric: Metric::RetainedPct,
                    r2: 0.5,
                    r2_cv: Some(0.25),
                    folds: 8,
                    resamples: 200,
                    expected_value: 60.0,
                    slopes: vec![slope("Resolution", Some(1.5)), slope("Augmentation", None)],
                },
                ShapResult {
                    metric: Metric::Alignment,
                    r2: f64::NAN,
                    r2_cv: None,
                    folds: 0,
                    resamples: 0,
                    expected_value: 0.1,
                    slopes: vec![slope("Depth", Some(-0.25))],
                },
            ],
        };
        let json = serde_json::to_string(&a).unwrap();
        let back: Analysis = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.shap[0].slopes[0].feature, "Resolution");
        assert_eq!(back.shap[0].slopes[0].ci_low, Some(0.5));
        assert_eq!(back.shap[0].slopes[1].slope, None);
        assert_eq!(back.shap[0].r2_cv, Some(0.25));
        assert!(back.shap[1].r2.is_nan());

        let old = r#"{"input": "m.csv", "spec": "h24", "n_rows": 1, "n_models": 1,
            "tunnel_classes": {"negligible": 0, "weak": 1, "medium": 0, "strong": 0},
            "models": [], "comparisons": [], "skipped_comparisons": [],
            "shap": {"pearson": {"r2": 0.7, "expected_value": 0.5,
                "slopes": {"Depth": -0.1, "Stem": null}, "slopes_l1": {"Depth": -1.0, "Stem": null}}}}"#;
        let back: Analysis = serde_json::from_str(old).unwrap();
        let r = &back.shap[0];
        assert_eq!((r.r2_cv, r.folds, r.resamples), (None, 0, 0));
        assert_eq!(r.slopes[0].slope, Some(-0.1));
        assert_eq!((r.slopes[0].ci_low, r.slopes[0].same_sign), (None, None));
    }
}
