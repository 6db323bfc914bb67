//! The `analyze` command: reads a study's metrics CSV, computes tunnel classes, the paired
//! comparisons of a [`ComparisonSpec`] and the SHAP slopes, and writes `analysis.json`,
//! `analysis.md` and `shap_slopes.svg` (each written to a temporary file and renamed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use crate::report::write_atomic;

use serde::Serialize;
use serde::ser::SerializeMap;

use super::gbm::GbmParams;
use super::study::{
    ClassCounts, ComparisonResult, ComparisonSpec, Evaluated, Metric, ModelSummary, ShapResult, SkippedComparison,
    Study, class_counts, evaluate, shap_analysis,
};
use super::wilcoxon::WilcoxonOptions;
use crate::error::{Error, Result};

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

/// Everything `analyze` computes; serialises to `analysis.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub input: PathBuf,
    pub spec: String,
    pub n_rows: usize,
    pub n_models: usize,
    pub tunnel_classes: ClassCounts,
    pub models: Vec<ModelSummary>,
    pub comparisons: Vec<ComparisonResult>,
    pub skipped_comparisons: Vec<SkippedComparison>,
    #[serde(serialize_with = "ser_shap")]
    pub shap: Vec<ShapResult>,
}

fn ser_shap<S: serde::Serializer>(v: &[ShapResult], s: S) -> std::result::Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(v.len()))?;
    for r in v {
        m.serialize_entry(r.metric.key(), &ShapJson(r.clone()))?;
    }
    m.end()
}

impl Analysis {
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
    pub fn shap_svg(&self) -> String {
        let panel_w = 360.0;
        let label_w = 130.0;
        let bar_h = 18.0;
        let top = 40.0;
        let n_feat = self.shap.first().map_or(0, |r| r.slopes.len()) as f64;
        let h = top + n_feat * (bar_h + 6.0) + 30.0;
        let w = panel_w * self.shap.len().max(1) as f64;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        for (p, r) in self.shap.iter().enumerate() {
            let x0 = p as f64 * panel_w;
            let plot_w = panel_w - label_w - 20.0;
            let max = r
                .slopes
                .iter()
                .filter_map(|f| f.slope)
                .map(f64::abs)
                .fold(0.0, f64::max);
            let max = if max > 0.0 { max } else { 1.0 };
            let zero = x0 + label_w + plot_w / 2.0;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="20" text-anchor="middle" font-size="13">{} (R² {:.2})</text>"#,
                x0 + panel_w / 2.0,
                xml_escape(r.metric.label()),
                r.r2
            );
            for (i, f) in r.slopes.iter().enumerate() {
                let y = top + i as f64 * (bar_h + 6.0);
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                    x0 + label_w - 6.0,
                    y + bar_h * 0.7,
                    xml_escape(&f.feature)
                );
                if let Some(b) = f.slope {
                    let len = b.abs() / max * plot_w / 2.0;
                    let (bx, color) = if b >= 0.0 {
                        (zero, "#3b75af")
                    } else {
                        (zero - len, "#c44e52")
                    };
                    let _ = writeln!(
                        s,
                        r#"<rect x="{bx:.2}" y="{y:.2}" width="{len:.2}" height="{bar_h}" fill="{color}"><title>{}: {b:.5}</title></rect>"#,
                        xml_escape(&f.feature)
                    );
                }
            }
            let _ = writeln!(
                s,
                r##"<line x1="{zero}" y1="{}" x2="{zero}" y2="{}" stroke="#333"/>"##,
                top - 4.0,
                top + n_feat * (bar_h + 6.0)
            );
            let _ = writeln!(
                s,
                r#"<text x="{zero}" y="{}" text-anchor="middle">SHAP slope (±{max:.3})</text>"#,
                top + n_feat * (bar_h + 6.0) + 16.0
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

impl std::fmt::Display for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
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
    write_atomic(&out_dir.join("shap_slopes.svg"), analysis.shap_svg().as_bytes())?;
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
