//! Results on disk: every file is written atomically, and the tidy CSV tables go through the csv
//! crate's serializer and deserializer, so a label holding a comma or a quote is quoted and reads
//! back whole. Here too are the records of the result tables (a run's `metrics.csv` and
//! `metrics_all.csv`, a continual-learning run's accuracy matrix, layer probes, summary and swap
//! table) and of a run's `summary.json`: the one definition their writer and their readers (compare,
//! the aggregates of replicates, a study's collection and report) share. An undefined value is an
//! empty cell in a CSV file, `null` in JSON.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::isa::Machine;
use crate::json::nan_if_null;
use crate::metrics::evaluation::Intervals;
use crate::metrics::tunnel::TunnelClass;
use crate::scenario::Scenario;
use crate::train::TrainReport;

/// A study's plan, written into its folder so that `collect` and `report` know the run order; a
/// single run refuses a folder that holds one.
pub const PLAN_FILE: &str = "study.json";

/// A tidy CSV file's bytes: a header from `T`'s fields (also when there is no row), one row per
/// record.
pub fn csv_bytes<'de, T: Serialize + Deserialize<'de>>(rows: &[T]) -> Result<Vec<u8>> {
    Ok(tunnelbench_stats::table::csv_bytes(rows)?)
}

/// The records of a CSV file with a header; a row that does not fit `T` names the file.
pub fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| Error::input(path, e.to_string()))?;
    rdr.deserialize()
        .collect::<std::result::Result<Vec<T>, _>>()
        .map_err(|e| Error::input(path, format!("malformed row: {e}")))
}

/// Write a file under a temporary name in the same folder, fsync it, then rename it into place,
/// so that a reader (or a restarted run) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(tunnelbench_plot::write_atomic(path, bytes)?)
}

/// Which test images every probe of a run classified right, the rows in the order of
/// `probes.csv` (method §2.8): the aggregates of replicates resample them across seeds.
pub const TEST_HITS: &str = "test_hits.bin";

/// The first bytes of [`TEST_HITS`]: the format's name and version.
const HITS_MAGIC: &[u8; 8] = b"TBHITS1\n";

/// The bytes of [`TEST_HITS`]: the magic, the number of rows (u64, little-endian), then each row's
/// hits, eight images a byte (the first image in the lowest bit), each row from a new byte.
pub fn hits_bytes(rows: &[Vec<u8>]) -> Vec<u8> {
    let mut out = HITS_MAGIC.to_vec();
    out.extend((rows.len() as u64).to_le_bytes());
    for row in rows {
        out.extend(
            row.chunks(8)
                .map(|c| c.iter().enumerate().fold(0u8, |b, (i, &h)| b | (h & 1) << i)),
        );
    }
    out
}

/// The rows of a [`TEST_HITS`] file whose rows hold `sizes` images each (the `n_test` column of
/// the run's `probes.csv`); a file of another shape names itself.
pub fn read_hits(path: &Path, sizes: &[usize]) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let body = bytes.get(16..);
    let rows = bytes
        .get(8..16)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let expected: usize = sizes.iter().map(|n| n.div_ceil(8)).sum();
    match (bytes.starts_with(HITS_MAGIC), rows, body) {
        (true, Some(rows), Some(body)) if rows == sizes.len() as u64 && body.len() == expected => {
            let mut at = 0;
            Ok(sizes
                .iter()
                .map(|&n| {
                    let row = (0..n).map(|i| (body[at + i / 8] >> (i % 8)) & 1).collect();
                    at += n.div_ceil(8);
                    row
                })
                .collect())
        }
        _ => Err(Error::input(
            path,
            format!(
                "not the test hits of this run's probes.csv ({} rows, {expected} bytes of hits expected)",
                sizes.len()
            ),
        )),
    }
}

/// The resolved scenario a finished run folder records (`summary.json`, or `cl_metrics.json` of
/// this version on), as JSON.
pub fn recorded_scenario(dir: &Path) -> Option<serde_json::Value> {
    ["summary.json", "cl_metrics.json"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(dir.join(file)).ok())
        .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .find_map(|v| v.get("config").filter(|c| c.is_object()).cloned())
}

/// A row of `metrics_all.csv`: the metrics of one (network, probe, OOD set), and the 95%
/// intervals of r, ρ and A over resamples of the test images (empty: none drawn, or a file of an
/// earlier version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsAllRecord {
    pub model: String,
    pub probe: String,
    pub ood_dataset: String,
    pub retained_pct: Option<f64>,
    pub pearson: Option<f64>,
    pub alignment: Option<f64>,
    pub tunnel_start_ood: Option<usize>,
    pub tunnel_start_id: Option<usize>,
    pub ood_peak_layer: Option<usize>,
    pub id_final_accuracy: Option<f64>,
    pub ood_final_accuracy: Option<f64>,
    #[serde(default)]
    pub retained_pct_low: Option<f64>,
    #[serde(default)]
    pub retained_pct_high: Option<f64>,
    #[serde(default)]
    pub pearson_low: Option<f64>,
    #[serde(default)]
    pub pearson_high: Option<f64>,
    #[serde(default)]
    pub alignment_low: Option<f64>,
    #[serde(default)]
    pub alignment_high: Option<f64>,
}

/// A row of `metrics.csv`: the metrics of the trained network and the main probe on one OOD set,
/// with the reasons of its undefined values (`;`-separated).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    pub ood_dataset: String,
    pub retained_pct: Option<f64>,
    pub pearson: Option<f64>,
    pub alignment: Option<f64>,
    pub tunnel_start_ood: Option<usize>,
    pub tunnel_start_id: Option<usize>,
    pub ood_peak_layer: Option<usize>,
    pub id_final_accuracy: Option<f64>,
    pub ood_final_accuracy: Option<f64>,
    #[serde(default)]
    pub undefined_reasons: String,
    pub probe: String,
    #[serde(default)]
    pub retained_pct_low: Option<f64>,
    #[serde(default)]
    pub retained_pct_high: Option<f64>,
    #[serde(default)]
    pub pearson_low: Option<f64>,
    #[serde(default)]
    pub pearson_high: Option<f64>,
    #[serde(default)]
    pub alignment_low: Option<f64>,
    #[serde(default)]
    pub alignment_high: Option<f64>,
}

/// A row of a continual-learning run's `accuracy_matrix.csv`: the accuracy on `task` after
/// training through `after_task` (0: the untrained baseline b).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatrixRecord {
    pub architecture: String,
    pub variant: String,
    pub strategy: String,
    pub eval: String,
    pub after_task: usize,
    pub task: usize,
    pub accuracy: Option<f64>,
}

/// A row of `layer_probes.csv`: a layer's probe accuracy on `task` after `after_task`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerProbeRecord {
    pub architecture: String,
    pub variant: String,
    pub strategy: String,
    pub after_task: usize,
    pub task: usize,
    pub layer_index: usize,
    pub layer_name: String,
    pub accuracy: Option<f64>,
}

/// A row of `cl_summary.csv`: one sequence's metrics, task-agnostic and task-aware.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClSummaryRecord {
    pub architecture: String,
    pub variant: String,
    pub strategy: String,
    pub layers: usize,
    pub acc_task_agnostic: Option<f64>,
    pub forgetting_task_agnostic: Option<f64>,
    pub bwt_task_agnostic: Option<f64>,
    pub acc_task_aware: Option<f64>,
    pub forgetting_task_aware: Option<f64>,
    pub bwt_task_aware: Option<f64>,
    pub fwt_task_aware: Option<f64>,
    pub plasticity_task_agnostic: Option<f64>,
    pub relative_forgetting_task_agnostic: Option<f64>,
    pub plasticity_task_aware: Option<f64>,
    pub relative_forgetting_task_aware: Option<f64>,
}

/// A row of `swap.csv`: one extractor/tunnel combination of the swap protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwapRecord {
    pub combination: String,
    pub task1_accuracy: Option<f64>,
    pub task2_accuracy: Option<f64>,
    pub task1_change_points: Option<f64>,
    pub task2_change_points: Option<f64>,
}

impl MetricsAllRecord {
    /// The `metrics.csv` row of this record (the trained network, the main probe).
    pub fn main(self, undefined_reasons: String) -> MetricsRecord {
        MetricsRecord {
            ood_dataset: self.ood_dataset,
            retained_pct: self.retained_pct,
            pearson: self.pearson,
            alignment: self.alignment,
            tunnel_start_ood: self.tunnel_start_ood,
            tunnel_start_id: self.tunnel_start_id,
            ood_peak_layer: self.ood_peak_layer,
            id_final_accuracy: self.id_final_accuracy,
            ood_final_accuracy: self.ood_final_accuracy,
            undefined_reasons,
            probe: self.probe,
            retained_pct_low: self.retained_pct_low,
            retained_pct_high: self.retained_pct_high,
            pearson_low: self.pearson_low,
            pearson_high: self.pearson_high,
            alignment_low: self.alignment_low,
            alignment_high: self.alignment_high,
        }
    }
}

/// Summary of one (model, probe): mean metrics and class.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeanMetrics {
    pub model: String,
    pub probe: String,
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_retained_pct: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_pearson: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_alignment: f64,
    pub tunnel_class: Option<TunnelClass>,
    pub probe_secs: f64,
    /// 95% intervals of the three means over resamples of the test images (none in the summaries
    /// of earlier versions).
    #[serde(default)]
    pub intervals: Intervals,
    /// Share of those resamples that give `tunnel_class`.
    #[serde(default)]
    pub tunnel_class_share: Option<f64>,
}

/// `summary.json` of a single run: the scenario as resolved, the machine, the seeds, the data sets
/// as probed, the training log, the mean metrics per (network, probe) and the stage timings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    pub scenario: String,
    pub scenario_file: String,
    pub config: Scenario,
    pub backend: String,
    pub machine: Machine,
    pub seeds: Seeds,
    pub parameters: usize,
    pub probed_layers: usize,
    pub resampler: String,
    pub datasets: Vec<DatasetSummary>,
    pub train: TrainReport,
    #[serde(deserialize_with = "nan_if_null")]
    pub backbone_accuracy: f64,
    pub means: Vec<MeanMetrics>,
    /// Mean |closed-form − paper| per-layer accuracy, when both probe kinds ran.
    pub probe_agreement: Vec<ProbeAgreement>,
    pub timings_secs: Timings,
    pub out_dir: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Seeds {
    pub scenario: u64,
    pub init: u64,
    pub data_order: u64,
    pub probe: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub label: String,
    pub role: String,
    pub n_classes: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub n_probe_train: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeAgreement {
    pub model: String,
    pub a: String,
    pub b: String,
    pub mean_abs_diff: f64,
    pub max_abs_diff: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timings {
    pub data: f64,
    pub train: f64,
    pub features: f64,
    pub probes: f64,
    pub total: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_commas_and_quotes_round_trip() {
        let rec = MetricsRecord {
            ood_dataset: r#"a, "b""#.into(),
            retained_pct: Some(61.5),
            pearson: None,
            alignment: Some(0.25),
            tunnel_start_ood: Some(4),
            tunnel_start_id: None,
            ood_peak_layer: Some(2),
            id_final_accuracy: Some(0.8),
            ood_final_accuracy: Some(0.5),
            undefined_reasons: "constant ID curve; x".into(),
            probe: "ridge(λ=0.001),std".into(),
            retained_pct_low: Some(55.25),
            retained_pct_high: Some(66.0),
            pearson_low: None,
            pearson_high: None,
            alignment_low: Some(0.2),
            alignment_high: Some(0.3),
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&rec).unwrap();
        let bytes = w.into_inner().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""a, ""b""""#), "{text}");
        let back: Vec<MetricsRecord> = csv::Reader::from_reader(&bytes[..])
            .deserialize()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![rec]);
    }

    /// Hits round-trip through their file; a file of another shape is refused, naming it.
    #[test]
    fn test_hits_round_trip() {
        let rows = vec![vec![1, 0, 1], (0..17).map(|i| (i % 3 == 0) as u8).collect(), vec![]];
        let dir = std::env::temp_dir().join(format!("tb-hits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(TEST_HITS);
        std::fs::write(&path, hits_bytes(&rows)).unwrap();
        assert_eq!(read_hits(&path, &[3, 17, 0]).unwrap(), rows);
        for sizes in [&[3, 17][..], &[3, 16, 0], &[3, 25, 0]] {
            let e = read_hits(&path, sizes).unwrap_err().to_string();
            assert!(e.contains(TEST_HITS) && e.contains("not the test hits"), "{e}");
        }
        std::fs::write(&path, b"TBHITS1").unwrap();
        assert!(read_hits(&path, &[]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A `metrics.csv` of an earlier version, without the interval columns, still reads.
    #[test]
    fn metrics_without_intervals_still_read() {
        let text = "ood_dataset,retained_pct,pearson,alignment,tunnel_start_ood,tunnel_start_id,ood_peak_layer,\
                    id_final_accuracy,ood_final_accuracy,undefined_reasons,probe\nmnist,61.5,0.1,0.2,4,3,4,0.8,0.5,,ridge\n";
        let back: Vec<MetricsRecord> = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(back[0].retained_pct, Some(61.5));
        assert_eq!((back[0].retained_pct_low, back[0].alignment_high), (None, None));
    }
}
