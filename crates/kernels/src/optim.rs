//! The AdamW update of one parameter tensor, in place, over chunks on all threads, each chunk in
//! vector registers of the CPU's widest unit.
//!
//! The arithmetic is burn's `AdamW`, operation for operation (products and sums rounded one at a
//! time, no fused multiply-add, IEEE-exact division and square root), so every vector width gives
//! the same bits as the scalar loop.

use rayon::prelude::*;

/// Elements per task: large enough that scheduling costs nothing, small enough to spread a
/// 64-channel convolution's weights over two threads.
const CHUNK: usize = 1 << 14;

/// One step's constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// The learning rate.
    pub lr: f32,
    /// `1 − lr · weight_decay` (rounded from f64 as burn does), or `None` without weight decay.
    pub keep: Option<f32>,
    /// The step number, from 1.
    pub time: usize,
}

impl AdamW {
    /// Updates `params` by `grads`, and the moments `m` and `v` with them; at the first step
    /// (`time` 1) the moments' old values are not read (burn starts them from the gradient).
    pub fn step(&self, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
        let n = params.len();
        assert!(grads.len() == n && m.len() == n && v.len() == n);
        let time = i32::try_from(self.time).expect("a step number below 2³¹");
        let c = Consts {
            b1: self.beta_1,
            b2: self.beta_2,
            f1: 1.0 - self.beta_1,
            f2: 1.0 - self.beta_2,
            c1: 1.0 - self.beta_1.powi(time),
            c2: 1.0 - self.beta_2.powi(time),
            eps: self.epsilon,
            lr: self.lr,
        };
        let first = self.time == 1;
        params
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(grads.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| widest!(chunk(c, first, self.keep, p, g, m, v)));
    }
}

/// [`update`] with the step's branches taken outside the loop.
#[inline(always)]
fn chunk(c: Consts, first: bool, keep: Option<f32>, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    match (first, keep) {
        (true, None) => update::<true, false>(c, 1.0, p, g, m, v),
        (true, Some(keep)) => update::<true, true>(c, keep, p, g, m, v),
        (false, None) => update::<false, false>(c, 1.0, p, g, m, v),
        (false, Some(keep)) => update::<false, true>(c, keep, p, g, m, v),
    }
}

#[derive(Clone, Copy)]
struct Consts {
    b1: f32,
    b2: f32,
    f1: f32,
    f2: f32,
    c1: f32,
    c2: f32,
    eps: f32,
    lr: f32,
}

/// One chunk: as burn, `m·β1 + g·(1−β1)` and `v·β2 + g²·(1−β2)` (`g·(1−β1)` and `g²·(1−β2)` at
/// the first step), the bias-corrected ratio, and the decayed weight minus lr times it.
#[inline(always)]
fn update<const FIRST: bool, const DECAY: bool>(
    c: Consts,
    keep: f32,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let (mi, vi) = if FIRST {
            (g * c.f1, g * g * c.f2)
        } else {
            (*m * c.b1 + g * c.f1, *v * c.b2 + g * g * c.f2)
        };
        *m = mi;
        *v = vi;
        let delta = (mi / c.c1) / ((vi / c.c2).sqrt() + c.eps);
        let decayed = if DECAY { *p * keep } else { *p };
        *p = decayed - delta * c.lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;

    /// The scalar reference, written out: the same operations one element at a time.
    fn reference(a: &AdamW, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let t = a.time as i32;
        let (c1, c2) = (1.0 - a.beta_1.powi(t), 1.0 - a.beta_2.powi(t));
        for i in 0..p.len() {
            let (mi, vi) = if a.time == 1 {
                (g[i] * (1.0 - a.beta_1), g[i] * g[i] * (1.0 - a.beta_2))
            } else {
                (
                    m[i] * a.beta_1 + g[i] * (1.0 - a.beta_1),
                    v[i] * a.beta_2 + g[i] * g[i] * (1.0 - a.beta_2),
                )
            };
            m[i] = mi;
            v[i] = vi;
            let delta = (mi / c1) / ((vi / c2).sqrt() + a.epsilon);
            p[i] = a.keep.map_or(p[i], |k| p[i] * k) - delta * a.lr;
        }
    }

    /// Every width, chunking and branch gives the scalar loop's bits, over several chunks and a
    /// ragged tail, at the first step and later ones, with and without decay.
    #[test]
    fn matches_the_scalar_update_bit_for_bit() {
        let n = 3 * CHUNK + 37;
        for (time, keep) in [(1, None), (1, Some(0.9995f32)), (7, None), (7, Some(0.9995))] {
            let a = AdamW {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
                lr: 1e-3,
                keep,
                time,
            };
            let g = values(n, 1, (-1.0, 1.0));
            let (mut p, mut m, mut v) = (
                values(n, 2, (-1.0, 1.0)),
                values(n, 3, (-0.1, 0.1)),
                values(n, 4, (0.0, 0.01)),
            );
            let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
            a.step(&mut p, &g, &mut m, &mut v);
            reference(&a, &mut p2, &g, &mut m2, &mut v2);
            for (what, got, want) in [("params", &p, &p2), ("m", &m, &m2), ("v", &v, &v2)] {
                let same = got.iter().zip(want.iter()).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "time {time}, keep {keep:?}: {what} differ");
            }
        }
    }
}
