//! The SHAP variable-importance analysis: a gradient-boosting model of a metric on the encoded
//! variables, TreeSHAP values, and each variable's slope.

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::describe::sign;
use crate::gbm::GbmModel;
use crate::inference::{MIN_RESAMPLES, available_threads, percentile_interval, spread};
use crate::treeshap::gbm_expected_value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSlope {
    pub feature: String,
    /// OLS slope of SHAP on code / max(code); None when the variable takes a single value.
    pub slope: Option<f64>,
    /// slope / Σ|slope| over the metric's features (the paper's normalisation).
    pub slope_l1: Option<f64>,
    /// 95% percentile interval of the slope over bootstrap resamples of the models; None without
    /// resamples or when the slope is undefined in most of them.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Share of the resamples whose slope has the sign of `slope` (zero counting as a sign).
    pub same_sign: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapResult {
    pub metric: Metric,
    /// In-sample R² of the boosted model.
    pub r2: f64,
    /// R² of out-of-fold predictions, each model's rows held out together (None: fewer than two
    /// models, or no folds asked for).
    pub r2_cv: Option<f64>,
    /// Folds of `r2_cv` (0: not computed).
    pub folds: usize,
    /// Bootstrap resamples behind the slopes' intervals (0: none).
    pub resamples: usize,
    pub expected_value: f64,
    /// In [`VARIABLES`] order.
    pub slopes: Vec<FeatureSlope>,
}

/// How the uncertainty of the SHAP analysis is estimated: a bootstrap over models (each resample
/// draws as many models as the study has, with replacement, with all their rows, and refits the
/// model) and a cross-validated R² with each model's rows in one fold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShapUncertainty {
    /// Bootstrap resamples (0: no intervals).
    pub resamples: usize,
    /// Folds of the cross-validated R² (0: none; at most one fold per model).
    pub folds: usize,
    /// Seed of the resamples and of the fold assignment.
    pub seed: u64,
}

impl Default for ShapUncertainty {
    fn default() -> Self {
        Self {
            resamples: 200,
            folds: 8,
            seed: 0,
        }
    }
}

impl ShapUncertainty {
    /// Point estimates only: no resamples, no cross-validation.
    pub const NONE: ShapUncertainty = ShapUncertainty {
        resamples: 0,
        folds: 0,
        seed: 0,
    };

    /// Refuses a single fold (nothing to train on for it) and resamples too few for the ends of a
    /// 95% interval.
    pub fn check(&self) -> Result<()> {
        if self.folds == 1 {
            return Err(Error::usage(
                "--folds 1: cross-validation needs at least 2 folds (0 for none)",
            ));
        }
        if self.resamples > 0 && self.resamples < MIN_RESAMPLES {
            return Err(Error::usage(format!(
                "--resamples {}: a 95% interval needs at least {MIN_RESAMPLES} resamples (0 for none)",
                self.resamples
            )));
        }
        Ok(())
    }
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

/// The encoded study: design rows, each variable's codes and their maxima.
struct Design {
    x: Vec<Vec<f64>>,
    codes: Vec<Vec<usize>>,
    max_code: Vec<usize>,
    arch: usize,
}

impl Design {
    fn of(study: &Study) -> Design {
        let (x, codes) = shap_design(study);
        let max_code = codes.iter().map(|c| c.iter().copied().max().unwrap_or(0)).collect();
        let arch = VARIABLES.iter().position(|v| *v == COL_ARCH).unwrap_or(2);
        Design {
            x,
            codes,
            max_code,
            arch,
        }
    }

    /// Fits on `rows` (indices into the study, repeats allowed) and returns the model, its
    /// expected value and each variable's raw slope. The codes are scaled by the whole study's
    /// maxima, so that the slopes of a resample are comparable to the study's.
    fn fit(&self, rows: &[usize], y: &[f64], params: &GbmParams) -> Result<(GbmModel, f64, Vec<Option<f64>>)> {
        let x: Vec<Vec<f64>> = rows.iter().map(|&i| self.x[i].clone()).collect();
        let yr: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
        let model = fit_huber(&x, &yr, params)?;
        let expected_value = gbm_expected_value(&model);
        // Rows of one model share their design row, so each distinct row is explained once.
        let mut memo: HashMap<Vec<u64>, Vec<f64>> = HashMap::new();
        let mut shap_by_var: Vec<Vec<f64>> = vec![Vec::with_capacity(rows.len()); VARIABLES.len()];
        for row in &x {
            let phi = memo
                .entry(row.iter().map(|v| v.to_bits()).collect())
                .or_insert_with(|| gbm_shap(&model, row).0);
            let mut col = 0;
            for (j, s) in shap_by_var.iter_mut().enumerate() {
                if j == self.arch {
                    s.push(phi[VARIABLES.len() - 1..].iter().sum());
                } else {
                    s.push(phi[col]);
                    col += 1;
                }
            }
        }
        let slopes = (0..VARIABLES.len())
            .map(|j| {
                let max = self.max_code[j];
                if max == 0 {
                    return None;
                }
                let xs: Vec<f64> = rows.iter().map(|&i| self.codes[j][i] as f64 / max as f64).collect();
                ols_slope(&xs, &shap_by_var[j])
            })
            .collect();
        Ok((model, expected_value, slopes))
    }
}

/// The study's rows of each model, in row order.
fn rows_by_model(study: &Study) -> Vec<Vec<usize>> {
    let mut by = vec![Vec::new(); study.n_models()];
    for (i, r) in study.rows.iter().enumerate() {
        by[r.model].push(i);
    }
    by
}

/// Each model's fold (0..k): the models in an order shuffled with `seed`, dealt round-robin.
pub fn model_folds(n_models: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n_models).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold = vec![0; n_models];
    for (pos, &m) in order.iter().enumerate() {
        fold[m] = pos % k.max(1);
    }
    fold
}

/// R² of out-of-fold predictions (`sklearn.model_selection.cross_val_predict` with
/// `PredefinedSplit(fold)`, then `r2_score`): for each fold, the model fitted on the other folds'
/// rows predicts its rows.
pub fn cross_validated_r2(x: &[Vec<f64>], y: &[f64], fold: &[usize], params: &GbmParams) -> Result<f64> {
    let k = fold.iter().max().map_or(0, |m| m + 1);
    let mut pred = vec![f64::NAN; y.len()];
    for f in 0..k {
        let (train, test): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|&i| fold[i] != f);
        if train.is_empty() || test.is_empty() {
            return Err(Error::Internal(format!(
                "cross-validation: fold {f} leaves no rows on one side"
            )));
        }
        let tx: Vec<Vec<f64>> = train.iter().map(|&i| x[i].clone()).collect();
        let ty: Vec<f64> = train.iter().map(|&i| y[i]).collect();
        let model = fit_huber(&tx, &ty, params)?;
        for &i in &test {
            pred[i] = model.predict(&x[i]);
        }
    }
    Ok(r2_score(y, &pred))
}

/// The model indices of bootstrap resample `r`: as many as there are models, drawn with
/// replacement from a ChaCha8 stream of its own, so that a resample does not depend on how the
/// resamples are spread over threads.
fn resample_models(n_models: usize, seed: u64, r: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(r as u64);
    (0..n_models).map(|_| rng.random_range(0..n_models)).collect()
}

/// Each metric's target: r as a fraction, ρ and A as they are.
fn target(study: &Study, metric: Metric) -> Vec<f64> {
    let scale = if metric == Metric::RetainedPct { 0.01 } else { 1.0 };
    study.rows.iter().map(|r| r.metric(metric) * scale).collect()
}

/// The SHAP analysis of each metric with its uncertainty, on all available threads.
pub fn shap_analyses(
    study: &Study,
    metrics: &[Metric],
    params: &GbmParams,
    unc: &ShapUncertainty,
) -> Result<Vec<ShapResult>> {
    let threads = available_threads();
    shap_analyses_on(study, metrics, params, unc, threads)
}

/// [`shap_analyses`] on `threads` threads (the results do not depend on it).
pub fn shap_analyses_on(
    study: &Study,
    metrics: &[Metric],
    params: &GbmParams,
    unc: &ShapUncertainty,
    threads: usize,
) -> Result<Vec<ShapResult>> {
    let design = Design::of(study);
    let by_model = rows_by_model(study);
    let all: Vec<usize> = (0..study.rows.len()).collect();
    let targets: Vec<Vec<f64>> = metrics.iter().map(|&m| target(study, m)).collect();
    let n_models = study.n_models();
    // Resample r's slopes per metric (None where a resample leaves a variable single-valued).
    let boot: Vec<Vec<Vec<Option<f64>>>> = spread(unc.resamples, threads, |r| {
        let rows: Vec<usize> = resample_models(n_models, unc.seed, r)
            .into_iter()
            .flat_map(|m| by_model[m].iter().copied())
            .collect();
        targets
            .iter()
            .map(|y| design.fit(&rows, y, params).map(|(_, _, s)| s))
            .collect::<Result<Vec<_>>>()
    })
    .into_iter()
    .collect::<Result<_>>()?;
    let k = unc.folds.min(n_models);
    let folds = if k >= 2 {
        let of_model = model_folds(n_models, k, unc.seed);
        Some(study.rows.iter().map(|r| of_model[r.model]).collect::<Vec<_>>())
    } else {
        None
    };
    let r2_cv: Vec<Option<f64>> = spread(metrics.len(), threads, |i| {
        folds
            .as_ref()
            .map(|f| cross_validated_r2(&design.x, &targets[i], f, params))
            .transpose()
    })
    .into_iter()
    .collect::<Result<_>>()?;
    metrics
        .iter()
        .enumerate()
        .map(|(i, &metric)| {
            let y = &targets[i];
            let (model, expected_value, raw) = design.fit(&all, y, params)?;
            let pred: Vec<f64> = design.x.iter().map(|r| model.predict(r)).collect();
            let l1: f64 = raw.iter().flatten().map(|b| b.abs()).sum();
            let slopes = VARIABLES
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    let draws: Vec<Option<f64>> = boot.iter().map(|b| b[i][j]).collect();
                    let (ci_low, ci_high, same_sign) = interval(raw[j], &draws);
                    FeatureSlope {
                        feature: v.to_string(),
                        slope: raw[j],
                        slope_l1: raw[j].and_then(|b| (l1 > 0.0).then(|| b / l1)),
                        ci_low,
                        ci_high,
                        same_sign,
                    }
                })
                .collect();
            Ok(ShapResult {
                metric,
                r2: r2_score(y, &pred),
                r2_cv: r2_cv[i],
                folds: if folds.is_some() { k } else { 0 },
                resamples: unc.resamples,
                expected_value,
                slopes,
            })
        })
        .collect()
}

/// The 95% percentile interval of a slope's resampled values and the share of them with the
/// estimate's sign (−, 0 or +); None when the estimate is undefined or fewer than 90% of the resamples
/// define the slope.
fn interval(estimate: Option<f64>, draws: &[Option<f64>]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let (Some(b), Some((lo, hi))) = (estimate, percentile_interval(draws)) else {
        return (None, None, None);
    };
    let defined: Vec<f64> = draws.iter().flatten().copied().collect();
    let same = defined.iter().filter(|&&d| sign(d) == sign(b)).count() as f64 / defined.len() as f64;
    (Some(lo), Some(hi), Some(same))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 models with 4 OOD rows each: depth 17 loses 20 points of r, resolution does nothing,
    /// both on top of noise of ±6 points per model, which every (depth, resolution) cell shares
    /// (so that resolution has no effect in the sample either), and ±1 point per row.
    fn study() -> Study {
        let mut text = String::from(crate::study::TEST_HEADER);
        let mut state: u64 = 7;
        let mut noise = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut shift = 0.0;
        for m in 0..40 {
            let depth = if m % 2 == 0 { 11 } else { 17 };
            let resolution = if (m / 2) % 2 == 0 { 32 } else { 64 };
            if m % 4 == 0 {
                shift = noise() * 12.0;
            }
            for ood in 0..4 {
                let r = 90.0 - if depth == 17 { 20.0 } else { 0.0 } + shift + noise() * 2.0;
                text.push_str(&format!(
                    "m{m},o{ood},{:.4},{:.4},{r:.3},3,1,CNN,1,{resolution},100,50,{depth}\n",
                    r / 100.0,
                    r / 400.0
                ));
            }
        }
        Study::parse(Path::new("synthetic.csv"), &text).unwrap()
    }

    fn slope<'a>(r: &'a ShapResult, v: &str) -> &'a FeatureSlope {
        r.slopes.iter().find(|f| f.feature == v).unwrap()
    }

    /// The bootstrap tells an effect from noise: the depth slope's interval lies below zero with
    /// every resample agreeing on its sign, the resolution slope's interval covers zero, and a
    /// single-valued variable has neither slope nor interval.
    #[test]
    fn intervals_separate_an_effect_from_noise() {
        let unc = ShapUncertainty {
            resamples: 100,
            folds: 5,
            seed: 0,
        };
        let r = &shap_analyses(&study(), &[Metric::RetainedPct], &GbmParams::default(), &unc).unwrap()[0];
        let depth = slope(r, "Depth");
        assert!(depth.slope.unwrap() < -0.1, "{depth:?}");
        assert!(
            depth.ci_high.unwrap() < 0.0 && depth.ci_low.unwrap() < depth.ci_high.unwrap(),
            "{depth:?}"
        );
        assert_eq!(depth.same_sign, Some(1.0));
        let res = slope(r, "Resolution");
        assert!(res.ci_low.unwrap() < 0.0 && res.ci_high.unwrap() > 0.0, "{res:?}");
        let stem = slope(r, "Stem");
        assert_eq!((stem.slope, stem.ci_low, stem.same_sign), (None, None, None));
        // Held-out models are predicted well (depth explains most of the variance), though less
        // well than in sample.
        let cv = r.r2_cv.unwrap();
        assert!(cv > 0.5 && cv < r.r2, "cross-validated {cv}, in sample {}", r.r2);
        assert_eq!((r.folds, r.resamples), (5, 100));
    }

    /// Resamples and folds follow the seed alone: one thread or three give the same numbers, and
    /// another seed other intervals.
    #[test]
    fn uncertainty_does_not_depend_on_threads() {
        let s = study();
        let unc = ShapUncertainty {
            resamples: 12,
            folds: 4,
            seed: 3,
        };
        let metrics = [Metric::RetainedPct, Metric::Alignment];
        let one = shap_analyses_on(&s, &metrics, &GbmParams::default(), &unc, 1).unwrap();
        let three = shap_analyses_on(&s, &metrics, &GbmParams::default(), &unc, 3).unwrap();
        assert_eq!(one, three);
        let other = ShapUncertainty { seed: 4, ..unc };
        let four = shap_analyses_on(&s, &metrics, &GbmParams::default(), &other, 3).unwrap();
        assert_eq!(one[0].slopes[7].slope, four[0].slopes[7].slope);
        assert_ne!(one[0].slopes[7].ci_low, four[0].slopes[7].ci_low);
    }

    #[test]
    fn folds_keep_models_whole_and_balanced() {
        let f = model_folds(10, 4, 0);
        let mut sizes = [0; 4];
        for &k in &f {
            sizes[k] += 1;
        }
        sizes.sort();
        assert_eq!(sizes, [2, 2, 3, 3]);
        assert_eq!(f, model_folds(10, 4, 0));
    }
}
