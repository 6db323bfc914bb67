//! Collecting a study: every finished run's metrics (trained model, main probe, one row per OOD
//! set) into `study_metrics.csv` in the [H24] column schema plus `run_id` and `ood_dataset`, then
//! `analyze` on it.
//!
//! Column encoding (method §4.5, §6.1): Stem, Spatial Reduction, CNN vs ViT and Depth come from
//! the architecture; Augmentations is 0 or 2; Resolution is the backbone's input size; ID Class
//! Count is the number of ID classes the backbone was trained on; OverParam. Level is γ = P / N
//! with N the number of ID training images and P the Table 11 count of the named architecture
//! (method §4.6), scaled by width² for width ≠ 1 — the honest size of a channel-scaled network
//! of the same layout (conv weights scale with in × out channels), which keeps γ comparable
//! across widths without depending on the head size, as the paper's fixed P does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::Plan;
use super::exec::{DONE, DoneMarker, FAILED, FailedMarker};
use crate::error::{Error, Result};
use crate::model::table11_params_millions;
use crate::results::{MetricsRecord, PLAN_FILE, RunSummary, csv_bytes, read_csv, write_atomic};
use crate::stats::analyze::{Analysis, analyze};

pub const STUDY_METRICS: &str = "study_metrics.csv";
/// Every seed's rows of a study with replicates.
pub const STUDY_METRICS_SEEDS: &str = "study_metrics_seeds.csv";
/// Each configuration's means over its seeds, with intervals.
pub const STUDY_CONFIGS: &str = "study_configs.csv";
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
    /// With replicates: the fewest and most seeds of a configuration.
    pub seeds: Option<(usize, usize)>,
    /// Planned runs not run yet.
    pub not_run: Vec<String>,
}

/// The names of the folders in `dir`, sorted.
fn subfolders(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// The runs of study folders.
pub struct StudyRuns {
    /// Finished, in plan order (runs unknown to the plans last, by id).
    pub finished: Vec<FoundRun>,
    pub failed: Vec<FailedMarker>,
    /// The comparison spec the plans name.
    pub spec: Option<PathBuf>,
    /// Planned runs that have neither finished nor failed (a shard not run yet, say).
    pub not_run: Vec<String>,
}

/// Finished and failed runs of study folders; a run present in several folders counts once.
pub fn find_runs(dirs: &[PathBuf]) -> Result<StudyRuns> {
    let mut order: Vec<String> = Vec::new();
    let mut spec = None;
    let mut found: BTreeMap<String, FoundRun> = BTreeMap::new();
    let mut failed: BTreeMap<String, FailedMarker> = BTreeMap::new();
    let mut first_plan: Option<(PathBuf, BTreeSet<String>)> = None;
    for dir in dirs {
        let runs = dir.join("runs");
        if !runs.is_dir() {
            return Err(Error::input(dir, "not a study folder (no runs/ inside)"));
        }
        if dir.join(PLAN_FILE).is_file() {
            let plan = Plan::read(dir)?;
            let ids: BTreeSet<String> = plan.runs.iter().map(|r| r.id.clone()).collect();
            match &first_plan {
                None => first_plan = Some((dir.join(PLAN_FILE), ids)),
                Some((first, first_ids)) => {
                    if let Some(id) = first_ids.symmetric_difference(&ids).next() {
                        return Err(Error::input(
                            dir.join(PLAN_FILE),
                            format!(
                                "plans another study than {} (run {id} is in one of them only): collect merges the shards \
                                 of one study, run with the same scenario and --set",
                                first.display()
                            ),
                        ));
                    }
                }
            }
            spec = spec.or(plan.spec);
            for e in plan.runs {
                if !order.contains(&e.id) {
                    order.push(e.id);
                }
            }
        }
        let mut names = Vec::new();
        for name in subfolders(&runs)? {
            // A configuration with replicates holds one folder per replicate.
            let seeds: Vec<String> = subfolders(&runs.join(&name))?
                .into_iter()
                .filter(|s| s.starts_with("seed-"))
                .collect();
            if seeds.is_empty() {
                names.push(name);
            } else {
                names.extend(seeds.into_iter().map(|s| format!("{name}/{s}")));
            }
        }
        for id in names {
            let rd = runs.join(&id);
            if rd.join(DONE).is_file() {
                if !found.contains_key(&id) {
                    let marker: DoneMarker = crate::json::read(&rd.join(DONE), "a finished-run marker")?;
                    found.insert(id.clone(), FoundRun { id, dir: rd, marker });
                }
            } else if rd.join(FAILED).is_file() && !failed.contains_key(&id) {
                failed.insert(id.clone(), crate::json::read(&rd.join(FAILED), "a failed-run marker")?);
            }
        }
    }
    let mut ordered = Vec::new();
    let mut not_run = Vec::new();
    for id in order {
        match found.remove(&id) {
            Some(r) => ordered.push(r),
            None if !failed.contains_key(&id) => not_run.push(id),
            None => {}
        }
    }
    ordered.extend(found.into_values());
    failed.retain(|id, _| !ordered.iter().any(|r| &r.id == id));
    Ok(StudyRuns {
        finished: ordered,
        failed: failed.into_values().collect(),
        spec,
        not_run,
    })
}

/// The variable cells of one run, from its summary.json.
fn variable_cells(dir: &Path) -> Result<String> {
    let path = dir.join("summary.json");
    let s: RunSummary = crate::json::read(&path, "a run summary")?;
    let arch = &s.config.model;
    let (stem, phi) = arch.stem_and_reduction().map_err(|e| e.in_file(&path))?;
    let depth = arch.depth_code().map_err(|e| e.in_file(&path))?;
    let family = if arch.is_transformer() { "Transformer" } else { "CNN" };
    let augment = s.config.train.as_ref().is_some_and(|t| t.augment);
    let resolution = s.config.resolution;
    let id = s
        .datasets
        .iter()
        .find(|d| d.role == "id")
        .ok_or_else(|| Error::input(&path, "no data set with role `id`"))?;
    let (classes, n_train) = (id.n_classes, id.n_train);
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

/// One run's metrics per OOD set (trained model, main probe): (ρ, A, r), or why undefined.
struct RunMetrics {
    cells: String,
    rows: Vec<(String, std::result::Result<[f64; 3], String>)>,
}

fn run_metrics(run: &FoundRun) -> Result<RunMetrics> {
    let cells = variable_cells(&run.dir)?;
    let mut rows = Vec::new();
    for m in read_csv::<MetricsRecord>(&run.dir.join("metrics.csv"))? {
        let values = match (m.pearson, m.alignment, m.retained_pct) {
            (Some(p), Some(a), Some(r)) if p.is_finite() && a.is_finite() && r.is_finite() => Ok([p, a, r]),
            _ => Err(m.undefined_reasons),
        };
        rows.push((m.ood_dataset, values));
    }
    Ok(RunMetrics { cells, rows })
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The finished runs grouped by configuration, in plan order.
fn configurations(runs: &[FoundRun]) -> Vec<(String, Vec<&FoundRun>)> {
    let mut out: Vec<(String, Vec<&FoundRun>)> = Vec::new();
    for r in runs {
        let id = r.marker.config_id();
        match out.iter_mut().find(|(c, _)| c == id) {
            Some((_, rs)) => rs.push(r),
            None => out.push((id.to_string(), vec![r])),
        }
    }
    out
}

/// A row of `study_configs.csv`: a configuration's per-network means over its seeds.
#[derive(serde::Serialize, serde::Deserialize)]
struct ConfigRow {
    run_id: String,
    variables: String,
    n: usize,
    metric: &'static str,
    mean: Option<f64>,
    sd: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    tunnel_classes: String,
}

/// Merge the finished runs of `dirs` into `<out>/study_metrics.csv` and analyse it into
/// `<out>/analysis/` (with `spec`, else the spec the study names, else the built-in one).
///
/// A study with replicates has one row per (configuration, OOD set) with r, ρ and A averaged
/// over the configuration's seeds (the analysis pairs configurations, as the paper does), every
/// seed's rows in `study_metrics_seeds.csv`, and each configuration's means with their
/// 95% intervals across seeds in `study_configs.csv`.
pub fn collect(dirs: &[PathBuf], out: &Path, spec: Option<&Path>) -> Result<Collected> {
    let StudyRuns {
        finished: runs,
        failed,
        spec: plan_spec,
        not_run,
    } = find_runs(dirs)?;
    let configs = configurations(&runs);
    let replicated = runs.iter().any(|r| r.marker.config.is_some());
    let mut lines = vec![HEADER.to_string()];
    let mut seed_lines = vec![format!("{HEADER},replicate")];
    let mut config_rows = Vec::new();
    let mut undefined = Vec::new();
    for (config, members) in &configs {
        let per_run: Vec<RunMetrics> = members.iter().map(|r| run_metrics(r)).collect::<Result<_>>()?;
        for (r, m) in members.iter().zip(&per_run) {
            for (ood, v) in &m.rows {
                match v {
                    Ok([p, a, rr]) => seed_lines.push(format!(
                        "{p},{a},{rr},{},{},{},{}",
                        m.cells,
                        config,
                        csv_cell(ood),
                        r.marker.replicate
                    )),
                    Err(why) => undefined.push((r.id.clone(), ood.clone(), why.clone())),
                }
            }
        }
        let oods: Vec<&String> = per_run[0].rows.iter().map(|(o, _)| o).collect();
        for ood in oods {
            let values: Vec<[f64; 3]> = per_run
                .iter()
                .filter_map(|m| m.rows.iter().find(|(o, _)| o == ood))
                .filter_map(|(_, v)| v.as_ref().ok().copied())
                .collect();
            if values.is_empty() {
                continue;
            }
            let avg = |i: usize| values.iter().map(|v| v[i]).sum::<f64>() / values.len() as f64;
            lines.push(format!(
                "{},{},{},{},{},{}",
                avg(0),
                avg(1),
                avg(2),
                per_run[0].cells,
                config,
                csv_cell(ood)
            ));
        }
        if replicated {
            config_rows.extend(config_summary(config, members)?);
        }
    }
    crate::run::check_writable(out)?;
    let csv = out.join(STUDY_METRICS);
    let rows = lines.len() - 1;
    write_atomic(&csv, (lines.join("\n") + "\n").as_bytes())?;
    if replicated {
        write_atomic(
            &out.join(STUDY_METRICS_SEEDS),
            (seed_lines.join("\n") + "\n").as_bytes(),
        )?;
        write_atomic(&out.join(STUDY_CONFIGS), &csv_bytes(&config_rows)?)?;
    }
    let spec = spec.map(Path::to_path_buf).or(plan_spec);
    let (analysis, note) = if configs.len() < 2 || rows < 2 {
        (
            None,
            Some(format!(
                "analysis skipped: {} finished configuration(s) with {rows} defined row(s); it needs at least 2",
                configs.len()
            )),
        )
    } else {
        match analyze(&csv, spec.as_deref(), &out.join("analysis")).map_err(Error::from) {
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
    let seeds = replicated.then(|| {
        let n: Vec<usize> = configs.iter().map(|(_, m)| m.len()).collect();
        (*n.iter().min().unwrap_or(&0), *n.iter().max().unwrap_or(&0))
    });
    Ok(Collected {
        csv,
        runs,
        failed,
        rows,
        undefined,
        analysis,
        note,
        seeds,
        not_run,
    })
}

/// A configuration's mean r, ρ, A (trained network, main probe) over its seeds, with intervals.
fn config_summary(config: &str, members: &[&FoundRun]) -> Result<Vec<ConfigRow>> {
    use crate::stats::describe::finite;
    use crate::stats::inference::Summary;
    let variables = members[0]
        .marker
        .variables
        .iter()
        .map(|(n, l)| format!("{n}={l}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    for m in members {
        let c = m.marker.tunnel_class.clone().unwrap_or_else(|| "undefined".into());
        *classes.entry(c).or_insert(0) += 1;
    }
    let classes = classes
        .iter()
        .map(|(c, k)| format!("{c} {k}/{}", members.len()))
        .collect::<Vec<_>>()
        .join("; ");
    let metric = |name: &'static str, f: &dyn Fn(&DoneMarker) -> f64| {
        let s = Summary::of(&members.iter().map(|m| f(&m.marker)).collect::<Vec<_>>());
        ConfigRow {
            run_id: config.to_string(),
            variables: variables.clone(),
            n: s.n,
            metric: name,
            mean: finite(s.mean),
            sd: finite(s.sd),
            ci_low: finite(s.ci_low),
            ci_high: finite(s.ci_high),
            tunnel_classes: classes.clone(),
        }
    };
    Ok(vec![
        metric("backbone_accuracy", &|m| m.backbone_accuracy),
        metric("mean_retained_pct", &|m| m.mean_retained_pct),
        metric("mean_pearson", &|m| m.mean_pearson),
        metric("mean_alignment", &|m| m.mean_alignment),
    ])
}

impl Collected {
    pub fn text(&self) -> String {
        let mut s = format!(
            "collected {} finished runs ({} rows) into {}\n",
            self.runs.len(),
            self.rows,
            self.csv.display()
        );
        if let Some((lo, hi)) = self.seeds {
            let seeds = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}–{hi}")
            };
            s.push_str(&format!(
                "replicates: r, ρ and A averaged over the {seeds} seeds of each configuration (the analysis pairs configurations); every seed's rows in {STUDY_METRICS_SEEDS}, each configuration's means with their 95% intervals in {STUDY_CONFIGS}\n"
            ));
        }
        for f in &self.failed {
            s.push_str(&format!("failed run {}: {}\n", f.run_id, f.reason));
        }
        if !self.not_run.is_empty() {
            s.push_str(&format!(
                "not run yet: {} planned run(s), {} (run the other shards, then collect again)\n",
                self.not_run.len(),
                self.not_run.join(", ")
            ));
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
