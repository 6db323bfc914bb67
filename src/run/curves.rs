//! The run's figure: normalised ID and OOD probe curves per model (method §2.5) with the OOD mean
//! and its 95% interval, the tunnel start marked, and the numerical rank per layer.

use std::path::Path;

use super::{MetricsRow, ProbeRow};
use crate::error::Result;
use crate::metrics::tunnel::normalised;
use crate::plot::{Chart, Figure, LineChart, Series, write_chart};
use crate::scenario::Scenario;
use crate::stats::describe::t_interval;

fn curve(rows: &[ProbeRow], model: &str, probe: &str, dataset: &str) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.model == model && r.probe == probe && r.dataset == dataset)
        .map(|r| r.accuracy)
        .collect()
}

/// Normalised curves of one model with the mean OOD curve and its 95% t-interval.
fn curves_chart(rows: &[ProbeRow], model: &str, probe: &str) -> Result<Option<Chart>> {
    let id_label = rows
        .iter()
        .find(|r| r.model == model && r.role == "id")
        .map(|r| r.dataset.clone());
    let Some(id_label) = id_label else { return Ok(None) };
    let mut oods: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.model == model && r.role == "ood") {
        if !oods.contains(&r.dataset) {
            oods.push(r.dataset.clone());
        }
    }
    let id = normalised(&curve(rows, model, probe, &id_label));
    let mut chart = LineChart::new(format!("{model} network, probe {probe}"))
        .x_label("probed layer")
        .y_label("accuracy / best layer's")
        .y_range(0.0, 1.05)
        .series(Series::new(format!("ID: {id_label}"), id.clone()));
    let ood_curves: Vec<Vec<f64>> = oods.iter().map(|o| normalised(&curve(rows, model, probe, o))).collect();
    for (o, c) in oods.iter().zip(&ood_curves) {
        chart = chart.series(Series::new(format!("OOD: {o}"), c.clone()).dashed());
    }
    if ood_curves.len() >= 2 {
        let layers = id.len();
        let mut mean = Vec::with_capacity(layers);
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for l in 0..layers {
            let vals: Vec<f64> = ood_curves.iter().filter_map(|c| c.get(l).copied()).collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let (a, b) = t_interval(&vals, 0.95);
            mean.push(m);
            lo.push(a);
            hi.push(b);
        }
        if let Some(start) =
            crate::metrics::tunnel::tunnel_start_ood(&mean.iter().map(|v| v.clamp(0.0, 1.0)).collect::<Vec<_>>())
        {
            chart = chart.vline(start as f64, "tunnel start (mean OOD)");
        }
        chart = chart.series(Series::new("OOD mean (95% CI)", mean).band(lo, hi));
    } else if let Some(start) = ood_curves
        .first()
        .and_then(|c| crate::metrics::tunnel::tunnel_start_ood(c))
    {
        chart = chart.vline(start as f64, "tunnel start (OOD)");
    }
    Ok(Some(chart.build()?))
}

fn rank_chart(rows: &[ProbeRow], probe: &str, n_classes: usize) -> Result<Option<Chart>> {
    let mut chart = LineChart::new("numerical rank of the ID representation")
        .x_label("probed layer")
        .y_label("rank (σ > 1e-3 σmax)")
        .hline(n_classes as f64, "ID classes");
    let mut any = false;
    for model in ["trained", "random-init"] {
        let ranks: Vec<f64> = rows
            .iter()
            .filter(|r| r.model == model && r.probe == probe && r.role == "id")
            .map(|r| r.rank.map_or(f64::NAN, |v| v as f64))
            .collect();
        if !ranks.is_empty() {
            any = true;
            chart = chart.series(Series::new(model, ranks));
        }
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(chart.build()?))
}

/// Write curves.svg/png (one panel per model plus the rank panel).
pub fn write_curve_plots(dir: &Path, rows: &[ProbeRow], _metrics: &[MetricsRow], sc: &Scenario) -> Result<()> {
    let probe = sc.probe.main.label();
    let mut panels = Vec::new();
    for model in ["trained", "random-init"] {
        if let Some(c) = curves_chart(rows, model, &probe)? {
            panels.push(c);
        }
    }
    let n_classes = rows.iter().find(|r| r.role == "id").map_or(0, |r| r.n_classes);
    if let Some(r) = rank_chart(rows, &probe, n_classes)? {
        panels.push(r);
    }
    if panels.is_empty() {
        return Ok(());
    }
    let mut fig = Figure::new(1, panels.len()).title(format!("{} — {}", sc.name, sc.model.name));
    for p in panels {
        fig = fig.push(p);
    }
    write_chart(&fig.build()?, dir, "curves")?;
    Ok(())
}
