//! Winograd F(2×2, 3×3) for the 3x3 stride-1 "same" convolutions (padding 1) of many channels on
//! even planes: each 2x2 block of output pixels comes from the 4x4 block of input pixels around it
//! through 16 products per (output, input) channel pair instead of 36. The products of all blocks
//! are 16 matrix products, one per position ξ of the transformed 4x4 block, summed by the direct
//! kernels' register tiles with the blocks in place of pixels. The input gradient is the same with
//! the weights transposed and flipped. The weight gradient follows the chain rule back through the
//! same transforms: `Gᵀ [Σ_blocks (A dY Aᵀ) ⊙ (Bᵀ d B)] G`, its sums over blocks dot products.
//!
//! Transforms (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016):
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` with
//! `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`,
//! `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`, `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`.
//!
//! Blocks go through in bands of whole block rows, a few images' worth, whose transformed inputs
//! and products stay in cache between the three steps: transform the band's input (and output
//! gradient), the 16 products, transform them back. Rounding: each output sums the same terms in
//! another order through transforms whose coefficients are 0, ±½ and ±1; the unit tests hold all
//! three passes to the same 1e-4 of the definition as the direct kernels.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::conv::{ConvGeom, Then};
use super::direct::{self, MR, Plane};

/// Input channels per pass of the register tiles over the products (one tap each; the direct
/// kernels' 16 channels × 9 taps are as many terms).
const KC: usize = 144;
/// Bytes of a band's transformed input and products (16 values per block and channel each).
const BAND_BYTES: usize = 768 << 10;
/// Bytes of one position ξ of a weight-gradient band's transformed input, read once per 4 output
/// channels (8 in 16-lane registers) by the dot products (on Zen 4, 256 KiB ran as fast as the
/// earlier per-thread bands on 2 threads; 512 KiB ran the 512-channel 4x4 layer half as fast).
const WEIGHT_BAND_BYTES: usize = 256 << 10;
/// Blocks per band of the weight gradient, at least: its dot products are summed across vector
/// lanes once per band.
const WEIGHT_BLOCKS: usize = 128;
/// Output channels per parallel part of the weight gradient's dot products.
const WEIGHT_OUTS: usize = 8;
/// Fewer channels than this on either side leave the products too small for their transforms.
const MIN_CHANNELS: usize = 32;
/// Nor does it pay below this many (channels on the narrower side × pixels per plane): on Zen 4
/// with batch 128, 64 channels on 8x8 planes gain ~10%, 32 channels on 8x8 or 128 on 4x4 lose
/// 30-60% against the direct kernels.
const MIN_WORK: usize = 4096;

/// The fewest pixels of a plane that is not a multiple of 8 pixels (the direct kernels' vectors)
/// that Winograd takes, rather than im2col + matrix product: on 2 cores of an AVX-512 Xeon, batch
/// 32, the 14x14 planes of 256 channels took 24.5 ms instead of 30.1, 10x10 of 128 channels 15.2
/// instead of 15.4, but 6x6 of 256 channels 29.5 instead of 21.3.
const MIN_ODD_PLANE: usize = 100;

/// Whether Winograd can compute this convolution on this CPU: a 3x3 stride-1 "same" convolution
/// on even planes of at least 4x4, on x86-64 with AVX2 and FMA. (Its products run over blocks, so
/// unlike the direct kernels it takes planes of any number of pixels: the 14x14 of a ResNet at
/// 224².)
pub fn fits(g: &ConvGeom) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.stride == [1, 1]
        && g.pad == [1, 1]
        && g.h.is_multiple_of(2)
        && g.w.is_multiple_of(2)
        && g.h >= 4
        && g.w >= 4
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
}

/// Whether Winograd takes this convolution, all three passes: it [`fits`], with [`MIN_CHANNELS`]
/// channels in and out and [`MIN_WORK`], on a plane of a multiple of 8 pixels or of at least
/// [`MIN_ODD_PLANE`]. (The weight gradients of the odd planes went to im2col + matrix product until
/// the AVX2 path measured them: on 2 cores of a Xeon, batch 32, Winograd's took 14–36% less time
/// on 10x10 to 22x22 planes of 64 to 512 channels, 35 against 47 ms on a ResNet's 14x14 of 256;
/// on AVX-512 it was 20% faster to 12% slower, 32–34 against 30–31 ms on that layer, and the whole
/// ResNet-18 step at 224² level.)
pub fn applies(g: &ConvGeom) -> bool {
    let (channels, pixels) = (g.cin.min(g.cout), g.h * g.w);
    fits(g)
        && channels >= MIN_CHANNELS
        && channels * pixels >= MIN_WORK
        && (pixels.is_multiple_of(8) || pixels >= MIN_ODD_PLANE)
}

/// The forward pass, `y` of shape `[batch, cout, h, w]`.
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], then: Then) {
    let u = transform_weights(g.cout, g.cin, |o, i, ky, kx| w[((o * g.cin + i) * 3 + ky) * 3 + kx]);
    convolve(Plane { h: g.h, w: g.w }, g.cin, g.cout, x, &u, bias, y, then);
}

/// The input gradient: the output gradient convolved with the weights with input and output
/// channels swapped and both kernel axes flipped.
pub fn backward_input(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let u = transform_weights(g.cin, g.cout, |i, o, ky, kx| {
        w[((o * g.cin + i) * 3 + 2 - ky) * 3 + 2 - kx]
    });
    convolve(Plane { h: g.h, w: g.w }, g.cout, g.cin, dy, &u, None, dx, None);
}

/// The weight gradient `Σ_b dy[b] ⋆ x[b]` (shape `[cout, cin, 3, 3]`), by the chain rule through
/// the forward's transforms: `Gᵀ [Σ_blocks (A dY Aᵀ) ⊙ (Bᵀ d B)] G` per channel pair, the sums
/// over blocks 16 sets of dot products. The batch goes through in bands of blocks, the same
/// whatever the number of threads; each band's transforms run in parallel over channels and its
/// dot products over parts of the sums, so the sums are one set, added band after band in order
/// (the same bits on any number of threads).
pub fn backward_weight(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let rows = (WEIGHT_BAND_BYTES / (4 * g.cin)).max(WEIGHT_BLOCKS).div_ceil(g.w / 2);
    backward_weight_in_bands(g, rows, direct::wide(g.cin), x, dy, dw);
}

/// [`backward_weight`] in bands of `rows` block rows, the dot products in 16-lane registers where
/// `wide` (see [`dot_pairs`]).
pub(super) fn backward_weight_in_bands(g: &ConvGeom, rows: usize, wide: bool, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (ins, outs) = (g.cin, g.cout);
    let (n, bands) = bands(Plane { h: g.h, w: g.w }, g.batch, rows);
    // [ξ, channel, block], as the forward's; each channel's transforms write only that channel's
    // 16 runs, so channels go in parallel through a shared pointer.
    let (mut v, mut d) = (vec![0.0f32; 16 * ins * n], vec![0.0f32; 16 * outs * n]);
    // [ξ, output channel, input channel]
    let mut sums = vec![0.0f32; 16 * outs * ins];
    for band in bands {
        let (vs, ds) = (Runs(v.as_mut_ptr()), Runs(d.as_mut_ptr()));
        (0..ins).into_par_iter().for_each_init(Vec::new, |t, c| {
            // SAFETY: channel `c`'s 16 runs of `n` values at `(ξ * ins + c) * n` are inside `v`
            // and written by this task only.
            unsafe { band.input_channel(ins, c, x, t, vs.at(c * n), ins * n) }
        });
        (0..outs).into_par_iter().for_each(|o| {
            // SAFETY: as above, in `d`.
            unsafe { band.gradient_channel(outs, o, dy, ds.at(o * n), outs * n) }
        });
        band.weight_products(ins, outs, wide, &v, &d, &mut sums);
    }
    // Gᵀ X G per pair: Gᵀ takes rows 0 + ½ (1 + 2), ½ (1 − 2), ½ (1 + 2) + 3.
    let gt = |x: [f32; 4]| {
        [
            x[0] + 0.5 * (x[1] + x[2]),
            0.5 * (x[1] - x[2]),
            0.5 * (x[1] + x[2]) + x[3],
        ]
    };
    dw.par_chunks_mut(ins * 9).enumerate().for_each(|(o, dw)| {
        for (i, dw) in dw.chunks_exact_mut(9).enumerate() {
            let at = |r: usize, c: usize| sums[((r * 4 + c) * outs + o) * ins + i];
            let cols: [[f32; 3]; 4] = std::array::from_fn(|c| gt(std::array::from_fn(|r| at(r, c))));
            for (ky, row) in dw.chunks_exact_mut(3).enumerate() {
                row.copy_from_slice(&gt(std::array::from_fn(|c| cols[c][ky])));
            }
        }
    });
}

/// `G g Gᵀ` of every (output, input) channel pair of `weight(o, i, ky, kx)`, one position ξ after
/// the other (`outs * ins` values each), each packed for the tiles: per block of [`KC`] input
/// channels, per block of [`MR`] output channels (the last ones shorter), `[input channel, output
/// channel]`; block `(c0, o0)` starts at `c0 * outs + o0 * kc`. Input channel blocks in parallel.
fn transform_weights(outs: usize, ins: usize, weight: impl Fn(usize, usize, usize, usize) -> f32 + Sync) -> Vec<f32> {
    let g4 = |a: f32, b: f32, c: f32| [a, (a + b + c) * 0.5, (a - b + c) * 0.5, c];
    let mut u = vec![0.0f32; 16 * outs * ins];
    let mut per_xi: Vec<&mut [f32]> = u.chunks_mut(outs * ins).collect();
    // Each ξ's part split at the same input channel blocks: `blocks[c0 / KC][ξ]`.
    let mut blocks: Vec<Vec<&mut [f32]>> = Vec::new();
    for c0 in (0..ins).step_by(KC) {
        let take = (ins - c0).min(KC) * outs;
        blocks.push(
            per_xi
                .iter_mut()
                .map(|part| {
                    let (head, tail) = std::mem::take(part).split_at_mut(take);
                    *part = tail;
                    head
                })
                .collect(),
        );
    }
    blocks.into_par_iter().enumerate().for_each(|(k, mut dst)| {
        let (c0, kc) = (k * KC, (ins - k * KC).min(KC));
        let mut at = 0;
        for o0 in (0..outs).step_by(MR) {
            for i in c0..c0 + kc {
                for o in o0..(o0 + MR).min(outs) {
                    // G g: each kernel column to 4 values; then each of the 4 rows by G again.
                    let cols: [[f32; 4]; 3] =
                        std::array::from_fn(|kx| g4(weight(o, i, 0, kx), weight(o, i, 1, kx), weight(o, i, 2, kx)));
                    for r in 0..4 {
                        for (c, value) in g4(cols[0][r], cols[1][r], cols[2][r]).into_iter().enumerate() {
                            dst[r * 4 + c][at] = value;
                        }
                    }
                    at += 1;
                }
            }
        }
    });
    u
}

/// `out[b] = conv(src[b])`, `src` of `ins` and `out` of `outs` planes per image, given the
/// transformed weights `u`: runs of images across the rayon pool (at most four per thread), each
/// in bands of block rows.
#[allow(clippy::too_many_arguments)]
fn convolve(
    p: Plane,
    ins: usize,
    outs: usize,
    src: &[f32],
    u: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    then: Then,
) {
    let len = p.h * p.w;
    let batch = src.len() / (ins * len);
    let (th, tw) = (p.h / 2, p.w / 2);
    // Blocks per band: as many as keep its transformed input and products within BAND_BYTES, and at
    // least ins·outs / (ins + outs) halved (planes of 8x8 and more) or doubled (smaller planes), so
    // that the transformed weights (16 ins·outs values), read once per band, are not much more than
    // the band's own transformed values (16 (ins + outs) per block). Factors measured on Zen 4 with
    // 64 to 512 channels.
    let balance = ins * outs / (ins + outs);
    let blocks = if p.h * p.w >= 64 { balance / 2 } else { balance * 2 };
    let rows = (BAND_BYTES / (16 * (ins + outs) * 4 * tw))
        .max(blocks.div_ceil(tw))
        .max(1);
    // Runs of images: enough for every band, at most four per thread, a multiple of the threads.
    let threads = rayon::current_num_threads().max(1);
    let runs = (batch / rows.div_ceil(th))
        .clamp(1, 4 * threads)
        .next_multiple_of(threads);
    let per_run = batch.div_ceil(runs).max(1);
    out.par_chunks_mut(per_run * outs * len)
        .zip(src.par_chunks(per_run * ins * len))
        .enumerate()
        .for_each(|(run, (out, src))| {
            let (stride, bands) = bands(p, src.len() / (ins * len), rows);
            // This thread's scratch: the band's transformed input (16 `ins` values per block) and
            // its products (16 `outs`).
            direct::with_shifted(16 * (ins + outs) * stride, |scratch| {
                let (v, m) = scratch.split_at_mut(16 * ins * stride);
                for band in bands {
                    band.transform_input(ins, src, v);
                    band.products(ins, outs, v, u, m);
                    band.transform_output(outs, m, bias, out);
                }
            });
            if let Some(then) = then {
                then(run * per_run, out);
            }
        });
}

/// The bands of `rows` block rows (at least one, at most all) of `images` images, with their
/// stride: the blocks of the longest, rounded up to whole vectors.
fn bands(p: Plane, images: usize, rows: usize) -> (usize, impl Iterator<Item = Band>) {
    let total = images * (p.h / 2);
    let rows = rows.min(total).max(1);
    let stride = (rows * (p.w / 2)).next_multiple_of(8);
    let bands = (0..total).step_by(rows).map(move |r0| Band {
        p,
        r0,
        rows: rows.min(total - r0),
        stride,
    });
    (stride, bands)
}

/// Block rows `r0..r0 + rows` of a run of images or of the batch (row `r` is block row `r % (h /
/// 2)` of image `r / (h / 2)`); their blocks, `w / 2` per row, are columns `0..rows * w / 2` of
/// the transformed input `[ξ, channel, stride]`, of the products and of the transformed output
/// gradient.
struct Band {
    p: Plane,
    r0: usize,
    rows: usize,
    stride: usize,
}

impl Band {
    /// Image and block row of each of the band's rows, with the column of its first block.
    fn rows(&self) -> impl Iterator<Item = (usize, usize, usize)> + use<> {
        let (th, tw) = (self.p.h / 2, self.p.w / 2);
        (self.r0..self.r0 + self.rows)
            .enumerate()
            .map(move |(k, r)| (r / th, r % th, k * tw))
    }

    /// `v[ξ, c, block] = (Bᵀ d B)[ξ]` for the 4x4 input `d` around each block of channel `c`.
    fn transform_input(&self, ins: usize, src: &[f32], v: &mut [f32]) {
        let n = self.stride;
        assert!(v.len() >= 16 * ins * n);
        let mut t = vec![0.0f32; 4 * (self.p.w + 2)];
        for c in 0..ins {
            // SAFETY: channel `c`'s 16 runs of `n` values at `(ξ * ins + c) * n` are inside `v`
            // (checked above).
            unsafe { self.input_channel(ins, c, src, &mut t, v[c * n..].as_mut_ptr(), ins * n) };
        }
    }

    /// Channel `c`'s `(Bᵀ d B)[ξ]` of each block of the band at `v + ξ * step + block` (columns past
    /// the band's blocks left as they were); `t` is scratch.
    ///
    /// # Safety
    /// `v` has room for 16 runs of `self.stride` values `step` apart.
    unsafe fn input_channel(&self, ins: usize, c: usize, src: &[f32], t: &mut Vec<f32>, v: *mut f32, step: usize) {
        let (h, w) = (self.p.h, self.p.w);
        let tw = w / 2;
        let used = self.rows * tw;
        assert!(used <= self.stride);
        // The 4 rows of Bᵀ d, each with a zero before and after it.
        t.resize(4 * (w + 2), 0.0);
        for (image, ty, col) in self.rows() {
            let plane = &src[(image * ins + c) * h * w..][..h * w];
            let row = |y: usize| (1..=h).contains(&y).then(|| &plane[(y - 1) * w..y * w]);
            let d: [Option<&[f32]>; 4] = std::array::from_fn(|i| row(2 * ty + i));
            for (i, t) in t.chunks_exact_mut(w + 2).enumerate() {
                // Bᵀ d, row i: d0 − d2, d1 + d2, d2 − d1, d1 − d3 (rows outside the plane zero).
                let (a, b, sign) = match i {
                    0 => (d[0], d[2], -1.0),
                    1 => (d[1], d[2], 1.0),
                    2 => (d[2], d[1], -1.0),
                    _ => (d[1], d[3], -1.0),
                };
                // SAFETY: `fits` checked AVX2.
                unsafe { combine(a, b, sign, &mut t[1..=w]) };
            }
            // SAFETY: `fits` checked AVX2; the 16 runs of `tw` values at `ξ * step + col` are
            // inside the caller's `v` (col + tw <= used <= stride), `t` holds 4 rows of `w + 2`.
            unsafe { columns(t, tw, v.add(col), step) };
        }
    }

    /// `m[ξ, o, block] = Σ_c u[ξ][o, c] · v[ξ, c, block]` through the direct kernels' tiles.
    fn products(&self, ins: usize, outs: usize, v: &[f32], u: &[f32], m: &mut [f32]) {
        let n = self.stride;
        let line = Plane { h: 1, w: n };
        let taps: Vec<usize> = (0..ins).map(|c| c * n).collect();
        let wide = direct::wide(ins);
        for xi in 0..16 {
            let (v, u, m) = (&v[xi * ins * n..], &u[xi * outs * ins..], &mut m[xi * outs * n..]);
            for c0 in (0..ins).step_by(KC) {
                let kc = (ins - c0).min(KC);
                for o0 in (0..outs).step_by(MR) {
                    let mr = (outs - o0).min(MR);
                    let w = u[c0 * outs + o0 * kc..][..kc * mr].as_ptr();
                    let (x, o) = (v[c0 * n..].as_ptr(), m[o0 * n..][..mr * n].as_mut_ptr());
                    // SAFETY: `fits` checked AVX2 and FMA, `wide` AVX-512F; every tap (input
                    // channel c0 + k at `k * n`) has `n` values inside `v`, the block of packed
                    // weights `kc * mr`, the output `mr` rows of `n`.
                    unsafe { direct::row(line, wide, mr, &taps[..kc], x, w, (c0 == 0).then_some([0.0; MR]), o) };
                }
            }
        }
    }

    /// Output channel `o`'s `(A dY Aᵀ)[ξ]` (the gradient of the forward's products) of each block of
    /// the band at `d + ξ * step + block`, for the 2x2 output gradient `dY` of each block; columns
    /// past the band's blocks up to its stride zero.
    ///
    /// # Safety
    /// `d` has room for 16 runs of `self.stride` values `step` apart.
    unsafe fn gradient_channel(&self, outs: usize, o: usize, dy: &[f32], d: *mut f32, step: usize) {
        let (h, w) = (self.p.h, self.p.w);
        let used = self.rows * (w / 2);
        assert!(used <= self.stride);
        for (image, ty, col) in self.rows() {
            let rows = &dy[((image * outs + o) * h + 2 * ty) * w..][..2 * w];
            // SAFETY: `fits` checked AVX2; `rows` holds two rows of `w`, the 16 runs of `w / 2`
            // values at `ξ * step + col` are inside the caller's `d` (col + w / 2 <= used <= stride).
            unsafe { gradient(rows.as_ptr(), w, d.add(col), step) };
        }
        // The dot products run over whole strides: zero tails here leave the input's unread.
        for xi in 0..16 {
            // SAFETY: the caller's run ξ.
            unsafe { std::slice::from_raw_parts_mut(d.add(xi * step + used), self.stride - used).fill(0.0) };
        }
    }

    /// `sums[ξ, o, i] += Σ_block d[ξ, o, block] · v[ξ, i, block]`, dot products of 4 output by 3
    /// input channels at a time, or where `wide` of 8 output channels by 3 pairs of input channels
    /// (the full-width VGGm-11 at 32², batch 128, 2 cores of an AVX-512 Xeon: the backward pass 6%
    /// shorter, training 4.6% faster); the (ξ, group of [`WEIGHT_OUTS`] output channels) parts of
    /// `sums` in parallel.
    fn weight_products(&self, ins: usize, outs: usize, wide: bool, v: &[f32], d: &[f32], sums: &mut [f32]) {
        let n = self.stride;
        assert!(v.len() >= 16 * ins * n && d.len() >= 16 * outs * n && sums.len() == 16 * outs * ins);
        let parts = sums.par_chunks_mut(outs * ins).enumerate();
        parts.for_each(|(xi, part)| {
            let groups = part.par_chunks_mut(WEIGHT_OUTS * ins).enumerate();
            groups.for_each(|(group, sums)| {
                let (v, d) = (&v[xi * ins * n..], &d[(xi * outs + group * WEIGHT_OUTS) * n..]);
                let mine = sums.len() / ins;
                let mut o0 = 0;
                while o0 < mine {
                    let rows = if wide && mine - o0 >= 8 { 8 } else { (mine - o0).min(4) };
                    let mut i0 = 0;
                    while i0 < ins {
                        let (a, b) = (d[o0 * n..].as_ptr(), v[i0 * n..].as_ptr());
                        let out = &mut sums[o0 * ins + i0..];
                        let args = (a, b, (n, n), out, ins);
                        let pairs = if wide { ((ins - i0) / 2).min(3) } else { 0 };
                        // SAFETY: `fits` checked AVX2 and FMA (`wide`: AVX-512F too); the tile's
                        // rows of `d` and `v` (`n` values each, `n` apart) are inside them (checked
                        // above), its sums inside this part of `sums`.
                        unsafe {
                            if pairs > 0 {
                                by_shape!(rows, pairs, dot_pairs, args);
                                i0 += 2 * pairs;
                            } else {
                                let cols = (ins - i0).min(3);
                                by_shape!(rows, cols, dot_tile, args);
                                i0 += cols;
                            }
                        }
                    }
                    o0 += rows;
                }
            });
        });
    }

    /// `out[o, 2ty + a, 2tx + b] = (Aᵀ m A)[a, b] + bias[o]` for every block of the band.
    fn transform_output(&self, outs: usize, m: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
        let (h, w) = (self.p.h, self.p.w);
        let n = self.stride;
        assert!(m.len() >= 16 * outs * n && self.rows * (w / 2) <= n);
        for o in 0..outs {
            let b = bias.map_or(0.0, |b| b[o]);
            for (image, ty, col) in self.rows() {
                let rows = &mut out[((image * outs + o) * h + 2 * ty) * w..][..2 * w];
                // SAFETY: `fits` checked AVX2; the 16 runs of `w / 2` values at `(ξ * outs + o)
                // * n + col` are inside `m` (checked above), `rows` holds two output rows.
                unsafe { untransform(m[o * n + col..].as_ptr(), outs * n, b, w, rows.as_mut_ptr()) };
            }
        }
    }
}

/// A buffer that parallel tasks write disjoint parts of.
#[derive(Clone, Copy)]
struct Runs(*mut f32);

// SAFETY: only handed to tasks that write disjoint parts of the buffer, which outlives them.
unsafe impl Send for Runs {}
unsafe impl Sync for Runs {}

impl Runs {
    /// # Safety
    /// `offset` is inside the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: the caller's offset.
        unsafe { self.0.add(offset) }
    }
}

/// `t = a + sign · b`, a missing row counting as zero.
///
/// # Safety
/// AVX2 is available.
#[target_feature(enable = "avx2")]
unsafe fn combine(a: Option<&[f32]>, b: Option<&[f32]>, sign: f32, t: &mut [f32]) {
    match (a, b) {
        (Some(a), Some(b)) => {
            for ((t, a), b) in t.iter_mut().zip(a).zip(b) {
                *t = a + sign * b;
            }
        }
        (Some(a), None) => t.copy_from_slice(a),
        (None, Some(b)) => {
            for (t, b) in t.iter_mut().zip(b) {
                *t = sign * b;
            }
        }
        (None, None) => t.fill(0.0),
    }
}

/// Defines `$name(at)`, the even and the odd ones of `2 * $lanes` floats at `at`, and `$inter(e,
/// o, at)`, its inverse (storing `2 * $lanes` floats).
macro_rules! even_odd {
    ($name:ident, $inter:ident, $features:literal, $vec:ty, $lanes:literal,
     |$lo:ident, $hi:ident| ($even:expr, $odd:expr), |$e:ident, $o:ident| ($first:expr, $second:expr),
     $load:ident, $store:ident) => {
        #[target_feature(enable = $features)]
        unsafe fn $name(at: *const f32) -> ($vec, $vec) {
            // SAFETY: the caller's `2 * $lanes` values.
            let ($lo, $hi) = unsafe { ($load(at), $load(at.add($lanes))) };
            ($even, $odd)
        }

        #[target_feature(enable = $features)]
        unsafe fn $inter($e: $vec, $o: $vec, at: *mut f32) {
            // SAFETY: the caller's room for `2 * $lanes` values.
            unsafe {
                $store(at, $first);
                $store(at.add($lanes), $second);
            }
        }
    };
}

even_odd!(
    even_odd8,
    interleave8,
    "avx2",
    __m256,
    8,
    |lo, hi| (
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
            _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi)
        ))),
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
            _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi)
        )))
    ),
    |e, o| (
        _mm256_permute2f128_ps::<0x20>(_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o)),
        _mm256_permute2f128_ps::<0x31>(_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o))
    ),
    _mm256_loadu_ps,
    _mm256_storeu_ps
);
even_odd!(
    even_odd4,
    interleave4,
    "avx2",
    __m128,
    4,
    |lo, hi| (
        _mm_shuffle_ps::<0b10_00_10_00>(lo, hi),
        _mm_shuffle_ps::<0b11_01_11_01>(lo, hi)
    ),
    |e, o| (_mm_unpacklo_ps(e, o), _mm_unpackhi_ps(e, o)),
    _mm_loadu_ps,
    _mm_storeu_ps
);

/// Defines the column steps of the three transforms on `$lanes` blocks at a time.
///
/// `$columns(t, from, to, v, step)`: for blocks `tx` in `from..to` and rows `i` of `t` (4 rows of
/// `2 tw + 2`, zero-bordered), `v[(4i + j) * step + tx]` = `(s B)[j]` of `s = t_i[2tx..2tx + 4]`.
///
/// `$untransform(m, step, bias, w, from, to, out)`: for blocks `tx` in `from..to`, the two output
/// rows (`out`, `out + w`) at `2tx, 2tx + 1` from `q[ξ] = m[ξ * step + tx]`.
///
/// `$gradient(y, w, from, to, d, step)`: for blocks `tx` in `from..to`, `d[ξ * step + tx]` from the
/// output gradient at `2tx, 2tx + 1` of the rows `y` and `y + w`.
macro_rules! column_steps {
    ($columns:ident, $untransform:ident, $gradient:ident, $lanes:literal, $vec:ty,
     $load:ident, $add:ident, $sub:ident, $set1:ident, $store:ident, $even_odd:ident, $inter:ident) => {
        #[target_feature(enable = "avx2")]
        unsafe fn $gradient(y: *const f32, w: usize, (from, to): (usize, usize), d: *mut f32, step: usize) {
            // SAFETY (whole body): the caller's reads and writes.
            unsafe {
                let zero = $set1(0.0);
                for tx in (from..to).step_by($lanes) {
                    let (a, b) = $even_odd(y.add(2 * tx));
                    let (c, e) = $even_odd(y.add(w + 2 * tx));
                    // A dY: rows y0, y0 + y1, y0 − y1, −y1; then (p, q) ↦ p, p + q, p − q, −q.
                    let rows = [
                        (a, b),
                        ($add(a, c), $add(b, e)),
                        ($sub(a, c), $sub(b, e)),
                        ($sub(zero, c), $sub(zero, e)),
                    ];
                    for (r, (p, q)) in rows.into_iter().enumerate() {
                        let at = |j: usize| d.add((4 * r + j) * step + tx);
                        $store(at(0), p);
                        $store(at(1), $add(p, q));
                        $store(at(2), $sub(p, q));
                        $store(at(3), $sub(zero, q));
                    }
                }
            }
        }

        #[target_feature(enable = "avx2")]
        unsafe fn $columns(t: &[f32], (from, to): (usize, usize), v: *mut f32, step: usize) {
            let w2 = t.len() / 4;
            // SAFETY (whole body): reads inside `t` (`2 * to + 2 <= w2`), the caller's writes.
            unsafe {
                for i in 0..4 {
                    let s = t[i * w2..].as_ptr();
                    for tx in (from..to).step_by($lanes) {
                        let (e0, o0) = $even_odd(s.add(2 * tx));
                        let (e1, o1) = $even_odd(s.add(2 * tx + 2));
                        let at = |j: usize| v.add((4 * i + j) * step + tx);
                        $store(at(0), $sub(e0, e1));
                        $store(at(1), $add(o0, e1));
                        $store(at(2), $sub(e1, o0));
                        $store(at(3), $sub(o0, o1));
                    }
                }
            }
        }

        #[target_feature(enable = "avx2")]
        unsafe fn $untransform(
            m: *const f32,
            step: usize,
            bias: f32,
            w: usize,
            (from, to): (usize, usize),
            out: *mut f32,
        ) {
            // SAFETY (whole body): the caller's reads and writes.
            unsafe {
                let b = $set1(bias);
                for tx in (from..to).step_by($lanes) {
                    let q: [$vec; 16] = std::array::from_fn(|xi| $load(m.add(xi * step + tx)));
                    // Aᵀ q: rows 0 + 1 + 2 and 1 − 2 − 3 of each column; then the same along rows.
                    let a0: [$vec; 4] = std::array::from_fn(|j| $add($add(q[j], q[4 + j]), q[8 + j]));
                    let a1: [$vec; 4] = std::array::from_fn(|j| $sub($sub(q[4 + j], q[8 + j]), q[12 + j]));
                    for (r, a) in [a0, a1].iter().enumerate() {
                        let even = $add($add($add(a[0], a[1]), a[2]), b);
                        let odd = $add($sub($sub(a[1], a[2]), a[3]), b);
                        $inter(even, odd, out.add(r * w + 2 * tx));
                    }
                }
            }
        }
    };
}

column_steps!(
    columns8,
    untransform8,
    gradient8,
    8,
    __m256,
    _mm256_loadu_ps,
    _mm256_add_ps,
    _mm256_sub_ps,
    _mm256_set1_ps,
    _mm256_storeu_ps,
    even_odd8,
    interleave8
);
column_steps!(
    columns4,
    untransform4,
    gradient4,
    4,
    __m128,
    _mm_loadu_ps,
    _mm_add_ps,
    _mm_sub_ps,
    _mm_set1_ps,
    _mm_storeu_ps,
    even_odd4,
    interleave4
);

/// The column step of the input transform for blocks `0..tw` (see `columns8`), 8 and then 4 blocks
/// at a time, the rest one by one.
///
/// # Safety
/// AVX2 is available; `v` has room for `16` runs of `tw` values `step` apart; `t` holds 4 rows of
/// `2 tw + 2` values.
#[target_feature(enable = "avx2")]
unsafe fn columns(t: &[f32], tw: usize, v: *mut f32, step: usize) {
    let (v8, v4) = (tw / 8 * 8, tw / 4 * 4);
    // SAFETY: the caller's buffers.
    unsafe {
        columns8(t, (0, v8), v, step);
        columns4(t, (v8, v4), v, step);
        for i in 0..4 {
            let s = &t[i * (2 * tw + 2)..];
            for tx in v4..tw {
                let s = &s[2 * tx..2 * tx + 4];
                let at = |j: usize| v.add((4 * i + j) * step + tx);
                *at(0) = s[0] - s[2];
                *at(1) = s[1] + s[2];
                *at(2) = s[2] - s[1];
                *at(3) = s[1] - s[3];
            }
        }
    }
}

/// The output transform of one row of `w / 2` blocks (see `untransform8`), 8 and then 4 blocks at
/// a time, the rest one by one.
///
/// # Safety
/// AVX2 is available; `m` holds 16 runs of `w / 2` values `step` apart; `out` has room for two
/// rows of `w`.
#[target_feature(enable = "avx2")]
unsafe fn untransform(m: *const f32, step: usize, bias: f32, w: usize, out: *mut f32) {
    let tw = w / 2;
    let (v8, v4) = (tw / 8 * 8, tw / 4 * 4);
    // SAFETY: the caller's buffers.
    unsafe {
        untransform8(m, step, bias, w, (0, v8), out);
        untransform4(m, step, bias, w, (v8, v4), out);
        for tx in v4..tw {
            let q: [f32; 16] = std::array::from_fn(|xi| *m.add(xi * step + tx));
            let a0: [f32; 4] = std::array::from_fn(|j| q[j] + q[4 + j] + q[8 + j]);
            let a1: [f32; 4] = std::array::from_fn(|j| q[4 + j] - q[8 + j] - q[12 + j]);
            for (r, a) in [a0, a1].iter().enumerate() {
                *out.add(r * w + 2 * tx) = a[0] + a[1] + a[2] + bias;
                *out.add(r * w + 2 * tx + 1) = a[1] - a[2] - a[3] + bias;
            }
        }
    }
}

/// The gradient transform of one row of `w / 2` blocks (see `gradient8`): `d[ξ * step + tx] = (A dY
/// Aᵀ)[ξ]` for the 2x2 output gradient `dY` of block `tx` in the rows `y` and `y + w`, 8 and then
/// 4 blocks at a time, the rest one by one.
///
/// # Safety
/// AVX2 is available; `y` holds two rows of `w`; `d` has room for 16 runs of `w / 2` values `step`
/// apart.
#[target_feature(enable = "avx2")]
unsafe fn gradient(y: *const f32, w: usize, d: *mut f32, step: usize) {
    let tw = w / 2;
    let (v8, v4) = (tw / 8 * 8, tw / 4 * 4);
    let a = |p: f32, q: f32| [p, p + q, p - q, -q];
    // SAFETY: the caller's buffers.
    unsafe {
        gradient8(y, w, (0, v8), d, step);
        gradient4(y, w, (v8, v4), d, step);
        for tx in v4..tw {
            let cols = [0, 1].map(|b| a(*y.add(2 * tx + b), *y.add(w + 2 * tx + b)));
            for (r, (p, q)) in cols[0].into_iter().zip(cols[1]).enumerate() {
                for (c, value) in a(p, q).into_iter().enumerate() {
                    *d.add((4 * r + c) * step + tx) = value;
                }
            }
        }
    }
}

/// Calls `$tile::<M, N>(args)` for `M` = `$m` in 1..=4 or 8 and `N` = `$n` in 1..=3.
macro_rules! by_shape {
    ($m:expr, $n:expr, $tile:ident, $args:expr) => {{
        let (a, b, at, out, ld) = $args;
        match ($m, $n) {
            (8, 3) => $tile::<8, 3>(a, b, at, out, ld),
            (8, 2) => $tile::<8, 2>(a, b, at, out, ld),
            (8, _) => $tile::<8, 1>(a, b, at, out, ld),
            (4, 3) => $tile::<4, 3>(a, b, at, out, ld),
            (4, 2) => $tile::<4, 2>(a, b, at, out, ld),
            (4, _) => $tile::<4, 1>(a, b, at, out, ld),
            (3, 3) => $tile::<3, 3>(a, b, at, out, ld),
            (3, 2) => $tile::<3, 2>(a, b, at, out, ld),
            (3, _) => $tile::<3, 1>(a, b, at, out, ld),
            (2, 3) => $tile::<2, 3>(a, b, at, out, ld),
            (2, 2) => $tile::<2, 2>(a, b, at, out, ld),
            (2, _) => $tile::<2, 1>(a, b, at, out, ld),
            (_, 3) => $tile::<1, 3>(a, b, at, out, ld),
            (_, 2) => $tile::<1, 2>(a, b, at, out, ld),
            _ => $tile::<1, 1>(a, b, at, out, ld),
        }
    }};
}
use by_shape;

/// `out[m * ld + j] += Σ_k a[m * stride + k] · b[j * stride + k]` for `m < M`, `j < N`, `k < len`
/// (`len` a multiple of 8): dot products of `M` rows of `a` with `N` rows of `b`.
///
/// # Safety
/// AVX2 and FMA are available; `a` and `b` hold `M` and `N` rows of `len` values, `stride` apart.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_tile<const M: usize, const N: usize>(
    a: *const f32,
    b: *const f32,
    (stride, len): (usize, usize),
    out: &mut [f32],
    ld: usize,
) {
    // SAFETY (whole body): loads inside the rows the caller described.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); N]; M];
        for k in (0..len).step_by(8) {
            let bv: [__m256; N] = std::array::from_fn(|j| _mm256_loadu_ps(b.add(j * stride + k)));
            for (m, acc_m) in acc.iter_mut().enumerate() {
                let av = _mm256_loadu_ps(a.add(m * stride + k));
                for (s, bv) in acc_m.iter_mut().zip(&bv) {
                    *s = _mm256_fmadd_ps(av, *bv, *s);
                }
            }
        }
        for (m, acc_m) in acc.iter().enumerate() {
            for (j, s) in acc_m.iter().enumerate() {
                out[m * ld + j] += direct::sum(*s);
            }
        }
    }
}

/// [`dot_tile`] for `M` rows of `a` and `P` pairs of rows of `b` (`j < 2P`), each register
/// holding the two 8-lane sums of one row of `a` with a pair of rows of `b`: every lane is the
/// chain of fused multiply-adds it is in `dot_tile`, and each half is summed across its lanes as
/// there, so the bits are the same, at twice the products per instruction where the CPU's units
/// are 512 bits wide.
///
/// # Safety
/// AVX-512F, AVX2 and FMA are available; `a` and `b` hold `M` and `2P` rows of `len` values,
/// `stride` apart.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dot_pairs<const M: usize, const P: usize>(
    a: *const f32,
    b: *const f32,
    (stride, len): (usize, usize),
    out: &mut [f32],
    ld: usize,
) {
    // Eight values as the low or high half of a 512-bit register, through the 64-bit-lane
    // operations of AVX-512F (the same bits).
    let low_half = |v: __m256| _mm512_castps_pd(_mm512_castps256_ps512(v));
    // SAFETY (whole body): loads inside the rows the caller described.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); P]; M];
        for k in (0..len).step_by(8) {
            let bv: [__m512; P] = std::array::from_fn(|p| {
                let low = _mm256_loadu_ps(b.add(2 * p * stride + k));
                let high = _mm256_castps_pd(_mm256_loadu_ps(b.add((2 * p + 1) * stride + k)));
                _mm512_castpd_ps(_mm512_insertf64x4::<1>(low_half(low), high))
            });
            for (m, acc_m) in acc.iter_mut().enumerate() {
                let av = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(
                    a.add(m * stride + k),
                ))));
                for (s, bv) in acc_m.iter_mut().zip(&bv) {
                    *s = _mm512_fmadd_ps(av, *bv, *s);
                }
            }
        }
        for (m, acc_m) in acc.iter().enumerate() {
            for (p, s) in acc_m.iter().enumerate() {
                let s = _mm512_castps_pd(*s);
                out[m * ld + 2 * p] += direct::sum(_mm256_castpd_ps(_mm512_extractf64x4_pd::<0>(s)));
                out[m * ld + 2 * p + 1] += direct::sum(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(s)));
            }
        }
    }
}
