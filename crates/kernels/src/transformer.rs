//! The transformer block's kernels on contiguous row-major `f32` slices, each with its backward
//! pass: layer norm over the last axis, the exact (erf) GELU, and multi-head self-attention
//! (scores, softmax and the value product per image, head and block of query rows, with no
//! head-major copies of the queries, keys and values and no `tokens × tokens` matrix held whole).
//!
//! Every sum runs in an order fixed by the shapes alone (a fixed number of accumulators, then
//! added in one order; row blocks of a fixed size, then added in block order), never by the
//! vector width or the thread count, so that results are the same bits on every x86-64 CPU.
//! Products of rows go through the same single-threaded matrix product as the convolutions,
//! parallel over images.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::linear::strided;

/// Rows per task in the layer norm, and per partial sum of its parameter gradients.
const ROW_BLOCK: usize = 32;
/// Elements per task in the GELU.
const ELEMENT_BLOCK: usize = 1 << 14;

/// Σ f(x[i]) over `x`, with eight accumulators (lane l takes i ≡ l mod 8), then added in order.
#[inline(always)]
fn sum8(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    sum8_pairs(x, x, |x, _| f(x))
}

/// Σ f(a[i], b[i]) over `a` and `b` (of one length), in [`sum8`]'s order.
#[inline(always)]
fn sum8_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    sum_lanes::<8>(a, b, f)
}

/// Σ f(a[i], b[i]) over `a` and `b` (of one length) with `L` accumulators (lane l takes i ≡ l mod
/// L), then added by [`tree`]. The lanes run over whole chunks of `L` without bounds checks,
/// so that the loop compiles to vector adds; more lanes make more independent chains.
#[inline(always)]
fn sum_lanes<const L: usize>(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; L];
    let ((a_whole, a_tail), (b_whole, b_tail)) = (a.as_chunks::<L>(), b.as_chunks::<L>());
    for (a, b) in a_whole.iter().zip(b_whole) {
        for l in 0..L {
            acc[l] += f(a[l], b[l]);
        }
    }
    for (l, (&a, &b)) in a_tail.iter().zip(b_tail).enumerate() {
        acc[l] += f(a, b);
    }
    tree(acc, |a, b| a + b)
}

/// The lanes of an accumulator combined by `op` in pairs, level by level: lanes 2j and 2j + 1,
/// then the pairs' results likewise (`L` a power of two).
#[inline(always)]
fn tree<const L: usize>(mut acc: [f32; L], op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut n = L;
    while n > 1 {
        for j in 0..n / 2 {
            acc[j] = op(acc[2 * j], acc[2 * j + 1]);
        }
        n /= 2;
    }
    acc[0]
}

// ---------------------------------------------------------------------------------------------
// Layer norm

/// A layer norm's affine parameters over rows of `gamma.len()` values, and its ε.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormParams<'a> {
    pub gamma: &'a [f32],
    pub beta: Option<&'a [f32]>,
    pub epsilon: f64,
}

/// Layer norm over the last axis of `x` (`rows × d`): `y = (x − mean) / sqrt(var + ε) · γ + β`,
/// the biased variance, as torch and burn. Writes each row's mean and 1/sqrt(var + ε) to `stats`
/// (`rows × 2`), which the backward pass takes.
pub fn layer_norm_forward(p: LayerNormParams, x: &[f32], y: &mut [MaybeUninit<f32>], stats: &mut [f32]) {
    let d = p.gamma.len();
    assert!(d > 0 && x.len().is_multiple_of(d) && y.len() == x.len());
    assert!(p.beta.is_none_or(|b| b.len() == d) && stats.len() == x.len() / d * 2);
    y.par_chunks_mut(ROW_BLOCK * d)
        .zip(x.par_chunks(ROW_BLOCK * d))
        .zip(stats.par_chunks_mut(ROW_BLOCK * 2))
        .for_each(|((y, x), stats)| widest!(layer_norm_rows(p, x, y, stats)));
}

#[inline(always)]
fn layer_norm_rows(p: LayerNormParams, x: &[f32], y: &mut [MaybeUninit<f32>], stats: &mut [f32]) {
    let (d, eps) = (p.gamma.len(), p.epsilon as f32);
    for ((y, x), s) in y
        .chunks_exact_mut(d)
        .zip(x.chunks_exact(d))
        .zip(stats.chunks_exact_mut(2))
    {
        let mean = sum8(x, |x| x) / d as f32;
        let var = sum8(x, |x| (x - mean) * (x - mean)) / d as f32;
        let rstd = 1.0 / (var + eps).sqrt();
        match p.beta {
            Some(b) => {
                for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(p.gamma).zip(b) {
                    y.write((x - mean) * rstd * g + b);
                }
            }
            None => {
                for ((y, &x), &g) in y.iter_mut().zip(x).zip(p.gamma) {
                    y.write((x - mean) * rstd * g);
                }
            }
        }
        s[0] = mean;
        s[1] = rstd;
    }
}

/// The layer norm's gradients: `dx` (`rows × d`; need not be initialised, every element is
/// written), and `(dγ, dβ)` (each `d`), summed over row blocks of [`ROW_BLOCK`] rows in block
/// order. With `x̂ = (x − mean)·rstd` and `g = dy·γ`: `dx = rstd · (g − mean(g) − x̂ · mean(g·x̂))`.
pub fn layer_norm_backward(
    gamma: &[f32],
    x: &[f32],
    stats: &[f32],
    dy: &[f32],
    dx: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    assert!(d > 0 && x.len().is_multiple_of(d) && dy.len() == x.len() && dx.len() == x.len());
    assert!(stats.len() == x.len() / d * 2);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(ROW_BLOCK * d)
        .zip(x.par_chunks(ROW_BLOCK * d))
        .zip(dy.par_chunks(ROW_BLOCK * d))
        .zip(stats.par_chunks(ROW_BLOCK * 2))
        .map(|(((dx, x), dy), stats)| {
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
            let (mut xhat, mut g) = (vec![0.0f32; d], vec![0.0f32; d]);
            let mut scratch = (&mut dgamma[..], &mut dbeta[..], &mut xhat[..], &mut g[..]);
            widest!(layer_norm_grad_rows(gamma, x, stats, dy, dx, &mut scratch));
            (dgamma, dbeta)
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
    for (pg, pb) in &partials {
        for i in 0..d {
            dgamma[i] += pg[i];
            dbeta[i] += pb[i];
        }
    }
    (dgamma, dbeta)
}

/// The backward pass over a block of rows, summing dγ and dβ into `scratch.0` and `.1` (`.2`
/// and `.3` hold a row's x̂ and dy·γ).
#[inline(always)]
fn layer_norm_grad_rows(
    gamma: &[f32],
    x: &[f32],
    stats: &[f32],
    dy: &[f32],
    dx: &mut [MaybeUninit<f32>],
    scratch: &mut (&mut [f32], &mut [f32], &mut [f32], &mut [f32]),
) {
    let d = gamma.len();
    let (dgamma, dbeta, xhat, g) = scratch;
    for (((dx, x), dy), s) in dx
        .chunks_exact_mut(d)
        .zip(x.chunks_exact(d))
        .zip(dy.chunks_exact(d))
        .zip(stats.chunks_exact(2))
    {
        let (mean, rstd) = (s[0], s[1]);
        for ((((xh, g), (dg, db)), &x), (&dy, &gamma)) in xhat
            .iter_mut()
            .zip(g.iter_mut())
            .zip(dgamma.iter_mut().zip(dbeta.iter_mut()))
            .zip(x)
            .zip(dy.iter().zip(gamma))
        {
            *xh = (x - mean) * rstd;
            *g = dy * gamma;
            *dg += dy * *xh;
            *db += dy;
        }
        let mean_g = sum8(g, |g| g) / d as f32;
        let mean_gx = sum8_pairs(g, xhat, |g, x| g * x) / d as f32;
        for ((dx, &g), &xh) in dx.iter_mut().zip(g.iter()).zip(xhat.iter()) {
            dx.write(rstd * (g - mean_g - xh * mean_gx));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GELU

/// `a · b + c` rounded once: one instruction in the vector loops ([`widest!`] enables FMA),
/// correctly rounded in software elsewhere, the same bits either way.
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// `c[0] + c[1]·r + … + c[6]·r⁶` by Estrin's scheme in fused multiply-adds: neighbouring terms
/// paired (`c[2i] + c[2i+1]·r`), the pairs paired in r², those in r⁴. The chain of dependent
/// operations is then three long where Horner's rule's is six, so that a vector loop over it
/// waits less on the latency of one long chain.
#[inline(always)]
fn estrin(r: f32, c: [f32; 7]) -> f32 {
    let pair = |i: usize| fma(c[i + 1], r, c[i]);
    let r2 = r * r;
    fma(fma(c[6], r2, pair(4)), r2 * r2, fma(pair(2), r2, pair(0)))
}

/// e^x for x in f32, by 2^n · p(r) with |r| ≤ ln2/2 and a degree-6 polynomial (relative error
/// below 2e-7); branch-free, so that loops over it vectorise. Arguments below −87 give ~1e-38.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let shifted = fma(x, LOG2E, ROUND);
    let n = shifted - ROUND;
    let r = fma(-n, LN2_LO, fma(-n, LN2_HI, x));
    let p = estrin(r, [1.0, 1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0]);
    // 2^n from the integer in the rounded sum's low mantissa bits (integer ops only: a float to
    // integer cast would saturate lane by lane).
    let two_n = f32::from_bits(shifted.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
    p * two_n
}

/// Φ(x), the standard normal distribution function, and e^(−x²/2), which its density needs too.
///
/// Φ(x) = 1 − ½·erfc(x/√2) for x ≥ 0 and ½·erfc(|x|/√2) below (no cancellation in the lower
/// tail), with erfc(u) ≈ t·(a₁ + a₂t + a₃t² + a₄t³ + a₅t⁴)·e^(−u²), t = 1 / (1 + p·u): Abramowitz
/// and Stegun, Handbook of Mathematical Functions, formula 7.1.26 (|error| ≤ 1.5e-7 on erf; the
/// coefficients as published, halved here for ½·erfc). Φ is then within about 1e-7 of its value
/// everywhere, a relative error that grows in the lower tail (5e-5 at x = −3, 5e-4 at −4, where
/// x·Φ(x) is −0.004 and −0.0001).
#[allow(clippy::excessive_precision)]
#[inline(always)]
fn normal_cdf_and_gaussian(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const HALF_A: [f32; 5] = [
        0.5 * 0.254_829_592,
        0.5 * -0.284_496_736,
        0.5 * 1.421_413_741,
        0.5 * -1.453_152_027,
        0.5 * 1.061_405_429,
    ];
    let t = 1.0 / fma(P, x.abs() * std::f32::consts::FRAC_1_SQRT_2, 1.0);
    let poly = fma(
        fma(fma(fma(HALF_A[4], t, HALF_A[3]), t, HALF_A[2]), t, HALF_A[1]),
        t,
        HALF_A[0],
    );
    let gaussian = exp(-0.5 * x * x);
    let half = t * poly * gaussian;
    (if x >= 0.0 { 1.0 - half } else { half }, gaussian)
}

#[inline(always)]
fn normal_cdf(x: f32) -> f32 {
    normal_cdf_and_gaussian(x).0
}

#[inline(always)]
fn gelu_forward_block(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    for (y, &x) in y.iter_mut().zip(x) {
        y.write(x * normal_cdf(x));
    }
}

#[inline(always)]
fn gelu_backward_block(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
        let (cdf, gaussian) = normal_cdf_and_gaussian(x);
        dx.write(dy * fma(x * INV_SQRT_2PI, gaussian, cdf));
    }
}

/// `y = x · Φ(x)`, the exact GELU (torch's default, burn's `gelu`).
pub fn gelu_forward(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), y.len());
    y.par_chunks_mut(ELEMENT_BLOCK)
        .zip(x.par_chunks(ELEMENT_BLOCK))
        .for_each(|(y, x)| widest!(gelu_forward_block(x, y)));
}

/// `y = y · Φ(y)` in place on this thread, the same bits as [`gelu_forward`] (the tasks of a
/// matrix product apply it to their own blocks).
pub(crate) fn gelu_in_place(y: &mut [f32]) {
    widest!(gelu_in_place_block(y))
}

#[inline(always)]
fn gelu_in_place_block(y: &mut [f32]) {
    for y in y {
        *y *= normal_cdf(*y);
    }
}

/// `dx = dy · (Φ(x) + x · φ(x))`.
pub fn gelu_backward(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]) {
    assert!(x.len() == dy.len() && x.len() == dx.len());
    dx.par_chunks_mut(ELEMENT_BLOCK)
        .zip(x.par_chunks(ELEMENT_BLOCK).zip(dy.par_chunks(ELEMENT_BLOCK)))
        .for_each(|(dx, (x, dy))| widest!(gelu_backward_block(x, dy, dx)));
}

// ---------------------------------------------------------------------------------------------
// Self-attention

/// The queries, keys and values are one `[batch, tokens, 3 · heads · head_dim]` tensor, as one
/// linear layer gives them: a token's query, key and value side by side, head `h` in columns
/// `h·head_dim ..` of each. The output is `[batch, tokens, heads · head_dim]`. The softmax
/// statistics that the backward pass needs are `[batch, heads, tokens, 2]`: each row's largest
/// score and its normaliser's inverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attention {
    pub batch: usize,
    pub tokens: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Attention {
    pub fn dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Elements of the output.
    pub fn len(&self) -> usize {
        self.batch * self.tokens * self.dim()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements of the queries, keys and values.
    pub fn qkv_len(&self) -> usize {
        3 * self.len()
    }

    /// Elements of the softmax statistics.
    pub fn stats_len(&self) -> usize {
        self.batch * self.heads * self.tokens * 2
    }

    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// Query rows per block of the attention: a block's scores (`rows × tokens`, 400 KB at 224²'s 784
/// tokens) stay in L2 while its softmax and its products read them.
const QUERY_BLOCK: usize = 128;
/// Lanes of the maxima and sums along a row of scores (the softmax's largest score and
/// normaliser, the gradient's Σ dP ⊙ P): one AVX-512 vector, independent chains otherwise, and a
/// ViT-T's 16 tokens at 32² with no remainder.
const LANES: usize = 16;

/// `out = softmax(q·kᵀ / sqrt(head_dim)) · v` per image and head, a block of query rows at a time
/// (no `tokens × tokens` matrix is held whole). With `stats`, each row's softmax statistics go
/// there for the backward pass, which recomputes the weights from them. `out` need not be
/// initialised.
pub fn attention_forward(a: &Attention, qkv: &[f32], stats: Option<&mut [f32]>, out: &mut [MaybeUninit<f32>]) {
    forward_in_blocks(a, QUERY_BLOCK, qkv, stats, out);
}

/// [`attention_forward`] by blocks of `block` query rows.
fn forward_in_blocks(
    a: &Attention,
    block: usize,
    qkv: &[f32],
    stats: Option<&mut [f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    assert!(qkv.len() == a.qkv_len() && out.len() == a.len());
    assert!(stats.as_ref().is_none_or(|s| s.len() == a.stats_len()));
    if a.is_empty() {
        return;
    }
    let (t, dh, d) = (a.tokens, a.head_dim, a.dim());
    let (scale, block) = (a.scale(), block.min(t));
    // Row stride of the queries, keys and values.
    let rs = 3 * d;
    // Image b: each head's blocks of rows through the buffer p, the statistics to `stats` if kept.
    let image =
        |(p, kt): &mut (Vec<f32>, Vec<f32>), b: usize, out: &mut [MaybeUninit<f32>], mut stats: Option<&mut [f32]>| {
            let out = zeroed(out);
            let qkv = &qkv[b * t * rs..(b + 1) * t * rs];
            for h in 0..a.heads {
                let col = h * dh;
                let (q, v) = (&qkv[col..], &qkv[2 * d + col..]);
                transpose_head(&qkv[d + col..], (t, dh, rs), kt);
                for i0 in (0..t).step_by(block) {
                    let rows = block.min(t - i0);
                    let p = &mut p[..rows * t];
                    // Scores q_h · k_hᵀ.
                    strided((rows, t, dh), p, (t, 1), false, &q[i0 * rs..], (rs, 1), kt, (t, 1));
                    let st = (h * t + i0) * 2;
                    softmax_rows(p, t, scale, stats.as_deref_mut().map(|s| &mut s[st..st + rows * 2]));
                    strided(
                        (rows, dh, t),
                        &mut out[i0 * d + col..],
                        (d, 1),
                        false,
                        p,
                        (t, 1),
                        v,
                        (rs, 1),
                    );
                }
            }
        };
    let buffer = || (vec![0.0f32; block * t], vec![0.0f32; dh * t]);
    let images = out.par_chunks_mut(t * d).enumerate();
    match stats {
        Some(stats) => images
            .zip(stats.par_chunks_mut(a.heads * t * 2))
            .for_each_init(buffer, |p, ((b, out), stats)| image(p, b, out, Some(stats))),
        None => images.for_each_init(buffer, |p, (b, out)| image(p, b, out, None)),
    }
}

/// `x` zeroed, as `f32`s: one task's part of an output, zeroed while it is in cache so that the
/// products, which take initialised values, can write it.
fn zeroed(x: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    x.fill(MaybeUninit::new(0.0));
    // SAFETY: every element was just written, and MaybeUninit<f32> has f32's layout.
    unsafe { &mut *(x as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Head columns `0..dh` of the `t` rows of `x` (row stride `stride`) transposed into `xt` (`dh ×
/// t`, row-major), so that the products whose right operand is a head's transpose read it in place
/// instead of packing it for every block of query rows.
fn transpose_head(x: &[f32], (t, dh, stride): (usize, usize, usize), xt: &mut [f32]) {
    const B: usize = 8;
    let xt = &mut xt[..dh * t];
    // Whole blocks of 8 rows × 8 columns in fixed-size copies (vector loads and shuffles), the
    // rest one value at a time.
    let (whole_t, whole_dh) = (t / B * B, dh / B * B);
    for j0 in (0..whole_t).step_by(B) {
        for c0 in (0..whole_dh).step_by(B) {
            let block: [[f32; B]; B] =
                std::array::from_fn(|r| x[(j0 + r) * stride + c0..][..B].try_into().expect("8 values"));
            for c in 0..B {
                let row: &mut [f32; B] = (&mut xt[(c0 + c) * t + j0..][..B]).try_into().expect("8 values");
                *row = std::array::from_fn(|r| block[r][c]);
            }
        }
    }
    for j in 0..t {
        let from = if j < whole_t { whole_dh } else { 0 };
        for c in from..dh {
            xt[c * t + j] = x[j * stride + c];
        }
    }
}

/// Each row of `t` scores in `p` ← softmax(row · scale), vectorised; each row's largest score and
/// the inverse of its normaliser go to `stats` (two a row) if given, and [`softmax_again`] gives
/// the same bits from them.
fn softmax_rows(p: &mut [f32], t: usize, scale: f32, stats: Option<&mut [f32]>) {
    widest!(softmax_rows_lanes(p, t, scale, stats))
}

/// `a` or `b`, whichever is larger: one instruction (`f32::max` adds NaN checks; a NaN score makes
/// a NaN row either way).
#[inline(always)]
fn larger(a: f32, b: f32) -> f32 {
    if b > a { b } else { a }
}

#[inline(always)]
fn softmax_rows_lanes(p: &mut [f32], t: usize, scale: f32, mut stats: Option<&mut [f32]>) {
    for (i, row) in p.chunks_exact_mut(t).enumerate() {
        let mut top = [f32::NEG_INFINITY; LANES];
        let (whole, tail) = row.as_chunks::<LANES>();
        for chunk in whole {
            for (m, &s) in top.iter_mut().zip(chunk) {
                *m = larger(*m, s);
            }
        }
        for (m, &s) in top.iter_mut().zip(tail) {
            *m = larger(*m, s);
        }
        let max = tree(top, larger);
        // The exponentials and their sum in one pass.
        let mut sum = [0.0f32; LANES];
        let (whole, tail) = row.as_chunks_mut::<LANES>();
        for chunk in whole {
            for (s, sum) in chunk.iter_mut().zip(&mut sum) {
                *s = exp((*s - max) * scale);
                *sum += *s;
            }
        }
        for (s, sum) in tail.iter_mut().zip(&mut sum) {
            *s = exp((*s - max) * scale);
            *sum += *s;
        }
        let inv = 1.0 / tree(sum, |a, b| a + b);
        for s in row.iter_mut() {
            *s *= inv;
        }
        if let Some(stats) = stats.as_deref_mut() {
            stats[2 * i..2 * i + 2].copy_from_slice(&[max, inv]);
        }
    }
}

/// [`softmax_rows`]' output again, from the same scores and its statistics.
fn softmax_again(p: &mut [f32], t: usize, scale: f32, stats: &[f32]) {
    widest!(softmax_again_lanes(p, t, scale, stats))
}

#[inline(always)]
fn softmax_again_lanes(p: &mut [f32], t: usize, scale: f32, stats: &[f32]) {
    for (row, s) in p.chunks_exact_mut(t).zip(stats.chunks_exact(2)) {
        let (max, inv) = (s[0], s[1]);
        for s in row.iter_mut() {
            *s = exp((*s - max) * scale) * inv;
        }
    }
}

/// `ds ← p ⊙ (ds − Σ ds ⊙ p) · scale` row by row (rows of `t`): the scores' gradient from the
/// weights' gradient `ds` and the weights `p`.
fn softmax_backward(ds: &mut [f32], p: &[f32], t: usize, scale: f32) {
    widest!(softmax_backward_lanes(ds, p, t, scale))
}

#[inline(always)]
fn softmax_backward_lanes(ds: &mut [f32], p: &[f32], t: usize, scale: f32) {
    for (ds, p) in ds.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
        let dot = sum_lanes::<LANES>(ds, p, |ds, p| ds * p);
        for (ds, &p) in ds.iter_mut().zip(p) {
            *ds = p * (*ds - dot) * scale;
        }
    }
}

/// The gradient of [`attention_forward`] with respect to `qkv`, in the same layout, from the
/// output's gradient `dout` and the forward's softmax `stats`: per image, head and block of query
/// rows, the weights P recomputed, dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)) /
/// sqrt(head_dim), dQ = dS·K, dK += dSᵀ·Q. The sums over query rows continue from block to block
/// as one chain, so the blocks change no bit. `dqkv` need not be initialised.
pub fn attention_backward(a: &Attention, qkv: &[f32], stats: &[f32], dout: &[f32], dqkv: &mut [MaybeUninit<f32>]) {
    backward_in_blocks(a, QUERY_BLOCK, qkv, stats, dout, dqkv);
}

/// [`attention_backward`] by blocks of `block` query rows.
fn backward_in_blocks(
    a: &Attention,
    block: usize,
    qkv: &[f32],
    stats: &[f32],
    dout: &[f32],
    dqkv: &mut [MaybeUninit<f32>],
) {
    assert!(qkv.len() == a.qkv_len() && dqkv.len() == a.qkv_len() && dout.len() == a.len());
    assert_eq!(stats.len(), a.stats_len());
    if a.is_empty() {
        return;
    }
    let (t, dh, d) = (a.tokens, a.head_dim, a.dim());
    let (scale, block) = (a.scale(), block.min(t));
    // Row stride of the queries, keys and values and of their gradients.
    let rs = 3 * d;
    dqkv.par_chunks_mut(t * rs)
        .zip(stats.par_chunks(a.heads * t * 2))
        .enumerate()
        .for_each_init(
            || [block * t, block * t, dh * t, dh * t].map(|n| vec![0.0f32; n]),
            |[p, ds, kt, vt], (b, (dqkv, stats))| {
                let dqkv = zeroed(dqkv);
                let qkv = &qkv[b * t * rs..(b + 1) * t * rs];
                let dout = &dout[b * t * d..(b + 1) * t * d];
                for h in 0..a.heads {
                    let (q, k, v) = (h * dh, d + h * dh, 2 * d + h * dh);
                    transpose_head(&qkv[k..], (t, dh, rs), kt);
                    transpose_head(&qkv[v..], (t, dh, rs), vt);
                    for i0 in (0..t).step_by(block) {
                        let rows = block.min(t - i0);
                        let (p, ds) = (&mut p[..rows * t], &mut ds[..rows * t]);
                        let (first, at, out_at) = (i0 == 0, i0 * rs, i0 * d + h * dh);
                        // The block's weights, as the forward pass computed them.
                        strided((rows, t, dh), p, (t, 1), false, &qkv[at + q..], (rs, 1), kt, (t, 1));
                        let st = (h * t + i0) * 2;
                        softmax_again(p, t, scale, &stats[st..st + rows * 2]);
                        // dV += Pᵀ · dO (P's transpose through strides).
                        strided(
                            (t, dh, rows),
                            &mut dqkv[v..],
                            (rs, 1),
                            !first,
                            p,
                            (1, t),
                            &dout[out_at..],
                            (d, 1),
                        );
                        // dP = dO · Vᵀ, then dS in place.
                        strided((rows, t, dh), ds, (t, 1), false, &dout[out_at..], (d, 1), vt, (t, 1));
                        softmax_backward(ds, p, t, scale);
                        // dQ = dS · K; dK += dSᵀ · Q.
                        strided(
                            (rows, dh, t),
                            &mut dqkv[at + q..],
                            (rs, 1),
                            false,
                            ds,
                            (t, 1),
                            &qkv[k..],
                            (rs, 1),
                        );
                        strided(
                            (t, dh, rows),
                            &mut dqkv[k..],
                            (rs, 1),
                            !first,
                            ds,
                            (1, t),
                            &qkv[at + q..],
                            (rs, 1),
                        );
                    }
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::uninit;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::testing::values(n, seed, (-2.0, 2.0))
    }

    fn close(got: &[f32], want: &[f64], tol: f64, what: &str) {
        let scale = want.iter().fold(1e-3f64, |m, w| m.max(w.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(((*g as f64) - w).abs() <= tol * scale, "{what}[{i}]: {g} against {w}");
        }
    }

    #[test]
    fn exp_and_normal_cdf_are_accurate() {
        for i in -8000..8000 {
            let x = i as f32 / 100.0;
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            assert!((got - want).abs() <= 5e-7 * want, "exp({x}): {got} against {want}");
        }
        // Φ(x) = ½·erfc(−x/√2) in f64 by Python 3.11's `math.erfc` (the C library's): within
        // 1.5e-7 (formula 7.1.26's bound, halved, and the rounding of f32), which fails
        // with any coefficient off in its fifth digit.
        for (x, want) in [
            (-6.0f32, 9.865876450377012e-10f64),
            (-4.0, 3.1671241833119965e-05),
            (-3.0, 0.0013498980316300957),
            (-2.0, 0.02275013194817922),
            (-1.0, 0.15865525393145707),
            (-0.5, 0.3085375387259869),
            (-0.0625, 0.4750823309707528),
            (0.0, 0.5),
            (0.0625, 0.5249176690292472),
            (0.3, 0.6179114221889526),
            (1.0, 0.8413447460685429),
            (2.0, 0.9772498680518208),
            (3.5, 0.9997673709209645),
            (6.0, 0.9999999990134123),
        ] {
            let got = normal_cdf(x) as f64;
            assert!((got - want).abs() <= 1.5e-7, "Φ({x}): {got} against {want}");
        }
    }

    #[test]
    fn gelu_gradient_is_the_derivative() {
        let x = values(1000, 3);
        let dy = values(1000, 4);
        let mut dx = vec![0.0; 1000];
        gelu_backward(&x, &dy, uninit(&mut dx));
        let gelu = |x: f64| {
            let mut y = [0.0f32];
            gelu_forward(&[x as f32], uninit(&mut y));
            y[0] as f64
        };
        for i in 0..1000 {
            let h = 1e-2;
            let x = x[i] as f64;
            let numeric = (gelu(x + h) - gelu(x - h)) / (2.0 * h) * dy[i] as f64;
            assert!(
                (dx[i] as f64 - numeric).abs() < 2e-3,
                "at {x}: {} against {numeric}",
                dx[i]
            );
        }
    }

    /// The vectorised GELU gives the bits of the plain (SSE2) loop.
    #[test]
    fn gelu_bits_do_not_depend_on_the_vector_width() {
        let x: Vec<f32> = (0..20_000)
            .map(|i| (i as f32 - 10_000.0) / 997.0)
            .chain(values(5000, 11))
            .collect();
        let dy = values(x.len(), 12);
        let (mut plain, mut wide) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        gelu_forward_block(&x, uninit(&mut plain));
        gelu_forward(&x, uninit(&mut wide));
        assert!(plain.iter().zip(&wide).all(|(a, b)| a.to_bits() == b.to_bits()));
        gelu_backward_block(&x, &dy, uninit(&mut plain));
        gelu_backward(&x, &dy, uninit(&mut wide));
        assert!(plain.iter().zip(&wide).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    /// The eight-lane sums keep their order: lane l adds the elements i ≡ l mod 8 in index order,
    /// then the lanes are added pairwise; the vectorised layer norm gives the plain loop's bits.
    #[test]
    fn sums_and_layer_norm_bits_do_not_depend_on_the_vector_width() {
        for n in [1, 7, 8, 19, 192, 773] {
            let x = values(n, 13);
            let mut lanes = [0.0f32; 8];
            for (i, v) in x.iter().enumerate() {
                lanes[i % 8] += v * v;
            }
            let want =
                ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
            assert_eq!(sum8(&x, |v| v * v).to_bits(), want.to_bits(), "{n} values");
        }
        for d in [19, 192] {
            let rows = 3 * ROW_BLOCK + 5;
            let (x, dy, gamma, beta) = (values(rows * d, 14), values(rows * d, 15), values(d, 16), values(d, 17));
            let p = LayerNormParams {
                gamma: &gamma,
                beta: Some(&beta),
                epsilon: 1e-6,
            };
            let (mut plain, mut wide) = (vec![0.0; rows * d], vec![0.0; rows * d]);
            let (mut plain_stats, mut wide_stats) = (vec![0.0; rows * 2], vec![0.0; rows * 2]);
            layer_norm_rows(p, &x, uninit(&mut plain), &mut plain_stats);
            layer_norm_forward(p, &x, uninit(&mut wide), &mut wide_stats);
            let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same(&plain, &wide) && same(&plain_stats, &wide_stats),
                "forward, d = {d}"
            );
            let mut scratch = vec![vec![0.0; d]; 4];
            let [dg, db, xhat, g] = &mut scratch[..] else {
                unreachable!()
            };
            layer_norm_grad_rows(
                &gamma,
                &x,
                &plain_stats,
                &dy,
                uninit(&mut plain),
                &mut (dg, db, xhat, g),
            );
            layer_norm_backward(&gamma, &x, &wide_stats, &dy, uninit(&mut wide));
            assert!(same(&plain, &wide), "backward, d = {d}");
        }
    }

    #[test]
    fn layer_norm_matches_the_definition_and_its_gradient() {
        let (rows, d) = (37, 19);
        let x = values(rows * d, 1);
        let gamma = values(d, 2);
        let beta = values(d, 5);
        let dy = values(rows * d, 6);
        let mut y = vec![0.0; rows * d];
        let mut stats = vec![0.0; rows * 2];
        let p = LayerNormParams {
            gamma: &gamma,
            beta: Some(&beta),
            epsilon: 1e-6,
        };
        layer_norm_forward(p, &x, uninit(&mut y), &mut stats);
        let mut want = vec![0.0f64; rows * d];
        let (mut want_dx, mut want_dg, mut want_db) = (vec![0.0f64; rows * d], vec![0.0f64; d], vec![0.0f64; d]);
        for r in 0..rows {
            let row: Vec<f64> = x[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect();
            let mean = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
            let rstd = 1.0 / (var + 1e-6).sqrt();
            let xhat: Vec<f64> = row.iter().map(|v| (v - mean) * rstd).collect();
            let g: Vec<f64> = (0..d).map(|i| dy[r * d + i] as f64 * gamma[i] as f64).collect();
            let mg = g.iter().sum::<f64>() / d as f64;
            let mgx = (0..d).map(|i| g[i] * xhat[i]).sum::<f64>() / d as f64;
            for i in 0..d {
                want[r * d + i] = xhat[i] * gamma[i] as f64 + beta[i] as f64;
                want_dx[r * d + i] = rstd * (g[i] - mg - xhat[i] * mgx);
                want_dg[i] += dy[r * d + i] as f64 * xhat[i];
                want_db[i] += dy[r * d + i] as f64;
            }
        }
        close(&y, &want, 1e-5, "y");
        let mut dx = vec![0.0; rows * d];
        let (dg, db) = layer_norm_backward(&gamma, &x, &stats, &dy, uninit(&mut dx));
        close(&dx, &want_dx, 1e-5, "dx");
        close(&dg, &want_dg, 1e-5, "dgamma");
        close(&db, &want_db, 1e-5, "dbeta");
    }

    /// Attention in f64 by its definition, and its gradients by central differences of
    /// Σ out ⊙ dout: rows shorter than the softmax's lanes, and rows of whole lanes and a rest.
    #[test]
    fn attention_matches_the_definition_and_its_gradients() {
        let shapes = [(2, 7, 3, 5), (1, 2 * LANES + 5, 2, 8)];
        for (batch, tokens, heads, head_dim) in shapes {
            check_attention(Attention {
                batch,
                tokens,
                heads,
                head_dim,
            });
        }
    }

    fn check_attention(a: Attention) {
        let (q, k, v, dout) = (
            values(a.len(), 7),
            values(a.len(), 8),
            values(a.len(), 9),
            values(a.len(), 10),
        );
        let reference = |q: &[f64], k: &[f64], v: &[f64]| {
            let (t, dh, d) = (a.tokens, a.head_dim, a.dim());
            let mut out = vec![0.0f64; a.len()];
            for b in 0..a.batch {
                for h in 0..a.heads {
                    let at = |m: &[f64], i: usize, c: usize| m[b * t * d + i * d + h * dh + c];
                    for i in 0..t {
                        let s: Vec<f64> = (0..t)
                            .map(|j| (0..dh).map(|c| at(q, i, c) * at(k, j, c)).sum::<f64>() / (dh as f64).sqrt())
                            .collect();
                        let m = s.iter().cloned().fold(f64::MIN, f64::max);
                        let e: Vec<f64> = s.iter().map(|s| (s - m).exp()).collect();
                        let z: f64 = e.iter().sum();
                        for c in 0..dh {
                            out[b * t * d + i * d + h * dh + c] = (0..t).map(|j| e[j] / z * at(v, j, c)).sum();
                        }
                    }
                }
            }
            out
        };
        let f64s = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<_>>();
        let (q64, k64, v64) = (f64s(&q), f64s(&k), f64s(&v));
        // One token's query, key and value side by side, and back.
        let d = a.dim();
        let qkv: Vec<f32> = (0..a.batch * a.tokens)
            .flat_map(|r| [&q, &k, &v].map(|x| &x[r * d..(r + 1) * d]).concat())
            .collect();
        let split = |x: &[f32]| -> [Vec<f32>; 3] {
            std::array::from_fn(|i| {
                x.chunks(3 * d)
                    .flat_map(|row| &row[i * d..(i + 1) * d])
                    .copied()
                    .collect()
            })
        };
        let mut out = vec![0.0; a.len()];
        let mut stats = vec![0.0; a.stats_len()];
        attention_forward(&a, &qkv, Some(&mut stats), uninit(&mut out));
        close(&out, &reference(&q64, &k64, &v64), 1e-5, "out");
        // Without the statistics kept: the same bits.
        let mut unkept = vec![f32::NAN; a.len()];
        attention_forward(&a, &qkv, None, uninit(&mut unkept));
        assert!(out.iter().zip(&unkept).all(|(x, y)| x.to_bits() == y.to_bits()));
        let mut dqkv = vec![f32::NAN; a.qkv_len()];
        attention_backward(&a, &qkv, &stats, &dout, uninit(&mut dqkv));
        // Blocks of 3 query rows (3 + 3 + 1): the same bits as the whole 7 in one.
        let (mut out3, mut stats3) = (vec![0.0; a.len()], vec![0.0; a.stats_len()]);
        forward_in_blocks(&a, 3, &qkv, Some(&mut stats3), uninit(&mut out3));
        let mut dqkv3 = vec![f32::NAN; a.qkv_len()];
        backward_in_blocks(&a, 3, &qkv, &stats3, &dout, uninit(&mut dqkv3));
        for (what, x, y) in [
            ("out", &out, &out3),
            ("stats", &stats, &stats3),
            ("dqkv", &dqkv, &dqkv3),
        ] {
            assert!(
                x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{what}: blocks change bits"
            );
        }
        let [dq, dk, dv] = split(&dqkv);
        let loss = |q: &[f64], k: &[f64], v: &[f64]| {
            reference(q, k, v)
                .iter()
                .zip(&dout)
                .map(|(o, g)| o * *g as f64)
                .sum::<f64>()
        };
        for (which, got) in [(0, &dq), (1, &dk), (2, &dv)] {
            let mut want = vec![0.0f64; a.len()];
            for (i, w) in want.iter_mut().enumerate() {
                let h = 1e-5;
                let mut inputs = [q64.clone(), k64.clone(), v64.clone()];
                inputs[which][i] += h;
                let up = loss(&inputs[0], &inputs[1], &inputs[2]);
                inputs[which][i] -= 2.0 * h;
                let down = loss(&inputs[0], &inputs[1], &inputs[2]);
                *w = (up - down) / (2.0 * h);
            }
            close(got, &want, 1e-4, ["dq", "dk", "dv"][which]);
        }
    }
}
