//! The SHAP variable-importance analysis: a gradient-boosting model of a metric on the encoded
//! variables, TreeSHAP values, and each variable's slope.

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSlope {
    pub feature: String,
    /// OLS slope of SHAP on code / max(code); None when the variable takes a single value.
    pub slope: Option<f64>,
    /// slope / Σ|slope| over the metric's features (the paper's normalisation).
    pub slope_l1: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapResult {
    pub metric: Metric,
    /// In-sample R² of the boosted model.
    pub r2: f64,
    pub expected_value: f64,
    /// In [`VARIABLES`] order.
    pub slopes: Vec<FeatureSlope>,
}

/// Ordinal codes of a column: rank among its sorted distinct values (`pandas.factorize(sort=True)`).
fn ordinal_codes(cells: &[&str], numeric: bool) -> Vec<usize> {
    let mut distinct: Vec<&str> = cells.to_vec();
    if numeric {
        distinct.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap_or(f64::NAN)
                .total_cmp(&b.parse::<f64>().unwrap_or(f64::NAN))
        });
    } else {
        distinct.sort();
    }
    distinct.dedup();
    cells
        .iter()
        .map(|c| distinct.iter().position(|d| d == c).unwrap_or(0))
        .collect()
}

/// The design matrix of [H24] §7.5: seven ordinal columns in order (Stem, Spatial Reduction,
/// Augmentations, Resolution, ID Class Count, OverParam. Level, Depth), then one-hot `CNN vs ViT`
/// columns last. Returns the matrix and each variable's codes (in [`VARIABLES`] order).
pub fn shap_design(study: &Study) -> (Vec<Vec<f64>>, Vec<Vec<usize>>) {
    let codes: Vec<Vec<usize>> = VARIABLES
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let cells: Vec<&str> = study.rows.iter().map(|r| r.variables[j].as_str()).collect();
            ordinal_codes(&cells, *v != COL_ARCH)
        })
        .collect();
    let arch = VARIABLES.iter().position(|v| *v == COL_ARCH).unwrap_or(2);
    let n_arch = codes[arch].iter().max().map_or(1, |m| m + 1);
    let x = (0..study.rows.len())
        .map(|i| {
            let mut row: Vec<f64> = (0..VARIABLES.len())
                .filter(|&j| j != arch)
                .map(|j| codes[j][i] as f64)
                .collect();
            row.extend((0..n_arch).map(|k| if codes[arch][i] == k { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    (x, codes)
}

/// Fits the Huber GBM on one metric (r as a fraction), explains it with TreeSHAP, merges the
/// architecture dummies and regresses each variable's SHAP values on its scaled code.
pub fn shap_analysis(study: &Study, metric: Metric, params: &GbmParams) -> Result<ShapResult> {
    let (x, codes) = shap_design(study);
    let scale = if metric == Metric::RetainedPct { 0.01 } else { 1.0 };
    let y: Vec<f64> = study.rows.iter().map(|r| r.metric(metric) * scale).collect();
    let model = fit_huber(&x, &y, params)?;
    let pred: Vec<f64> = x.iter().map(|r| model.predict(r)).collect();
    let r2 = r2_score(&y, &pred);
    let arch = VARIABLES.iter().position(|v| *v == COL_ARCH).unwrap_or(2);
    let mut shap_by_var: Vec<Vec<f64>> = vec![Vec::with_capacity(x.len()); VARIABLES.len()];
    let mut expected_value = f64::NAN;
    for row in &x {
        let (phi, e) = gbm_shap(&model, row);
        expected_value = e;
        let mut col = 0;
        for (j, s) in shap_by_var.iter_mut().enumerate() {
            if j == arch {
                s.push(phi[VARIABLES.len() - 1..].iter().sum());
            } else {
                s.push(phi[col]);
                col += 1;
            }
        }
    }
    let raw: Vec<Option<f64>> = (0..VARIABLES.len())
        .map(|j| {
            let max = *codes[j].iter().max().unwrap_or(&0);
            if max == 0 {
                return None;
            }
            let xs: Vec<f64> = codes[j].iter().map(|&c| c as f64 / max as f64).collect();
            ols_slope(&xs, &shap_by_var[j])
        })
        .collect();
    let l1: f64 = raw.iter().flatten().map(|b| b.abs()).sum();
    let slopes = VARIABLES
        .iter()
        .zip(&raw)
        .map(|(v, s)| FeatureSlope {
            feature: v.to_string(),
            slope: *s,
            slope_l1: s.and_then(|b| (l1 > 0.0).then(|| b / l1)),
        })
        .collect();
    Ok(ShapResult {
        metric,
        r2,
        expected_value,
        slopes,
    })
}

/// Least-squares slope b of y = a + b·x; None when x is constant.
pub fn ols_slope(x: &[f64], y: &[f64]) -> Option<f64> {
    let mx = mean(x);
    let my = mean(y);
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    if sxx == 0.0 || !sxx.is_finite() {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    Some(sxy / sxx)
}
