//! Linear probes on frozen features (method §3): the paper's AdamW probe and a closed-form ridge
//! probe, behind one configuration. Features are extracted once per (backbone, dataset) for every
//! probed layer in one forward pass, then each layer's probe is fitted from host memory.

pub mod extract;
pub mod linalg;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use extract::{extract_features, extract_layers, feature_dims, layer_groups};

/// Which probe to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeKind {
    /// method §3.3: Linear(d, K), AdamW, cross-entropy with label smoothing, best epoch on test.
    Paper,
    /// Ridge regression on one-hot targets, solved in closed form.
    ClosedForm,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Paper => "paper",
            ProbeKind::ClosedForm => "closed-form",
        }
    }
}

/// The probe protocol: a scenario setting recorded in every output file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub kind: ProbeKind,
    /// Standardise each feature with the probe-training mean and standard deviation.
    #[serde(default)]
    pub standardize: bool,
    /// Paper probe: AdamW learning rate (1e-3 for CNNs).
    #[serde(default = "defaults::lr")]
    pub lr: f64,
    /// Paper probe: AdamW weight decay (0 for CNNs).
    #[serde(default)]
    pub weight_decay: f64,
    /// Paper probe: epochs (best one reported).
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    /// Paper probe: batch size.
    #[serde(default = "defaults::batch")]
    pub batch: usize,
    /// Paper probe: label smoothing.
    #[serde(default = "defaults::smoothing")]
    pub label_smoothing: f64,
    /// Closed-form probe: ridge penalty λ, relative to the mean feature variance.
    #[serde(default = "defaults::ridge")]
    pub ridge_lambda: f64,
}

mod defaults {
    pub fn lr() -> f64 {
        1e-3
    }
    pub fn epochs() -> usize {
        30
    }
    pub fn batch() -> usize {
        128
    }
    pub fn smoothing() -> f64 {
        0.1
    }
    pub fn ridge() -> f64 {
        1e-3
    }
}

impl ProbeConfig {
    pub fn paper() -> Self {
        ProbeConfig {
            kind: ProbeKind::Paper,
            standardize: false,
            lr: defaults::lr(),
            weight_decay: 0.0,
            epochs: defaults::epochs(),
            batch: defaults::batch(),
            label_smoothing: defaults::smoothing(),
            ridge_lambda: defaults::ridge(),
        }
    }

    pub fn closed_form() -> Self {
        ProbeConfig {
            kind: ProbeKind::ClosedForm,
            standardize: true,
            ..Self::paper()
        }
    }

    /// A short label for tables: kind, standardisation, λ.
    pub fn label(&self) -> String {
        match self.kind {
            ProbeKind::Paper => format!("paper{}", if self.standardize { "+std" } else { "" }),
            ProbeKind::ClosedForm => {
                format!(
                    "ridge(λ={}){}",
                    self.ridge_lambda,
                    if self.standardize { "+std" } else { "" }
                )
            }
        }
    }

    /// Checks the settings; the message names the setting, the caller says which probe.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::usage(what));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("lr must be > 0, got {}", self.lr));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!("weight_decay must be >= 0, got {}", self.weight_decay));
        }
        if self.epochs == 0 {
            return bad("epochs must be > 0".into());
        }
        if self.batch == 0 {
            return bad("batch must be > 0".into());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "label_smoothing must be in [0, 1), got {}",
                self.label_smoothing
            ));
        }
        if !(self.ridge_lambda > 0.0 && self.ridge_lambda.is_finite()) {
            return bad(format!("ridge_lambda must be > 0, got {}", self.ridge_lambda));
        }
        Ok(())
    }
}

/// Labelled probe data for one layer: row-major `[n, dim]` features.
pub struct ProbeData<'a> {
    pub dim: usize,
    pub train_x: &'a [f32],
    pub train_y: &'a [u32],
    pub test_x: &'a [f32],
    pub test_y: &'a [u32],
    pub n_classes: usize,
}

/// Which test images a probe classified right (1) or wrong (0), in the test set's order.
pub type Hits = Vec<u8>;

/// The result of one probe.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    /// Reported accuracy (best epoch for the paper probe).
    pub accuracy: f64,
    /// Test accuracy after each epoch (paper probe); empty for the closed form.
    pub per_epoch: Vec<f64>,
    /// Which test images the reported probe classifies right (1) or wrong (0).
    pub hits: Hits,
}

/// Fit one probe and score it on the test split.
pub fn fit(cfg: &ProbeConfig, data: &ProbeData, seed: u64, device: &Device) -> Result<ProbeResult> {
    let n_train = data.train_y.len();
    let n_test = data.test_y.len();
    if data.dim == 0 || n_train == 0 || n_test == 0 {
        return Err(Error::Internal("probe on empty data".into()));
    }
    if data.train_x.len() != n_train * data.dim || data.test_x.len() != n_test * data.dim {
        return Err(Error::Internal("probe feature/label size mismatch".into()));
    }
    match cfg.kind {
        ProbeKind::Paper => {
            let (train_x, test_x) = if cfg.standardize {
                let stats = ColumnStats::of(data.train_x, data.dim);
                (stats.apply(data.train_x, true), stats.apply(data.test_x, true))
            } else {
                (data.train_x.to_vec(), data.test_x.to_vec())
            };
            fit_paper(cfg, data, &train_x, &test_x, seed, device)
        }
        ProbeKind::ClosedForm => fit_ridge(cfg, data, device),
    }
}

/// Per-column mean and inverse standard deviation of a row-major matrix, accumulated in f64.
struct ColumnStats {
    mean: Vec<f32>,
    inv_sd: Vec<f32>,
}

impl ColumnStats {
    fn of(x: &[f32], dim: usize) -> Self {
        let n = (x.len() / dim) as f64;
        let mut sum = vec![0f64; dim];
        for row in x.chunks_exact(dim) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let mut sq = vec![0f64; dim];
        for row in x.chunks_exact(dim) {
            for ((s, &v), m) in sq.iter_mut().zip(row).zip(&mean) {
                let d = v as f64 - m;
                *s += d * d;
            }
        }
        let inv_sd = sq
            .iter()
            .map(|s| (s / n).sqrt())
            .map(|sd| if sd > 1e-12 { (1.0 / sd) as f32 } else { 0.0 })
            .collect();
        ColumnStats {
            mean: mean.iter().map(|&m| m as f32).collect(),
            inv_sd,
        }
    }

    /// Centre every column on the training mean and, with `scale`, divide by the training standard
    /// deviation (constant columns -> 0).
    fn apply(&self, x: &[f32], scale: bool) -> Vec<f32> {
        let dim = self.mean.len();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(dim) {
            if scale {
                out.extend(
                    row.iter()
                        .zip(&self.mean)
                        .zip(&self.inv_sd)
                        .map(|((&v, &m), &s)| (v - m) * s),
                );
            } else {
                out.extend(row.iter().zip(&self.mean).map(|(&v, &m)| v - m));
            }
        }
        out
    }
}

/// The test accuracy of `logits` and which images it gets right.
fn accuracy_of(logits: Tensor<2>, labels: &[u32]) -> Result<(f64, Hits)> {
    let pred = crate::backend::ints(logits.argmax(1))?;
    let hits: Hits = pred.iter().zip(labels).map(|(p, y)| (*p == *y as i64) as u8).collect();
    let correct = hits.iter().map(|&h| h as usize).sum::<usize>();
    Ok((correct as f64 / labels.len() as f64, hits))
}

fn matrix(data: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// method §3.3 probe: weights N(0, 0.01²), bias 0, AdamW (β 0.9/0.999, ε 1e-8), cross-entropy with
/// label smoothing, reshuffled each epoch, best test accuracy over the epochs. Gradients are written
/// out by hand (softmax regression), which avoids the autodiff graph for a single linear layer.
fn fit_paper(
    cfg: &ProbeConfig,
    data: &ProbeData,
    train_x: &[f32],
    test_x: &[f32],
    seed: u64,
    device: &Device,
) -> Result<ProbeResult> {
    let (d, k) = (data.dim, data.n_classes);
    let n = data.train_y.len();
    let x = matrix(train_x.to_vec(), n, d, device);
    let xt = matrix(test_x.to_vec(), data.test_y.len(), d, device);
    let eps = cfg.label_smoothing / k as f64;
    let mut targets = vec![eps as f32; n * k];
    for (i, &y) in data.train_y.iter().enumerate() {
        targets[i * k + y as usize] += (1.0 - cfg.label_smoothing) as f32;
    }
    let targets = matrix(targets, n, k, device);

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let init: Vec<f32> = (0..d * k).map(|_| 0.01 * standard_normal(&mut rng) as f32).collect();
    let mut w = matrix(init, d, k, device);
    let mut b = Tensor::<2>::zeros([1, k], device);
    let (mut mw, mut vw) = (w.zeros_like(), w.zeros_like());
    let (mut mb, mut vb) = (b.zeros_like(), b.zeros_like());
    let (b1, b2, adam_eps) = (0.9f64, 0.999f64, 1e-8f64);
    let mut step = 0i32;
    let mut order: Vec<i64> = (0..n as i64).collect();
    let mut per_epoch = Vec::with_capacity(cfg.epochs);
    let mut best_hits = Hits::new();
    for _ in 0..cfg.epochs {
        crate::interrupt::check()?;
        order.shuffle(&mut rng);
        for chunk in order.chunks(cfg.batch) {
            let idx = Tensor::<1, Int>::from_data(TensorData::new(chunk.to_vec(), [chunk.len()]), device);
            let xb = x.clone().select(0, idx.clone());
            let yb = targets.clone().select(0, idx);
            let p = crate::kernel::rows::softmax(xb.clone().matmul(w.clone()) + b.clone());
            let g = (p - yb).div_scalar(chunk.len() as f64);
            let gw = xb.transpose().matmul(g.clone());
            let gb = g.sum_dim(0);
            step += 1;
            let c1 = 1.0 - b1.powi(step);
            let c2 = 1.0 - b2.powi(step);
            let lr = cfg.lr;
            let update = |param: Tensor<2>, m: &mut Tensor<2>, v: &mut Tensor<2>, grad: Tensor<2>| {
                *m = m.clone().mul_scalar(b1) + grad.clone().mul_scalar(1.0 - b1);
                *v = v.clone().mul_scalar(b2) + grad.square().mul_scalar(1.0 - b2);
                let denom = v.clone().div_scalar(c2).sqrt().add_scalar(adam_eps);
                let delta = m.clone().div_scalar(c1).div(denom).mul_scalar(lr);
                let decayed = if cfg.weight_decay > 0.0 {
                    param.mul_scalar(1.0 - lr * cfg.weight_decay)
                } else {
                    param
                };
                decayed - delta
            };
            w = update(w, &mut mw, &mut vw, gw);
            b = update(b, &mut mb, &mut vb, gb);
        }
        let (acc, hits) = accuracy_of(xt.clone().matmul(w.clone()) + b.clone(), data.test_y)?;
        // The first best epoch is the one reported.
        if per_epoch.iter().all(|&a| acc > a) {
            best_hits = hits;
        }
        per_epoch.push(acc);
    }
    let accuracy = per_epoch.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !accuracy.is_finite() {
        return Err(Error::Internal("paper probe produced no finite accuracy".into()));
    }
    Ok(ProbeResult {
        accuracy,
        per_epoch,
        hits: best_hits,
    })
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut impl rand::Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Ridge regression on centred one-hot targets: W = (XᵀX + λ·tr(XᵀX)/d·I)⁻¹ XᵀY, solved in the
/// primal (d x d) or, when there are fewer samples than features, the dual (n x n) form.
fn fit_ridge(cfg: &ProbeConfig, data: &ProbeData, device: &Device) -> Result<ProbeResult> {
    let (d, k) = (data.dim, data.n_classes);
    let n = data.train_y.len();
    // Centre (and standardise) with the training statistics, so that the intercept is absorbed.
    let stats = ColumnStats::of(data.train_x, d);
    let xc_host = stats.apply(data.train_x, cfg.standardize);
    let primal = n >= d;
    // Right-hand side: XᵀY for one-hot Y is the per-class column sums (primal), or Y itself (dual).
    let mut rhs = if primal { vec![0f64; d * k] } else { vec![0f64; n * k] };
    for (i, (row, &c)) in xc_host.chunks_exact(d).zip(data.train_y).enumerate() {
        let c = c as usize;
        if primal {
            for (j, &v) in row.iter().enumerate() {
                rhs[j * k + c] += v as f64;
            }
        } else {
            rhs[i * k + c] = 1.0;
        }
    }
    let xc = matrix(xc_host, n, d, device);
    let (gram, m) = if primal {
        (xc.clone().transpose().matmul(xc.clone()), d)
    } else {
        (xc.clone().matmul(xc.clone().transpose()), n)
    };
    let mut gram: Vec<f64> = crate::backend::floats(gram)?.into_iter().map(f64::from).collect();
    let trace: f64 = (0..m).map(|i| gram[i * m + i]).sum();
    let lambda = cfg.ridge_lambda * (trace / m as f64).max(1e-12);
    for i in 0..m {
        gram[i * m + i] += lambda;
    }
    if !linalg::cholesky_solve(&mut gram, m, &mut rhs, k) {
        return Err(Error::Internal("ridge system is not positive definite".into()));
    }
    let sol = matrix(rhs.into_iter().map(|v| v as f32).collect(), m, k, device);
    let w = if primal { sol } else { xc.transpose().matmul(sol) };
    let xt = matrix(stats.apply(data.test_x, cfg.standardize), data.test_y.len(), d, device);
    let (accuracy, hits) = accuracy_of(xt.matmul(w), data.test_y)?;
    Ok(ProbeResult {
        accuracy,
        per_epoch: Vec::new(),
        hits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two overlapping classes in two dimensions: each probe's hits are its test images, and their
    /// mean is the accuracy it reports (the paper probe's best epoch, the first of equal ones).
    #[test]
    fn hits_give_the_reported_accuracy() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut sample = |n: usize| {
            let y: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
            let x: Vec<f32> = y
                .iter()
                .flat_map(|&c| {
                    [
                        c as f32 + standard_normal(&mut rng) as f32,
                        standard_normal(&mut rng) as f32,
                    ]
                })
                .collect();
            (x, y)
        };
        let ((train_x, train_y), (test_x, test_y)) = (sample(200), sample(101));
        let data = ProbeData {
            dim: 2,
            train_x: &train_x,
            train_y: &train_y,
            test_x: &test_x,
            test_y: &test_y,
            n_classes: 2,
        };
        let paper = ProbeConfig {
            epochs: 6,
            ..ProbeConfig::paper()
        };
        for cfg in [ProbeConfig::closed_form(), paper] {
            let r = fit(&cfg, &data, 0, &crate::backend::probe_device()).unwrap();
            assert_eq!(r.hits.len(), 101);
            let correct = r.hits.iter().filter(|&&h| h == 1).count();
            assert_eq!(correct as f64 / 101.0, r.accuracy, "{}", cfg.label());
            assert!(
                r.accuracy > 0.55 && r.accuracy < 0.95,
                "{}: {}",
                cfg.label(),
                r.accuracy
            );
        }
    }
}
