//! The metrics of a run folder (one run, its replicates, or a study), by name, read from the
//! files the run wrote.

use super::*;
use crate::cl::ClMetricsFile;
use crate::results::{MetricsAllRecord, RunSummary, read_csv};
use crate::run::ProbeRow;

/// One metric of one run folder.
struct Metric {
    name: String,
    kind: Kind,
    value: Option<f64>,
}

/// Where a run ran, as its `summary.json` or `cl_metrics.json` records it.
#[derive(Default, serde::Deserialize)]
struct RunHeader {
    #[serde(default)]
    scenario: String,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    machine: Option<Machine>,
}

/// The recorded metrics of one run folder, each name prefixed with `prefix`.
fn run_metrics(dir: &Path, prefix: &str, out: &mut Vec<Metric>) -> Result<()> {
    let mut push = |name: String, kind: Kind, value: Option<f64>| {
        out.push(Metric {
            name: format!("{prefix}{name}"),
            kind,
            value,
        })
    };
    let summary_path = dir.join("summary.json");
    if summary_path.is_file() {
        let s: RunSummary = crate::json::read(&summary_path, "a run summary")?;
        push("backbone_accuracy".into(), Kind::Accuracy, finite(s.backbone_accuracy));
        for m in &s.means {
            let base = format!("mean/{}/{}", m.model, m.probe);
            push(
                format!("{base}/retained_pct"),
                Kind::RetainedPct,
                finite(m.mean_retained_pct),
            );
            push(format!("{base}/pearson"), Kind::Pearson, finite(m.mean_pearson));
            push(format!("{base}/alignment"), Kind::Alignment, finite(m.mean_alignment));
        }
    }
    let probes = dir.join("probes.csv");
    if probes.is_file() {
        for row in read_csv::<ProbeRow>(&probes)? {
            push(
                format!(
                    "probe/{}/{}/{}/layer{:02}",
                    row.model, row.probe, row.dataset, row.layer_index
                ),
                Kind::Accuracy,
                finite(row.accuracy),
            );
        }
    }
    let metrics = dir.join("metrics_all.csv");
    if metrics.is_file() {
        for row in read_csv::<MetricsAllRecord>(&metrics)? {
            let base = format!("ood/{}/{}/{}", row.model, row.probe, row.ood_dataset);
            for (col, kind, value) in [
                ("retained_pct", Kind::RetainedPct, row.retained_pct),
                ("pearson", Kind::Pearson, row.pearson),
                ("alignment", Kind::Alignment, row.alignment),
            ] {
                push(format!("{base}/{col}"), kind, value.and_then(finite));
            }
        }
    }
    let cl = dir.join("cl_metrics.json");
    if cl.is_file() {
        let file: ClMetricsFile = crate::json::read(&cl, "CL metrics")?;
        // Only the recorded CL metrics: timings and class lists are not results.
        for v in &file.variants {
            let id = format!("{prefix}cl.{}/{}/{}", v.architecture, v.variant, v.strategy);
            for (eval, values) in [("task_aware", &v.task_aware), ("task_agnostic", &v.task_agnostic)] {
                for (name, value) in values.named() {
                    out.push(Metric {
                        name: format!("{id}.{eval}.{name}"),
                        kind: Kind::Cl,
                        value,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The metrics of a run: per name, the kind and one value per replicate.
pub struct Collected {
    /// (name, kind, values) in first-seen order.
    pub metrics: Vec<(String, Kind, Vec<Option<f64>>)>,
    pub replicates: usize,
    pub scenario: String,
    pub backend: String,
    pub machine: Option<Machine>,
    /// The resolved scenario of a run folder's first replicate (none for a study, whose runs
    /// each have their own).
    pub settings: Option<serde_json::Value>,
}

/// Adds one replicate's metrics (replicate `k` of `n`) to `by_name`.
fn add_replicate(
    metrics: Vec<Metric>,
    k: usize,
    n: usize,
    order: &mut Vec<String>,
    by_name: &mut BTreeMap<String, (Kind, Vec<Option<f64>>)>,
) {
    for m in metrics {
        let entry = by_name.entry(m.name.clone()).or_insert_with(|| {
            order.push(m.name.clone());
            (m.kind, vec![None; n])
        });
        entry.1[k] = m.value;
    }
}

/// The replicate folders of a run folder: the folder itself, or its finished `seed-<k>/`.
fn replicate_dirs(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    if crate::replicates::is_replicate_folder(dir) {
        Ok(crate::replicates::finished(dir, None)?
            .into_iter()
            .map(|(k, _)| crate::replicates::seed_dir(dir, k))
            .collect())
    } else {
        Ok(vec![dir.to_path_buf()])
    }
}

/// The metrics of a run folder (one seed or replicates), or of every finished run of a study
/// folder (names prefixed with the run id).
pub fn collect_metrics(dir: &Path) -> Result<Collected> {
    let mut order = Vec::new();
    let mut by_name = BTreeMap::new();
    let mut first_run = None;
    let mut replicates = 0;
    if dir.join("runs").is_dir() {
        let runs = crate::study::collect::find_runs(&[dir.to_path_buf()])?.finished;
        // A study's configurations, each with its replicates.
        let mut configs: Vec<(String, Vec<std::path::PathBuf>)> = Vec::new();
        for r in &runs {
            let config = r.marker.config_id().to_string();
            match configs.iter_mut().find(|(c, _)| *c == config) {
                Some((_, dirs)) => dirs.push(r.dir.clone()),
                None => configs.push((config, vec![r.dir.clone()])),
            }
        }
        for (config, dirs) in &configs {
            replicates = replicates.max(dirs.len());
            for (k, d) in dirs.iter().enumerate() {
                let mut ms = Vec::new();
                run_metrics(d, &format!("{config}/"), &mut ms)?;
                add_replicate(ms, k, dirs.len(), &mut order, &mut by_name);
            }
        }
        first_run = runs.first().map(|r| r.dir.clone());
    } else {
        let dirs = replicate_dirs(dir)?;
        replicates = dirs.len();
        for (k, d) in dirs.iter().enumerate() {
            let mut ms = Vec::new();
            run_metrics(d, "", &mut ms)?;
            add_replicate(ms, k, dirs.len(), &mut order, &mut by_name);
        }
        first_run = first_run.or_else(|| dirs.first().cloned());
    }
    if order.is_empty() {
        return Err(Error::input(
            dir,
            "no metrics found (expected summary.json, probes.csv, metrics_all.csv or cl_metrics.json, replicates in seed-*/, or a study's runs/)",
        ));
    }
    let header = first_run
        .iter()
        .flat_map(|run| ["summary.json", "cl_metrics.json"].map(|file| run.join(file)))
        .find_map(|path| crate::json::read::<RunHeader>(&path, "a run's results").ok())
        .unwrap_or_default();
    let (scenario, settings) = match crate::study::Plan::read(dir) {
        Ok(plan) => (plan.name, None),
        Err(_) => (
            header.scenario,
            first_run.as_deref().and_then(crate::results::recorded_scenario),
        ),
    };
    let metrics = order
        .into_iter()
        .map(|name| {
            let (kind, values) = by_name.remove(&name).unwrap_or((Kind::Cl, Vec::new()));
            (name, kind, values)
        })
        .collect();
    Ok(Collected {
        metrics,
        replicates,
        scenario,
        backend: header.backend,
        machine: header.machine,
        settings,
    })
}
