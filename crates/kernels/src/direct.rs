//! Direct 3x3 stride-1 "same" convolution (padding 1) for planes of a multiple of 8 pixels, with
//! AVX2 + FMA: no column matrix and no packing of it. Each image is copied once per kernel column
//! into a plane shifted by that column, zero-bordered, with a zero row above and below
//! ([`shifted`]): every kernel tap of 8 consecutive output pixels is then 8 consecutive values of
//! one of these planes, whatever the width. A tile of the output (up to 6 channels by 2 vectors of
//! 8 pixels) is summed in registers straight from them, 16 input channels at a time over a band of
//! images whose copies stay in cache. The input gradient is the same kernel on the shifted output
//! gradient with the weights transposed and flipped, so it needs no col2im either; the weight
//! gradient (on planes of 64 pixels or more) sums the same loads against the output gradient, a
//! few images at a time so that they stay in cache.
//!
//! These are the convolutions of the VGG and ResNet stages from 32 down to 4 pixels, where the
//! im2col + GEMM path spent most of its time building and packing column matrices for few
//! channels.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::conv::{ConvGeom, KEPT_SCRATCH, Then, sum_partials};

/// Output channels per register tile.
pub(super) const MR: usize = 6;
/// Vectors of 8 pixels per register tile.
const NV: usize = 2;
/// Input channels per pass of the register tiles over the output.
const KC: usize = 16;
/// Bytes of one input channel block's shifted copies that a band of images keeps in cache.
const BAND_BYTES: usize = 256 << 10;
/// Output channels per register tile of the weight gradient (by the 3 kernel rows of a column).
const WMR: usize = 4;
/// Bytes of images the weight gradient keeps in cache at once.
const CHUNK_BYTES: usize = 256 << 10;

/// Whether the direct kernels take this convolution on this CPU.
pub fn applies(g: &ConvGeom) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.stride == [1, 1]
        && g.pad == [1, 1]
        && (g.h * g.w).is_multiple_of(8)
        && g.h * g.w > 0
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
}

/// Whether [`backward_weight`] takes this convolution (besides [`applies`]): planes of at least 64
/// pixels. On smaller planes a weight tile sums too few vectors per image, and GEMM's blocking does
/// better (on 4x4 planes of 512 channels, twice as fast).
pub fn weight_gradient_applies(g: &ConvGeom) -> bool {
    g.h * g.w >= 64
}

/// Bytes of one image's shifted input and output gradient.
fn bytes_per_image(p: Plane, ins: usize, outs: usize) -> usize {
    (p.image_len(ins) + outs * p.len()) * 4
}

/// Images per chunk so that a weight tile runs over at least 64 vectors before it is reduced.
fn min_chunk(p: Plane) -> usize {
    (512 / p.len()).max(1)
}

/// One plane and its shifted copies.
#[derive(Clone, Copy)]
pub(super) struct Plane {
    pub(super) h: usize,
    pub(super) w: usize,
}

impl Plane {
    fn len(self) -> usize {
        self.h * self.w
    }

    /// Length of one shifted copy: the plane with a zero row above and below.
    fn shifted_len(self) -> usize {
        (self.h + 2) * self.w
    }

    /// Length of the shifted copies of one image of `channels` planes.
    fn image_len(self, channels: usize) -> usize {
        3 * channels * self.shifted_len()
    }

    /// Offset, in the shifted copies of an image, of input channel `i`'s tap `(ky, kx)` for output
    /// pixel 0: output pixel `p` reads the value `p` places further.
    fn tap(self, i: usize, ky: usize, kx: usize) -> usize {
        (i * 3 + kx) * self.shifted_len() + ky * self.w
    }
}

/// The shifted copies of each of the images in `src` (planes of `p`): per channel `i` and kernel
/// column `kx`, `dst[tap(i, 0, kx) + r * w + c] = src[i, r − 1, c + kx − 1]`, zero outside the plane.
fn shifted(p: Plane, src: &[f32], dst: &mut [f32]) {
    let (w, len) = (p.w, p.shifted_len());
    for (plane, copies) in src.chunks_exact(p.len()).zip(dst.chunks_exact_mut(3 * len)) {
        for (kx, out) in copies.chunks_exact_mut(len).enumerate() {
            out[..w].fill(0.0);
            out[len - w..].fill(0.0);
            for (row, dst) in plane.chunks_exact(w).zip(out[w..].chunks_exact_mut(w)) {
                match kx {
                    0 => {
                        dst[0] = 0.0;
                        dst[1..].copy_from_slice(&row[..w - 1]);
                    }
                    1 => dst.copy_from_slice(row),
                    _ => {
                        dst[..w - 1].copy_from_slice(&row[1..]);
                        dst[w - 1] = 0.0;
                    }
                }
            }
        }
    }
}

/// Weights of a conv with `outs` output and `ins` input channels, packed for [`tile`]: per block
/// of [`KC`] input channels, per block of [`MR`] output channels (the last ones shorter),
/// `[input channel, tap, output channel]`. Block `(c0, o0)` starts at `c0 * outs * 9 + o0 * kc * 9`.
fn pack(outs: usize, ins: usize, weight: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let mut packed = Vec::with_capacity(outs * ins * 9);
    for c0 in (0..ins).step_by(KC) {
        for o0 in (0..outs).step_by(MR) {
            for i in c0..(c0 + KC).min(ins) {
                for tap in 0..9 {
                    packed.extend((o0..(o0 + MR).min(outs)).map(|o| weight(o, i, tap)));
                }
            }
        }
    }
    packed
}

/// [`Plane::tap`] of each (input channel, tap), in the packed weights' order.
fn tap_offsets(p: Plane, ins: usize) -> Vec<usize> {
    (0..ins * 9).map(|k| p.tap(k / 9, k % 9 / 3, k % 3)).collect()
}

thread_local! {
    static SHIFTED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch for shifted copies, `len` values; above [`KEPT_SCRATCH`]
/// allocated for the call instead of kept by the thread.
pub(super) fn with_shifted<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    if len > KEPT_SCRATCH {
        return f(&mut vec![0.0; len]);
    }
    SHIFTED.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < len {
            s.resize(len, 0.0);
        }
        f(&mut s[..len])
    })
}

/// Defines a register tile `$name` on vectors `$vec` of `$lanes` floats (target features
/// `$features`): `out[m * plane + v * L + l] = init[m] + Σ_k w[k, m] · x[taps[k] + v * L + l]` for
/// `m < M`, `v < V`, `l < L`; without `init`, adds to what `out` holds.
///
/// Safety of the defined function: the features are available; `x + taps[k]` has `V * L` values
/// for every `k`; `w` holds `taps.len() * M` values; `out` has room for `M` planes of `p.len()`
/// values from its start, `V * L` each.
macro_rules! register_tile {
    ($name:ident, $features:literal, $vec:ty, $lanes:literal,
     $set1:ident, $load:ident, $store:ident, $fma:ident) => {
        #[target_feature(enable = $features)]
        unsafe fn $name<const M: usize, const V: usize>(
            p: Plane,
            taps: &[usize],
            x: *const f32,
            w: *const f32,
            init: Option<[f32; M]>,
            out: *mut f32,
        ) {
            // SAFETY (whole body): the loads and stores the caller vouched for.
            unsafe {
                let mut acc: [[$vec; V]; M] = [[$set1(0.0); V]; M];
                for (m, row) in acc.iter_mut().enumerate() {
                    *row = match init {
                        Some(init) => [$set1(init[m]); V],
                        None => std::array::from_fn(|v| $load(out.add(m * p.len() + v * $lanes))),
                    };
                }
                for (k, &off) in taps.iter().enumerate() {
                    let wk = w.add(k * M);
                    let xv: [$vec; V] = std::array::from_fn(|v| $load(x.add(off + v * $lanes)));
                    for (m, acc_m) in acc.iter_mut().enumerate() {
                        let wv = $set1(*wk.add(m));
                        for (a, xv) in acc_m.iter_mut().zip(&xv) {
                            *a = $fma(wv, *xv, *a);
                        }
                    }
                }
                for (m, acc_m) in acc.iter().enumerate() {
                    for (v, a) in acc_m.iter().enumerate() {
                        $store(out.add(m * p.len() + v * $lanes), *a);
                    }
                }
            }
        }
    };
}

register_tile!(
    tile,
    "avx2,fma",
    __m256,
    8,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps
);
register_tile!(
    tile16,
    "avx512f",
    __m512,
    16,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps
);

/// Whether the tiles summing over `ins` input channels take 16-pixel vectors (the same sums in the
/// same order as the 8-pixel ones). On Intel's AVX-512, whose units are 512 bits wide, always: on a
/// Xeon the VGGm-17 ×1/8's 8- to 32-channel layers ran 25-30% faster. On AMD's Zen 4, whose units
/// are 256 bits wide, from 64 input channels (5-10% faster there; with fewer the 8-pixel kernel is
/// as fast or faster).
pub(super) fn wide(ins: usize) -> bool {
    std::is_x86_feature_detected!("avx512f") && (ins >= 64 || intel())
}

/// Whether the CPU is Intel's.
fn intel() -> bool {
    static INTEL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INTEL.get_or_init(|| {
        let id = __cpuid(0);
        [id.ebx, id.edx, id.ecx].map(u32::to_le_bytes).concat() == b"GenuineIntel"
    })
}

/// `$tile::<M, V>($args)` for the run-time `M` (`$mr`, 1 to [`MR`]) and `V` (`$nv`, 1 to [`NV`]).
macro_rules! tiles {
    ($tile:ident, $mr:expr, $nv:expr, $args:tt) => {
        tiles!(@m $tile, $mr, $nv, $args, [1 2 3 4 5 6], [1 2])
    };
    (@m $tile:ident, $mr:expr, $nv:expr, $args:tt, [$($m:literal)*], $vs:tt) => {
        match $mr {
            $($m => tiles!(@v $tile, $m, $nv, $args, $vs),)*
            _ => unreachable!(),
        }
    };
    (@v $tile:ident, $m:literal, $nv:expr, $args:tt, [$($v:literal)*]) => {
        match $nv {
            $($v => $tile::<$m, $v> $args,)*
            _ => unreachable!(),
        }
    };
}

/// The conv of a band of images, given as their [`shifted`] copies (`ins` planes each), with
/// [`pack`]ed weights into `outs` dense planes each. Per block of [`KC`] input channels and block
/// of [`MR`] output channels, the block's weights stay in L1 while the tiles run over the band,
/// whose shifted copies (of the input channel block) stay in L2.
///
/// # Safety
/// AVX2 and FMA are available.
unsafe fn band(p: Plane, ins: usize, outs: usize, xs: &[f32], packed: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let images = out.len() / (outs * p.len());
    assert!(xs.len() >= images * p.image_len(ins) && packed.len() == outs * ins * 9);
    assert_eq!(out.len(), images * outs * p.len());
    let taps = tap_offsets(p, ins);
    let wide = wide(ins);
    for c0 in (0..ins).step_by(KC) {
        let kc = (ins - c0).min(KC);
        let taps = &taps[c0 * 9..(c0 + kc) * 9];
        for o0 in (0..outs).step_by(MR) {
            let mr = (outs - o0).min(MR);
            let w = packed[(c0 * outs + o0 * kc) * 9..].as_ptr();
            let mut init = [0.0; MR];
            if let Some(b) = bias {
                init[..mr].copy_from_slice(&b[o0..o0 + mr]);
            }
            let init = (c0 == 0).then_some(init);
            for b in 0..images {
                let (x, o) = (&xs[b * p.image_len(ins)..], &mut out[(b * outs + o0) * p.len()..]);
                // SAFETY: the caller's buffers, checked above: every tap of every vector is inside
                // the image's shifted copies, the tile's channels inside the output.
                unsafe { row(p, wide, mr, taps, x.as_ptr(), w, init, o.as_mut_ptr()) };
            }
        }
    }
}

/// The register tiles over all `p.len() / 8` vectors of the `mr` output planes at `out`: `out[m *
/// p.len() + q] = init[m] + Σ_k w[k, m] · x[taps[k] + q]` (without `init`, added to what `out`
/// holds), in 16-pixel vectors where `wide`.
///
/// # Safety
/// AVX2 and FMA are available, and AVX-512F where `wide`; `x + taps[k]` has `p.len()` values for
/// every `k`; `w` holds `taps.len() * mr` values; `out` holds `mr` planes of `p.len()` values.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn row(
    p: Plane,
    wide: bool,
    mr: usize,
    taps: &[usize],
    x: *const f32,
    w: *const f32,
    init: Option<[f32; MR]>,
    out: *mut f32,
) {
    let vectors = p.len() / 8;
    let mut j = 0;
    while j < vectors {
        let (x, o) = (x.wrapping_add(j * 8), out.wrapping_add(j * 8));
        // SAFETY: the caller's promises; the tile's vectors are inside the planes. `init` is
        // narrowed to the tile's channels.
        unsafe {
            if wide && vectors - j >= 2 {
                let nv = ((vectors - j) / 2).min(NV);
                tiles!(
                    tile16,
                    mr,
                    nv,
                    (p, taps, x, w, init.map(|i| std::array::from_fn(|m| i[m])), o)
                );
                j += 2 * nv;
            } else {
                let nv = (vectors - j).min(NV);
                tiles!(
                    tile,
                    mr,
                    nv,
                    (p, taps, x, w, init.map(|i| std::array::from_fn(|m| i[m])), o)
                );
                j += nv;
            }
        }
    }
}

/// `out[b] = conv(src[b])`, `src` of `ins` and `out` of `outs` planes per image, in bands of
/// images across the rayon pool: as many images as keep a band's shifted copies of one input
/// channel block within [`BAND_BYTES`], but at least four bands per thread.
#[allow(clippy::too_many_arguments)]
fn convolve(
    p: Plane,
    ins: usize,
    outs: usize,
    src: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    then: Then,
) {
    let batch = src.len() / (ins * p.len());
    let block_bytes = 3 * ins.min(KC) * p.shifted_len() * 4;
    let per_thread = batch.div_ceil(4 * rayon::current_num_threads().max(1));
    let images = (BAND_BYTES / block_bytes).clamp(1, per_thread.max(1));
    out.par_chunks_mut(images * outs * p.len())
        .zip(src.par_chunks(images * ins * p.len()))
        .enumerate()
        .for_each(|(run, (out, src))| {
            with_shifted(src.len() / (ins * p.len()) * p.image_len(ins), |xs| {
                shifted(p, src, xs);
                // SAFETY: `applies` checked AVX2 and FMA.
                unsafe { band(p, ins, outs, xs, packed, bias, out) }
            });
            if let Some(then) = then {
                then(run * images, out);
            }
        });
}

/// The forward pass, `y` of shape `[batch, cout, h, w]`.
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], then: Then) {
    let p = Plane { h: g.h, w: g.w };
    let packed = pack(g.cout, g.cin, |o, i, tap| w[(o * g.cin + i) * 9 + tap]);
    convolve(p, g.cin, g.cout, x, &packed, bias, y, then);
}

/// The input gradient: the output gradient convolved with the weights with input and output
/// channels swapped and both kernel axes flipped.
pub fn backward_input(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let p = Plane { h: g.h, w: g.w };
    let packed = pack(g.cin, g.cout, |i, o, tap| w[(o * g.cin + i) * 9 + 8 - tap]);
    convolve(p, g.cout, g.cin, dy, &packed, None, dx, None);
}

/// The sum of the 8 lanes of `v`.
#[target_feature(enable = "avx2")]
pub(super) fn sum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}

/// Adds to `dw[(o0 + m, i, ky, kx)]` for `m < M` and every `ky` the sums over `images` images of
/// the output gradient times the input's shifted copy for kernel column `kx`.
///
/// # Safety
/// AVX2 and FMA are available; `xs` holds the [`shifted`] copies of `images` images of `ins`
/// planes, `dy` as many images of `outs` dense planes; `o0 + M <= outs`, `i < ins`, `kx < 3`.
#[target_feature(enable = "avx2,fma")]
unsafe fn weight_tile<const M: usize>(
    p: Plane,
    (ins, outs): (usize, usize),
    images: usize,
    xs: *const f32,
    dy: *const f32,
    (o0, i, kx): (usize, usize, usize),
    dw: &mut [f32],
) {
    let len = p.len();
    // SAFETY (whole body): loads inside the images the caller described.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 3]; M];
        for b in 0..images {
            let x = xs.add(b * p.image_len(ins) + p.tap(i, 0, kx));
            let d = dy.add((b * outs + o0) * len);
            for j in (0..len).step_by(8) {
                let xv = [0, 1, 2].map(|ky| _mm256_loadu_ps(x.add(ky * p.w + j)));
                for (m, acc_m) in acc.iter_mut().enumerate() {
                    let dv = _mm256_loadu_ps(d.add(m * len + j));
                    for (a, xv) in acc_m.iter_mut().zip(&xv) {
                        *a = _mm256_fmadd_ps(dv, *xv, *a);
                    }
                }
            }
        }
        for (m, acc_m) in acc.iter().enumerate() {
            for (ky, a) in acc_m.iter().enumerate() {
                dw[((o0 + m) * ins + i) * 9 + ky * 3 + kx] += sum(*a);
            }
        }
    }
}

/// The weight gradient `Σ_b dy[b] ⋆ x[b]` (shape `[cout, cin, 3, 3]`): one run of images per
/// thread, each summed a cache-sized chunk at a time into its own buffer.
pub fn backward_weight(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let p = Plane { h: g.h, w: g.w };
    let (ins, outs) = (g.cin, g.cout);
    let chunk = (CHUNK_BYTES / bytes_per_image(p, ins, outs))
        .max(min_chunk(p))
        .clamp(1, g.batch.max(1));
    let runs = rayon::current_num_threads().clamp(1, g.batch.max(1));
    let per_run = g.batch.div_ceil(runs).max(1);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(per_run * ins * p.len())
        .zip(dy.par_chunks(per_run * outs * p.len()))
        .map(|(xs, dys)| {
            let mut acc = vec![0.0f32; outs * ins * 9];
            with_shifted(chunk * p.image_len(ins), |copies| {
                for (xc, dyc) in xs.chunks(chunk * ins * p.len()).zip(dys.chunks(chunk * outs * p.len())) {
                    let images = xc.len() / (ins * p.len());
                    shifted(p, xc, copies);
                    for o0 in (0..outs).step_by(WMR) {
                        for i in 0..ins {
                            for kx in 0..3 {
                                let at = (o0, i, kx);
                                let (xp, d) = (copies.as_ptr(), dyc.as_ptr());
                                // SAFETY: `applies` checked AVX2 and FMA; `copies` holds the chunk's
                                // shifted images, `dyc` its output gradients, `o0 + M <= outs`.
                                unsafe {
                                    match (outs - o0).min(WMR) {
                                        4 => weight_tile::<4>(p, (ins, outs), images, xp, d, at, &mut acc),
                                        3 => weight_tile::<3>(p, (ins, outs), images, xp, d, at, &mut acc),
                                        2 => weight_tile::<2>(p, (ins, outs), images, xp, d, at, &mut acc),
                                        _ => weight_tile::<1>(p, (ins, outs), images, xp, d, at, &mut acc),
                                    }
                                }
                            }
                        }
                    }
                }
            });
            acc
        })
        .collect();
    sum_partials(&partials, dw);
}
