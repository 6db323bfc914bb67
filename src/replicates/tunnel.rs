//! The aggregates of a tunnel scenario's replicates, read back from each `seed-<k>/` folder:
//!
//! - `metrics_aggregate.csv`: `model, probe, ood_dataset, metric, n, mean, sd, ci_low, ci_high`
//!   per OOD set (r, ρ, A, both tunnel starts, final ID and OOD accuracy) and per network
//!   (`ood_dataset = mean`: the mean r, ρ, A of `summary.json`), plus the backbone accuracy; the
//!   interval is the 95% t-interval across seeds, an undefined replicate value is left out (`n`
//!   counts the defined ones);
//! - `probes_aggregate.csv`: the same per (network, probe, data set, layer) for the probe accuracy
//!   and the numerical rank;
//! - `tunnel_classes.csv`: every seed's tunnel class per (network, probe);
//! - `control_comparisons.csv`: with the random-init control, the trained network against it per
//!   probe and metric (mean r, ρ, A), paired by seed, Holm-adjusted over these tests;
//! - `aggregate.json`: the per-network means with their intervals and class counts;
//! - `curves.svg` / `.png`: the normalised per-layer curves, mean across seeds with its interval.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::seed_dir;
use crate::error::{Error, Result};
use crate::metrics::evaluation::{DataHits, Intervals, Network, Resampled, test_set_bootstrap};
use crate::metrics::tunnel::{normalised, tunnel_start_ood};
use crate::plot::{Figure, LineChart, Series, write_chart};
use crate::probe::Hits;
use crate::results::{
    MeanMetrics, MetricsAllRecord, RunSummary, TEST_HITS, csv_bytes, read_csv, read_hits, write_atomic,
};
use crate::run::ProbeRow;
use crate::seed::derive_seed;
use crate::stats::describe::finite;
use crate::stats::inference::{Summary, available_threads, holm};
use crate::stats::paired::Paired;

/// The aggregated metrics of a `metrics_all.csv` row, by column name.
fn metric_values(r: &MetricsAllRecord) -> [(&'static str, Option<f64>); 7] {
    let start = |v: Option<usize>| v.map(|v| v as f64);
    [
        ("retained_pct", r.retained_pct),
        ("pearson", r.pearson),
        ("alignment", r.alignment),
        ("tunnel_start_ood", start(r.tunnel_start_ood)),
        ("tunnel_start_id", start(r.tunnel_start_id)),
        ("id_final_accuracy", r.id_final_accuracy),
        ("ood_final_accuracy", r.ood_final_accuracy),
    ]
}

/// One replicate's results.
struct Replicate {
    k: usize,
    summary: RunSummary,
    probes: Vec<ProbeRow>,
    metrics: Vec<MetricsAllRecord>,
    /// Which test images each row of `probes` got right (none from runs of earlier versions).
    hits: Option<Vec<Hits>>,
}

impl Replicate {
    /// The mean metrics of one network and probe in this replicate.
    fn means_of(&self, model: &str, probe: &str) -> Option<&MeanMetrics> {
        self.summary.means.iter().find(|m| m.model == model && m.probe == probe)
    }

    /// The test outcomes of one network and probe on the ID set and on `oods`, in layer order.
    fn network<'a>(&'a self, model: &str, probe: &str, oods: &[String]) -> Option<Network<'a>> {
        let hits = self.hits.as_ref()?;
        let data = |pick: &dyn Fn(&ProbeRow) -> bool| -> Option<DataHits<'a>> {
            let rows: Vec<(&ProbeRow, &Hits)> = self
                .probes
                .iter()
                .zip(hits)
                .filter(|(r, _)| r.model == model && r.probe == probe && pick(r))
                .collect();
            Some(DataHits {
                layers: rows.iter().map(|(_, h)| h.as_slice()).collect(),
                n_classes: rows.first()?.0.n_classes,
            })
        };
        Some(Network {
            id: data(&|r| r.role == "id")?,
            oods: oods
                .iter()
                .map(|o| data(&|r| r.role == "ood" && &r.dataset == o))
                .collect::<Option<_>>()?,
        })
    }
}

fn read_replicate(out: &Path, k: usize) -> Result<Replicate> {
    let dir = seed_dir(out, k);
    let probes: Vec<ProbeRow> = read_csv(&dir.join("probes.csv"))?;
    let sizes: Option<Vec<usize>> = probes.iter().map(|r| r.n_test).collect();
    let hits_path = dir.join(TEST_HITS);
    let hits = match sizes {
        Some(sizes) if hits_path.is_file() => Some(read_hits(&hits_path, &sizes)?),
        _ => None,
    };
    Ok(Replicate {
        k,
        summary: crate::json::read(&dir.join("summary.json"), "a run summary")?,
        probes,
        metrics: read_csv(&dir.join("metrics_all.csv"))?,
        hits,
    })
}

/// A row of `metrics_aggregate.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AggregateRow {
    pub model: String,
    pub probe: String,
    pub ood_dataset: String,
    pub metric: String,
    pub n: usize,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// 95% interval of `mean` over resamples of the test images, shared by every seed (r, ρ and A
    /// only; method §2.8).
    #[serde(default)]
    pub test_low: Option<f64>,
    #[serde(default)]
    pub test_high: Option<f64>,
}

impl AggregateRow {
    fn new(model: &str, probe: &str, ood: &str, metric: &str, values: &[f64]) -> Self {
        Self::from_summary(model, probe, ood, metric, &Summary::of(values))
    }

    fn from_summary(model: &str, probe: &str, ood: &str, metric: &str, s: &Summary) -> Self {
        AggregateRow {
            model: model.into(),
            probe: probe.into(),
            ood_dataset: ood.into(),
            metric: metric.into(),
            n: s.n,
            mean: finite(s.mean),
            sd: finite(s.sd),
            ci_low: finite(s.ci_low),
            ci_high: finite(s.ci_high),
            test_low: None,
            test_high: None,
        }
    }

    /// The row with its test-set interval.
    fn with_test_set(self, interval: Option<(f64, f64)>) -> Self {
        AggregateRow {
            test_low: interval.map(|i| i.0),
            test_high: interval.map(|i| i.1),
            ..self
        }
    }
}

/// A row of `probes_aggregate.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ProbeAggregateRow {
    model: String,
    probe: String,
    dataset: String,
    role: String,
    layer_index: usize,
    layer_name: String,
    metric: &'static str,
    n: usize,
    mean: Option<f64>,
    sd: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
}

/// A row of `tunnel_classes.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ClassRow {
    model: String,
    probe: String,
    replicate: usize,
    seed: u64,
    mean_retained_pct: Option<f64>,
    tunnel_class: String,
}

/// A row of `control_comparisons.csv`: the trained network against the random-init control on
/// one probe and metric, paired by seed (a − b = trained − random-init).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControlRow {
    pub probe: String,
    pub metric: String,
    pub n: usize,
    pub mean_trained: Option<f64>,
    pub mean_control: Option<f64>,
    pub mean_diff: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub boot_low: Option<f64>,
    pub boot_high: Option<f64>,
    pub test: String,
    pub p: Option<f64>,
    /// `p` adjusted (Holm) over the rows of the file.
    pub p_holm: Option<f64>,
    pub cliffs_delta: Option<f64>,
}

/// The mean metrics compared with the control: column, name in the summary, value, decimals
/// and unit of the printed difference.
type ControlMetric = (&'static str, &'static str, fn(&MeanMetrics) -> f64, usize, &'static str);
const CONTROL_METRICS: [ControlMetric; 3] = [
    ("retained_pct", "r", |m| m.mean_retained_pct, 1, " points"),
    ("pearson", "ρ", |m| m.mean_pearson, 3, ""),
    ("alignment", "A", |m| m.mean_alignment, 3, ""),
];

/// Per probe and metric, the trained network's seeds against the control's (the same seeds), and
/// the printed lines. Empty without a control or with fewer than two seeds.
fn control_comparisons(reps: &[Replicate]) -> (Vec<ControlRow>, Vec<String>) {
    let probes: Vec<String> = ordered(
        reps[0]
            .summary
            .means
            .iter()
            .filter(|m| m.model == "trained")
            .map(|m| &m.probe),
    );
    let mut tests = Vec::new();
    for probe in &probes {
        if reps.len() < 2 || reps[0].means_of("random-init", probe).is_none() {
            continue;
        }
        for (metric, name, pick, decimals, unit) in CONTROL_METRICS {
            let value = |model: &str| -> Vec<f64> {
                reps.iter()
                    .map(|r| r.means_of(model, probe).map_or(f64::NAN, pick))
                    .collect()
            };
            let paired = Paired::of(&value("trained"), &value("random-init"), 0);
            tests.push((probe.clone(), metric, name, (decimals, unit), paired));
        }
    }
    let adjusted = holm(&tests.iter().map(|t| t.4.p).collect::<Vec<_>>());
    let m = adjusted.iter().filter(|p| !p.is_nan()).count();
    let mut lines = Vec::new();
    let rows = tests
        .iter()
        .zip(&adjusted)
        .map(|((probe, metric, name, (decimals, unit), p), &p_holm)| {
            lines.push(format!(
                "  {:<26}mean {name}: {}",
                crate::run::truncate(probe, 25),
                p.text_in_family(1.0, *decimals, unit, p_holm, m)
            ));
            ControlRow {
                probe: probe.clone(),
                metric: metric.to_string(),
                n: p.n,
                mean_trained: finite(p.mean_a),
                mean_control: finite(p.mean_b),
                mean_diff: finite(p.mean_diff),
                ci_low: finite(p.ci_low),
                ci_high: finite(p.ci_high),
                boot_low: finite(p.boot_low),
                boot_high: finite(p.boot_high),
                test: p.test.name().to_string(),
                p: finite(p.p),
                p_holm: finite(p_holm),
                cliffs_delta: finite(p.cliffs_delta),
            }
        })
        .collect();
    (rows, lines)
}

/// Per-network summary in `aggregate.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkAggregate {
    pub model: String,
    pub probe: String,
    pub retained_pct: Summary,
    pub pearson: Summary,
    pub alignment: Summary,
    /// How many seeds fall in each tunnel class (`undefined` for an undefined mean r).
    pub tunnel_classes: BTreeMap<String, usize>,
    /// 95% intervals of the three means over resamples of the test images shared by every seed
    /// (none when a seed has no test hits or the seeds' test sets differ in size).
    #[serde(default)]
    pub test_set: Intervals,
}

/// `aggregate.json` of a run with replicates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AggregateFile {
    pub scenario: String,
    pub replicates: Vec<usize>,
    pub seeds: Vec<u64>,
    pub backbone_accuracy: Summary,
    pub networks: Vec<NetworkAggregate>,
}

/// Keys in first-seen order.
fn ordered<'a, T: PartialEq + Clone + 'a>(items: impl IntoIterator<Item = &'a T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

/// Writes the aggregates of replicates `ks` of `out` and returns the printed summary.
pub fn aggregate(out: &Path, ks: &[usize]) -> Result<String> {
    let reps: Vec<Replicate> = ks.iter().map(|&k| read_replicate(out, k)).collect::<Result<_>>()?;
    let first = &reps[0];
    let oods: Vec<String> = ordered(first.metrics.iter().map(|m| &m.ood_dataset));
    let backbone: Vec<f64> = reps.iter().map(|r| r.summary.backbone_accuracy).collect();
    let mut rows = vec![AggregateRow::new("trained", "", "", "backbone_accuracy", &backbone)];
    let mut networks = Vec::new();
    let mut classes = Vec::new();
    for net in &first.summary.means {
        let test_set = test_set_bootstrap_of(&reps, &net.model, &net.probe, &oods);
        rows.extend(per_ood_rows(&reps, &net.model, &net.probe, &oods, &test_set.per_ood));
        let (network, seeds) = network(&reps, &net.model, &net.probe, test_set.mean);
        for (metric, s, interval) in [
            ("retained_pct", &network.retained_pct, network.test_set.retained_pct),
            ("pearson", &network.pearson, network.test_set.pearson),
            ("alignment", &network.alignment, network.test_set.alignment),
        ] {
            rows.push(AggregateRow::from_summary(&net.model, &net.probe, "mean", metric, s).with_test_set(interval));
        }
        networks.push(network);
        classes.extend(seeds);
    }
    write_atomic(&out.join("metrics_aggregate.csv"), &csv_bytes(&rows)?)?;
    write_atomic(&out.join("tunnel_classes.csv"), &csv_bytes(&classes)?)?;
    write_atomic(&out.join("probes_aggregate.csv"), &csv_bytes(&probe_rows(&reps))?)?;
    let (control, control_lines) = control_comparisons(&reps);
    if !control.is_empty() {
        write_atomic(&out.join("control_comparisons.csv"), &csv_bytes(&control)?)?;
    }
    let file = AggregateFile {
        scenario: first.summary.scenario.clone(),
        replicates: reps.iter().map(|r| r.k).collect(),
        seeds: reps.iter().map(|r| r.summary.seeds.scenario).collect(),
        backbone_accuracy: Summary::of(&backbone),
        networks,
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::Internal(e.to_string()))?;
    write_atomic(&out.join("aggregate.json"), &json)?;
    write_curves(out, &reps, &file)?;
    Ok(text(out, &file, &rows, &oods, &control_lines))
}

/// The test-set bootstrap of one network's means over the seeds (method §2.8): each resample draws
/// every data set's test images once for all seeds. No intervals when a seed has no test hits.
fn test_set_bootstrap_of(reps: &[Replicate], model: &str, probe: &str, oods: &[String]) -> Resampled {
    let networks: Option<Vec<Network>> = reps.iter().map(|r| r.network(model, probe, oods)).collect();
    let first = &reps[0].summary;
    test_set_bootstrap(
        &networks.unwrap_or_default(),
        first.config.probe.bootstrap,
        derive_seed(first.seeds.scenario, &format!("test-set bootstrap:{model}:{probe}")),
        available_threads(),
    )
}

/// The rows of one network (model, probe) per OOD set: every metric of `metrics_all.csv`, r, ρ
/// and A with the test-set intervals `test_set` (one per OOD set, or none).
fn per_ood_rows(
    reps: &[Replicate],
    model: &str,
    probe: &str,
    oods: &[String],
    test_set: &[Intervals],
) -> Vec<AggregateRow> {
    let mut rows = Vec::new();
    for (o, ood) in oods.iter().enumerate() {
        let test_set = test_set.get(o).copied().unwrap_or_default();
        let recs: Vec<&MetricsAllRecord> = reps
            .iter()
            .filter_map(|r| {
                r.metrics
                    .iter()
                    .find(|m| m.model == model && m.probe == probe && &m.ood_dataset == ood)
            })
            .collect();
        let Some(first) = recs.first() else { continue };
        for (i, (metric, _)) in metric_values(first).into_iter().enumerate() {
            let values: Vec<f64> = recs.iter().map(|r| metric_values(r)[i].1.unwrap_or(f64::NAN)).collect();
            let interval = [test_set.retained_pct, test_set.pearson, test_set.alignment]
                .get(i)
                .copied()
                .flatten();
            rows.push(AggregateRow::new(model, probe, ood, metric, &values).with_test_set(interval));
        }
    }
    rows
}

/// One network's means across seeds with their test-set intervals, and every seed's tunnel class.
fn network(reps: &[Replicate], model: &str, probe: &str, test_set: Intervals) -> (NetworkAggregate, Vec<ClassRow>) {
    let means: Vec<(&Replicate, &MeanMetrics)> = reps
        .iter()
        .filter_map(|r| r.means_of(model, probe).map(|m| (r, m)))
        .collect();
    let pick =
        |f: fn(&MeanMetrics) -> f64| -> Summary { Summary::of(&means.iter().map(|(_, m)| f(m)).collect::<Vec<_>>()) };
    let mut counts = BTreeMap::new();
    let mut classes = Vec::new();
    for (r, m) in &means {
        let class = m.tunnel_class.map_or("undefined", |c| c.name()).to_string();
        *counts.entry(class.clone()).or_insert(0) += 1;
        classes.push(ClassRow {
            model: model.to_string(),
            probe: probe.to_string(),
            replicate: r.k,
            seed: r.summary.seeds.scenario,
            mean_retained_pct: finite(m.mean_retained_pct),
            tunnel_class: class,
        });
    }
    let network = NetworkAggregate {
        model: model.to_string(),
        probe: probe.to_string(),
        retained_pct: pick(|m| m.mean_retained_pct),
        pearson: pick(|m| m.mean_pearson),
        alignment: pick(|m| m.mean_alignment),
        tunnel_classes: counts,
        test_set,
    };
    (network, classes)
}

/// `probes_aggregate.csv`: per (network, probe, data set, layer) the probe accuracy and, on the
/// ID set, the numerical rank across seeds.
fn probe_rows(reps: &[Replicate]) -> Vec<ProbeAggregateRow> {
    let mut rows = Vec::new();
    for p in &reps[0].probes {
        let same: Vec<&ProbeRow> = reps
            .iter()
            .filter_map(|r| {
                r.probes.iter().find(|q| {
                    q.model == p.model && q.probe == p.probe && q.dataset == p.dataset && q.layer_index == p.layer_index
                })
            })
            .collect();
        let mut push = |metric: &'static str, values: Vec<f64>| {
            let s = Summary::of(&values);
            rows.push(ProbeAggregateRow {
                model: p.model.clone(),
                probe: p.probe.clone(),
                dataset: p.dataset.clone(),
                role: p.role.clone(),
                layer_index: p.layer_index,
                layer_name: p.layer_name.clone(),
                metric,
                n: s.n,
                mean: finite(s.mean),
                sd: finite(s.sd),
                ci_low: finite(s.ci_low),
                ci_high: finite(s.ci_high),
            });
        };
        push("accuracy", same.iter().map(|q| q.accuracy).collect());
        if p.rank.is_some() {
            push(
                "rank",
                same.iter().map(|q| q.rank.map_or(f64::NAN, |r| r as f64)).collect(),
            );
        }
    }
    rows
}

/// The normalised curve of (model, probe, dataset) in one replicate.
fn curve(r: &Replicate, model: &str, probe: &str, dataset: &str) -> Vec<f64> {
    normalised(
        &r.probes
            .iter()
            .filter(|p| p.model == model && p.probe == probe && p.dataset == dataset)
            .map(|p| p.accuracy)
            .collect::<Vec<_>>(),
    )
}

/// The mean across replicates of one normalised curve per layer, named `label`, with its 95%
/// t-interval as a band.
fn mean_curve(reps: &[Replicate], model: &str, probe: &str, dataset: &str, label: String) -> Series {
    let curves: Vec<Vec<f64>> = reps.iter().map(|r| curve(r, model, probe, dataset)).collect();
    let layers = curves.iter().map(Vec::len).min().unwrap_or(0);
    let per_layer: Vec<Summary> = (0..layers)
        .map(|l| Summary::of(&curves.iter().map(|c| c[l]).collect::<Vec<_>>()))
        .collect();
    let series = Series::new(label, per_layer.iter().map(|s| s.mean).collect::<Vec<_>>());
    if per_layer.iter().all(|s| s.ci_low.is_finite()) {
        series.band(
            per_layer.iter().map(|s| s.ci_low).collect::<Vec<_>>(),
            per_layer.iter().map(|s| s.ci_high).collect::<Vec<_>>(),
        )
    } else {
        series
    }
}

/// curves.svg/png: per network (main probe), the ID curve and every OOD curve, each the mean of
/// the seeds' normalised curves with its 95% interval across seeds, and the tunnel start of the
/// mean OOD curve.
fn write_curves(out: &Path, reps: &[Replicate], file: &AggregateFile) -> Result<()> {
    let first = &reps[0];
    let Some(probe) = first.summary.means.first().map(|m| m.probe.clone()) else {
        return Ok(());
    };
    let Some(id) = first.probes.iter().find(|p| p.role == "id").map(|p| p.dataset.clone()) else {
        return Ok(());
    };
    let oods: Vec<String> = ordered(first.probes.iter().filter(|p| p.role == "ood").map(|p| &p.dataset));
    let mut panels = Vec::new();
    for model in ["trained", "random-init"] {
        if !first.probes.iter().any(|p| p.model == model) {
            continue;
        }
        let mut chart = LineChart::new(format!("{model} network, probe {probe}"))
            .x_label("probed layer")
            .y_label("accuracy / best layer's")
            .y_range(0.0, 1.05)
            .series(mean_curve(reps, model, &probe, &id, format!("ID: {id}")));
        for o in &oods {
            chart = chart.series(mean_curve(reps, model, &probe, o, format!("OOD: {o}")).dashed());
        }
        let all: Vec<Vec<f64>> = oods
            .iter()
            .flat_map(|o| reps.iter().map(|r| curve(r, model, &probe, o)))
            .collect();
        let layers = all.iter().map(Vec::len).min().unwrap_or(0);
        let mean_ood: Vec<f64> = (0..layers)
            .map(|l| (all.iter().map(|c| c[l]).sum::<f64>() / all.len() as f64).clamp(0.0, 1.0))
            .collect();
        if let Some(start) = tunnel_start_ood(&mean_ood) {
            chart = chart.vline(start as f64, "tunnel start (mean OOD)");
        }
        panels.push(chart.build()?);
    }
    if panels.is_empty() {
        return Ok(());
    }
    let mut fig = Figure::new(1, panels.len()).title(format!(
        "{} — {}: mean of {} seeds with its 95% interval",
        file.scenario,
        first.summary.config.model.name,
        reps.len()
    ));
    for p in panels {
        fig = fig.push(p);
    }
    write_chart(&fig.build()?, out, "curves")?;
    Ok(())
}

/// The summary printed at the end.
fn text(out: &Path, file: &AggregateFile, rows: &[AggregateRow], oods: &[String], control: &[String]) -> String {
    let n = file.replicates.len();
    let mut s = format!(
        "\n== {} — {n} replicates ==\nbackbone accuracy {} % (mean ± half-width of the 95% interval across seeds)\n",
        file.scenario,
        file.backbone_accuracy.text(100.0, 2)
    );
    s.push_str(&format!(
        "\n{:<13}{:<26}{:>16}{:>16}{:>16}  tunnel class (seeds)\n",
        "model", "probe", "mean r (%)", "mean ρ", "mean A"
    ));
    for net in &file.networks {
        let counts: Vec<String> = net.tunnel_classes.iter().map(|(c, k)| format!("{c} {k}/{n}")).collect();
        s.push_str(&format!(
            "{:<13}{:<26}{:>16}{:>16}{:>16}  {}\n",
            net.model,
            crate::run::truncate(&net.probe, 25),
            net.retained_pct.text(1.0, 2),
            net.pearson.text(1.0, 3),
            net.alignment.text(1.0, 3),
            counts.join(", ")
        ));
    }
    if file.networks.iter().any(|n| n.test_set != Intervals::default()) {
        s.push_str(&format!(
            "\nthe same means over resamples of the test images, shared by every seed (95% intervals, method §2.8)\n\
             {:<13}{:<26}{:>16}{:>16}{:>16}\n",
            "model", "probe", "mean r (%)", "mean ρ", "mean A"
        ));
        let cell =
            |i: Option<(f64, f64)>, d: usize| i.map_or_else(|| "-".into(), |(lo, hi)| format!("[{lo:.d$}, {hi:.d$}]"));
        for net in &file.networks {
            s.push_str(&format!(
                "{:<13}{:<26}{:>16}{:>16}{:>16}\n",
                net.model,
                crate::run::truncate(&net.probe, 25),
                cell(net.test_set.retained_pct, 1),
                cell(net.test_set.pearson, 2),
                cell(net.test_set.alignment, 3),
            ));
        }
    }
    s.push_str(&format!("\nr (%) per OOD set\n{:<13}{:<26}", "model", "probe"));
    for o in oods {
        s.push_str(&format!("{:>16}", crate::run::truncate(o, 15)));
    }
    s.push('\n');
    for net in &file.networks {
        s.push_str(&format!(
            "{:<13}{:<26}",
            net.model,
            crate::run::truncate(&net.probe, 25)
        ));
        for o in oods {
            let cell = rows
                .iter()
                .find(|r| {
                    r.model == net.model && r.probe == net.probe && &r.ood_dataset == o && r.metric == "retained_pct"
                })
                .map(|r| {
                    Summary {
                        n: r.n,
                        mean: r.mean.unwrap_or(f64::NAN),
                        sd: r.sd.unwrap_or(f64::NAN),
                        ci_low: f64::NAN,
                        ci_high: f64::NAN,
                    }
                    .text(1.0, 2)
                })
                .unwrap_or_default();
            s.push_str(&format!("{cell:>16}"));
        }
        s.push('\n');
    }
    if !control.is_empty() {
        s.push_str("\ntrained − random-init, paired by seed (mean ± half-width of its 95% interval):\n");
        for line in control {
            s.push_str(line);
            s.push('\n');
        }
    }
    s.push_str(&format!(
        "results: {} (seed-*/ per replicate; metrics_aggregate.csv, probes_aggregate.csv, tunnel_classes.csv, {}curves.png)\n",
        out.display(),
        if control.is_empty() { "" } else { "control_comparisons.csv, " }
    ));
    s
}
