//! Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) as Harun et al. use them in continual
//! learning (method §8.1): per batch, mixup with probability 0.6 (λ ~ Beta(0.1, 0.1)), CutMix
//! otherwise (λ ~ Beta(1, 1), a box of area 1 − λ, λ corrected to the box as clipped to the
//! image). Every sample is mixed with its partner in the reversed batch; the soft targets (label
//! smoothing already in them) are mixed with the same weights. With task-specific heads a sample
//! is mixed only with a partner of its own task, whose classes its softmax covers.

use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Probability that a batch is mixed by mixup rather than CutMix.
const MIXUP_P: f64 = 0.6;
/// Beta(α, α) of mixup's λ.
const MIXUP_ALPHA: f64 = 0.1;
/// Beta(α, α) of CutMix's λ.
const CUTMIX_ALPHA: f64 = 1.0;

/// One batch's mix.
#[derive(Clone, Debug, PartialEq)]
pub enum Mix {
    /// x·λ + partner·(1 − λ).
    Mixup { lambda: f64 },
    /// The box rows `y0..y1`, columns `x0..x1` from the partner; `lambda` is the share of the
    /// image left outside the box.
    CutMix {
        lambda: f64,
        rows: (usize, usize),
        cols: (usize, usize),
    },
}

/// The seeded random stream of a training run's mixes.
pub struct Mixer {
    rng: ChaCha8Rng,
}

impl Mixer {
    pub fn new(seed: u64) -> Self {
        Mixer {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Where the stream stands, to go on from there ([`Mixer::set_position`]).
    pub fn position(&self) -> u128 {
        self.rng.get_word_pos()
    }

    pub fn set_position(&mut self, position: u128) {
        self.rng.set_word_pos(position);
    }

    /// The mix of the next batch of `h` × `w` images.
    pub fn draw(&mut self, h: usize, w: usize) -> Mix {
        if self.rng.random::<f64>() < MIXUP_P {
            return Mix::Mixup {
                lambda: beta(&mut self.rng, MIXUP_ALPHA),
            };
        }
        let lambda = beta(&mut self.rng, CUTMIX_ALPHA);
        // A box of (1 − λ) of the area, centred uniformly, clipped to the image.
        let cut = (1.0 - lambda).sqrt();
        let (bh, bw) = ((h as f64 * cut) as usize, (w as f64 * cut) as usize);
        let (cy, cx) = (self.rng.random_range(0..h), self.rng.random_range(0..w));
        let rows = (cy.saturating_sub(bh / 2), (cy + bh / 2).min(h));
        let cols = (cx.saturating_sub(bw / 2), (cx + bw / 2).min(w));
        let area = (rows.1 - rows.0) * (cols.1 - cols.0);
        Mix::CutMix {
            lambda: 1.0 - area as f64 / (h * w) as f64,
            rows,
            cols,
        }
    }
}

/// The share of each sample's own target: λ where it is mixed with its partner, 1 where not.
fn own_share(mix: &Mix, mixable: &[bool], device: &burn::tensor::Device) -> Tensor<1> {
    let lambda = match mix {
        Mix::Mixup { lambda } | Mix::CutMix { lambda, .. } => *lambda as f32,
    };
    let own: Vec<f32> = mixable.iter().map(|&m| if m { lambda } else { 1.0 }).collect();
    Tensor::<1>::from_data(TensorData::new(own, [mixable.len()]), device)
}

/// The mixed inputs `[B, C, H, W]`; `mixable[i]`: whether sample i may be mixed with its partner
/// (sample B − 1 − i).
pub fn inputs(mix: &Mix, x: Tensor<4>, mixable: &[bool]) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let device = x.device();
    let partner = x.clone().flip([0]);
    match mix {
        Mix::Mixup { .. } => mix_rows(x, partner, own_share(mix, mixable, &device).reshape([b, 1, 1, 1])),
        Mix::CutMix { rows, cols, .. } => {
            // 1 inside the box for the samples that are mixed.
            let mut m = vec![0f32; b * h * w];
            for (i, plane) in m.chunks_exact_mut(h * w).enumerate() {
                if mixable[i] {
                    for y in rows.0..rows.1 {
                        plane[y * w + cols.0..y * w + cols.1].fill(1.0);
                    }
                }
            }
            let inside = Tensor::<4>::from_data(TensorData::new(m, [b, 1, h, w]), &device);
            mix_rows(x, partner, inside.neg().add_scalar(1.0))
        }
    }
}

/// The soft targets `[B, K]` mixed with the weights of [`inputs`].
pub fn targets(mix: &Mix, t: Tensor<2>, mixable: &[bool]) -> Tensor<2> {
    let own = own_share(mix, mixable, &t.device()).reshape([mixable.len(), 1]);
    let partner = t.clone().flip([0]);
    mix_rows(t, partner, own)
}

/// a·s + b·(1 − s), `s` broadcast over `a`.
fn mix_rows<const D: usize>(a: Tensor<D>, b: Tensor<D>, s: Tensor<D>) -> Tensor<D> {
    let rest = s.clone().neg().add_scalar(1.0);
    a * s + b * rest
}

/// A Beta(α, α) draw as X / (X + Y) of two Gamma(α) draws, in log space so that the small shapes
/// of mixup (draws of Gamma(0.1) can underflow) stay finite.
fn beta(rng: &mut impl Rng, alpha: f64) -> f64 {
    let (lx, ly) = (ln_gamma_draw(rng, alpha), ln_gamma_draw(rng, alpha));
    1.0 / (1.0 + (ly - lx).exp())
}

/// ln of a Gamma(α, 1) draw: Marsaglia and Tsang (2000) for α ≥ 1, with the boost
/// Gamma(α) = Gamma(α + 1)·U^(1/α) below 1.
fn ln_gamma_draw(rng: &mut impl Rng, alpha: f64) -> f64 {
    if alpha < 1.0 {
        let u: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]
        return ln_gamma_draw(rng, alpha + 1.0) + u.ln() / alpha;
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let z = normal(rng);
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = 1.0 - rng.random::<f64>();
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d.ln() + v.ln();
        }
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// Mean and variance of `n` Beta(α, α) draws against α/(2α) = 1/2 and 1/(4(2α + 1)).
    #[test]
    fn beta_draws_have_the_beta_moments() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for alpha in [0.1, 1.0, 2.5] {
            let n = 200_000;
            let v: Vec<f64> = (0..n).map(|_| beta(&mut rng, alpha)).collect();
            assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
            let mean = v.iter().sum::<f64>() / n as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let want_var = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.005, "α {alpha}: mean {mean}");
            assert!(
                (var / want_var - 1.0).abs() < 0.02,
                "α {alpha}: variance {var} vs {want_var}"
            );
        }
    }

    #[test]
    fn cutmix_lambda_is_the_share_outside_the_box() {
        let mut mixer = Mixer::new(3);
        let (mut mixups, mut cutmixes) = (0, 0);
        for _ in 0..2000 {
            match mixer.draw(32, 24) {
                Mix::Mixup { lambda } => {
                    assert!((0.0..=1.0).contains(&lambda));
                    mixups += 1;
                }
                Mix::CutMix { lambda, rows, cols } => {
                    let area = (rows.1 - rows.0) * (cols.1 - cols.0);
                    assert_eq!(lambda, 1.0 - area as f64 / (32.0 * 24.0));
                    assert!(rows.1 <= 32 && cols.1 <= 24);
                    cutmixes += 1;
                }
            }
        }
        // 0.6 / 0.4, within four standard deviations of 2000 draws.
        assert!(
            (mixups as f64 / 2000.0 - 0.6).abs() < 0.045,
            "{mixups} mixup, {cutmixes} cutmix"
        );
    }

    #[test]
    fn mixed_batches_follow_the_weights() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new((0..8).map(|v| v as f32).collect(), [2, 1, 2, 2]),
            &device,
        );
        let t = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2]), &device);
        let floats = |t: Tensor<4>| crate::backend::floats(t).unwrap();
        let mixup = Mix::Mixup { lambda: 0.75 };
        let (mx, mt) = (
            inputs(&mixup, x.clone(), &[true, false]),
            targets(&mixup, t, &[true, false]),
        );
        assert_eq!(floats(mx), vec![1.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(crate::backend::floats(mt).unwrap(), vec![0.75, 0.25, 0.0, 1.0]);
        let cut = Mix::CutMix {
            lambda: 0.75,
            rows: (0, 1),
            cols: (1, 2),
        };
        let cx = inputs(&cut, x, &[true, true]);
        assert_eq!(floats(cx), vec![0.0, 5.0, 2.0, 3.0, 4.0, 1.0, 6.0, 7.0]);
    }
}
