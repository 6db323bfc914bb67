//! What a run prints at its end, and the probes' agreement it records in `summary.json`.

use crate::model::Backbone;
use crate::probe::ProbeConfig;
use crate::results::{ProbeAgreement, RunSummary};
use crate::scenario::{Scenario, data_label};

use super::{MetricsRow, ProbeRow};

/// Mean and max absolute per-layer accuracy difference between each probe and the main one.
pub(super) fn agreement(
    rows: &[ProbeRow],
    models: &[(String, Backbone)],
    probes: &[ProbeConfig],
) -> Vec<ProbeAgreement> {
    let mut out = Vec::new();
    let Some(main) = probes.first() else { return out };
    for (model, _) in models {
        for other in &probes[1..] {
            let diffs: Vec<f64> = rows
                .iter()
                .filter(|r| &r.model == model && r.probe == main.label())
                .filter_map(|a| {
                    rows.iter()
                        .find(|b| {
                            &b.model == model
                                && b.probe == other.label()
                                && b.dataset == a.dataset
                                && b.layer_index == a.layer_index
                        })
                        .map(|b| (a.accuracy - b.accuracy).abs())
                })
                .collect();
            if diffs.is_empty() {
                continue;
            }
            out.push(ProbeAgreement {
                model: model.clone(),
                a: main.label(),
                b: other.label(),
                mean_abs_diff: diffs.iter().sum::<f64>() / diffs.len() as f64,
                max_abs_diff: diffs.iter().copied().fold(0.0, f64::max),
            });
        }
    }
    out
}

/// The table printed at the end of a run.
pub(super) fn text_summary(s: &RunSummary, rows: &[ProbeRow], metrics: &[MetricsRow], sc: &Scenario) -> String {
    let main = sc.probe.main.label();
    let mut out = String::new();
    out.push_str(&format!(
        "\n== {} — {} ({} layers), ID {} ==\nbackbone accuracy {:.2}% (epoch {}), {:.0} s total (train {:.0} s, features {:.0} s, probes {:.0} s)\n",
        s.scenario,
        sc.model.name,
        s.probed_layers,
        sc.id.label.clone().unwrap_or_else(|| data_label(&sc.id)),
        100.0 * s.backbone_accuracy,
        s.train.best_epoch,
        s.timings_secs.total,
        s.timings_secs.train,
        s.timings_secs.features,
        s.timings_secs.probes
    ));
    let datasets: Vec<String> = s.datasets.iter().map(|d| d.label.clone()).collect();
    out.push_str(&format!(
        "\nper-layer probe accuracy (%), trained model, probe {main}\n{:<6}{:<18}",
        "layer", "name"
    ));
    for d in &datasets {
        out.push_str(&format!("{:>14}", truncate(d, 13)));
    }
    out.push_str(&format!("{:>7}\n", "rank"));
    let layers = s.probed_layers;
    for l in 1..=layers {
        let mut name = String::new();
        let mut rank = None;
        let mut cells = String::new();
        for d in &datasets {
            let r = rows
                .iter()
                .find(|r| r.model == "trained" && r.probe == main && &r.dataset == d && r.layer_index == l);
            if let Some(r) = r {
                name = r.layer_name.clone();
                rank = rank.or(r.rank);
                cells.push_str(&format!("{:>14.2}", 100.0 * r.accuracy));
            } else {
                cells.push_str(&format!("{:>14}", "-"));
            }
        }
        out.push_str(&format!(
            "{l:<6}{:<18}{cells}{:>7}\n",
            truncate(&name, 17),
            fmt_opt(rank)
        ));
    }
    let resamples = sc.probe.bootstrap;
    if resamples > 0 {
        out.push_str(&format!(
            "\nin brackets: 95% intervals over {resamples} resamples of the test images (method §2.8)"
        ));
    }
    out.push_str(&format!(
        "\n{:<13}{:<26}{:<16}{:>19}{:>21}{:>19}{:>7}{:>7}\n",
        "model", "probe", "OOD set", "r (%)", "ρ", "A", "s_ood", "s_id"
    ));
    for m in metrics {
        let (v, i) = (&m.metrics, &m.intervals);
        out.push_str(&format!(
            "{:<13}{:<26}{:<16}{:>19}{:>21}{:>19}{:>7}{:>7}\n",
            m.model,
            truncate(&m.probe, 25),
            truncate(&m.ood_dataset, 15),
            with_interval(v.retained_pct.value, i.retained_pct, 2, 1),
            with_interval(v.pearson.value, i.pearson, 3, 2),
            with_interval(v.alignment.value, i.alignment, 3, 2),
            v.tunnel_start_ood
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into()),
            fmt_opt(v.tunnel_start_id)
        ));
    }
    out.push_str(&format!(
        "\n{:<13}{:<26}{:>19}{:>21}{:>19}  {:<17}{:>7}\n",
        "model", "probe", "mean r", "mean ρ", "mean A", "class", "secs"
    ));
    for m in &s.means {
        let class = match (m.tunnel_class, m.tunnel_class_share) {
            (Some(c), Some(share)) => format!("{} ({:.0}%)", c.name(), 100.0 * share),
            (Some(c), None) => c.name().to_string(),
            (None, _) => "undefined".to_string(),
        };
        out.push_str(&format!(
            "{:<13}{:<26}{:>19}{:>21}{:>19}  {:<17}{:>7.1}\n",
            m.model,
            truncate(&m.probe, 25),
            with_interval(m.mean_retained_pct, m.intervals.retained_pct, 2, 1),
            with_interval(m.mean_pearson, m.intervals.pearson, 3, 2),
            with_interval(m.mean_alignment, m.intervals.alignment, 3, 2),
            class,
            m.probe_secs
        ));
    }
    if resamples > 0 && s.means.iter().any(|m| m.tunnel_class_share.is_some()) {
        out.push_str("(class: the share of the resamples that give the same class)\n");
    }
    for a in &s.probe_agreement {
        out.push_str(&format!(
            "probe agreement ({}): mean |{} − {}| = {:.2} points (max {:.2})\n",
            a.model,
            a.a,
            a.b,
            100.0 * a.mean_abs_diff,
            100.0 * a.max_abs_diff
        ));
    }
    if metrics
        .iter()
        .any(|m| !m.metrics.retained_pct.is_defined() || !m.metrics.pearson.is_defined())
    {
        out.push_str("(an empty cell is an undefined value: see undefined_reasons in metrics.csv)\n");
    }
    out.push_str(&format!("results: {}\n", s.out_dir));
    out
}

fn fmt_num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "NaN".into()
    }
}

/// `v [low, high]`, the interval left out when there is none.
fn with_interval(v: f64, interval: Option<(f64, f64)>, decimals: usize, interval_decimals: usize) -> String {
    let d = interval_decimals;
    match interval {
        Some((lo, hi)) if v.is_finite() => format!("{} [{lo:.d$}, {hi:.d$}]", fmt_num(v, decimals)),
        _ => fmt_num(v, decimals),
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

fn fmt_opt(v: Option<usize>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}
