//! Batch normalisation with batch statistics, optionally followed by a ReLU, on contiguous NCHW
//! f32 slices: the forward pass (returning the batch mean and biased variance, which the running
//! statistics take) and the backward pass, each two sweeps over the activation. Statistics are
//! summed in f64, per channel, in parallel over channels.

use rayon::prelude::*;

/// `[batch, channels, plane]`: an NCHW tensor with `plane = H * W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormGeom {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl NormGeom {
    fn n(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// Sum of `f` over channel `c`'s values, in f64.
    fn channel_sum(&self, data: &[f32], c: usize, f: impl Fn(usize, f32) -> f64) -> f64 {
        let p = self.plane;
        (0..self.batch)
            .map(|b| {
                let start = (b * self.channels + c) * p;
                data[start..start + p]
                    .iter()
                    .enumerate()
                    .map(|(i, v)| f(start + i, *v))
                    .sum::<f64>()
            })
            .sum()
    }

    /// Applies `f(channel, values of one plane)` to every plane of `out`, planes in parallel over
    /// images.
    fn per_plane(&self, out: &mut [f32], f: impl Fn(usize, usize, &mut [f32]) + Sync) {
        let (c, p) = (self.channels, self.plane);
        out.par_chunks_mut(c * p).enumerate().for_each(|(b, image)| {
            for (ch, plane) in image.chunks_mut(p).enumerate() {
                f(ch, (b * c + ch) * p, plane);
            }
        });
    }
}

/// `y = γ (x − μ) / √(σ² + ε) + β` with the batch's per-channel mean μ and biased variance σ²,
/// then `max(y, 0)` when `relu`. Returns (μ, σ²).
pub fn forward(
    g: &NormGeom,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
    y: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), g.batch * g.channels * g.plane);
    assert_eq!(y.len(), x.len());
    let stats: Vec<(f64, f64)> = (0..g.channels)
        .into_par_iter()
        .map(|c| {
            let mean = g.channel_sum(x, c, |_, v| v as f64) / g.n();
            let var = g.channel_sum(x, c, |_, v| (v as f64 - mean).powi(2)) / g.n();
            (mean, var)
        })
        .collect();
    let affine: Vec<(f32, f32)> = stats
        .iter()
        .zip(gamma.iter().zip(beta))
        .map(|(&(mean, var), (&gm, &bt))| {
            let scale = gm as f64 / (var + epsilon).sqrt();
            (scale as f32, (bt as f64 - mean * scale) as f32)
        })
        .collect();
    g.per_plane(y, |c, start, out| {
        let (scale, shift) = affine[c];
        let src = &x[start..start + out.len()];
        if relu {
            out.iter_mut().zip(src).for_each(|(o, v)| *o = (v * scale + shift).max(0.0));
        } else {
            out.iter_mut().zip(src).for_each(|(o, v)| *o = v * scale + shift);
        }
    });
    stats.iter().map(|&(m, v)| (m as f32, v as f32)).unzip()
}

/// Gradients of [`forward`] for the input, γ and β, given the output gradient `dy`; `y` is the
/// forward output when the ReLU was applied (its sign is the ReLU's mask).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    g: &NormGeom,
    x: &[f32],
    y: Option<&[f32]>,
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    dx: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), g.batch * g.channels * g.plane);
    assert!(dy.len() == x.len() && dx.len() == x.len() && y.is_none_or(|y| y.len() == x.len()));
    let masked = |i: usize, d: f32| match y {
        Some(y) if y[i] <= 0.0 => 0.0,
        _ => d,
    };
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (*v as f64 + epsilon).sqrt()).collect();
    // (Σ dŷ, Σ dŷ x̂) per channel, with dŷ the gradient after the ReLU's mask.
    let sums: Vec<(f64, f64)> = (0..g.channels)
        .into_par_iter()
        .map(|c| {
            let (m, s) = (mean[c] as f64, inv_std[c]);
            let dbeta = g.channel_sum(dy, c, |i, d| masked(i, d) as f64);
            let dgamma = g.channel_sum(dy, c, |i, d| masked(i, d) as f64 * (x[i] as f64 - m) * s);
            (dgamma, dbeta)
        })
        .collect();
    let n = g.n();
    // dx = γ/σ · (dŷ − Σdŷ/n − x̂ Σ(dŷ x̂)/n), as an affine map of (dŷ, x) per channel.
    let coef: Vec<(f32, f32, f32)> = (0..g.channels)
        .map(|c| {
            let (dgamma, dbeta) = sums[c];
            let s = inv_std[c];
            let k = gamma[c] as f64 * s;
            let a = k; // · dŷ
            let b = -k * dgamma * s / n; // · x
            let shift = -k * dbeta / n + k * dgamma * s * mean[c] as f64 / n;
            (a as f32, b as f32, shift as f32)
        })
        .collect();
    g.per_plane(dx, |c, start, out| {
        let (a, b, shift) = coef[c];
        let (xs, ds) = (&x[start..start + out.len()], &dy[start..start + out.len()]);
        match y {
            Some(y) => {
                let ys = &y[start..start + out.len()];
                for (((o, xv), d), yv) in out.iter_mut().zip(xs).zip(ds).zip(ys) {
                    let d = if *yv > 0.0 { *d } else { 0.0 };
                    *o = a * d + b * xv + shift;
                }
            }
            None => {
                for ((o, xv), d) in out.iter_mut().zip(xs).zip(ds) {
                    *o = a * d + b * xv + shift;
                }
            }
        }
    });
    sums.iter().map(|&(dg, db)| (dg as f32, db as f32)).unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every gradient against a central finite difference of `L = Σ w ⊙ forward(x)`, in f64
    /// through f32 kernels, with and without the ReLU. β is chosen so that no output lies within
    /// four finite-difference steps of the ReLU's kink.
    #[test]
    fn gradients_match_finite_differences() {
        let g = NormGeom {
            batch: 3,
            channels: 2,
            plane: 5,
        };
        let len = g.batch * g.channels * g.plane;
        let x: Vec<f32> = (0..len).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let w: Vec<f32> = (0..len).map(|i| ((i * 53 % 19) as f32 - 9.0) / 5.0).collect();
        let gamma = [1.3f32, -0.7];
        let beta = [0.35f32, 0.1];
        let eps = 1e-5;
        for relu in [false, true] {
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| {
                let mut y = vec![0.0; len];
                forward(&g, x, gamma, beta, eps, relu, &mut y);
                y.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()
            };
            let mut y = vec![0.0; len];
            let (mean, var) = forward(&g, &x, &gamma, &beta, eps, relu, &mut y);
            let mut dx = vec![0.0; len];
            let (dgamma, dbeta) = backward(&g, &x, relu.then_some(&y[..]), &w, &gamma, &mean, &var, eps, &mut dx);
            let h = 1e-2f32;
            let check = |analytic: f32, plus: f64, minus: f64, what: &str| {
                let numeric = (plus - minus) / (2.0 * h as f64);
                assert!(
                    (analytic as f64 - numeric).abs() < 2e-2 * (1.0 + numeric.abs()),
                    "{what} (relu {relu}): {analytic} vs {numeric}"
                );
            };
            for i in 0..len {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                check(dx[i], loss(&xp, &gamma, &beta), loss(&xm, &gamma, &beta), "dx");
            }
            for c in 0..2 {
                let (mut gp, mut gm) = (gamma, gamma);
                gp[c] += h;
                gm[c] -= h;
                check(dgamma[c], loss(&x, &gp, &beta), loss(&x, &gm, &beta), "dgamma");
                let (mut bp, mut bm) = (beta, beta);
                bp[c] += h;
                bm[c] -= h;
                check(dbeta[c], loss(&x, &gamma, &bp), loss(&x, &gamma, &bm), "dbeta");
            }
        }
    }
}
