//! The `analyze` command: reads a study's metrics CSV, computes tunnel classes, the paired
//! comparisons of a [`ComparisonSpec`] and the SHAP slopes, and writes `analysis.json`,
//! `analysis.md` and `shap_slopes.svg`/`.png` (each written to a temporary file and renamed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tunnelbench_plot::{BarChart, Chart, Figure, Legend, write_atomic, write_chart};

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize};

use super::gbm::GbmParams;
use super::study::{
    ClassCounts, ComparisonResult, ComparisonSpec, Evaluated, FeatureSlope, Metric, ModelSummary, ShapResult,
    SkippedComparison, Study, class_counts, evaluate, shap_analysis,
};
use super::wilcoxon::WilcoxonOptions;
use crate::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeOptions {
    pub wilcoxon: WilcoxonOptions,
    pub gbm: GbmParams,
}

/// SHAP slopes of one metric as the JSON object `{"r2": .., "slopes": {feature: slope}, ..}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapJson(pub ShapResult);

impl Serialize for ShapJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        struct Slopes<'a>(&'a ShapResult, bool);
        impl Serialize for Slopes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.slopes.len()))?;
                for f in &self.0.slopes {
                    m.serialize_entry(&f.feature, &if self.1 { f.slope_l1 } else { f.slope })?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("r2", &self.0.r2)?;
        m.serialize_entry("expected_value", &self.0.expected_value)?;
        m.serialize_entry("slopes", &Slopes(&self.0, false))?;
        m.serialize_entry("slopes_l1", &Slopes(&self.0, true))?;
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
    #[derive(Deserialize)]
    struct Entry {
        r2: Option<f64>,
        expected_value: Option<f64>,
        slopes: InOrder,
        slopes_l1: InOrder,
    }
    let entries = std::collections::BTreeMap::<Metric, Entry>::deserialize(d)?;
    Ok(entries
        .into_iter()
        .map(|(metric, e)| ShapResult {
            metric,
            r2: e.r2.unwrap_or(f64::NAN),
            expected_value: e.expected_value.unwrap_or(f64::NAN),
            slopes: e
                .slopes
                .0
                .into_iter()
                .zip(e.slopes_l1.0)
                .map(|((feature, slope), (_, slope_l1))| FeatureSlope {
                    feature,
                    slope,
                    slope_l1,
                })
                .collect(),
        })
        .collect())
}

/// A JSON object of numbers (or nulls), its entries in the order written.
struct InOrder(Vec<(String, Option<f64>)>);

impl<'de> Deserialize<'de> for InOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = InOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<InOrder, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(InOrder(entries))
            }
        }
        d.deserialize_map(Entries)
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
            let _ = write!(s, "SHAP {} (R² {:.3}):", r.metric.key(), r.r2);
            for f in &r.slopes {
                let _ = write!(s, " {}={}", f.feature, fmt_opt(f.slope, 4));
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
                "| Comparison | Group A | Mean A [95% CI] | Group B | Mean B [95% CI] | Pairs | p | \\|δ\\| | Magnitude |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
            for r in rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.2} [{:.2}, {:.2}] | {} | {:.2} [{:.2}, {:.2}] | {} | {} | {:.3} | {} |",
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
             SHAP on code/max(code). % OOD retained is modelled as a fraction.\n"
        );
        let mut header = String::from("| Variable |");
        let mut rule = String::from("|---|");
        for r in &self.shap {
            let _ = write!(header, " {} | {} (L1) |", r.metric.key(), r.metric.key());
            rule.push_str("---|---|");
        }
        let _ = writeln!(s, "{header}\n{rule}");
        if let Some(first) = self.shap.first() {
            for (i, f) in first.slopes.iter().enumerate() {
                let _ = write!(s, "| {} |", f.feature);
                for r in &self.shap {
                    let fs = &r.slopes[i];
                    let _ = write!(s, " {} | {} |", fmt_opt(fs.slope, 4), fmt_opt(fs.slope_l1, 3));
                }
                s.push('\n');
            }
            let _ = write!(s, "| in-sample R² |");
            for r in &self.shap {
                let _ = write!(s, " {:.3} | |", r.r2);
            }
            s.push('\n');
        }
        s
    }

    /// One horizontal bar chart panel per metric of the raw SHAP slopes.
    pub fn shap_chart(&self) -> Result<Chart> {
        let mut fig = Figure::new(1, self.shap.len().max(1)).title("SHAP slopes (raw) per variable");
        for r in &self.shap {
            let chart = BarChart::new(format!("{} (R² {:.2})", r.metric.label(), r.r2))
                .x_label("SHAP slope")
                .categories(r.slopes.iter().map(|f| f.feature.clone()))
                .group(
                    "slope",
                    r.slopes.iter().map(|f| f.slope.unwrap_or(f64::NAN)).collect::<Vec<_>>(),
                )
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
    let analysis = compute(csv_path, spec, opts)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let json = serde_json::to_string_pretty(&analysis)
        .map_err(|e| Error::Internal(format!("serialising analysis.json: {e}")))?;
    write_atomic(&out_dir.join("analysis.json"), json.as_bytes())?;
    write_atomic(&out_dir.join("analysis.md"), analysis.markdown().as_bytes())?;
    if !analysis.shap.is_empty() {
        write_chart(&analysis.shap_chart()?, out_dir, "shap_slopes")?;
    }
    Ok(analysis)
}

/// The analysis without writing files.
pub fn compute(csv_path: &Path, spec: Option<&Path>, opts: &AnalyzeOptions) -> Result<Analysis> {
    let study = Study::read(csv_path)?;
    let (spec_def, spec_path) = match spec {
        Some(p) => (ComparisonSpec::load(p)?, p.to_path_buf()),
        None => (ComparisonSpec::h24(), PathBuf::from("built-in h24 comparison spec")),
    };
    let models = study.model_summaries();
    let mut comparisons = Vec::new();
    let mut skipped = Vec::new();
    for def in &spec_def.comparisons {
        match evaluate(&study, &spec_path, def, &opts.wilcoxon)? {
            Evaluated::Done(v) => comparisons.extend(v),
            Evaluated::Skipped(s) => skipped.push(s),
        }
    }
    let shap = Metric::ALL
        .iter()
        .map(|&m| shap_analysis(&study, m, &opts.gbm))
        .collect::<Result<Vec<_>>>()?;
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

    /// `analysis.json` reads back to what was written, undefined numbers and feature order included.
    #[test]
    fn analysis_json_round_trips() {
        let slope = |feature: &str, slope: Option<f64>| FeatureSlope {
            feature: feature.into(),
            slope,
            slope_l1: slope.map(|s| s / 2.0),
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
                    expected_value: 60.0,
                    slopes: vec![slope("Resolution", Some(1.5)), slope("Augmentation", None)],
                },
                ShapResult {
                    metric: Metric::Alignment,
                    r2: f64::NAN,
                    expected_value: 0.1,
                    slopes: vec![slope("Depth", Some(-0.25))],
                },
            ],
        };
        let json = serde_json::to_string(&a).unwrap();
        let back: Analysis = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.shap[0].slopes[0].feature, "Resolution");
        assert_eq!(back.shap[0].slopes[1].slope, None);
        assert!(back.shap[1].r2.is_nan());
    }
}
