//! Oriented band-pass noise textures: each class is a spectral band (orientation, centre
//! frequency, angular and radial spread) and a three-colour palette; instances draw random
//! phases and frequencies inside the band and jitter its parameters slightly.
//!
//! A texture is a sum of 16 plane waves with frequencies drawn from the class band — a
//! sparse-spectrum sample of Gaussian band-pass noise. Frequencies are in cycles per image
//! (of the shorter side) so a class looks the same at every resolution, and are kept below the
//! Nyquist limit, so no anti-aliasing pass is needed.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::hsv;

#[derive(Debug, Clone)]
pub struct TextureClass {
    /// Dominant orientation of the wave vectors, radians.
    pub orientation: f32,
    /// Centre frequency, cycles per image.
    pub frequency: f32,
    /// Half-width of the orientation spread, radians.
    pub angular_spread: f32,
    /// Relative half-width of the frequency band.
    pub radial_spread: f32,
    pub palette: [[f32; 3]; 3],
}

const WAVES: usize = 16;

pub fn sample_class(rng: &mut ChaCha8Rng) -> TextureClass {
    let hue = rng.random::<f32>();
    let palette = [
        hsv(hue, rng.random_range(0.3..1.0), rng.random_range(0.05..0.35)),
        hsv(
            hue + rng.random_range(-0.25..0.25),
            rng.random_range(0.3..1.0),
            rng.random_range(0.4..0.7),
        ),
        hsv(
            hue + rng.random_range(-0.5..0.5),
            rng.random_range(0.0..0.8),
            rng.random_range(0.75..1.0),
        ),
    ];
    TextureClass {
        orientation: rng.random_range(0.0..std::f32::consts::PI),
        frequency: rng.random_range(1.5f32..7.0),
        angular_spread: rng.random_range(0.05..0.6),
        radial_spread: rng.random_range(0.05..0.3),
        palette,
    }
}

fn palette_at(p: &[[f32; 3]; 3], t: f32) -> [f32; 3] {
    let (a, b, u) = if t < 0.5 {
        (p[0], p[1], t * 2.0)
    } else {
        (p[1], p[2], t * 2.0 - 1.0)
    };
    [
        a[0] + (b[0] - a[0]) * u,
        a[1] + (b[1] - a[1]) * u,
        a[2] + (b[2] - a[2]) * u,
    ]
}

pub(super) fn render(class: &TextureClass, rng: &mut ChaCha8Rng, rgb: &mut [f32], h: usize, w: usize) {
    let side = h.min(w) as f32;
    let nyquist = 0.45 * side;
    let theta = class.orientation + rng.random_range(-0.05..0.05);
    let freq = class.frequency * rng.random_range(0.95..1.05);
    let gain = rng.random_range(0.8..1.2);
    // Separable evaluation: cos(kx·x + φ + ky·y) = cos(kx·x + φ)cos(ky·y) − sin(kx·x + φ)sin(ky·y),
    // so the trigonometry costs O(WAVES·(H+W)) instead of O(WAVES·H·W).
    let mut cx = vec![0f32; WAVES * w];
    let mut sx = vec![0f32; WAVES * w];
    let mut cy = vec![0f32; WAVES * h];
    let mut sy = vec![0f32; WAVES * h];
    for k in 0..WAVES {
        let a = theta + rng.random_range(-class.angular_spread..=class.angular_spread);
        let f = (freq * (1.0 + rng.random_range(-class.radial_spread..=class.radial_spread))).min(nyquist);
        let omega = std::f32::consts::TAU * f / side;
        let (kx, ky) = (omega * a.cos(), omega * a.sin());
        let phase = rng.random_range(0.0..std::f32::consts::TAU);
        for x in 0..w {
            let (s, c) = (kx * x as f32 + phase).sin_cos();
            cx[k * w + x] = c;
            sx[k * w + x] = s;
        }
        for y in 0..h {
            let (s, c) = (ky * y as f32).sin_cos();
            cy[k * h + y] = c;
            sy[k * h + y] = s;
        }
    }
    let norm = gain / (WAVES as f32 / 2.0).sqrt();
    for y in 0..h {
        for x in 0..w {
            let mut v = 0.0;
            for k in 0..WAVES {
                v += cx[k * w + x] * cy[k * h + y] - sx[k * w + x] * sy[k * h + y];
            }
            let t = 0.5 + 0.5 * (v * norm).tanh();
            let c = palette_at(&class.palette, t);
            rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_endpoints() {
        let p = [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]];
        assert_eq!(palette_at(&p, 0.0), p[0]);
        assert_eq!(palette_at(&p, 0.5), p[1]);
        assert_eq!(palette_at(&p, 1.0), p[2]);
    }
}
