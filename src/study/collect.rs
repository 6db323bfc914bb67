//! Collecting a study: every finished run's metrics (trained model, main probe, one row per OOD
//! set) into `study_metrics.csv` in the [H24] column schema plus `run_id` and `ood_dataset`, then
//! `analyze` on it.
//!
//! Column encoding (METHOD §4.5, §6.1): Stem, Spatial Reduction, CNN vs ViT and Depth come from
//! the architecture; Augmentations is 0 or 2; Resolution is the backbone's input size; ID Class
//! Count is the number of ID classes the backbone was trained on; OverParam. Level is γ = P / N
//! with N the number of ID training images and P the Table 11 count of the named architecture
//! (METHOD §4.6), scaled by width² for width ≠ 1 — the honest size of a channel-scaled network
//! of the same layout (conv weights scale with in × out channels), which keeps γ comparable
//! across widths without depending on the head size, as the paper's fixed P does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::exec::{DONE, DoneMarker, FAILED, FailedMarker, PLAN_FILE};
use crate::error::{Error, Result};
use crate::model::{ArchSpec, table11_params_millions};
use crate::report::write_atomic;
use crate::stats::analyze::{Analysis, analyze};

pub const STUDY_METRICS: &str = "study_metrics.csv";
pub const HEADER: &str = "Pearson Correlation,ID OOD Alignment,Percentage OOD retained,Stem,Spatial Reduction,CNN vs ViT,Augmentations,Resolution,ID Class Count,OverParam. Level,Depth,run_id,ood_dataset";

/// A finished run found in a study folder.
#[derive(Clone, Debug)]
pub struct FoundRun {
    pub id: String,
    pub dir: PathBuf,
    pub marker: DoneMarker,
}

/// What `collect` produced.
#[derive(Debug)]
pub struct Collected {
    pub csv: PathBuf,
    pub runs: Vec<FoundRun>,
    pub failed: Vec<FailedMarker>,
    pub rows: usize,
    /// (run id, OOD set, reason) of rows left out because a metric is undefined.
    pub undefined: Vec<(String, String, String)>,
    pub analysis: Option<Analysis>,
    pub note: Option<String>,
}

#[derive(Deserialize)]
struct PlanFile {
    #[serde(default)]
    spec: Option<PathBuf>,
    runs: Vec<PlanEntry>,
}

#[derive(Deserialize)]
struct PlanEntry {
    id: String,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::input(path, format!("not the expected JSON: {e}")))
}

/// Finished and failed runs of study folders, in plan order (runs unknown to the plans last, by
/// id); a run present in several folders counts once.
pub fn find_runs(dirs: &[PathBuf]) -> Result<(Vec<FoundRun>, Vec<FailedMarker>, Option<PathBuf>)> {
    let mut order: Vec<String> = Vec::new();
    let mut spec = None;
    let mut found: BTreeMap<String, FoundRun> = BTreeMap::new();
    let mut failed: BTreeMap<String, FailedMarker> = BTreeMap::new();
    for dir in dirs {
        let runs = dir.join("runs");
        if !runs.is_dir() {
            return Err(Error::input(dir, "not a study folder (no runs/ inside)"));
        }
        let plan_path = dir.join(PLAN_FILE);
        if plan_path.is_file() {
            let plan: PlanFile = read_json(&plan_path)?;
            spec = spec.or(plan.spec);
            for e in plan.runs {
                if !order.contains(&e.id) {
                    order.push(e.id);
                }
            }
        }
        let entries = std::fs::read_dir(&runs).map_err(|e| Error::io(&runs, e))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for id in names {
            let rd = runs.join(&id);
            if rd.join(DONE).is_file() {
                if !found.contains_key(&id) {
                    let marker: DoneMarker = read_json(&rd.join(DONE))?;
                    found.insert(id.clone(), FoundRun { id, dir: rd, marker });
                }
            } else if rd.join(FAILED).is_file() && !failed.contains_key(&id) {
                failed.insert(id.clone(), read_json(&rd.join(FAILED))?);
            }
        }
    }
    let mut ordered = Vec::new();
    for id in &order {
        if let Some(r) = found.remove(id) {
            ordered.push(r);
        }
    }
    ordered.extend(found.into_values());
    failed.retain(|id, _| !ordered.iter().any(|r| &r.id == id));
    Ok((ordered, failed.into_values().collect(), spec))
}

/// The variable cells of one run, from its summary.json.
fn variable_cells(dir: &Path) -> Result<String> {
    let path = dir.join("summary.json");
    let v: serde_json::Value = read_json(&path)?;
    let bad = |what: &str| Error::input(&path, format!("missing or malformed `{what}`"));
    let config = v.get("config").ok_or_else(|| bad("config"))?;
    let arch: ArchSpec = serde_json::from_value(config.get("model").cloned().ok_or_else(|| bad("config.model"))?)
        .map_err(|e| Error::input(&path, format!("config.model: {e}")))?;
    let (stem, phi) = arch
        .stem_and_reduction()
        .map_err(|e| Error::input(&path, e.to_string()))?;
    let depth = arch.depth_code().map_err(|e| Error::input(&path, e.to_string()))?;
    let family = if arch.is_transformer() { "Transformer" } else { "CNN" };
    let augment = config
        .pointer("/train/augment")
        .and_then(|a| a.as_bool())
        .ok_or_else(|| bad("config.train.augment"))?;
    let resolution = config
        .get("resolution")
        .and_then(|r| r.as_u64())
        .ok_or_else(|| bad("config.resolution"))?;
    let id = v
        .get("datasets")
        .and_then(|d| d.as_array())
        .and_then(|d| d.iter().find(|d| d.get("role").and_then(|r| r.as_str()) == Some("id")))
        .ok_or_else(|| bad("datasets (role id)"))?;
    let classes = id
        .get("n_classes")
        .and_then(|c| c.as_u64())
        .ok_or_else(|| bad("n_classes"))?;
    let n_train = id
        .get("n_train")
        .and_then(|c| c.as_u64())
        .ok_or_else(|| bad("n_train"))?;
    let p = table11_params_millions(&arch.name)
        .ok_or_else(|| Error::input(&path, format!("no Table 11 parameter count for `{}`", arch.name)))?
        * 1e6
        * arch.width
        * arch.width;
    let gamma = if n_train > 0 { p / n_train as f64 } else { f64::NAN };
    Ok(format!(
        "{stem},{phi},{family},{},{resolution},{classes},{gamma},{depth}",
        if augment { 2 } else { 0 }
    ))
}

#[derive(Deserialize)]
struct MetricsLine {
    ood_dataset: String,
    retained_pct: Option<f64>,
    pearson: Option<f64>,
    alignment: Option<f64>,
    #[serde(default)]
    undefined_reasons: String,
}

/// Rows of one run (metrics.csv: trained model, main probe).
fn run_rows(run: &FoundRun, undefined: &mut Vec<(String, String, String)>) -> Result<Vec<String>> {
    let cells = variable_cells(&run.dir)?;
    let path = run.dir.join("metrics.csv");
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| Error::input(&path, e.to_string()))?;
    let mut out = Vec::new();
    for rec in rdr.deserialize::<MetricsLine>() {
        let m = rec.map_err(|e| Error::input(&path, format!("malformed row: {e}")))?;
        match (m.pearson, m.alignment, m.retained_pct) {
            (Some(p), Some(a), Some(r)) if p.is_finite() && a.is_finite() && r.is_finite() => {
                out.push(format!("{p},{a},{r},{cells},{},{}", run.id, csv_cell(&m.ood_dataset)));
            }
            _ => undefined.push((run.id.clone(), m.ood_dataset, m.undefined_reasons)),
        }
    }
    Ok(out)
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Merge the finished runs of `dirs` into `<out>/study_metrics.csv` and analyse it into
/// `<out>/analysis/` (with `spec`, else the spec the study names, else the built-in one).
pub fn collect(dirs: &[PathBuf], out: &Path, spec: Option<&Path>) -> Result<Collected> {
    let (runs, failed, plan_spec) = find_runs(dirs)?;
    let mut lines = vec![HEADER.to_string()];
    let mut undefined = Vec::new();
    for r in &runs {
        lines.extend(run_rows(r, &mut undefined)?);
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let csv = out.join(STUDY_METRICS);
    let rows = lines.len() - 1;
    write_atomic(&csv, (lines.join("\n") + "\n").as_bytes())?;
    let spec = spec.map(Path::to_path_buf).or(plan_spec);
    let (analysis, note) = if runs.len() < 2 || rows < 2 {
        (
            None,
            Some(format!(
                "analysis skipped: {} finished run(s) with {rows} defined row(s); it needs at least 2 runs",
                runs.len()
            )),
        )
    } else {
        match analyze(&csv, spec.as_deref(), &out.join("analysis")) {
            Ok(a) => (Some(a), None),
            // An incomplete study (failed or missing runs) can leave a comparison unpaired; the
            // table is still written and can be analysed once the study is complete.
            Err(Error::Input { msg, .. }) => (
                None,
                Some(format!("analysis not possible on {} finished runs: {msg}", runs.len())),
            ),
            Err(e) => return Err(e),
        }
    };
    Ok(Collected {
        csv,
        runs,
        failed,
        rows,
        undefined,
        analysis,
        note,
    })
}

impl Collected {
    pub fn text(&self) -> String {
        let mut s = format!(
            "collected {} finished runs ({} rows) into {}\n",
            self.runs.len(),
            self.rows,
            self.csv.display()
        );
        for f in &self.failed {
            s.push_str(&format!("failed run {}: {}\n", f.run_id, f.reason));
        }
        for (id, ood, why) in &self.undefined {
            s.push_str(&format!("left out {id} / {ood}: undefined metric ({why})\n"));
        }
        if let Some(n) = &self.note {
            s.push_str(n);
            s.push('\n');
        }
        if let Some(a) = &self.analysis {
            s.push_str(&a.summary());
        }
        s
    }
}
