//! Batch normalisation with batch statistics, optionally followed by a ReLU and a max-pool (the VGG
//! unit's 2x2 stride-2 pool after its conv, the ResNet stem's 3x3 stride-2 one), on contiguous
//! NCHW f32 slices: the forward pass (returning the batch mean and biased variance, which the
//! running statistics take) and the backward pass. Statistics are summed per channel in parallel over channels, in f32 lanes
//! flushed to f64 every block; outputs are written in parallel over images.
//!
//! With the pool, the forward pass never writes the full-size activation: it keeps, per pooled
//! output, which input of its window won (or that the ReLU zeroed it), which is all the backward
//! pass needs besides the input.

use rayon::prelude::*;

use crate::Out;
use crate::conv::{self, ConvGeom};

/// An NCHW activation, `[batch, channels, h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormGeom {
    pub batch: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
}

/// What follows the normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    Nothing,
    Relu,
    /// ReLU, then a max-pool.
    ReluPool(Pool),
    /// What the output holds on entry (a residual block's shortcut) added, then a ReLU: `out =
    /// max(0, bn(x) + out)`, rounded as the normalisation, the sum and the ReLU one after another.
    AddRelu,
}

/// A square max-pool: `size` × `size` windows every `stride` pixels over the plane padded by `pad`
/// on every side, the last window starting inside (floor mode: a partial window at the far edge
/// is dropped), as burn's `MaxPool2d` computes it with -∞ padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub size: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Pool {
    /// The VGG unit's pool, 2x2 stride 2 (an odd last row or column is dropped).
    pub const HALVE: Pool = Pool {
        size: 2,
        stride: 2,
        pad: 0,
    };

    /// Whether the kernels take this pool on an `h` × `w` plane: a window index fits a winner
    /// below [`NONE`], every window holds an input pixel, and at least one window fits.
    pub fn fits(&self, h: usize, w: usize) -> bool {
        self.size >= 1
            && self.size * self.size <= NONE as usize
            && self.stride >= 1
            && self.pad < self.size
            && h.min(w) + 2 * self.pad >= self.size
    }

    /// Outputs along a side of `n` inputs.
    fn out(&self, n: usize) -> usize {
        (n + 2 * self.pad - self.size) / self.stride + 1
    }

    /// The window offsets `k` of output `o` whose input `o·stride + k − pad` lies in `[0, n)`.
    fn taps(&self, o: usize, n: usize) -> std::ops::Range<usize> {
        let start = o * self.stride;
        self.pad.saturating_sub(start)..(n + self.pad).saturating_sub(start).min(self.size)
    }
}

/// Which input of a pooling window won (`ky · size + kx`); `NONE` when the window's maximum is not
/// positive (the ReLU passes no gradient).
pub const NONE: u8 = u8::MAX;

/// How [`backward`] finds the gradient after the ReLU (and pool) from the output gradient.
#[derive(Clone, Copy)]
pub enum Mask<'a> {
    /// No ReLU: the output gradient as it is.
    Identity,
    /// ReLU (after the shortcut, if any): the forward output, whose sign is the mask.
    Relu(&'a [f32]),
    /// ReLU + pool: the winners [`forward`] returned.
    Pool(&'a [u8], Pool),
}

/// `(Σ u, Σ v)` over `(u, v) = f(a[i], b[i], c[i])`, summed in eight f32 lanes flushed to f64
/// every 1024 values: vectorisable, and exact enough for one plane's statistics.
fn lane_sums(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> (f32, f32)) -> (f64, f64) {
    assert!(a.len() == b.len() && a.len() == c.len());
    let mut total = (0.0f64, 0.0f64);
    for ((a, b), c) in a.chunks(1024).zip(b.chunks(1024)).zip(c.chunks(1024)) {
        let (mut u, mut v) = ([0.0f32; 8], [0.0f32; 8]);
        let (a8, b8, c8) = (a.chunks_exact(8), b.chunks_exact(8), c.chunks_exact(8));
        let tail = a8.remainder().iter().zip(b8.remainder()).zip(c8.remainder());
        let (tu, tv) = tail.fold((0.0f32, 0.0f32), |(su, sv), ((x, y), z)| {
            let (du, dv) = f(*x, *y, *z);
            (su + du, sv + dv)
        });
        for ((x, y), z) in a8.zip(b8).zip(c8) {
            for l in 0..8 {
                let (du, dv) = f(x[l], y[l], z[l]);
                u[l] += du;
                v[l] += dv;
            }
        }
        total.0 += u.iter().map(|x| *x as f64).sum::<f64>() + tu as f64;
        total.1 += v.iter().map(|x| *x as f64).sum::<f64>() + tv as f64;
    }
    total
}

impl NormGeom {
    fn plane(&self) -> usize {
        self.h * self.w
    }

    fn n(&self) -> f64 {
        (self.batch * self.plane()) as f64
    }

    /// Output height and width.
    pub fn out_size(&self, after: After) -> (usize, usize) {
        match after {
            After::ReluPool(pool) => (pool.out(self.h), pool.out(self.w)),
            _ => (self.h, self.w),
        }
    }

    /// Output values per plane.
    pub fn out_plane(&self, after: After) -> usize {
        let (h, w) = self.out_size(after);
        h * w
    }

    /// Per channel `c`, `Σ_b f(b·C + c, c)` (the plane index and the channel): the images are cut
    /// into one run per thread, each walking its planes in memory order and summing into its own
    /// per-channel buffer; the runs' sums are then added in order.
    fn channel_sums(&self, f: impl Fn(usize, usize) -> (f64, f64) + Sync) -> Vec<(f64, f64)> {
        let c = self.channels;
        let per_run = self.batch.div_ceil(rayon::current_num_threads().max(1)).max(1);
        let partials: Vec<Vec<(f64, f64)>> = (0..self.batch.div_ceil(per_run))
            .into_par_iter()
            .map(|run| {
                let mut acc = vec![(0.0, 0.0); c];
                for b in run * per_run..((run + 1) * per_run).min(self.batch) {
                    for (ch, a) in acc.iter_mut().enumerate() {
                        let v = f(b * c + ch, ch);
                        *a = (a.0 + v.0, a.1 + v.1);
                    }
                }
                acc
            })
            .collect();
        (0..c)
            .map(|ch| {
                partials
                    .iter()
                    .fold((0.0, 0.0), |s, part| (s.0 + part[ch].0, s.1 + part[ch].1))
            })
            .collect()
    }

    /// Applies `f(channel, index of the plane, output plane)` to every plane of `out` (planes of
    /// `out_plane` values), in parallel over images.
    fn per_plane<T: Send>(&self, out: &mut [T], out_plane: usize, f: impl Fn(usize, usize, &mut [T]) + Sync) {
        let c = self.channels;
        out.par_chunks_mut(c * out_plane).enumerate().for_each(|(b, image)| {
            for (ch, plane) in image.chunks_mut(out_plane).enumerate() {
                f(ch, b * c + ch, plane);
            }
        });
    }
}

/// `y = γ (x − μ) / √(σ² + ε) + β` with the batch's per-channel mean μ and biased variance σ², then
/// what `after` says, into `out` (`[batch, channels, out_plane]`, holding the shortcut for
/// [`After::AddRelu`]). Returns (μ, σ², the pool's
/// winners — empty without the pool).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    g: &NormGeom,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    after: After,
    out: &mut [f32],
) -> (Vec<f32>, Vec<f32>, Vec<u8>) {
    let p = g.plane();
    assert_eq!(x.len(), g.batch * g.channels * p);
    assert_eq!(out.len(), g.batch * g.channels * g.out_plane(after));
    let range = |plane: usize| plane * p..(plane + 1) * p;
    let means: Vec<f64> = g
        .channel_sums(|plane, _| {
            let xs = &x[range(plane)];
            lane_sums(xs, xs, xs, |v, _, _| (v, 0.0))
        })
        .iter()
        .map(|s| s.0 / g.n())
        .collect();
    let vars = g.channel_sums(|plane, c| {
        let (xs, m) = (&x[range(plane)], means[c] as f32);
        lane_sums(xs, xs, xs, |v, _, _| ((v - m) * (v - m), 0.0))
    });
    let stats: Vec<(f64, f64)> = means.iter().zip(&vars).map(|(m, v)| (*m, v.0 / g.n())).collect();
    let affine = affine(&stats, gamma, beta, epsilon);
    let winners = apply(g, x, &affine, after, out);
    let (mean, var) = stats.iter().map(|&(m, v)| (m as f32, v as f32)).unzip();
    (mean, var, winners)
}

/// [`affine`] with the running statistics `mean` and `var`.
fn running_affine(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], epsilon: f64) -> Vec<(f32, f32)> {
    let stats: Vec<(f64, f64)> = mean.iter().zip(var).map(|(m, v)| (*m as f64, *v as f64)).collect();
    affine(&stats, gamma, beta, epsilon)
}

/// Per channel, the (scale, shift) of `γ (x − μ) / √(σ² + ε) + β`.
fn affine(stats: &[(f64, f64)], gamma: &[f32], beta: &[f32], epsilon: f64) -> Vec<(f32, f32)> {
    stats
        .iter()
        .zip(gamma.iter().zip(beta))
        .map(|(&(mean, var), (&gm, &bt))| {
            let scale = gm as f64 / (var + epsilon).sqrt();
            (scale as f32, (bt as f64 - mean * scale) as f32)
        })
        .collect()
}

/// `x · scale + shift` per channel, then what `after` says, into `out`; returns the pool's winners
/// (empty without the pool).
fn apply(g: &NormGeom, x: &[f32], affine: &[(f32, f32)], after: After, out: &mut [f32]) -> Vec<u8> {
    let p = g.plane();
    let mut winners = Vec::new();
    match after {
        After::Nothing | After::Relu => {
            let floor = if after == After::Relu { 0.0 } else { f32::NEG_INFINITY };
            g.per_plane(out, p, |c, plane, o| {
                let (scale, shift) = affine[c];
                for (o, v) in o.iter_mut().zip(&x[plane * p..(plane + 1) * p]) {
                    *o = (v * scale + shift).max(floor);
                }
            });
        }
        After::AddRelu => g.per_plane(out, p, |c, plane, o| {
            let (scale, shift) = affine[c];
            for (o, v) in o.iter_mut().zip(&x[plane * p..(plane + 1) * p]) {
                *o = (v * scale + shift + *o).max(0.0);
            }
        }),
        After::ReluPool(pool) => {
            assert!(pool.fits(g.h, g.w), "{pool:?} on {}x{} planes", g.h, g.w);
            let image = g.channels * g.out_plane(after);
            winners = vec![NONE; out.len()];
            out.par_chunks_mut(image)
                .zip(winners.par_chunks_mut(image))
                .enumerate()
                .for_each(|(b, (o, win))| {
                    relu_pool_image(g, pool, affine, &x[b * g.channels * p..][..g.channels * p], o, win)
                });
        }
    }
    winners
}

/// One image's planes `x` normalised by `affine`, through the ReLU and `pool` into `o`, each
/// window's winner into `win`.
fn relu_pool_image(g: &NormGeom, pool: Pool, affine: &[(f32, f32)], x: &[f32], o: &mut [f32], win: &mut [u8]) {
    let (p, (ho, wo)) = (g.plane(), g.out_size(After::ReluPool(pool)));
    let planes = x
        .chunks_exact(p)
        .zip(o.chunks_exact_mut(ho * wo).zip(win.chunks_exact_mut(ho * wo)));
    for ((src, (o, win)), &(scale, shift)) in planes.zip(affine) {
        if pool == Pool::HALVE {
            halve_plane::<true>(g, src, (scale, shift), o, win);
        } else {
            pool_plane(g, pool, src, (scale, shift), o, win);
        }
    }
}

/// The ReLU and 2×2 max-pool of `src · scale + shift` (one plane) into `o`, and where `WINNERS`
/// each window's winner into `win` (none where the maximum is not positive; `win` is not touched
/// otherwise).
#[inline(always)]
fn halve_plane<const WINNERS: bool>(
    g: &NormGeom,
    src: &[f32],
    (scale, shift): (f32, f32),
    o: &mut [f32],
    win: &mut [u8],
) {
    let (ho, wo) = g.out_size(After::ReluPool(Pool::HALVE));
    for oy in 0..ho {
        let (top, bottom) = (&src[2 * oy * g.w..][..2 * wo], &src[(2 * oy + 1) * g.w..][..2 * wo]);
        let o = &mut o[oy * wo..(oy + 1) * wo];
        let win = if WINNERS {
            &mut win[oy * wo..(oy + 1) * wo]
        } else {
            &mut [][..]
        };
        for ox in 0..wo {
            let v = [top[2 * ox], top[2 * ox + 1], bottom[2 * ox], bottom[2 * ox + 1]].map(|v| v * scale + shift);
            // Branch-free (the winner is data-dependent): the first maximum wins, and a maximum
            // that is not positive is the ReLU's zero, with no winner.
            let (k01, m01) = (u8::from(v[1] > v[0]), v[0].max(v[1]));
            let (k23, m23) = (2 + u8::from(v[3] > v[2]), v[2].max(v[3]));
            let best = m01.max(m23);
            o[ox] = best.max(0.0);
            if WINNERS {
                let right = u8::from(m23 > m01);
                let k = k01 + (k23 - k01) * right;
                let dead = u8::from(!(best > 0.0));
                win[ox] = k + (NONE - k) * dead;
            }
        }
    }
}

/// [`relu_pool_image`] in inference, where no winners are kept: the 2×2 pool by the same loop
/// without them, and a pool other than [`Pool::HALVE`] normalises each value once and takes the
/// windows' maxima along the rows, then down the columns. The same values as [`pool_plane`],
/// whose outputs are a window's maximum and zero, the larger (`>`) kept.
fn relu_pool_inference(g: &NormGeom, pool: Pool, affine: &[(f32, f32)], x: &[f32], o: &mut [f32]) {
    let (p, (ho, wo)) = (g.plane(), g.out_size(After::ReluPool(pool)));
    if pool == Pool::HALVE {
        for ((src, o), &affine) in x.chunks_exact(p).zip(o.chunks_exact_mut(ho * wo)).zip(affine) {
            halve_plane::<false>(g, src, affine, o, &mut []);
        }
        return;
    }
    let (s, k, pad) = (pool.stride, pool.size, pool.pad);
    // A row of ReLU'd values between `pad` zeros (the ReLU's zero stands for the -∞ padding, as
    // every window's maximum is taken with zero), and each padded row's maxima along its windows
    // (the padding rows zero).
    let mut row = vec![0.0f32; g.w + 2 * pad];
    let mut along = vec![0.0f32; (g.h + 2 * pad) * wo];
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    for ((src, o), &(scale, shift)) in x.chunks_exact(p).zip(o.chunks_exact_mut(ho * wo)).zip(affine) {
        for (src, along) in src.chunks_exact(g.w).zip(along[pad * wo..].chunks_exact_mut(wo)) {
            for (r, v) in row[pad..].iter_mut().zip(src) {
                *r = larger(0.0, v * scale + shift);
            }
            for (ox, a) in along.iter_mut().enumerate() {
                *a = row[ox * s..ox * s + k].iter().fold(0.0, |m, &v| larger(m, v));
            }
        }
        for (oy, o) in o.chunks_exact_mut(wo).enumerate() {
            o.fill(0.0);
            for along in along[oy * s * wo..].chunks_exact(wo).take(k) {
                o.iter_mut().zip(along).for_each(|(o, &v)| *o = larger(*o, v));
            }
        }
    }
}

/// The ReLU and `pool` of `src · scale + shift` (one plane) into `o`, each window's winner into
/// `win`: the first maximum, or none where the maximum is not positive.
fn pool_plane(g: &NormGeom, pool: Pool, src: &[f32], (scale, shift): (f32, f32), o: &mut [f32], win: &mut [u8]) {
    let (s, wo) = (pool.stride, pool.out(g.w));
    for (oy, (o, win)) in o.chunks_exact_mut(wo).zip(win.chunks_exact_mut(wo)).enumerate() {
        let rows = pool.taps(oy, g.h);
        for (ox, (o, win)) in o.iter_mut().zip(win.iter_mut()).enumerate() {
            let (mut best, mut k) = (0.0f32, NONE);
            for ky in rows.clone() {
                let row = &src[(oy * s + ky - pool.pad) * g.w..][..g.w];
                for kx in pool.taps(ox, g.w) {
                    let v = row[ox * s + kx - pool.pad] * scale + shift;
                    if v > best {
                        (best, k) = (v, (ky * pool.size + kx) as u8);
                    }
                }
            }
            (*o, *win) = (best, k);
        }
    }
}

/// Batch norm with given (running) statistics, then what `after` says: the inference pass.
#[allow(clippy::too_many_arguments)]
pub fn inference(
    g: &NormGeom,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    after: After,
    out: &mut [f32],
) {
    assert_eq!(x.len(), g.batch * g.channels * g.plane());
    assert_eq!(out.len(), g.batch * g.channels * g.out_plane(after));
    let affine = running_affine(gamma, beta, mean, var, epsilon);
    match after {
        After::ReluPool(pool) => {
            assert!(pool.fits(g.h, g.w), "{pool:?} on {}x{} planes", g.h, g.w);
            let image = g.channels * g.plane();
            out.par_chunks_mut(g.channels * g.out_plane(after))
                .zip(x.par_chunks(image))
                .for_each(|(o, x)| relu_pool_inference(g, pool, &affine, x, o));
        }
        _ => {
            apply(g, x, &affine, after, out);
        }
    }
}

/// The convolution `c` of `x` (weights `w`, `bias`), its batch norm with running statistics, then
/// what `after` says (with [`After::AddRelu`], `shortcut` added before the ReLU), into `out`
/// (`[batch, cout, out_size]`): each run of images is normalised as soon as the convolution has
/// computed it, while it is in cache, instead of in a pass of its own over the whole output. The
/// same bits as [`conv::forward`](crate::conv::forward) then [`inference`].
pub fn conv_inference(
    c: &ConvGeom,
    (x, w, bias): (&[f32], &[f32], Option<&[f32]>),
    (gamma, beta, mean, var): (&[f32], &[f32], &[f32], &[f32]),
    epsilon: f64,
    after: After,
    shortcut: Option<&[f32]>,
    out: &mut [f32],
) {
    let g = NormGeom {
        batch: c.batch,
        channels: c.cout,
        h: c.ho(),
        w: c.wo(),
    };
    assert_eq!(out.len(), g.batch * g.channels * g.out_plane(after));
    assert_eq!(
        shortcut.map(<[f32]>::len),
        (after == After::AddRelu).then_some(out.len())
    );
    let affine = running_affine(gamma, beta, mean, var, epsilon);
    let (p, image) = (g.plane(), g.channels * g.plane());
    if let After::ReluPool(pool) = after {
        assert!(pool.fits(g.h, g.w), "{pool:?} on {}x{} planes", g.h, g.w);
        let pooled = g.channels * g.out_plane(after);
        let dst = Out(out.as_mut_ptr());
        let then = |b0: usize, ys: &mut [f32]| {
            let images = ys.len() / image;
            // SAFETY: images b0 .. b0 + images of the pooled output, this run's alone.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at(b0 * pooled), images * pooled) };
            for (x, o) in ys.chunks_exact(image).zip(o.chunks_exact_mut(pooled)) {
                relu_pool_inference(&g, pool, &affine, x, o);
            }
        };
        let mut y = vec![0.0f32; g.batch * image];
        return conv::forward_then(c, x, w, bias, &mut y, Some(&then));
    }
    let floor = if after == After::Nothing {
        f32::NEG_INFINITY
    } else {
        0.0
    };
    let then = |b0: usize, ys: &mut [f32]| {
        let shortcut = shortcut.map(|s| &s[b0 * image..][..ys.len()]);
        widest!(normalise_in_place(ys, p, &affine, floor, shortcut))
    };
    conv::forward_then(c, x, w, bias, out, Some(&then));
}

/// Whole images' planes `ys` (`p` values each, the channels in order) `y · scale + shift`, with
/// `shortcut` added, then floored at `floor`: [`apply`]'s arithmetic, in place.
#[inline(always)]
fn normalise_in_place(ys: &mut [f32], p: usize, affine: &[(f32, f32)], floor: f32, shortcut: Option<&[f32]>) {
    let planes = ys.chunks_exact_mut(p).zip(affine.iter().cycle());
    match shortcut {
        Some(s) => {
            for ((y, &(scale, shift)), s) in planes.zip(s.chunks_exact(p)) {
                for (y, s) in y.iter_mut().zip(s) {
                    *y = (*y * scale + shift + *s).max(floor);
                }
            }
        }
        None => {
            for (y, &(scale, shift)) in planes {
                for y in y {
                    *y = (*y * scale + shift).max(floor);
                }
            }
        }
    }
}

/// The gradient that passes a ReLU whose output is `y`: `dout` where `y` is positive, else zero
/// (with [`After::AddRelu`], the shortcut's gradient).
pub fn relu_gradient(y: &[f32], dout: &[f32], out: &mut [f32]) {
    assert!(y.len() == dout.len() && out.len() == dout.len());
    out.par_chunks_mut(1 << 14)
        .zip(y.par_chunks(1 << 14).zip(dout.par_chunks(1 << 14)))
        .for_each(|(o, (y, d))| {
            for ((o, y), d) in o.iter_mut().zip(y).zip(d) {
                *o = if *y > 0.0 { *d } else { 0.0 };
            }
        });
}

/// Gradients of [`forward`] for the input, γ and β, given the output gradient `dout` (shaped like
/// the forward output) and the `mask` of what followed the normalisation.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    g: &NormGeom,
    x: &[f32],
    mask: Mask,
    dout: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    dx: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    let p = g.plane();
    // Without a pool, `pool` is a stand-in that no winner reads.
    let (pool, after) = match mask {
        Mask::Pool(_, pool) => (pool, After::ReluPool(pool)),
        _ => (Pool::HALVE, After::Nothing),
    };
    let (ho, wo) = g.out_size(after);
    let out_plane = ho * wo;
    assert_eq!(x.len(), g.batch * g.channels * p);
    assert_eq!(dx.len(), x.len());
    assert_eq!(dout.len(), g.batch * g.channels * out_plane);
    match mask {
        Mask::Relu(y) => assert_eq!(y.len(), x.len()),
        Mask::Pool(w, _) => assert_eq!(w.len(), dout.len()),
        Mask::Identity => {}
    }
    // Calls `f(output index, input index)` within plane `plane` for every pooled output that
    // passes a gradient, in output order.
    let (s, taps) = (pool.stride, pool.size * pool.size);
    let offsets: Vec<(usize, usize)> = (0..taps).map(|k| (k / pool.size, k % pool.size)).collect();
    let for_winners = |winners: &[u8], plane: usize, f: &mut dyn FnMut(usize, usize)| {
        let winners = &winners[plane * out_plane..(plane + 1) * out_plane];
        for oy in 0..ho {
            for ox in 0..wo {
                if let Some(&(ky, kx)) = offsets.get(winners[oy * wo + ox] as usize) {
                    f(oy * wo + ox, (oy * s + ky - pool.pad) * g.w + ox * s + kx - pool.pad);
                }
            }
        }
    };
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (*v as f64 + epsilon).sqrt()).collect();
    // (Σ ĝ x̂, Σ ĝ) per channel, with ĝ the gradient of the normalised output.
    let range = |plane: usize| plane * p..(plane + 1) * p;
    let raw = g.channel_sums(|plane, c| {
        let m = mean[c];
        match mask {
            Mask::Identity => {
                let xs = &x[range(plane)];
                lane_sums(&dout[range(plane)], xs, xs, |d, v, _| (d * (v - m), d))
            }
            Mask::Relu(y) => lane_sums(&dout[range(plane)], &x[range(plane)], &y[range(plane)], |d, v, yv| {
                let d = d * f32::from(u8::from(yv > 0.0));
                (d * (v - m), d)
            }),
            Mask::Pool(winners, _) => {
                let (xs, ds) = (&x[range(plane)], &dout[plane * out_plane..(plane + 1) * out_plane]);
                let mut sums = (0.0f64, 0.0f64);
                for_winners(winners, plane, &mut |i, at| {
                    let d = ds[i] as f64;
                    sums = (sums.0 + d * (xs[at] - m) as f64, sums.1 + d);
                });
                sums
            }
        }
    });
    let sums: Vec<(f64, f64)> = raw.iter().zip(&inv_std).map(|(&(sx, sd), s)| (sx * s, sd)).collect();
    let n = g.n();
    // dx = γ/σ · (ĝ − Σĝ/n − x̂ Σ(ĝ x̂)/n), as a·ĝ + b·x + shift per channel.
    let coef: Vec<(f32, f32, f32)> = (0..g.channels)
        .map(|c| {
            let (dgamma, dbeta) = sums[c];
            let s = inv_std[c];
            let k = gamma[c] as f64 * s;
            let b = -k * dgamma * s / n;
            let shift = -k * dbeta / n + k * dgamma * s * mean[c] as f64 / n;
            (k as f32, b as f32, shift as f32)
        })
        .collect();
    g.per_plane(dx, p, |c, plane, out| {
        let (a, b, shift) = coef[c];
        let xs = &x[plane * p..(plane + 1) * p];
        match mask {
            Mask::Identity => {
                let ds = &dout[plane * p..(plane + 1) * p];
                for ((o, xv), d) in out.iter_mut().zip(xs).zip(ds) {
                    *o = a * d + b * xv + shift;
                }
            }
            Mask::Relu(y) => {
                let (ds, ys) = (&dout[plane * p..(plane + 1) * p], &y[plane * p..(plane + 1) * p]);
                for (((o, xv), d), yv) in out.iter_mut().zip(xs).zip(ds).zip(ys) {
                    let d = *d * f32::from(u8::from(*yv > 0.0));
                    *o = a * d + b * xv + shift;
                }
            }
            Mask::Pool(winners, _) => {
                for (o, xv) in out.iter_mut().zip(xs) {
                    *o = b * xv + shift;
                }
                let ds = &dout[plane * out_plane..(plane + 1) * out_plane];
                for_winners(winners, plane, &mut |i, at| out[at] += a * ds[i]);
            }
        }
    });
    sums.iter().map(|&(dg, db)| (dg as f32, db as f32)).unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every gradient against a central finite difference of `L = Σ w ⊙ forward(x)`, in f64
    /// through f32 kernels, for each `After`. β is chosen so that no normalised value lies within
    /// four finite-difference steps of the ReLU's kink, and the inputs have no ties in a window.
    #[test]
    fn gradients_match_finite_differences() {
        let g = NormGeom {
            batch: 3,
            channels: 2,
            h: 2,
            w: 5,
        };
        let len = 3 * 2 * 10;
        let x: Vec<f32> = (0..len).map(|i| ((i * 37 % 61) as f32 - 30.0) / 19.0).collect();
        let gamma = [1.3f32, -0.7];
        let eps = 1e-5;
        for (after, beta) in [
            (After::Nothing, [0.2f32, 0.4]),
            (After::Relu, [0.35, 0.1]),
            (After::ReluPool(Pool::HALVE), [0.35, 0.1]),
            (After::ReluPool(STEM), [0.35, 0.1]),
            (After::AddRelu, [0.35, 0.1]),
        ] {
            let out_len = g.batch * g.channels * g.out_plane(after);
            let w: Vec<f32> = (0..out_len).map(|i| ((i * 53 % 19) as f32 - 9.0) / 5.0).collect();
            // The shortcut of `AddRelu`, moved where its sum with a normalised value would lie near
            // the ReLU's kink.
            let mut plain = vec![0.0; len];
            forward(&g, &x, &gamma, &beta, eps, After::Nothing, &mut plain);
            let shortcut: Vec<f32> = (0..len)
                .map(|i| ((i * 31 % 23) as f32 - 11.0) / 8.0)
                .zip(&plain)
                .map(|(s, y)| if (s + y).abs() < 0.3 { s + 0.6 } else { s })
                .collect();
            let start = || {
                if after == After::AddRelu {
                    shortcut.clone()
                } else {
                    vec![0.0; out_len]
                }
            };
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32], start: Vec<f32>| {
                let mut y = start;
                forward(&g, x, gamma, beta, eps, after, &mut y);
                y.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()
            };
            let mut y = start();
            let (mean, var, winners) = forward(&g, &x, &gamma, &beta, eps, after, &mut y);
            let mask = match after {
                After::Nothing => Mask::Identity,
                After::Relu | After::AddRelu => Mask::Relu(&y),
                After::ReluPool(pool) => Mask::Pool(&winners, pool),
            };
            let mut dx = vec![0.0; len];
            let (dgamma, dbeta) = backward(&g, &x, mask, &w, &gamma, &mean, &var, eps, &mut dx);
            let h = 1e-2f32;
            let nudged = |v: &[f32], i: usize, by: f32| {
                let mut v = v.to_vec();
                v[i] += by;
                v
            };
            // The analytic derivative against the central difference of `loss_at(±h)`.
            let check = |analytic: f32, loss_at: &dyn Fn(f32) -> f64, what: &str| {
                let numeric = (loss_at(h) - loss_at(-h)) / (2.0 * h as f64);
                assert!(
                    (analytic as f64 - numeric).abs() < 2e-2 * (1.0 + numeric.abs()),
                    "{what} ({after:?}): {analytic} vs {numeric}"
                );
            };
            for (i, &dx) in dx.iter().enumerate() {
                check(dx, &|d| loss(&nudged(&x, i, d), &gamma, &beta, start()), "dx");
            }
            for c in 0..2 {
                check(
                    dgamma[c],
                    &|d| loss(&x, &nudged(&gamma, c, d), &beta, start()),
                    "dgamma",
                );
                check(dbeta[c], &|d| loss(&x, &gamma, &nudged(&beta, c, d), start()), "dbeta");
            }
            if after == After::AddRelu {
                let mut ds = vec![0.0; out_len];
                relu_gradient(&y, &w, &mut ds);
                for (i, &ds) in ds.iter().enumerate() {
                    check(ds, &|d| loss(&x, &gamma, &beta, nudged(&shortcut, i, d)), "dshortcut");
                }
            }
        }
    }

    /// The shortcut's sum and ReLU give the bits of the normalisation, the sum and the ReLU one
    /// after another.
    #[test]
    fn fused_shortcut_matches_add_then_relu() {
        let g = NormGeom {
            batch: 2,
            channels: 3,
            h: 3,
            w: 5,
        };
        let x: Vec<f32> = (0..90).map(|i| ((i * 29 % 41) as f32 - 20.0) / 9.0).collect();
        let shortcut: Vec<f32> = (0..90).map(|i| ((i * 17 % 13) as f32 - 6.0) / 3.7).collect();
        let (gamma, beta) = ([0.9f32, 1.1, -1.2], [0.1f32, -0.3, 0.2]);
        let mut plain = vec![0.0; 90];
        forward(&g, &x, &gamma, &beta, 1e-5, After::Nothing, &mut plain);
        let mut fused = shortcut.clone();
        forward(&g, &x, &gamma, &beta, 1e-5, After::AddRelu, &mut fused);
        for ((f, p), s) in fused.iter().zip(&plain).zip(&shortcut) {
            assert_eq!(f.to_bits(), (p + s).max(0.0).to_bits());
        }
    }

    /// The inference pools, which keep no winners, give the training pools' bits, on planes of odd
    /// and even sides with exact and negative zeros among the values.
    #[test]
    fn inference_pools_match_the_training_pools() {
        for (h, w) in [(5, 4), (4, 7), (8, 8), (3, 3), (11, 6)] {
            let g = NormGeom {
                batch: 1,
                channels: 3,
                h,
                w,
            };
            let mut x: Vec<f32> = (0..3 * h * w).map(|i| ((i * 29 % 41) as f32 - 20.0) / 9.0).collect();
            x.iter_mut().step_by(5).for_each(|v| *v = -0.0);
            let affine = [(0.9f32, 0.0f32), (1.1, -0.3), (-1.2, 0.2)];
            let pools = [
                Pool::HALVE,
                STEM,
                Pool {
                    size: 2,
                    stride: 1,
                    pad: 1,
                },
                Pool {
                    size: 3,
                    stride: 3,
                    pad: 0,
                },
            ];
            for pool in pools.into_iter().filter(|p| p.fits(h, w)) {
                let len = 3 * g.out_plane(After::ReluPool(pool));
                let (mut train, mut infer) = (vec![0.0; len], vec![1.0; len]);
                relu_pool_image(&g, pool, &affine, &x, &mut train, &mut vec![NONE; len]);
                relu_pool_inference(&g, pool, &affine, &x, &mut infer);
                let same = train.iter().zip(&infer).all(|(t, i)| t.to_bits() == i.to_bits());
                assert!(same, "{pool:?} {h}x{w}");
            }
        }
    }

    /// The ResNet stem's pool.
    const STEM: Pool = Pool {
        size: 3,
        stride: 2,
        pad: 1,
    };

    /// The fused pools equal ReLU then a max-pool of the plain normalisation (-∞ padding, a partial
    /// window at the far edge dropped), on planes of odd and even sides.
    #[test]
    fn fused_pools_match_relu_then_pool() {
        for (h, w) in [(5, 4), (4, 7), (8, 8), (3, 3)] {
            let g = NormGeom {
                batch: 2,
                channels: 3,
                h,
                w,
            };
            let p = h * w;
            let x: Vec<f32> = (0..2 * 3 * p).map(|i| ((i * 29 % 41) as f32 - 20.0) / 9.0).collect();
            let (gamma, beta) = ([0.9f32, 1.1, -1.2], [0.1f32, -0.3, 0.2]);
            let mut plain = vec![0.0; x.len()];
            forward(&g, &x, &gamma, &beta, 1e-5, After::Relu, &mut plain);
            for pool in [Pool::HALVE, STEM] {
                let after = After::ReluPool(pool);
                let (ho, wo) = g.out_size(after);
                let mut pooled = vec![0.0; 6 * ho * wo];
                forward(&g, &x, &gamma, &beta, 1e-5, after, &mut pooled);
                for plane in 0..6 {
                    for (oy, ox) in (0..ho).flat_map(|oy| (0..wo).map(move |ox| (oy, ox))) {
                        let mut expect = f32::NEG_INFINITY;
                        for (ky, kx) in (0..pool.size).flat_map(|ky| (0..pool.size).map(move |kx| (ky, kx))) {
                            let (iy, ix) = (oy * pool.stride + ky, ox * pool.stride + kx);
                            if (pool.pad..h + pool.pad).contains(&iy) && (pool.pad..w + pool.pad).contains(&ix) {
                                expect = expect.max(plain[plane * p + (iy - pool.pad) * w + ix - pool.pad]);
                            }
                        }
                        assert_eq!(pooled[plane * ho * wo + oy * wo + ox], expect, "{pool:?} {h}x{w}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod conv_tests {
    use super::*;
    use crate::testing::values;

    fn geom(
        batch: usize,
        (cin, cout): (usize, usize),
        (h, w): (usize, usize),
        (k, stride, pad): (usize, usize, usize),
    ) -> ConvGeom {
        ConvGeom {
            batch,
            cin,
            h,
            w,
            cout,
            kh: k,
            kw: k,
            stride: [stride; 2],
            pad: [pad; 2],
        }
    }

    /// The convolution with its normalisation in the same pass gives the bits of the two one after
    /// the other, on every path of the convolution (im2col with image groups, Winograd, the direct
    /// kernels, the small planes' per-pixel products), for every `After`, on two threads (so that
    /// the output comes in several runs of images).
    #[test]
    fn conv_inference_gives_the_bits_of_conv_then_inference() {
        let geoms = [
            geom(9, (3, 6), (11, 11), (7, 2, 3)),
            geom(5, (5, 4), (5, 5), (3, 1, 1)),
            geom(7, (32, 32), (12, 12), (3, 1, 1)),
            geom(9, (3, 5), (4, 8), (3, 1, 1)),
            geom(6, (16, 4), (2, 2), (3, 1, 1)),
        ];
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for (n, c) in geoms.iter().enumerate() {
            let x = values(c.batch * c.cin * c.h * c.w, n as u64, (-1.0, 1.0));
            let w = values(c.cout * c.cin * c.kh * c.kw, 10 + n as u64, (-0.5, 0.5));
            let bias = values(c.cout, 20 + n as u64, (-0.2, 0.2));
            let gamma = values(c.cout, 30 + n as u64, (-1.5, 1.5));
            let beta = values(c.cout, 40 + n as u64, (-0.3, 0.3));
            let mean = values(c.cout, 50 + n as u64, (-0.2, 0.2));
            let var = values(c.cout, 60 + n as u64, (0.5, 2.0));
            let g = NormGeom {
                batch: c.batch,
                channels: c.cout,
                h: c.ho(),
                w: c.wo(),
            };
            let mut y = vec![0.0; g.batch * g.channels * g.plane()];
            let shortcut = values(y.len(), 70 + n as u64, (-1.0, 1.0));
            let afters = [
                After::Nothing,
                After::Relu,
                After::AddRelu,
                After::ReluPool(Pool::HALVE),
                After::ReluPool(Pool {
                    size: 3,
                    stride: 2,
                    pad: 1,
                }),
            ];
            for (bias, after) in [None, Some(&bias[..])].into_iter().flat_map(|b| afters.map(|a| (b, a))) {
                if !matches!(after, After::ReluPool(p) if !p.fits(g.h, g.w)) {
                    let len = g.batch * g.channels * g.out_plane(after);
                    let shortcut = (after == After::AddRelu).then_some(&shortcut[..]);
                    let mut expect = shortcut.map_or_else(|| vec![0.0; len], <[f32]>::to_vec);
                    let mut fused = vec![0.0; len];
                    pool.install(|| {
                        conv::forward(c, &x, &w, bias, &mut y);
                        inference(&g, &y, &gamma, &beta, &mean, &var, 1e-5, after, &mut expect);
                        let stats = (&gamma[..], &beta[..], &mean[..], &var[..]);
                        conv_inference(c, (&x, &w, bias), stats, 1e-5, after, shortcut, &mut fused);
                    });
                    let same = expect.iter().zip(&fused).all(|(e, f)| e.to_bits() == f.to_bits());
                    assert!(same, "{c:?} {after:?} bias {}", bias.is_some());
                }
            }
        }
    }
}
