//! The records of a run's metric tables, `metrics.csv` and `metrics_all.csv`: the one definition
//! their writer (the run) and their readers (the aggregates of replicates, a study's collection)
//! share. They go through the csv crate's serializer, so a label holding a comma or a quote is
//! quoted and reads back whole. An undefined value is an empty cell.

use serde::{Deserialize, Serialize};

/// A row of `metrics_all.csv`: the metrics of one (network, probe, OOD set).
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
        }
    }
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
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&rec).unwrap();
        let bytes = w.into_inner().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""a, ""b""""#), "{text}");
        let back: Vec<MetricsRecord> = csv::Reader::from_reader(&bytes[..])
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![rec]);
    }
}
