//! `tunnelbench compare RUN_DIR BASELINE`: checks a run (or a study folder) against recorded
//! metrics with per-metric tolerances and gives a verdict; `--record` writes the baseline.
//!
//! A baseline is JSON: `tolerances` (absolute, per kind of metric) and `metrics`, a list of
//! `{ name, kind, value, tolerance? }` where `value` is null for an undefined metric and an entry's
//! own `tolerance` overrides its kind's. Re-recording keeps the file's tolerances.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::report::write_atomic;

/// Kinds of metrics, each with its own default tolerance.
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
    /// Continual-learning metrics (cl_metrics.json).
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

    pub fn default_tolerance(self) -> f64 {
        match self {
            Kind::Accuracy => 0.05,
            Kind::RetainedPct => 10.0,
            Kind::Pearson => 0.2,
            Kind::Alignment => 0.2,
            Kind::Cl => 0.05,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// What was recorded (the run folder's scenario name).
    #[serde(default)]
    pub scenario: String,
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub tunnelbench_version: String,
    /// Absolute tolerance per kind; kinds not listed use the built-in defaults.
    #[serde(default)]
    pub tolerances: BTreeMap<Kind, f64>,
    pub metrics: Vec<Entry>,
}

impl Baseline {
    fn tolerance(&self, e: &Entry) -> f64 {
        e.tolerance
            .or_else(|| self.tolerances.get(&e.kind).copied())
            .unwrap_or_else(|| e.kind.default_tolerance())
    }

    pub fn load(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let b: Baseline =
            serde_json::from_str(&text).map_err(|e| Error::input(path, format!("not a tunnelbench baseline: {e}")))?;
        for e in &b.metrics {
            if e.tolerance.is_some_and(|t| t.is_nan() || t < 0.0) {
                return Err(Error::input(
                    path,
                    format!("metric `{}`: tolerance must be >= 0", e.name),
                ));
            }
        }
        for (k, t) in &b.tolerances {
            if t.is_nan() || *t < 0.0 {
                return Err(Error::input(path, format!("tolerances.{k:?}: must be >= 0")));
            }
        }
        Ok(b)
    }
}

/// One compared metric.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub name: String,
    pub baseline: Option<f64>,
    pub now: Option<f64>,
    pub diff: Option<f64>,
    pub tolerance: f64,
    /// Present in the run at all.
    pub present: bool,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub lines: Vec<Line>,
    /// Metrics of the run that the baseline does not have.
    pub new_metrics: Vec<String>,
}

impl Verdict {
    pub fn regressed(&self) -> bool {
        self.lines.iter().any(|l| !l.ok)
    }

    pub fn text(&self) -> String {
        let fmt = |v: Option<f64>| v.map_or_else(|| "undefined".to_string(), |v| format!("{v:.4}"));
        let w = self.lines.iter().map(|l| l.name.len()).max().unwrap_or(6).max(6);
        let mut s = format!(
            "{:<w$}  {:>10}  {:>10}  {:>10}  {:>8}  verdict\n",
            "metric", "baseline", "now", "diff", "tol"
        );
        for l in &self.lines {
            let now = if l.present { fmt(l.now) } else { "missing".into() };
            let diff = l.diff.map_or_else(|| "-".to_string(), |d| format!("{d:+.4}"));
            s.push_str(&format!(
                "{:<w$}  {:>10}  {:>10}  {:>10}  {:>8}  {}\n",
                l.name,
                fmt(l.baseline),
                now,
                diff,
                format!("{:.4}", l.tolerance),
                if l.ok { "ok" } else { "OUTSIDE" }
            ));
        }
        let bad: Vec<&Line> = self.lines.iter().filter(|l| !l.ok).collect();
        if !self.new_metrics.is_empty() {
            s.push_str(&format!(
                "{} metrics of the run are not in the baseline (not checked; --record to add them)\n",
                self.new_metrics.len()
            ));
        }
        if bad.is_empty() {
            s.push_str(&format!("verdict: WITHIN TOLERANCE ({} metrics)\n", self.lines.len()));
        } else {
            let missing = bad.iter().filter(|l| !l.present).count();
            s.push_str(&format!(
                "verdict: REGRESSED ({} of {} metrics outside tolerance, {missing} of them missing)\n",
                bad.len(),
                self.lines.len()
            ));
        }
        s
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

fn parse_opt(path: &Path, s: &str) -> Result<Option<f64>> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("nan") {
        return Ok(None);
    }
    t.parse::<f64>()
        .map(finite)
        .map_err(|_| Error::input(path, format!("`{t}` is not a number")))
}

/// Rows of a CSV file as header → cell maps.
fn csv_rows(path: &Path) -> Result<Vec<BTreeMap<String, String>>> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| Error::input(path, e.to_string()))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::input(path, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::input(path, format!("malformed CSV: {e}")))?;
        out.push(header.iter().cloned().zip(rec.iter().map(str::to_string)).collect());
    }
    Ok(out)
}

fn cell<'a>(path: &Path, row: &'a BTreeMap<String, String>, col: &str) -> Result<&'a str> {
    row.get(col)
        .map(String::as_str)
        .ok_or_else(|| Error::input(path, format!("missing column `{col}`")))
}

fn flatten_json(prefix: &str, v: &serde_json::Value, out: &mut Vec<Entry>) {
    match v {
        serde_json::Value::Number(n) => out.push(Entry {
            name: prefix.to_string(),
            kind: Kind::Cl,
            value: n.as_f64().and_then(finite),
            tolerance: None,
        }),
        serde_json::Value::Null => out.push(Entry {
            name: prefix.to_string(),
            kind: Kind::Cl,
            value: None,
            tolerance: None,
        }),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten_json(&format!("{prefix}[{i}]"), x, out);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                flatten_json(&format!("{prefix}.{k}"), x, out);
            }
        }
        _ => {}
    }
}

/// The recorded metrics of one run folder, each name prefixed with `prefix`.
fn run_metrics(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> Result<()> {
    let mut push = |name: String, kind: Kind, value: Option<f64>| {
        out.push(Entry {
            name: format!("{prefix}{name}"),
            kind,
            value,
            tolerance: None,
        })
    };
    let summary_path = dir.join("summary.json");
    if summary_path.is_file() {
        let v: serde_json::Value =
            serde_json::from_str(&read_text(&summary_path)?).map_err(|e| Error::input(&summary_path, e.to_string()))?;
        if let Some(a) = v.get("backbone_accuracy").and_then(|a| a.as_f64()) {
            push("backbone_accuracy".into(), Kind::Accuracy, finite(a));
        }
        for m in v.get("means").and_then(|m| m.as_array()).into_iter().flatten() {
            let s = |k: &str| m.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let num = |k: &str| m.get(k).and_then(|x| x.as_f64()).and_then(finite);
            let base = format!("mean/{}/{}", s("model"), s("probe"));
            push(
                format!("{base}/retained_pct"),
                Kind::RetainedPct,
                num("mean_retained_pct"),
            );
            push(format!("{base}/pearson"), Kind::Pearson, num("mean_pearson"));
            push(format!("{base}/alignment"), Kind::Alignment, num("mean_alignment"));
        }
    }
    let probes = dir.join("probes.csv");
    if probes.is_file() {
        for row in csv_rows(&probes)? {
            let layer: usize = cell(&probes, &row, "layer_index")?
                .parse()
                .map_err(|_| Error::input(&probes, "layer_index is not a number"))?;
            push(
                format!(
                    "probe/{}/{}/{}/layer{layer:02}",
                    cell(&probes, &row, "model")?,
                    cell(&probes, &row, "probe")?,
                    cell(&probes, &row, "dataset")?
                ),
                Kind::Accuracy,
                parse_opt(&probes, cell(&probes, &row, "accuracy")?)?,
            );
        }
    }
    let metrics = dir.join("metrics_all.csv");
    if metrics.is_file() {
        for row in csv_rows(&metrics)? {
            let base = format!(
                "ood/{}/{}/{}",
                cell(&metrics, &row, "model")?,
                cell(&metrics, &row, "probe")?,
                cell(&metrics, &row, "ood_dataset")?
            );
            for (col, kind) in [
                ("retained_pct", Kind::RetainedPct),
                ("pearson", Kind::Pearson),
                ("alignment", Kind::Alignment),
            ] {
                push(
                    format!("{base}/{col}"),
                    kind,
                    parse_opt(&metrics, cell(&metrics, &row, col)?)?,
                );
            }
        }
    }
    let cl = dir.join("cl_metrics.json");
    if cl.is_file() {
        let v: serde_json::Value =
            serde_json::from_str(&read_text(&cl)?).map_err(|e| Error::input(&cl, e.to_string()))?;
        // Only the recorded CL metrics: timings and class lists are not results.
        for variant in v["variants"].as_array().into_iter().flatten() {
            let name = |k: &str| variant[k].as_str().unwrap_or("?").to_string();
            let id = format!(
                "{prefix}cl.{}/{}/{}",
                name("architecture"),
                name("variant"),
                name("strategy")
            );
            for eval in ["task_aware", "task_agnostic"] {
                flatten_json(&format!("{id}.{eval}"), &variant[eval], out);
            }
        }
    }
    Ok(())
}

/// The metrics of a run folder, or of every finished run of a study folder (names prefixed with
/// the run id). Also returns the scenario name and backend when known.
pub fn collect_metrics(dir: &Path) -> Result<(Vec<Entry>, String, String)> {
    let mut out = Vec::new();
    let mut scenario = String::new();
    let mut backend = String::new();
    if dir.join("runs").is_dir() {
        let (runs, _, _) = crate::study::collect::find_runs(&[dir.to_path_buf()])?;
        for r in &runs {
            run_metrics(&r.dir, &format!("{}/", r.id), &mut out)?;
        }
        if let Ok(t) = std::fs::read_to_string(dir.join(crate::study::exec::PLAN_FILE))
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
        {
            scenario = v.get("name").and_then(|n| n.as_str()).unwrap_or("").to_string();
        }
        if let Some(r) = runs.first() {
            backend = summary_field(&r.dir, "backend");
        }
    } else {
        run_metrics(dir, "", &mut out)?;
        scenario = summary_field(dir, "scenario");
        backend = summary_field(dir, "backend");
    }
    if out.is_empty() {
        return Err(Error::input(
            dir,
            "no metrics found (expected summary.json, probes.csv, metrics_all.csv or cl_metrics.json, or a study's runs/)",
        ));
    }
    Ok((out, scenario, backend))
}

fn summary_field(dir: &Path, key: &str) -> String {
    std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get(key).and_then(|s| s.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// Compare a run folder with a baseline.
pub fn compare(run_dir: &Path, baseline_path: &Path) -> Result<Verdict> {
    let baseline = Baseline::load(baseline_path)?;
    let (now, _, _) = collect_metrics(run_dir)?;
    let now_by_name: BTreeMap<&str, &Entry> = now.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut lines = Vec::new();
    for e in &baseline.metrics {
        let tol = baseline.tolerance(e);
        let cur = now_by_name.get(e.name.as_str());
        let now_v = cur.and_then(|c| c.value);
        let diff = match (e.value, now_v) {
            (Some(b), Some(n)) => Some(n - b),
            _ => None,
        };
        let ok = match (cur, e.value, now_v) {
            (None, _, _) => false,
            (Some(_), None, None) => true,
            (Some(_), Some(_), Some(_)) => diff.is_some_and(|d| d.abs() <= tol + 1e-12),
            _ => false,
        };
        lines.push(Line {
            name: e.name.clone(),
            baseline: e.value,
            now: now_v,
            diff,
            tolerance: tol,
            present: cur.is_some(),
            ok,
        });
    }
    let known: std::collections::BTreeSet<&str> = baseline.metrics.iter().map(|e| e.name.as_str()).collect();
    let new_metrics = now
        .iter()
        .filter(|e| !known.contains(e.name.as_str()))
        .map(|e| e.name.clone())
        .collect();
    Ok(Verdict { lines, new_metrics })
}

/// Record a run folder's metrics as a baseline (keeping the tolerances of an existing file).
pub fn record(run_dir: &Path, baseline_path: &Path) -> Result<Baseline> {
    let (mut metrics, scenario, backend) = collect_metrics(run_dir)?;
    let mut tolerances: BTreeMap<Kind, f64> = Kind::ALL.iter().map(|k| (*k, k.default_tolerance())).collect();
    if baseline_path.is_file() {
        let old = Baseline::load(baseline_path)?;
        tolerances.extend(old.tolerances.iter().map(|(k, v)| (*k, *v)));
        for m in &mut metrics {
            m.tolerance = old.metrics.iter().find(|o| o.name == m.name).and_then(|o| o.tolerance);
        }
    }
    let b = Baseline {
        scenario,
        backend,
        tunnelbench_version: env!("CARGO_PKG_VERSION").to_string(),
        tolerances,
        metrics,
    };
    let json = serde_json::to_string_pretty(&b).map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(parent) = baseline_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    write_atomic(baseline_path, (json + "\n").as_bytes())?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(v: Option<f64>, tol: Option<f64>) -> Baseline {
        Baseline {
            scenario: String::new(),
            backend: String::new(),
            tunnelbench_version: String::new(),
            tolerances: BTreeMap::from([(Kind::Pearson, 0.1)]),
            metrics: vec![Entry {
                name: "m".into(),
                kind: Kind::Pearson,
                value: v,
                tolerance: tol,
            }],
        }
    }

    #[test]
    fn tolerance_precedence() {
        let b = baseline(Some(0.5), None);
        assert_eq!(b.tolerance(&b.metrics[0]), 0.1);
        let b = baseline(Some(0.5), Some(0.3));
        assert_eq!(b.tolerance(&b.metrics[0]), 0.3);
        let mut b = baseline(Some(0.5), None);
        b.tolerances.clear();
        assert_eq!(b.tolerance(&b.metrics[0]), 0.2);
    }

    #[test]
    fn json_flattening_names_paths() {
        let v: serde_json::Value = serde_json::from_str(r#"{"a": {"b": [1, null]}, "c": "x"}"#).unwrap();
        let mut out = Vec::new();
        flatten_json("cl", &v, &mut out);
        let names: Vec<&str> = out.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["cl.a.b[0]", "cl.a.b[1]"]);
        assert_eq!(out[1].value, None);
    }
}
