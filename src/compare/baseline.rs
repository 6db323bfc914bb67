//! The baseline file: every metric's recorded replicate values, the machine they came from, the
//! thresholds; the older single-value format still loads.

use super::*;

/// One metric of a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    /// Replicates with a defined value.
    pub n: usize,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    /// Every replicate's value, null where it was undefined.
    pub values: Vec<Option<f64>>,
    /// This metric's own threshold (default: its kind's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

impl Entry {
    pub(super) fn new(name: String, kind: Kind, values: Vec<Option<f64>>) -> Entry {
        let defined: Vec<f64> = values.iter().flatten().copied().collect();
        let s = crate::stats::inference::Summary::of(&defined);
        Entry {
            name,
            kind,
            n: s.n,
            mean: finite(s.mean),
            sd: finite(s.sd),
            values,
            threshold: None,
        }
    }

    pub(super) fn defined(&self) -> Vec<f64> {
        self.values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect()
    }
}

/// A recorded baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub format: u32,
    /// What was recorded (the run folder's scenario name).
    pub scenario: String,
    pub backend: String,
    pub tunnelbench_version: String,
    /// Where the values came from.
    pub machine: Option<Machine>,
    /// Replicates recorded.
    pub replicates: usize,
    /// How the metrics' p-values are adjusted together.
    #[serde(default)]
    pub correction: Correction,
    /// Practical threshold per kind; kinds not listed use the built-in defaults.
    #[serde(default)]
    pub thresholds: BTreeMap<Kind, f64>,
    pub metrics: Vec<Entry>,
    /// The resolved scenario of the recorded runs (absent in baselines of studies and of earlier
    /// versions): `compare` names the settings in which a run differs from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

/// The first format: one value per metric and absolute tolerances.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineV1 {
    #[serde(default)]
    scenario: String,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    tunnelbench_version: String,
    #[serde(default)]
    tolerances: BTreeMap<Kind, f64>,
    metrics: Vec<EntryV1>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV1 {
    name: String,
    kind: Kind,
    value: Option<f64>,
    #[serde(default)]
    tolerance: Option<f64>,
}

impl Baseline {
    pub(super) fn threshold(&self, e: &Entry) -> f64 {
        e.threshold
            .or_else(|| self.thresholds.get(&e.kind).copied())
            .unwrap_or_else(|| e.kind.default_threshold())
    }

    pub fn load(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |e: serde_json::Error| Error::input(path, format!("not a tunnelbench baseline: {e}"));
        let raw: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
        let b = match raw.get("format") {
            None => {
                let v1: BaselineV1 = serde_json::from_value(raw).map_err(bad)?;
                Baseline {
                    format: 1,
                    scenario: v1.scenario,
                    backend: v1.backend,
                    tunnelbench_version: v1.tunnelbench_version,
                    machine: None,
                    replicates: 1,
                    correction: Correction::default(),
                    thresholds: v1.tolerances,
                    metrics: v1
                        .metrics
                        .into_iter()
                        .map(|m| Entry {
                            threshold: m.tolerance,
                            ..Entry::new(m.name, m.kind, vec![m.value])
                        })
                        .collect(),
                    settings: None,
                }
            }
            Some(f) if f.as_u64() == Some(FORMAT as u64) => serde_json::from_value(raw).map_err(bad)?,
            Some(f) => {
                return Err(Error::input(
                    path,
                    format!("baseline format {f} is not one this tunnelbench reads (1 or {FORMAT})"),
                ));
            }
        };
        for e in &b.metrics {
            if e.threshold.is_some_and(|t| !(t >= 0.0)) {
                return Err(Error::input(
                    path,
                    format!("metric `{}`: threshold must be >= 0", e.name),
                ));
            }
            if e.values.is_empty() {
                return Err(Error::input(path, format!("metric `{}`: no values", e.name)));
            }
        }
        for (k, t) in &b.thresholds {
            if !(*t >= 0.0) {
                return Err(Error::input(path, format!("thresholds.{k:?}: must be >= 0")));
            }
        }
        Ok(b)
    }
}
