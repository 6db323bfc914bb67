//! A forgetting leaderboard across architectures (`cl_leaderboard.csv`, also printed): each
//! architecture's full network under each strategy, ranked by ACC, with forgetting, BWT and
//! plasticity (means over seeds; ACC, forgetting and plasticity with their 95% intervals in the
//! file) and the architecture's tunnel start: the ID-95%
//! rule (method §2.7) on its task-1 probe curve after task 1 under fine-tuning, the median over
//! seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::continual::ClAggregateRow;
use crate::error::Result;
use crate::metrics::tunnel::tunnel_start_id;
use crate::results::{LayerProbeRecord, read_csv};

/// Per architecture: (tunnel start k, probed layers L) of one seed.
pub(super) type TunnelStarts = BTreeMap<String, (usize, usize)>;

/// The tunnel start of each architecture in one seed's `layer_probes.csv` (empty without it).
pub(super) fn tunnel_starts(dir: &Path) -> Result<TunnelStarts> {
    let path = dir.join("layer_probes.csv");
    if !path.is_file() {
        return Ok(TunnelStarts::new());
    }
    let rows: Vec<LayerProbeRecord> = read_csv(&path)?;
    let mut curves: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.variant == "full" && r.strategy == "finetune" && r.after_task == 1 && r.task == 1)
    {
        curves
            .entry(r.architecture.clone())
            .or_default()
            .push((r.layer_index, r.accuracy.unwrap_or(f64::NAN)));
    }
    let mut out = TunnelStarts::new();
    for (arch, mut curve) in curves {
        curve.sort_by_key(|(l, _)| *l);
        let id: Vec<f64> = curve.iter().map(|(_, a)| *a).collect();
        if let Some(k) = tunnel_start_id(&id, Default::default()) {
            out.insert(arch, (k, id.len()));
        }
    }
    Ok(out)
}

/// A row of `cl_leaderboard.csv` (accuracies in points).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaderRow {
    pub rank: usize,
    pub architecture: String,
    pub strategy: String,
    pub eval: String,
    pub n: usize,
    pub acc: f64,
    pub acc_ci_low: Option<f64>,
    pub acc_ci_high: Option<f64>,
    pub forgetting: Option<f64>,
    pub forgetting_ci_low: Option<f64>,
    pub forgetting_ci_high: Option<f64>,
    pub bwt: Option<f64>,
    pub plasticity: Option<f64>,
    pub plasticity_ci_low: Option<f64>,
    pub plasticity_ci_high: Option<f64>,
    /// The median over seeds of the ID-95% tunnel start (L: no tunnel).
    pub tunnel_start: Option<f64>,
    pub layers: Option<usize>,
}

/// The leaderboard of a scenario with two or more architectures (empty otherwise): the full
/// networks, evaluated in `eval`, ranked by mean ACC.
pub(super) fn leaderboard(rows: &[ClAggregateRow], starts: &[TunnelStarts], eval: &str) -> Vec<LeaderRow> {
    let full: Vec<&ClAggregateRow> = rows.iter().filter(|r| r.variant == "full" && r.eval == eval).collect();
    let archs: BTreeSet<&str> = full.iter().map(|r| r.architecture.as_str()).collect();
    if archs.len() < 2 {
        return Vec::new();
    }
    let find = |arch: &str, strategy: &str, metric: &str| {
        full.iter()
            .find(|r| r.architecture == arch && r.strategy == strategy && r.metric == metric)
            .copied()
    };
    let points = |v: Option<f64>| v.map(|v| 100.0 * v);
    let mut board: Vec<LeaderRow> = full
        .iter()
        .filter(|r| r.metric == "acc")
        .map(|r| {
            let of = |metric: &str| find(&r.architecture, &r.strategy, metric);
            let mean_of = |metric: &str| of(metric).map(|x| 100.0 * x.mean);
            let ci_of = |metric: &str| of(metric).map_or((None, None), |x| (points(x.ci_low), points(x.ci_high)));
            let (forgetting_ci_low, forgetting_ci_high) = ci_of("forgetting");
            let (plasticity_ci_low, plasticity_ci_high) = ci_of("plasticity");
            let mut ks: Vec<f64> = starts
                .iter()
                .filter_map(|s| s.get(&r.architecture).map(|(k, _)| *k as f64))
                .collect();
            ks.sort_by(f64::total_cmp);
            let median = (!ks.is_empty()).then(|| {
                let m = ks.len() / 2;
                if ks.len() % 2 == 1 {
                    ks[m]
                } else {
                    (ks[m - 1] + ks[m]) / 2.0
                }
            });
            LeaderRow {
                rank: 0,
                architecture: r.architecture.clone(),
                strategy: r.strategy.clone(),
                eval: eval.to_string(),
                n: r.n,
                acc: 100.0 * r.mean,
                acc_ci_low: points(r.ci_low),
                acc_ci_high: points(r.ci_high),
                forgetting: mean_of("forgetting"),
                forgetting_ci_low,
                forgetting_ci_high,
                bwt: mean_of("bwt"),
                plasticity: mean_of("plasticity"),
                plasticity_ci_low,
                plasticity_ci_high,
                tunnel_start: median,
                layers: starts.iter().find_map(|s| s.get(&r.architecture).map(|(_, l)| *l)),
            }
        })
        .collect();
    board.sort_by(|a, b| b.acc.total_cmp(&a.acc));
    for (i, row) in board.iter_mut().enumerate() {
        row.rank = i + 1;
    }
    board
}

/// The leaderboard as printed.
pub(super) fn text(board: &[LeaderRow]) -> String {
    let cell = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into());
    let wa = board.iter().map(|r| r.architecture.len()).max().unwrap_or(0).max(12) + 1;
    let ws = board.iter().map(|r| r.strategy.len()).max().unwrap_or(0).max(8) + 1;
    let mut s = format!(
        "\nleaderboard ({}, full networks, ranked by ACC; %, mean over seeds):\n{:>4}  {:<wa$}{:<ws$}{:>20}{:>12}{:>8}{:>12}{:>16}\n",
        board.first().map(|r| r.eval.as_str()).unwrap_or_default(),
        "rank",
        "architecture",
        "strategy",
        "ACC [95% CI]",
        "forgetting",
        "BWT",
        "plasticity",
        "tunnel start"
    );
    for r in board {
        let acc = match (r.acc_ci_low, r.acc_ci_high) {
            (Some(lo), Some(hi)) => format!("{:.1} [{lo:.1}, {hi:.1}]", r.acc),
            _ => format!("{:.1}", r.acc),
        };
        let start = match (r.tunnel_start, r.layers) {
            (Some(k), Some(l)) => format!("{k} of {l}"),
            _ => "–".into(),
        };
        s.push_str(&format!(
            "{:>4}  {:<wa$}{:<ws$}{acc:>20}{:>12}{:>8}{:>12}{start:>16}\n",
            r.rank,
            r.architecture,
            r.strategy,
            cell(r.forgetting),
            cell(r.bwt),
            cell(r.plasticity)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(architecture: &str, strategy: &str, metric: &str, mean: f64) -> ClAggregateRow {
        ClAggregateRow {
            architecture: architecture.into(),
            variant: "full".into(),
            strategy: strategy.into(),
            eval: "task-aware".into(),
            metric: metric.into(),
            n: 3,
            mean,
            sd: Some(0.01),
            ci_low: Some(mean - 0.02),
            ci_high: Some(mean + 0.02),
        }
    }

    #[test]
    fn full_networks_are_ranked_by_acc_with_the_median_tunnel_start() {
        let mut rows = Vec::new();
        for (arch, strategy, acc, forgetting) in [
            ("vgg", "finetune", 0.55, 0.5),
            ("vgg", "replay", 0.80, 0.1),
            ("vit", "finetune", 0.65, 0.3),
        ] {
            rows.push(row(arch, strategy, "acc", acc));
            rows.push(row(arch, strategy, "forgetting", forgetting));
        }
        // Another evaluation and a truncated network are not ranked.
        rows.push(ClAggregateRow {
            variant: "truncated".into(),
            ..row("vgg", "finetune", "acc", 0.99)
        });
        rows.push(ClAggregateRow {
            eval: "task-agnostic".into(),
            ..row("vit", "finetune", "acc", 0.99)
        });
        let starts: Vec<TunnelStarts> = [3, 5, 4]
            .map(|k| TunnelStarts::from([("vgg".to_string(), (k, 8))]))
            .to_vec();
        let board = leaderboard(&rows, &starts, "task-aware");
        let order: Vec<(&str, &str)> = board
            .iter()
            .map(|r| (r.architecture.as_str(), r.strategy.as_str()))
            .collect();
        assert_eq!(order, [("vgg", "replay"), ("vit", "finetune"), ("vgg", "finetune")]);
        assert_eq!(board.iter().map(|r| r.rank).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!((board[0].acc, board[0].forgetting), (80.0, Some(10.0)));
        assert_eq!((board[0].tunnel_start, board[0].layers), (Some(4.0), Some(8)));
        assert_eq!(board[1].tunnel_start, None);
        assert!(text(&board).contains("4 of 8"));
        // One architecture: no leaderboard.
        let vgg: Vec<ClAggregateRow> = rows.into_iter().filter(|r| r.architecture == "vgg").collect();
        assert!(leaderboard(&vgg, &starts, "task-aware").is_empty());
    }
}
