//! Gradient-boosted regression trees with the Huber loss, following scikit-learn's
//! `GradientBoostingRegressor(loss="huber")` step by step (defaults: 100 trees, learning rate
//! 0.1, depth 3, `friedman_mse` splits, α = 0.9, median initial value), so that the SHAP analysis
//! of the paper can be rerun without Python.
//!
//! Differences from scikit-learn: when two candidate splits have exactly the same improvement,
//! scikit-learn keeps the first one in a per-node random feature order; here the lowest feature
//! index wins. With collinear encodings (the study's stem 8 ⇔ Transformer ⇔ φ = 1) this picks a
//! different but equally good feature, so predictions agree while SHAP credit may move between
//! the collinear features.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// scikit-learn's `FEATURE_THRESHOLD`: feature values closer than this are not split apart.
const FEATURE_THRESHOLD: f64 = 1e-7;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GbmParams {
    pub n_estimators: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    /// Quantile of the absolute residuals that sets the Huber δ each stage.
    pub alpha: f64,
}

impl Default for GbmParams {
    fn default() -> Self {
        Self {
            n_estimators: 100,
            learning_rate: 0.1,
            max_depth: 3,
            min_samples_split: 2,
            min_samples_leaf: 1,
            alpha: 0.9,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub feature: usize,
    /// Rows with `x[feature] <= threshold` go left.
    pub threshold: f64,
    pub left: usize,
    pub right: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// None for a leaf.
    pub split: Option<Split>,
    /// Leaf output (before the learning rate); for inner nodes, the mean of the fitted target.
    pub value: f64,
    /// Number of training rows reaching the node (TreeSHAP's cover).
    pub cover: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Node 0 is the root.
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn leaf_of(&self, row: &[f64]) -> usize {
        let mut i = 0;
        while let Some(s) = &self.nodes[i].split {
            i = if to_f32(row[s.feature]) <= s.threshold {
                s.left
            } else {
                s.right
            };
        }
        i
    }
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.nodes[self.leaf_of(row)].value
    }
}

/// A fitted ensemble: prediction = init + learning_rate · Σ tree(x).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbmModel {
    pub init: f64,
    pub learning_rate: f64,
    pub n_features: usize,
    pub trees: Vec<Tree>,
}

impl GbmModel {
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.init
            + self
                .trees
                .iter()
                .map(|t| self.learning_rate * t.predict(row))
                .sum::<f64>()
    }
}

/// scikit-learn trees see `X` as float32; rounding here keeps thresholds and routing identical.
fn to_f32(v: f64) -> f64 {
    v as f32 as f64
}

/// Fits on rows `x` (each of the same length) and targets `y`.
pub fn fit_huber(x: &[Vec<f64>], y: &[f64], params: &GbmParams) -> Result<GbmModel> {
    let n = x.len();
    if n == 0 || n != y.len() {
        return Err(Error::Internal(format!("gbm: {n} rows but {} targets", y.len())));
    }
    let p = x[0].len();
    if x.iter().any(|r| r.len() != p) {
        return Err(Error::Internal("gbm: rows of unequal length".into()));
    }
    if x.iter().flatten().chain(y).any(|v| !v.is_finite()) {
        return Err(Error::Internal("gbm: non-finite input".into()));
    }
    // Column-major float32-rounded copy for the split search.
    let cols: Vec<Vec<f64>> = (0..p).map(|j| x.iter().map(|r| to_f32(r[j])).collect()).collect();
    // Each feature's order of the rows, sorted once for all trees: by the feature, ties in the
    // previous feature's order (the first feature's ties by row index). The split search reads a
    // node's rows in this order, and its sums of tied rows follow it.
    let mut sorted: Vec<Vec<usize>> = Vec::with_capacity(p);
    for col in &cols {
        let mut order = sorted.last().cloned().unwrap_or_else(|| (0..n).collect());
        order.sort_by(|&a, &b| col[a].total_cmp(&col[b]));
        sorted.push(order);
    }

    let init = np_percentile_linear(y, 0.5);
    let mut raw = vec![init; n];
    let mut trees = Vec::with_capacity(params.n_estimators);
    for _ in 0..params.n_estimators {
        let abserr: Vec<f64> = y.iter().zip(&raw).map(|(a, b)| (a - b).abs()).collect();
        let delta = weighted_percentile_unit(&abserr, 100.0 * params.alpha);
        let neg_grad: Vec<f64> = y
            .iter()
            .zip(&raw)
            .map(|(yt, r)| {
                let diff = yt - r;
                if diff.abs() <= delta {
                    diff
                } else {
                    delta * diff.signum()
                }
            })
            .collect();
        let mut tree = build_tree(&cols, &sorted, &neg_grad, params);
        // Leaf line search: Huber intercept-only fit on each leaf's residuals.
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); tree.nodes.len()];
        let leaves: Vec<usize> = x.iter().map(|r| tree.leaf_of(r)).collect();
        for (i, &l) in leaves.iter().enumerate() {
            members[l].push(i);
        }
        for (l, rows) in members.iter().enumerate() {
            if tree.nodes[l].split.is_none() && !rows.is_empty() {
                let diff: Vec<f64> = rows.iter().map(|&i| y[i] - raw[i]).collect();
                tree.nodes[l].value = huber_intercept(&diff, delta);
            }
        }
        for (i, &l) in leaves.iter().enumerate() {
            raw[i] += params.learning_rate * tree.nodes[l].value;
        }
        trees.push(tree);
    }
    Ok(GbmModel {
        init,
        learning_rate: params.learning_rate,
        n_features: p,
        trees,
    })
}

/// In-sample coefficient of determination 1 − SS_res/SS_tot (`sklearn.metrics.r2_score`).
pub fn r2_score(y: &[f64], pred: &[f64]) -> f64 {
    let m = y.iter().sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - m) * (v - m)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b) * (a - b)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// `np.percentile(v, 100·q)` with linear interpolation, including numpy's two-sided lerp.
fn np_percentile_linear(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (s[lo], s[hi]);
    let diff = b - a;
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

/// scikit-learn's `_weighted_percentile` with unit weights ("inverted_cdf"): the smallest value
/// whose cumulative count reaches rank/100 · n.
fn weighted_percentile_unit(v: &[f64], rank: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let target = rank / 100.0 * s.len() as f64;
    let idx = (0..s.len()).find(|&i| (i + 1) as f64 >= target).unwrap_or(s.len() - 1);
    s[idx]
}

/// `HuberLoss.fit_intercept_only`: median + mean of the residuals' deviations from it, clipped
/// at δ.
fn huber_intercept(diff: &[f64], delta: f64) -> f64 {
    let median = weighted_percentile_unit(diff, 50.0);
    let sum: f64 = diff
        .iter()
        .map(|d| {
            let t = d - median;
            t.signum() * if t == 0.0 { 0.0 } else { t.abs().min(delta) }
        })
        .sum();
    median + sum / diff.len() as f64
}

struct Pending {
    parent: Option<(usize, bool)>,
    /// The node's rows in index order.
    rows: Vec<usize>,
    /// The node's rows in each feature's order.
    sorted: Vec<Vec<usize>>,
    depth: usize,
}

/// Depth-first tree on `target` with Friedman's MSE improvement. Nodes are numbered when taken
/// off the stack (pre-order, left first), as scikit-learn numbers them.
fn build_tree(cols: &[Vec<f64>], sorted: &[Vec<usize>], target: &[f64], params: &GbmParams) -> Tree {
    let n = target.len();
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack = vec![Pending {
        parent: None,
        rows: (0..n).collect(),
        sorted: sorted.to_vec(),
        depth: 0,
    }];
    while let Some(Pending {
        parent,
        rows,
        sorted,
        depth,
    }) = stack.pop()
    {
        let node = nodes.len();
        let cnt = rows.len();
        let sum: f64 = rows.iter().map(|&i| target[i]).sum();
        let sq: f64 = rows.iter().map(|&i| target[i] * target[i]).sum();
        let w = cnt as f64;
        nodes.push(Node {
            split: None,
            value: sum / w,
            cover: w,
        });
        if let Some((p, is_left)) = parent
            && let Some(s) = nodes[p].split.as_mut()
        {
            if is_left {
                s.left = node;
            } else {
                s.right = node;
            }
        }
        let impurity = sq / w - (sum / w) * (sum / w);
        let leaf = depth >= params.max_depth
            || cnt < params.min_samples_split
            || cnt < 2 * params.min_samples_leaf
            || impurity <= f64::EPSILON;
        if leaf {
            continue;
        }
        let Some((feature, threshold)) = best_split(cols, target, &sorted, sum, params) else {
            continue;
        };
        let left = |i: &usize| cols[feature][*i] <= threshold;
        let (l_rows, r_rows): (Vec<usize>, Vec<usize>) = rows.iter().partition(|i| left(i));
        let (l_sorted, r_sorted): (Vec<Vec<usize>>, Vec<Vec<usize>>) =
            sorted.iter().map(|o| o.iter().partition(|i| left(i))).unzip();
        nodes[node].split = Some(Split {
            feature,
            threshold,
            left: 0,
            right: 0,
        });
        stack.push(Pending {
            parent: Some((node, false)),
            rows: r_rows,
            sorted: r_sorted,
            depth: depth + 1,
        });
        stack.push(Pending {
            parent: Some((node, true)),
            rows: l_rows,
            sorted: l_sorted,
            depth: depth + 1,
        });
    }
    Tree { nodes }
}

/// The best split of a node whose rows are `sorted` (in each feature's order).
fn best_split(
    cols: &[Vec<f64>],
    target: &[f64],
    sorted: &[Vec<usize>],
    sum_total: f64,
    params: &GbmParams,
) -> Option<(usize, f64)> {
    let mut best: Option<(f64, usize, f64)> = None;
    for ((f, col), order) in cols.iter().enumerate().zip(sorted) {
        let n = order.len();
        if col[order[n - 1]] <= col[order[0]] + FEATURE_THRESHOLD {
            continue;
        }
        let mut sum_left = 0.0;
        let mut p = 0;
        while p < n {
            // Advance over a run of (near-)equal values; the split goes after the run.
            while p + 1 < n && col[order[p + 1]] <= col[order[p]] + FEATURE_THRESHOLD {
                sum_left += target[order[p]];
                p += 1;
            }
            sum_left += target[order[p]];
            p += 1;
            if p >= n {
                break;
            }
            let (n_left, n_right) = (p, n - p);
            if n_left < params.min_samples_leaf || n_right < params.min_samples_leaf {
                continue;
            }
            let (nl, nr) = (n_left as f64, n_right as f64);
            let sum_right = sum_total - sum_left;
            let diff = nr * sum_left - nl * sum_right;
            let proxy = diff * diff / (nl * nr);
            if best.is_none_or(|(b, _, _)| proxy > b) {
                let (a, b) = (col[order[p - 1]], col[order[p]]);
                let mut thr = a / 2.0 + b / 2.0;
                if thr == b || thr.is_infinite() {
                    thr = a;
                }
                best = Some((proxy, f, thr));
            }
        }
    }
    best.map(|(_, f, t)| (f, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_numpy_and_sklearn() {
        assert_eq!(np_percentile_linear(&[4.0, 1.0, 3.0, 2.0], 0.5), 2.5);
        assert_eq!(weighted_percentile_unit(&[4.0, 1.0, 3.0, 2.0], 50.0), 2.0);
        assert_eq!(weighted_percentile_unit(&[5.0, 1.0, 3.0, 2.0, 4.0], 50.0), 3.0);
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(weighted_percentile_unit(&v, 90.0), 9.0);
    }

    #[test]
    fn fits_a_step_function() {
        let x: Vec<Vec<f64>> = (0..40).map(|i| vec![i as f64]).collect();
        let y: Vec<f64> = (0..40).map(|i| if i < 20 { 0.0 } else { 1.0 }).collect();
        let m = fit_huber(&x, &y, &GbmParams::default()).unwrap();
        let pred: Vec<f64> = x.iter().map(|r| m.predict(r)).collect();
        assert!(r2_score(&y, &pred) > 0.99);
    }
}
