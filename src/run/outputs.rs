//! What a run writes into its folder: the trained network, `probes.csv`, the test hits,
//! `metrics.csv`, `metrics_all.csv`, the curve plots and, last, `summary.json`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::{MODEL_FILE, SavedNetwork};
use crate::results::{MetricsAllRecord, MetricsRecord, RunSummary, TEST_HITS, csv_bytes, hits_bytes, write_atomic};
use crate::scenario::Scenario;
use crate::scenario::data::PreparedData;
use crate::stats::describe::finite;

use super::{MetricsRow, Probed, Trained, curves};

impl From<&MetricsRow> for MetricsAllRecord {
    fn from(r: &MetricsRow) -> Self {
        let m = &r.metrics;
        MetricsAllRecord {
            model: r.model.clone(),
            probe: r.probe.clone(),
            ood_dataset: r.ood_dataset.clone(),
            retained_pct: finite(m.retained_pct.value),
            pearson: finite(m.pearson.value),
            alignment: finite(m.alignment.value),
            tunnel_start_ood: m.tunnel_start_ood,
            tunnel_start_id: m.tunnel_start_id,
            ood_peak_layer: m.ood_peak_layer,
            id_final_accuracy: finite(m.id_final_accuracy),
            ood_final_accuracy: finite(m.ood_final_accuracy),
            retained_pct_low: low(r.intervals.retained_pct),
            retained_pct_high: high(r.intervals.retained_pct),
            pearson_low: low(r.intervals.pearson),
            pearson_high: high(r.intervals.pearson),
            alignment_low: low(r.intervals.alignment),
            alignment_high: high(r.intervals.alignment),
        }
    }
}

fn low(i: Option<(f64, f64)>) -> Option<f64> {
    i.map(|(lo, _)| lo)
}

fn high(i: Option<(f64, f64)>) -> Option<f64> {
    i.map(|(_, hi)| hi)
}

/// metrics.csv: one row per OOD set, for the trained model and the main probe.
fn metrics_records(rows: &[MetricsRow], main_probe: &str) -> Vec<MetricsRecord> {
    rows.iter()
        .filter(|r| r.model == "trained" && r.probe == main_probe)
        .map(|r| {
            let m = &r.metrics;
            let reasons: Vec<&str> = [m.retained_pct.reason, m.pearson.reason, m.alignment.reason]
                .into_iter()
                .flatten()
                .collect();
            MetricsAllRecord::from(r).main(reasons.join(";"))
        })
        .collect()
}

/// Writes the run's files into `dir`, `summary.json` last: its presence marks a finished run.
pub(super) fn write_outputs(
    dir: &Path,
    summary: &RunSummary,
    probed: &Probed,
    metrics: &[MetricsRow],
    network: Option<&[u8]>,
    sc: &Scenario,
) -> Result<()> {
    let rows = &probed.rows;
    if let Some(bytes) = network {
        write_atomic(&dir.join(MODEL_FILE), bytes)?;
    }
    write_atomic(&dir.join("probes.csv"), &csv_bytes(rows)?)?;
    write_atomic(&dir.join(TEST_HITS), &hits_bytes(&probed.hits))?;
    let main = metrics_records(metrics, &sc.probe.main.label());
    write_atomic(&dir.join("metrics.csv"), &csv_bytes(&main)?)?;
    let all: Vec<MetricsAllRecord> = metrics.iter().map(MetricsAllRecord::from).collect();
    write_atomic(&dir.join("metrics_all.csv"), &csv_bytes(&all)?)?;
    curves::write_curve_plots(dir, rows, metrics, sc)?;
    // Last: its presence marks a finished run.
    let json = serde_json::to_string_pretty(summary).map_err(|e| Error::Internal(e.to_string()))?;
    write_atomic(&dir.join("summary.json"), json.as_bytes())
}

/// The `.safetensors` bytes of the trained network (the one probed), with what it is.
pub(super) fn saved_network(sc: &Scenario, trained: &Trained, id: &PreparedData) -> Result<Vec<u8>> {
    let (_, model) = &trained.models[0];
    SavedNetwork {
        architecture: sc.model.clone(),
        classes: id.n_classes,
        resolution: sc.resolution,
        scenario: sc.name.clone(),
        trained_on: id.label.clone(),
        seed: sc.seed,
        epoch: trained.report.best_epoch,
        val_accuracy: finite(trained.report.best_val_accuracy),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
    .to_bytes(model)
}
