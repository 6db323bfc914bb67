//! FractalDB-style classes: each class is an iterated function system (IFS) of 2–4 affine
//! maps; instances jitter the maps and vary colour, background, position, scale and rotation.
//!
//! Maps are sampled through their singular values, as in Anderson & Farrell ("Improving
//! Fractal Pre-training", WACV 2022): the σ-factor Σᵢ (αᵢ + 2βᵢ) of the system is drawn from
//! [(5+N)/2, (6+N)/2], the band in which the attractor is neither a few dots nor a filled
//! blob — the same purpose FractalDB's filling-rate filter serves, without rejection loops.
//! Rendering is the chaos game into a supersampled coverage mask, then box-downsampled.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{composite_coverage, contrasting_colours, fill_background};

/// One class: affine maps `[a, b, c, d, e, f]` (x' = a x + b y + e, y' = c x + d y + f) and
/// their cumulative selection probabilities.
#[derive(Debug, Clone)]
pub struct Ifs {
    pub maps: Vec<[f32; 6]>,
    pub cumulative: Vec<f32>,
}

/// Largest singular value a map may have after jitter, so every instance stays contractive
/// and the chaos game cannot diverge.
const MAX_SINGULAR: f32 = 0.97;

fn rotation(theta: f32) -> [f32; 4] {
    let (s, c) = theta.sin_cos();
    [c, -s, s, c]
}

fn matmul(p: [f32; 4], q: [f32; 4]) -> [f32; 4] {
    [
        p[0] * q[0] + p[1] * q[2],
        p[0] * q[1] + p[1] * q[3],
        p[2] * q[0] + p[3] * q[2],
        p[2] * q[1] + p[3] * q[3],
    ]
}

fn spectral_norm(m: [f32; 4]) -> f32 {
    let s = m.iter().map(|v| v * v).sum::<f32>();
    let det = m[0] * m[3] - m[1] * m[2];
    ((s + (s * s - 4.0 * det * det).max(0.0).sqrt()) / 2.0).sqrt()
}

/// Draws a class's IFS from the σ-factor band.
pub fn sample_ifs(rng: &mut ChaCha8Rng) -> Ifs {
    let n = rng.random_range(2..=4usize);
    let nf = n as f32;
    let mut sigma_left = rng.random_range((5.0 + nf) / 2.0..(6.0 + nf) / 2.0);
    // Per-map σ is at most 3·α_max (β ≤ α ≤ α_max).
    let per_map_max = 3.0 * 0.95;
    let mut maps = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for k in 0..n {
        let rest = (n - k - 1) as f32;
        let lo = (sigma_left - rest * per_map_max).max(0.3);
        let hi = (sigma_left - rest * 0.3).min(per_map_max);
        let sigma_k = if k + 1 == n || lo >= hi {
            sigma_left.clamp(0.3, per_map_max)
        } else {
            rng.random_range(lo..hi)
        };
        sigma_left -= sigma_k;
        // α + 2β = σ_k with β ≤ α ≤ 0.95.
        let a_lo = sigma_k / 3.0;
        let a_hi = sigma_k.min(0.95);
        let alpha = if a_hi > a_lo {
            rng.random_range(a_lo..a_hi)
        } else {
            a_hi
        };
        let beta = ((sigma_k - alpha) / 2.0).max(0.0);
        let d = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        let th = rng.random_range(0.0..std::f32::consts::TAU);
        let ph = rng.random_range(0.0..std::f32::consts::TAU);
        let m = matmul(matmul(rotation(th), [alpha, 0.0, 0.0, d * beta]), rotation(ph));
        let e = rng.random_range(-1.0..1.0);
        let f = rng.random_range(-1.0..1.0);
        maps.push([m[0], m[1], m[2], m[3], e, f]);
        weights.push((alpha * beta).max(1e-3));
    }
    Ifs {
        cumulative: cumulative(&weights),
        maps,
    }
}

fn cumulative(weights: &[f32]) -> Vec<f32> {
    let total: f32 = weights.iter().sum();
    let mut acc = 0.0;
    let mut out: Vec<f32> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = 1.0;
    }
    out
}

/// Small multiplicative/additive jitter of every map, renormalised to stay contractive.
fn jitter(ifs: &Ifs, rng: &mut ChaCha8Rng) -> Vec<[f32; 6]> {
    ifs.maps
        .iter()
        .map(|m| {
            let mut j = *m;
            for v in j.iter_mut().take(4) {
                *v = *v * rng.random_range(0.94..1.06) + rng.random_range(-0.02..0.02);
            }
            j[4] += rng.random_range(-0.05..0.05);
            j[5] += rng.random_range(-0.05..0.05);
            let norm = spectral_norm([j[0], j[1], j[2], j[3]]);
            if norm > MAX_SINGULAR {
                for v in j.iter_mut().take(4) {
                    *v *= MAX_SINGULAR / norm;
                }
            }
            j
        })
        .collect()
}

/// xorshift64*: the chaos game draws tens of thousands of map choices per image, where a
/// ChaCha call per point would dominate the generation time.
struct FastRng(u64);

impl FastRng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32) * (1.0 / (1u64 << 24) as f32)
    }
}

/// Supersampling factor: more sub-pixels for small images, where edges matter most.
fn supersample(h: usize, w: usize) -> usize {
    if h.min(w) <= 48 { 3 } else { 2 }
}

pub(super) fn render(ifs: &Ifs, rng: &mut ChaCha8Rng, rgb: &mut [f32], h: usize, w: usize) {
    let maps = jitter(ifs, rng);
    let (fg, bg) = contrasting_colours(rng);
    fill_background(rgb, h, w, bg, rng);
    let s = supersample(h, w);
    let (sh, sw) = (h * s, w * s);
    let n_points = (sh * sw).clamp(3_000, 1_000_000);
    let mut fast = FastRng(rng.random::<u64>() | 1);
    let mut pts = Vec::with_capacity(n_points);
    let (mut x, mut y) = (0f32, 0f32);
    for i in 0..n_points + 20 {
        let u = fast.next_f32();
        let k = ifs.cumulative.iter().position(|&c| u < c).unwrap_or(maps.len() - 1);
        let m = &maps[k];
        let nx = m[0] * x + m[1] * y + m[4];
        let ny = m[2] * x + m[3] * y + m[5];
        x = nx;
        y = ny;
        if i >= 20 {
            pts.push((x, y));
        }
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(px, py) in &pts {
        x0 = x0.min(px);
        x1 = x1.max(px);
        y0 = y0.min(py);
        y1 = y1.max(py);
    }
    let extent = (x1 - x0).max(y1 - y0).max(1e-6);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let side = sh.min(sw) as f32;
    let scale = rng.random_range(0.65..0.95) * side / extent;
    let rot = rotation(rng.random_range(-0.5..0.5));
    let ox = sw as f32 / 2.0 + rng.random_range(-0.1..0.1) * side;
    let oy = sh as f32 / 2.0 + rng.random_range(-0.1..0.1) * side;
    let flip = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
    let mut mask = vec![0u8; sh * sw];
    for &(px, py) in &pts {
        let dx = (px - cx) * scale * flip;
        let dy = (py - cy) * scale;
        let qx = rot[0] * dx + rot[1] * dy + ox;
        let qy = rot[2] * dx + rot[3] * dy + oy;
        if qx >= 0.0 && qy >= 0.0 && (qx as usize) < sw && (qy as usize) < sh {
            mask[qy as usize * sw + qx as usize] = 1;
        }
    }
    composite_coverage(rgb, h, w, s, &mask, fg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sampled_systems_are_contractive_and_in_band() {
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let ifs = sample_ifs(&mut rng);
            let n = ifs.maps.len() as f32;
            assert!((2.0..=4.0).contains(&n));
            let mut sigma = 0.0;
            for m in &ifs.maps {
                let a = [m[0], m[1], m[2], m[3]];
                let s1 = spectral_norm(a);
                let det = (a[0] * a[3] - a[1] * a[2]).abs();
                let s2 = det / s1;
                assert!(s1 < 0.951, "seed {seed}: singular value {s1}");
                sigma += s1 + 2.0 * s2;
            }
            assert!(
                sigma >= (5.0 + n) / 2.0 - 1e-3 && sigma <= (6.0 + n) / 2.0 + 1e-3,
                "seed {seed}: sigma {sigma} for {n} maps"
            );
            assert_eq!(*ifs.cumulative.last().unwrap(), 1.0);
        }
    }
}
