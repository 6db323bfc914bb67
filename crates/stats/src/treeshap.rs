//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2), the algorithm behind
//! `shap.TreeExplainer(model)` without background data. Node covers are training row counts.

use super::gbm::{GbmModel, Tree};

#[derive(Clone, Copy, Debug)]
struct PathElement {
    feature: Option<usize>,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

/// Expected value of a tree under its covers: the cover-weighted mean of its leaves.
pub fn tree_expected_value(tree: &Tree) -> f64 {
    fn rec(tree: &Tree, i: usize) -> f64 {
        let node = &tree.nodes[i];
        match &node.split {
            None => node.value,
            Some(s) => {
                let (l, r) = (&tree.nodes[s.left], &tree.nodes[s.right]);
                (l.cover * rec(tree, s.left) + r.cover * rec(tree, s.right)) / (l.cover + r.cover)
            }
        }
    }
    rec(tree, 0)
}

/// SHAP values of one tree for one row, added (times `scale`) into `phi`.
pub fn tree_shap(tree: &Tree, row: &[f64], scale: f64, phi: &mut [f64]) {
    recurse(tree, row, scale, phi, 0, &[], 1.0, 1.0, None);
}

/// Per-feature SHAP values of the ensemble for one row, plus the expected value; their sum equals
/// `model.predict(row)`.
pub fn gbm_shap(model: &GbmModel, row: &[f64]) -> (Vec<f64>, f64) {
    let mut phi = vec![0.0; model.n_features];
    for t in &model.trees {
        tree_shap(t, row, model.learning_rate, &mut phi);
    }
    (phi, gbm_expected_value(model))
}

pub fn gbm_expected_value(model: &GbmModel) -> f64 {
    model.init
        + model
            .trees
            .iter()
            .map(|t| model.learning_rate * tree_expected_value(t))
            .sum::<f64>()
}

fn extend(path: &mut Vec<PathElement>, zero: f64, one: f64, feature: Option<usize>) {
    let d = path.len();
    path.push(PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if d == 0 { 1.0 } else { 0.0 },
    });
    for i in (0..d).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f64 / (d + 1) as f64;
        path[i].pweight = zero * path[i].pweight * (d - i) as f64 / (d + 1) as f64;
    }
}

fn unwind(path: &mut Vec<PathElement>, index: usize) {
    let d = path.len() - 1;
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let mut next_one = path[d].pweight;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one * (d + 1) as f64 / ((i + 1) as f64 * one);
            next_one = tmp - path[i].pweight * zero * (d - i) as f64 / (d + 1) as f64;
        } else {
            path[i].pweight = path[i].pweight * (d + 1) as f64 / (zero * (d - i) as f64);
        }
    }
    for i in index..d {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
    path.pop();
}

fn unwound_sum(path: &[PathElement], index: usize) -> f64 {
    let d = path.len() - 1;
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let mut next_one = path[d].pweight;
    let mut total = 0.0;
    if one != 0.0 {
        for i in (0..d).rev() {
            let tmp = next_one / ((i + 1) as f64 * one);
            total += tmp;
            next_one = path[i].pweight - tmp * zero * (d - i) as f64;
        }
    } else {
        for i in (0..d).rev() {
            total += path[i].pweight / (zero * (d - i) as f64);
        }
    }
    total * (d + 1) as f64
}

#[allow(clippy::too_many_arguments)]
fn recurse(
    tree: &Tree,
    row: &[f64],
    scale: f64,
    phi: &mut [f64],
    node: usize,
    parent: &[PathElement],
    zero: f64,
    one: f64,
    feature: Option<usize>,
) {
    let mut path = parent.to_vec();
    extend(&mut path, zero, one, feature);
    let n = &tree.nodes[node];
    match &n.split {
        None => {
            for i in 1..path.len() {
                let w = unwound_sum(&path, i);
                let el = path[i];
                if let Some(f) = el.feature {
                    phi[f] += w * (el.one_fraction - el.zero_fraction) * n.value * scale;
                }
            }
        }
        Some(s) => {
            let goes_left = (row[s.feature] as f32 as f64) <= s.threshold;
            let (hot, cold) = if goes_left {
                (s.left, s.right)
            } else {
                (s.right, s.left)
            };
            let hot_zero = tree.nodes[hot].cover / n.cover;
            let cold_zero = tree.nodes[cold].cover / n.cover;
            let (mut in_zero, mut in_one) = (1.0, 1.0);
            if let Some(k) = path.iter().position(|e| e.feature == Some(s.feature)) {
                in_zero = path[k].zero_fraction;
                in_one = path[k].one_fraction;
                unwind(&mut path, k);
            }
            recurse(
                tree,
                row,
                scale,
                phi,
                hot,
                &path,
                hot_zero * in_zero,
                in_one,
                Some(s.feature),
            );
            recurse(
                tree,
                row,
                scale,
                phi,
                cold,
                &path,
                cold_zero * in_zero,
                0.0,
                Some(s.feature),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbm::{GbmParams, fit_huber};

    /// Local accuracy: Σφ + E[f] = f(x) for every row.
    #[test]
    fn shap_values_sum_to_prediction() {
        let x: Vec<Vec<f64>> = (0..60)
            .map(|i| {
                let i = i as f64;
                vec![(i * 0.37).sin(), (i * 1.3).cos(), (i % 7.0), (i * 0.11).fract()]
            })
            .collect();
        let y: Vec<f64> = x.iter().map(|r| r[0] * 2.0 + r[1] * r[2] - r[3]).collect();
        let m = fit_huber(&x, &y, &GbmParams::default()).unwrap();
        for r in &x {
            let (phi, e) = gbm_shap(&m, r);
            let sum: f64 = phi.iter().sum::<f64>() + e;
            assert!((sum - m.predict(r)).abs() < 1e-10, "{sum} vs {}", m.predict(r));
        }
    }
}
