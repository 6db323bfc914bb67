//! Infinite-dSprites-style classes: each class is a random closed Catmull-Rom spline (a
//! star-shaped blob through 5–9 control points); instances vary scale, rotation, position,
//! colour and background, and wobble the control points slightly. Shapes are filled with an
//! even-odd scanline rule on a 4x supersampled grid, then box-downsampled.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{composite_coverage, contrasting_colours, fill_background};

/// One class: control points in the unit disc, in angular order (so the spline never crosses
/// itself).
#[derive(Debug, Clone)]
pub struct Shape {
    pub control: Vec<(f32, f32)>,
}

pub fn sample_shape(rng: &mut ChaCha8Rng) -> Shape {
    let k = rng.random_range(5..=9usize);
    let step = std::f32::consts::TAU / k as f32;
    let offset = rng.random_range(0.0..std::f32::consts::TAU);
    let control = (0..k)
        .map(|i| {
            let a = offset + step * (i as f32 + rng.random_range(-0.3..0.3));
            let r = rng.random_range(0.3..1.0);
            (r * a.cos(), r * a.sin())
        })
        .collect();
    Shape { control }
}

/// Samples the closed centripetal-free (uniform) Catmull-Rom spline through `pts`.
fn catmull_rom_closed(pts: &[(f32, f32)], per_segment: usize) -> Vec<(f32, f32)> {
    let n = pts.len();
    let mut out = Vec::with_capacity(n * per_segment);
    for i in 0..n {
        let p0 = pts[(i + n - 1) % n];
        let p1 = pts[i];
        let p2 = pts[(i + 1) % n];
        let p3 = pts[(i + 2) % n];
        for s in 0..per_segment {
            let t = s as f32 / per_segment as f32;
            let (t2, t3) = (t * t, t * t * t);
            let f = |a: f32, b: f32, c: f32, d: f32| {
                0.5 * (2.0 * b
                    + (-a + c) * t
                    + (2.0 * a - 5.0 * b + 4.0 * c - d) * t2
                    + (-a + 3.0 * b - 3.0 * c + d) * t3)
            };
            out.push((f(p0.0, p1.0, p2.0, p3.0), f(p0.1, p1.1, p2.1, p3.1)));
        }
    }
    out
}

/// Even-odd fill of a closed polygon into a `h x w` mask, sampling at pixel centres.
pub(crate) fn fill_polygon(poly: &[(f32, f32)], h: usize, w: usize, mask: &mut [u8]) {
    let n = poly.len();
    let mut xs: Vec<f32> = Vec::with_capacity(16);
    for y in 0..h {
        let yc = y as f32 + 0.5;
        xs.clear();
        for i in 0..n {
            let (x0, y0) = poly[i];
            let (x1, y1) = poly[(i + 1) % n];
            if (y0 <= yc && y1 > yc) || (y1 <= yc && y0 > yc) {
                xs.push(x0 + (yc - y0) / (y1 - y0) * (x1 - x0));
            }
        }
        xs.sort_by(|a, b| a.total_cmp(b));
        for pair in xs.chunks_exact(2) {
            let start = (pair[0] - 0.5).ceil().max(0.0) as usize;
            let end = ((pair[1] - 0.5).floor() + 1.0).clamp(0.0, w as f32) as usize;
            for m in &mut mask[y * w + start.min(w)..y * w + end.max(start.min(w))] {
                *m = 1;
            }
        }
    }
}

const SUPERSAMPLE: usize = 4;

pub(super) fn render(shape: &Shape, rng: &mut ChaCha8Rng, rgb: &mut [f32], h: usize, w: usize) {
    let control: Vec<(f32, f32)> = shape
        .control
        .iter()
        .map(|&(x, y)| (x + rng.random_range(-0.04..0.04), y + rng.random_range(-0.04..0.04)))
        .collect();
    let curve = catmull_rom_closed(&control, 12);
    let (fg, bg) = contrasting_colours(rng);
    fill_background(rgb, h, w, bg, rng);
    let s = SUPERSAMPLE;
    let (sh, sw) = (h * s, w * s);
    let side = sh.min(sw) as f32;
    let scale = rng.random_range(0.35..0.5) * side;
    let (sn, cs) = rng.random_range(-0.5f32..0.5).sin_cos();
    let ox = sw as f32 / 2.0 + rng.random_range(-0.1..0.1) * side;
    let oy = sh as f32 / 2.0 + rng.random_range(-0.1..0.1) * side;
    let poly: Vec<(f32, f32)> = curve
        .iter()
        .map(|&(x, y)| (ox + scale * (cs * x - sn * y), oy + scale * (sn * x + cs * y)))
        .collect();
    let mut mask = vec![0u8; sh * sw];
    fill_polygon(&poly, sh, sw, &mut mask);
    composite_coverage(rgb, h, w, s, &mask, fg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_a_square_exactly() {
        let mut mask = vec![0u8; 10 * 10];
        fill_polygon(&[(2.0, 3.0), (7.0, 3.0), (7.0, 8.0), (2.0, 8.0)], 10, 10, &mut mask);
        for y in 0..10 {
            for x in 0..10 {
                let inside = (2..7).contains(&x) && (3..8).contains(&y);
                assert_eq!(mask[y * 10 + x] == 1, inside, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn spline_passes_through_control_points() {
        let pts = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
        let c = catmull_rom_closed(&pts, 4);
        assert_eq!(c.len(), 16);
        for (i, p) in pts.iter().enumerate() {
            assert!((c[i * 4].0 - p.0).abs() < 1e-6 && (c[i * 4].1 - p.1).abs() < 1e-6);
        }
    }
}
