//! Clipping to a rectangle, done on the geometry so that neither back end needs clip support.

use super::scene::Rect;

/// Clips one segment to `r` (Liang–Barsky); `None` when it lies wholly outside.
pub(crate) fn clip_segment(a: (f32, f32), b: (f32, f32), r: &Rect) -> Option<((f32, f32), (f32, f32))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f32, 1.0f32);
    for (p, q) in [
        (-dx, a.0 - r.x),
        (dx, r.right() - a.0),
        (-dy, a.1 - r.y),
        (dy, r.bottom() - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// Clips a polyline to `r`, splitting it where it leaves and re-enters.
pub(crate) fn clip_polyline(pts: &[(f32, f32)], r: &Rect) -> Vec<Vec<(f32, f32)>> {
    let mut out: Vec<Vec<(f32, f32)>> = Vec::new();
    let mut cur: Vec<(f32, f32)> = Vec::new();
    if pts.len() == 1 && r.contains(pts[0]) {
        return vec![pts.to_vec()];
    }
    for w in pts.windows(2) {
        match clip_segment(w[0], w[1], r) {
            Some((a, b)) => {
                if cur
                    .last()
                    .is_none_or(|l| (l.0 - a.0).abs() > 1e-4 || (l.1 - a.1).abs() > 1e-4)
                {
                    if cur.len() > 1 {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                    cur.push(a);
                }
                cur.push(b);
            }
            None => {
                if cur.len() > 1 {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() > 1 {
        out.push(cur);
    }
    out
}

/// Clips a polygon to `r` (Sutherland–Hodgman; exact for a convex clip region).
pub(crate) fn clip_polygon(pts: &[(f32, f32)], r: &Rect) -> Vec<(f32, f32)> {
    let mut poly = pts.to_vec();
    type Inside = fn((f32, f32), &Rect) -> f32;
    let edges: [Inside; 4] = [
        |p, r| p.0 - r.x,
        |p, r| r.right() - p.0,
        |p, r| p.1 - r.y,
        |p, r| r.bottom() - p.1,
    ];
    for inside in edges {
        if poly.is_empty() {
            break;
        }
        let input = std::mem::take(&mut poly);
        for i in 0..input.len() {
            let a = input[i];
            let b = input[(i + 1) % input.len()];
            let (da, db) = (inside(a, r), inside(b, r));
            if da >= 0.0 {
                poly.push(a);
            }
            if (da >= 0.0) != (db >= 0.0) {
                let t = da / (da - db);
                poly.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
            }
        }
    }
    poly
}
