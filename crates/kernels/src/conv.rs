//! 2D convolution on contiguous NCHW f32 slices: forward, input gradient and weight gradient, with
//! the batch split across the rayon pool. Groups 1, dilation 1, symmetric padding. Four paths
//! ([`Path`]): small planes (inputs of at most 4 pixels, outputs of at most 16) as one matrix
//! product over the batch per pixel tap, on the linear layers' kernel (`linear.rs`); on x86-64,
//! 3x3 stride-1 "same" convolutions of many channels on even planes with Winograd (`winograd.rs`),
//! the other 3x3 stride-1 "same" ones with the direct kernels of `direct.rs`; and everything else
//! as an im2col (or none for a pointwise conv) and one matrix product per image group.

use rayon::prelude::*;

use crate::Out;
use crate::linear::{self, Mat};

/// Shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub pad: [usize; 2],
}

impl ConvGeom {
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.pad[0] - self.kh) / self.stride[0] + 1
    }

    pub fn wo(&self) -> usize {
        (self.w + 2 * self.pad[1] - self.kw) / self.stride[1] + 1
    }

    /// Rows of the column matrix: one per (input channel, kernel row, kernel column).
    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Output pixels per image.
    fn p(&self) -> usize {
        self.ho() * self.wo()
    }

    /// A 1x1 stride-1 unpadded conv reads its input as the column matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }

    fn x_len(&self) -> usize {
        self.cin * self.h * self.w
    }

    fn y_len(&self) -> usize {
        self.cout * self.p()
    }

    /// For kernel column `kx`, the output columns whose input column is inside the image, and the
    /// input column of the first of them.
    fn valid_cols(&self, kx: usize) -> (usize, usize) {
        let (s, p, wo) = (self.stride[1], self.pad[1], self.wo());
        // ix = ox * s + kx - p must lie in [0, w).
        let lo = if kx >= p { 0 } else { (p - kx).div_ceil(s) };
        let hi = if self.w + p > kx {
            ((self.w + p - kx - 1) / s + 1).min(wo)
        } else {
            0
        };
        (lo, hi.max(lo))
    }

    /// The input row of output row `oy` at kernel row `ky`, if inside the image.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride[0] + ky)
            .checked_sub(self.pad[0])
            .filter(|&iy| iy < self.h)
    }
}

/// For a stride-1 conv whose output has the input's size, kernel offset (ky, kx) reads the plane
/// shifted by `(ky − p) * w + (kx − p)`: the row of the column matrix is one contiguous span of
/// the plane, except the columns that wrap around an image edge. Returns the shift and the span
/// `[lo, hi)` of output indices whose shifted index lies inside the plane.
fn same_shift(g: &ConvGeom, ky: usize, kx: usize) -> Option<(isize, usize, usize)> {
    if g.stride != [1, 1] || g.ho() != g.h || g.wo() != g.w {
        return None;
    }
    let n = (g.h * g.w) as isize;
    let off = (ky as isize - g.pad[0] as isize) * g.w as isize + kx as isize - g.pad[1] as isize;
    let lo = (-off).clamp(0, n) as usize;
    let hi = (n - off).clamp(0, n) as usize;
    Some((off, lo, hi.max(lo)))
}

/// Zeroes, in every output row, the columns whose input column lies outside the image.
fn zero_wrapped_columns(g: &ConvGeom, kx: usize, row: &mut [f32]) {
    let (lo, hi) = g.valid_cols(kx);
    let wo = g.wo();
    // A kernel wraps by a few columns: strided stores down each such column (a `fill` per row
    // would be a library call per output row).
    for col in (0..lo).chain(hi..wo) {
        let mut i = col;
        while i < row.len() {
            row[i] = 0.0;
            i += wo;
        }
    }
}

/// `cols[(ci, ky, kx) * ld + (oy, ox)] = x[ci, oy*s + ky - p, ox*s + kx - p]`, zero outside the
/// image; `ld` is the length of a column-matrix row (several images' columns side by side).
fn im2col(g: &ConvGeom, x: &[f32], cols: &mut [f32], ld: usize) {
    let (ho, wo, s) = (g.ho(), g.wo(), g.stride[1]);
    for ci in 0..g.cin {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut cols[((ci * g.kh + ky) * g.kw + kx) * ld..][..ho * wo];
                if let Some((off, lo, hi)) = same_shift(g, ky, kx) {
                    row[..lo].fill(0.0);
                    row[hi..].fill(0.0);
                    if hi > lo {
                        let src = (lo as isize + off) as usize;
                        row[lo..hi].copy_from_slice(&plane[src..src + hi - lo]);
                        zero_wrapped_columns(g, kx, row);
                    }
                    continue;
                }
                let (lo, hi) = g.valid_cols(kx);
                for oy in 0..ho {
                    let out = &mut row[oy * wo..(oy + 1) * wo];
                    let Some(iy) = g.input_row(oy, ky) else {
                        out.fill(0.0);
                        continue;
                    };
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    let start = iy * g.w + lo * s + kx - g.pad[1];
                    if s == 1 {
                        out[lo..hi].copy_from_slice(&plane[start..start + hi - lo]);
                    } else if s == 2 && hi > lo {
                        let (out, src) = (&mut out[lo..hi], &plane[start..start + 2 * (hi - lo) - 1]);
                        widest!(every_other(src, out));
                    } else {
                        for (o, v) in out[lo..hi].iter_mut().zip(plane[start..].iter().step_by(s)) {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// `out[i] = src[2 i]`, in vector shuffles where the CPU has them (a stride-2 conv's im2col rows).
#[inline(always)]
fn every_other(src: &[f32], out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = src[2 * i];
    }
}

/// `dst[2 i] += src[i]` (`dst` of `2 src.len() − 1` values), in vector shuffles where the CPU has
/// them: each pair of `dst` is loaded and stored whole (the stride-2 conv's col2im rows).
#[inline(always)]
fn add_every_other(src: &[f32], dst: &mut [f32]) {
    let (last, src) = src.split_last().expect("a row of at least one value");
    for (d, v) in dst.chunks_exact_mut(2).zip(src) {
        d[0] += *v;
    }
    dst[2 * src.len()] += *last;
}

/// The adjoint of [`im2col`]: adds every column entry back onto its input pixel. Clobbers the
/// entries of `cols` that lie outside the image.
fn col2im(g: &ConvGeom, cols: &mut [f32], ld: usize, dx: &mut [f32]) {
    let (ho, wo, s) = (g.ho(), g.wo(), g.stride[1]);
    dx.fill(0.0);
    for ci in 0..g.cin {
        let plane = &mut dx[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut cols[((ci * g.kh + ky) * g.kw + kx) * ld..][..ho * wo];
                if let Some((off, lo, hi)) = same_shift(g, ky, kx) {
                    if hi > lo {
                        zero_wrapped_columns(g, kx, row);
                        let dst = (lo as isize + off) as usize;
                        for (d, v) in plane[dst..dst + hi - lo].iter_mut().zip(&row[lo..hi]) {
                            *d += *v;
                        }
                    }
                    continue;
                }
                let (lo, hi) = g.valid_cols(kx);
                for oy in 0..ho {
                    let Some(iy) = g.input_row(oy, ky) else { continue };
                    let src = &row[oy * wo + lo..oy * wo + hi];
                    let start = iy * g.w + lo * s + kx - g.pad[1];
                    if s == 1 {
                        for (d, v) in plane[start..start + hi - lo].iter_mut().zip(src) {
                            *d += *v;
                        }
                    } else if s == 2 && hi > lo {
                        let dst = &mut plane[start..start + 2 * (hi - lo) - 1];
                        widest!(add_every_other(src, dst));
                    } else {
                        for (d, v) in plane[start..].iter_mut().step_by(s).zip(src) {
                            *d += *v;
                        }
                    }
                }
            }
        }
    }
}

impl ConvGeom {
    /// Images per matrix product: enough that a product has at least 256 columns, so that the
    /// small late layers (4 or 16 pixels an image) are not one tiny product per image. (The weight
    /// gradient's runs of images are whole groups, so this also sets where its partial sums part.)
    fn group(&self) -> usize {
        256usize.div_ceil(self.p()).clamp(1, self.batch.max(1))
    }

    /// Images per matrix product of the forward pass and the input gradient: at most
    /// [`group`](Self::group), fewer where that cuts the batch into groups of one size, as many
    /// for each thread (a ResNet's 7x7 layers at batch 32 on 2 threads: 8 groups of 4 images took
    /// 30 ms where 5 groups of 6 and one of 2 took 32–34). Each output's sum is the same whatever
    /// the group.
    fn even_group(&self) -> usize {
        let most = self.group();
        let threads = rayon::current_num_threads().max(1);
        let even = |g: &usize| self.batch.is_multiple_of(*g) && (self.batch / g).is_multiple_of(threads);
        (1..=most).rev().find(even).unwrap_or(most)
    }

    /// Whether the products read the input (or write the input gradient) in place: one image at a
    /// time through a pointwise conv.
    fn in_place(&self) -> bool {
        self.group() == 1 && self.pointwise()
    }

    /// Scratch length of the column matrix of one group.
    fn cols_len(&self) -> usize {
        if self.in_place() {
            0
        } else {
            self.k() * self.group() * self.p()
        }
    }

    /// The column matrix of the images `xs` (one group), `[k, n * p]`.
    fn im2col_group<'a>(&self, xs: &'a [f32], cols: &'a mut [f32]) -> &'a [f32] {
        if self.in_place() {
            return xs;
        }
        let ld = xs.len() / self.x_len() * self.p();
        for (j, x_b) in xs.chunks(self.x_len()).enumerate() {
            im2col(self, x_b, &mut cols[j * self.p()..], ld);
        }
        &cols[..self.k() * ld]
    }
}

thread_local! {
    /// Per-thread scratch (column matrix, regrouped output gradient), kept between calls: every
    /// use overwrites what it reads, so it is neither freed nor zeroed per image group.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Scratch above this many values (64 MiB, e.g. one 224x224 image's column matrix of a 64-channel
/// 3x3 conv is 115 MiB) is allocated per call instead of being kept by the thread.
pub(super) const KEPT_SCRATCH: usize = 16 << 20;

/// Runs `f` with this thread's scratch, sized for a group of `g`. `f` must not re-enter (it makes no
/// rayon calls, so no other task of this module runs on the thread meanwhile).
fn with_scratch<R>(g: &ConvGeom, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    let (cols, tmp) = (g.cols_len(), if g.group() > 1 { g.cout * g.group() * g.p() } else { 0 });
    if cols + tmp > KEPT_SCRATCH {
        return f(&mut vec![0.0; cols], &mut vec![0.0; tmp]);
    }
    SCRATCH.with(|s| {
        let (a, b) = &mut *s.borrow_mut();
        if a.len() < cols {
            a.resize(cols, 0.0);
        }
        if b.len() < tmp {
            b.resize(tmp, 0.0);
        }
        f(&mut a[..cols], &mut b[..tmp])
    })
}

/// `[n, c, p]` (images of one group) to `[c, n * p]`, the layout of a group's matrix product.
fn gather(src: &[f32], c: usize, p: usize, dst: &mut [f32]) {
    let n = src.len() / (c * p);
    for (j, image) in src.chunks(c * p).enumerate() {
        for (ch, plane) in image.chunks(p).enumerate() {
            dst[ch * n * p + j * p..][..p].copy_from_slice(plane);
        }
    }
}

/// The inverse of [`gather`].
fn scatter(src: &[f32], c: usize, p: usize, dst: &mut [f32]) {
    let n = dst.len() / (c * p);
    for (j, image) in dst.chunks_mut(c * p).enumerate() {
        for (ch, plane) in image.chunks_mut(p).enumerate() {
            plane.copy_from_slice(&src[ch * n * p + j * p..][..p]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
use super::{direct, winograd};

/// Off x86-64 the direct kernels never apply.
#[cfg(not(target_arch = "x86_64"))]
mod direct {
    use super::ConvGeom;

    pub fn applies(_: &ConvGeom) -> bool {
        false
    }

    pub fn weight_gradient_applies(_: &ConvGeom) -> bool {
        false
    }

    pub fn forward(_: &ConvGeom, _: &[f32], _: &[f32], _: Option<&[f32]>, _: &mut [f32], _: super::Then) {
        unreachable!("no direct kernels on this architecture")
    }

    pub fn backward_input(_: &ConvGeom, _: &[f32], _: &[f32], _: &mut [f32]) {
        unreachable!("no direct kernels on this architecture")
    }

    pub fn backward_weight(_: &ConvGeom, _: &[f32], _: &[f32], _: &mut [f32]) {
        unreachable!("no direct kernels on this architecture")
    }
}

/// Off x86-64 Winograd (built on the direct kernels' tiles) never applies.
#[cfg(not(target_arch = "x86_64"))]
mod winograd {
    #[cfg(test)]
    pub use super::direct::applies as fits;
    pub use super::direct::{applies, backward_input, backward_weight, forward};

    #[cfg(test)]
    pub fn backward_weight_in_bands(_: &super::ConvGeom, _: usize, _: bool, _: &[f32], _: &[f32], _: &mut [f32]) {
        unreachable!("no Winograd on this architecture")
    }
}

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// Input planes of at most 4 pixels, or output planes of at most 16 through a kernel wider
    /// than one pixel from 16 channels or more (up to 7x7, see [`WIDE_PIXELS`]): one matrix
    /// product over the batch per (output pixel, input pixel) pair that a kernel tap joins
    /// (`pixel_*`), so that no padding is multiplied. (A 1x1 conv on larger planes has one tap per
    /// output pixel, and the im2col path's one product is faster; from fewer channels, as in a
    /// patch embedding, each tap's product is too short.)
    Pixels,
    /// Winograd F(2x2, 3x3) for the 3x3 stride-1 convolutions of many channels on even planes
    /// (x86-64 with AVX2 and FMA).
    Winograd,
    /// The direct 3x3 kernels (x86-64 with AVX2 and FMA).
    Direct,
    /// im2col + GEMM per image group.
    Gemm,
}

/// Output planes, channels (the fewer of input and output) and batch from which the per-pixel
/// products replace im2col + GEMM on planes of 17 to 49 pixels: their products are as wide as the
/// batch, and with 32 images or more and 64 channels they beat the im2col path, whose column
/// matrix of a 7x7 plane holds each value up to 9 times. On 2 cores of an AVX-512 Xeon, batch 32,
/// a 3x3 conv of 512 channels on 7x7 planes took 25 / 26 / 27 ms (forward / input gradient /
/// weight gradient) instead of 32 / 35–36 / 34–36, on 6x6 planes 17 / 18 / 19 instead of 19–20 /
/// 23 / 24–25 (on the AVX2 path, 7x7: 34 / 34–35 / 44–45 instead of 45–47 / 49–50 / 49–52); with
/// 16 images the forward pass was level on 7x7 planes and slower on 6x6 (9.8 against 7.7–8.6 ms),
/// and with 32 channels slower too (0.26 against 0.18 ms).
const WIDE_PIXELS: (usize, usize, usize) = (49, 64, 32);

fn path(g: &ConvGeom) -> Path {
    let (plane, channels, batch) = WIDE_PIXELS;
    let wide = g.p() <= plane && g.cin.min(g.cout) >= channels && g.batch >= batch;
    if g.h * g.w <= 4 || (g.kh * g.kw > 1 && g.cin >= 16 && (g.p() <= 16 || wide)) {
        Path::Pixels
    } else if winograd::applies(g) {
        Path::Winograd
    } else if direct::applies(g) {
        Path::Direct
    } else {
        Path::Gemm
    }
}

/// What a forward pass applies to each run of whole output images as soon as the run is computed,
/// while its values are in cache: `then(first image of the run, the run's planes)`.
pub type Then<'a> = Option<&'a (dyn Fn(usize, &mut [f32]) + Sync)>;

/// `y[b] = w ⋆ x[b] + bias`, `y` of shape `[batch, cout, ho, wo]`.
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    forward_then(g, x, w, bias, y, None)
}

/// [`forward`], then `then` on every run of output images (an inference batch norm and what
/// follows it, in the same pass over the output).
pub fn forward_then(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], then: Then) {
    forward_on(path(g), g, x, w, bias, y, then)
}

/// The input gradient, `dx` of shape `[batch, cin, h, w]`.
pub fn backward_input(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    backward_input_on(path(g), g, w, dy, dx)
}

/// The weight gradient `Σ_b dy[b] ⋆ x[b]` (shape `[cout, cin, kh, kw]`) and, when asked, the bias
/// gradient `Σ_b Σ_p dy[b, :, p]`.
pub fn backward_weight(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32], dbias: Option<&mut [f32]>) {
    backward_weight_on(path(g), g, x, dy, dw, dbias)
}

fn forward_on(path: Path, g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], then: Then) {
    assert_eq!(x.len(), g.batch * g.x_len());
    assert_eq!(w.len(), g.cout * g.k());
    assert_eq!(y.len(), g.batch * g.y_len());
    match path {
        Path::Pixels => {
            pixel_forward(g, x, w, bias, y);
            if let Some(then) = then {
                then(0, y);
            }
        }
        Path::Winograd => winograd::forward(g, x, w, bias, y, then),
        Path::Direct => direct::forward(g, x, w, bias, y, then),
        Path::Gemm => gemm_forward(g, x, w, bias, y, then),
    }
}

fn backward_input_on(path: Path, g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert_eq!(w.len(), g.cout * g.k());
    assert_eq!(dy.len(), g.batch * g.y_len());
    assert_eq!(dx.len(), g.batch * g.x_len());
    match path {
        Path::Pixels => pixel_backward_input(g, w, dy, dx),
        Path::Winograd => winograd::backward_input(g, w, dy, dx),
        Path::Direct => direct::backward_input(g, w, dy, dx),
        Path::Gemm => gemm_backward_input(g, w, dy, dx),
    }
}

fn backward_weight_on(path: Path, g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32], dbias: Option<&mut [f32]>) {
    assert_eq!(x.len(), g.batch * g.x_len());
    assert_eq!(dy.len(), g.batch * g.y_len());
    assert_eq!(dw.len(), g.cout * g.k());
    match path {
        Path::Pixels => pixel_backward_weight(g, x, dy, dw),
        Path::Winograd => winograd::backward_weight(g, x, dy, dw),
        Path::Direct if direct::weight_gradient_applies(g) => direct::backward_weight(g, x, dy, dw),
        _ => gemm_backward_weight(g, x, dy, dw),
    }
    if let Some(db) = dbias {
        // Each plane summed in parallel, the planes' sums added image by image in order.
        let sums: Vec<f32> = dy.par_chunks(g.p()).map(|plane| plane.iter().sum::<f32>()).collect();
        db.fill(0.0);
        for image in sums.chunks(g.cout) {
            db.iter_mut().zip(image).for_each(|(d, s)| *d += *s);
        }
    }
}

/// The kernel taps that land inside the image, as (output pixel, input pixel, tap).
fn pixel_taps(g: &ConvGeom) -> Vec<(usize, usize, usize)> {
    let mut taps = Vec::new();
    for oy in 0..g.ho() {
        for ky in 0..g.kh {
            let Some(iy) = g.input_row(oy, ky) else { continue };
            for ox in 0..g.wo() {
                for kx in 0..g.kw {
                    let ix = (ox * g.stride[1] + kx).checked_sub(g.pad[1]).filter(|&ix| ix < g.w);
                    if let Some(ix) = ix {
                        taps.push((oy * g.wo() + ox, iy * g.w + ix, ky * g.kw + kx));
                    }
                }
            }
        }
    }
    taps
}

/// Buffers of the per-pixel products, kept between calls: fresh ones of this size would be
/// mapped and unmapped by the allocator at every call, which costs as much as the products of a
/// small layer.
static BUFFERS: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// A buffer from [`BUFFERS`] (its values whatever an earlier user left), given back when dropped.
/// Unlike a thread's scratch, it may be held across rayon calls.
struct Buffer(Vec<f32>);

impl Buffer {
    fn new(len: usize) -> Buffer {
        let kept = BUFFERS.lock().map(|mut kept| kept.pop()).unwrap_or_default();
        let mut v = kept.unwrap_or_default();
        v.resize(len, 0.0);
        Buffer(v)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.0.len() <= KEPT_SCRATCH
            && let Ok(mut kept) = BUFFERS.lock()
            && kept.len() < 8
        {
            kept.push(std::mem::take(&mut self.0));
        }
    }
}

impl std::ops::Deref for Buffer {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

/// The taps that `taps` use, in order of first use, and each tap's place among them (`usize::MAX`
/// for the others).
fn used_taps(g: &ConvGeom, taps: &[(usize, usize, usize)]) -> (Vec<usize>, Vec<usize>) {
    let mut slot = vec![usize::MAX; g.kh * g.kw];
    let mut used = Vec::new();
    for &(_, _, t) in taps {
        if slot[t] == usize::MAX {
            slot[t] = used.len();
            used.push(t);
        }
    }
    (used, slot)
}

/// `w[o, i, t]` of the `used` taps as `[used tap][cout][cin]` matrices, or `[used tap][cin][cout]`
/// where `transposed`, a row of every tap's matrix per task.
fn tap_major(g: &ConvGeom, w: &[f32], used: &[usize], transposed: bool) -> Buffer {
    let (kk, per_tap) = (g.kh * g.kw, g.cout * g.cin);
    let mut wt = Buffer::new(used.len() * per_tap);
    let dst = Out(wt.as_mut_ptr());
    let (rows, cols) = if transposed { (g.cin, g.cout) } else { (g.cout, g.cin) };
    (0..rows).into_par_iter().for_each(|r| {
        for (u, &t) in used.iter().enumerate() {
            // SAFETY: row r of every used tap's matrix: inside `wt`, and this task's alone.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.at(u * per_tap + r * cols), cols) };
            if transposed {
                for (o, v) in row.iter_mut().enumerate() {
                    *v = w[(o * g.cin + r) * kk + t];
                }
            } else {
                for (v, taps) in row.iter_mut().zip(w[r * g.cin * kk..].chunks_exact(kk)) {
                    *v = taps[t];
                }
            }
        }
    });
    wt
}

/// Channels per task of [`to_columns`]: its rows are written a cache line at a time.
const RUN: usize = 16;
/// Images per run of the pixel-major copies: the values of one channel and pixel of consecutive
/// images lie `c · p` floats apart, often a multiple of 4 KiB, and so in one cache set, where 16
/// at a time evicted each other (a 1x1 stride-2 conv's input gradient on 2x2 planes of 256
/// channels: 0.6 ms with runs of 16, 0.43 with 8).
const IMAGES: usize = 8;

/// `planes[batch][c][p]` as `[p][c][batch]`: per pixel, a matrix of channels by images. A run of
/// channels per task, whose rows no other task writes, each row written a run of images at a time.
fn to_columns(planes: &[f32], (batch, c, p): (usize, usize, usize)) -> Buffer {
    let mut out = Buffer::new(batch * c * p);
    let dst = Out(out.as_mut_ptr());
    (0..c.div_ceil(RUN)).into_par_iter().for_each(|run| {
        for b0 in (0..batch).step_by(IMAGES) {
            let images = b0..(b0 + IMAGES).min(batch);
            for ch in run * RUN..(run * RUN + RUN).min(c) {
                for q in 0..p {
                    for b in images.clone() {
                        // SAFETY: element (q, ch, b): inside `out`, in this run's rows.
                        unsafe { *dst.at((q * c + ch) * batch + b) = planes[(b * c + ch) * p + q] };
                    }
                }
            }
        }
    });
    out
}

/// `planes[batch][c][p]` as `[p][batch][c]`: per pixel, a matrix of images by channels.
fn to_rows(planes: &[f32], (batch, c, p): (usize, usize, usize)) -> Buffer {
    let mut out = Buffer::new(batch * c * p);
    let dst = Out(out.as_mut_ptr());
    planes.par_chunks(c * p).enumerate().for_each(|(b, image)| {
        for (ch, plane) in image.chunks_exact(p).enumerate() {
            for (q, v) in plane.iter().enumerate() {
                // SAFETY: element (q, b, ch): inside `out`, in image b's rows.
                unsafe { *dst.at((q * batch + b) * c + ch) = *v };
            }
        }
    });
    out
}

/// The inverse of [`to_columns`], into `planes`: a run of images per task.
fn from_columns(columns: &[f32], planes: &mut [f32], (batch, c, p): (usize, usize, usize)) {
    planes
        .par_chunks_mut(IMAGES * c * p)
        .enumerate()
        .for_each(|(run, images)| {
            let (b0, bn) = (run * IMAGES, images.len() / (c * p));
            for ch in 0..c {
                for q in 0..p {
                    for (b, v) in columns[(q * c + ch) * batch + b0..][..bn].iter().enumerate() {
                        images[(b * c + ch) * p + q] = *v;
                    }
                }
            }
        });
}

/// Rows of the output per task of the per-pixel products: a multiple of the linear kernels' tile
/// height, one block per thread.
fn row_block(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads().max(1)).next_multiple_of(8)
}

/// `y[b, :, o] = bias + Σ_(o, i, t) w[:, :, t] · x[b, :, i]`: per output pixel, the sum over its
/// taps of `[cout, cin] · [cin, images]` products ([`pixel_products`]).
fn pixel_forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    pixel_products(g, w, x, y, false, bias);
}

/// `dx[b, :, i] = Σ_(o, i, t) w[:, :, t]ᵀ · dy[b, :, o]`, per pixel tap as in [`pixel_forward`].
fn pixel_backward_input(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    pixel_products(g, w, dy, dx, true, None);
}

/// `dst[b, :, d] = init + Σ_taps w_t · src[b, :, s]` with `init` the bias or zero: the forward
/// pass (`src` = x, `dst` = y) or, with `transposed`, the input gradient (`src` = dy, `dst` = dx,
/// each tap's weights transposed). The weights are copied tap by tap and the planes pixel by
/// pixel ([`tap_major`], [`to_columns`]), so that every tap is one product of the linear layers'
/// kernel whose operands are read in place: `[channels, channels] · [channels, images]`, a block
/// of output channels per task. Each output value is one chain of fused multiply-adds from its
/// initial value through the taps in order, whatever the split and the vector path.
fn pixel_products(g: &ConvGeom, w: &[f32], src: &[f32], dst: &mut [f32], transposed: bool, bias: Option<&[f32]>) {
    let taps = pixel_taps(g);
    let (used, slot) = used_taps(g, &taps);
    let wt = tap_major(g, w, &used, transposed);
    let (x, y) = ((g.cin, g.h * g.w), (g.cout, g.p()));
    let ((c_src, p_src), (c_dst, p_dst)) = if transposed { (y, x) } else { (x, y) };
    let n = g.batch;
    assert!(dst.len() >= n * c_dst * p_dst && src.len() >= n * c_src * p_src);
    let columns = to_columns(src, (n, c_src, p_src));
    let mut sums = Buffer::new(p_dst * c_dst * n);
    match bias {
        Some(bias) => {
            for (row, b) in sums.chunks_exact_mut(n).zip(bias.iter().cycle()) {
                row.fill(*b);
            }
        }
        None => sums.fill(0.0),
    }
    let rows = row_block(c_dst);
    let out = Out(sums.as_mut_ptr());
    (0..c_dst.div_ceil(rows)).into_par_iter().for_each(|block| {
        let (c0, cw) = (block * rows, rows.min(c_dst - block * rows));
        for &(o, i, t) in &taps {
            let (d, s) = if transposed { (i, o) } else { (o, i) };
            let wt = &wt[slot[t] * g.cout * g.cin..][..g.cout * g.cin];
            let a = Mat {
                data: &wt[c0 * c_src..],
                rs: c_src,
                cs: 1,
            };
            let b = Mat {
                data: &columns[s * c_src * n..][..c_src * n],
                rs: n,
                cs: 1,
            };
            // SAFETY: rows c0 .. c0 + cw of pixel d's matrix: inside `sums`, and this task's alone.
            let block = unsafe { std::slice::from_raw_parts_mut(out.at((d * c_dst + c0) * n), cw * n) };
            linear::product(cw, n, c_src, a, b, (block, n), true);
        }
    });
    from_columns(&sums, dst, (n, c_dst, p_dst));
}

/// `dw[:, :, t] = Σ_(o, i, t) Σ_b dy[b, :, o] x[b, :, i]ᵀ`: per tap a sum of `[cout, images] ·
/// [images, cin]` products of the linear layers' kernel on pixel-major copies of `dy` and `x`, a
/// block of output channels per task; each value one chain over the taps and the images in order.
fn pixel_backward_weight(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let taps = pixel_taps(g);
    let (used, slot) = used_taps(g, &taps);
    let (n, kk, per_tap) = (g.batch, g.kh * g.kw, g.cout * g.cin);
    let grads = to_columns(dy, (n, g.cout, g.p()));
    let inputs = to_rows(x, (n, g.cin, g.h * g.w));
    let mut sums = Buffer::new(used.len() * per_tap);
    sums.fill(0.0);
    let rows = row_block(g.cout);
    let out = Out(sums.as_mut_ptr());
    (0..g.cout.div_ceil(rows)).into_par_iter().for_each(|block| {
        let (c0, cw) = (block * rows, rows.min(g.cout - block * rows));
        for &(o, i, t) in &taps {
            let a = Mat {
                data: &grads[(o * g.cout + c0) * n..][..cw * n],
                rs: n,
                cs: 1,
            };
            let b = Mat {
                data: &inputs[i * n * g.cin..][..n * g.cin],
                rs: g.cin,
                cs: 1,
            };
            // SAFETY: rows c0 .. c0 + cw of tap t's matrix: inside `sums`, and this task's alone.
            let block = unsafe { std::slice::from_raw_parts_mut(out.at(slot[t] * per_tap + c0 * g.cin), cw * g.cin) };
            linear::product(cw, g.cin, n, a, b, (block, g.cin), true);
        }
    });
    dw.par_chunks_mut(g.cin * kk).enumerate().for_each(|(o, dwo)| {
        if used.len() < kk {
            dwo.fill(0.0);
        }
        for (u, &t) in used.iter().enumerate() {
            for (taps, v) in dwo.chunks_exact_mut(kk).zip(&sums[u * per_tap + o * g.cin..][..g.cin]) {
                taps[t] = *v;
            }
        }
    });
}

/// `y[b] = w · cols(x[b]) + bias` per image group.
fn gemm_forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], then: Then) {
    let (k, p, nb) = (g.k(), g.p(), g.even_group());
    y.par_chunks_mut(nb * g.y_len())
        .zip(x.par_chunks(nb * g.x_len()))
        .enumerate()
        .for_each(|(group, (ys, xs))| {
            with_scratch(g, |cols, tmp| {
                let ld = xs.len() / g.x_len() * p;
                let src = g.im2col_group(xs, cols);
                if ld == p {
                    linear::strided((g.cout, p, k), ys, (p, 1), false, w, (k, 1), src, (p, 1));
                } else {
                    linear::strided((g.cout, ld, k), tmp, (ld, 1), false, w, (k, 1), src, (ld, 1));
                    scatter(&tmp[..g.cout * ld], g.cout, p, ys);
                }
                if let Some(bias) = bias {
                    for (plane, b) in ys.chunks_mut(p).zip(bias.iter().cycle()) {
                        plane.iter_mut().for_each(|v| *v += *b);
                    }
                }
                if let Some(then) = then {
                    then(group * nb, ys);
                }
            })
        });
}

/// `dx[b] = col2im(wᵀ · dy[b])`.
fn gemm_backward_input(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (k, p, nb) = (g.k(), g.p(), g.even_group());
    dx.par_chunks_mut(nb * g.x_len())
        .zip(dy.par_chunks(nb * g.y_len()))
        .for_each(|(dxs, dys)| {
            with_scratch(g, |cols, tmp| {
                if g.in_place() {
                    linear::strided((k, p, g.cout), dxs, (p, 1), false, w, (1, k), dys, (p, 1));
                    return;
                }
                let ld = dys.len() / g.y_len() * p;
                let src: &[f32] = if ld == p {
                    dys
                } else {
                    gather(dys, g.cout, p, tmp);
                    &tmp[..g.cout * ld]
                };
                linear::strided((k, ld, g.cout), cols, (ld, 1), false, w, (1, k), src, (ld, 1));
                for (j, dx_b) in dxs.chunks_mut(g.x_len()).enumerate() {
                    col2im(g, &mut cols[j * p..], ld, dx_b);
                }
            })
        });
}

/// `dw = Σ_b dy[b] · cols(x[b])ᵀ`: the batch cut into one run of images per thread, each summing
/// into its own buffer.
fn gemm_backward_weight(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (k, p, nb) = (g.k(), g.p(), g.group());
    let runs = rayon::current_num_threads().clamp(1, g.batch.max(1));
    let per_run = g.batch.div_ceil(runs).div_ceil(nb).max(1) * nb;
    let partials: Vec<Vec<f32>> = x
        .par_chunks(per_run * g.x_len())
        .zip(dy.par_chunks(per_run * g.y_len()))
        .map(|(xs, dys)| {
            let mut acc = vec![0.0f32; g.cout * k];
            with_scratch(g, |cols, tmp| {
                for (i, (xg, dyg)) in xs.chunks(nb * g.x_len()).zip(dys.chunks(nb * g.y_len())).enumerate() {
                    let ld = xg.len() / g.x_len() * p;
                    let src = g.im2col_group(xg, cols);
                    let grad: &[f32] = if ld == p {
                        dyg
                    } else {
                        gather(dyg, g.cout, p, tmp);
                        &tmp[..g.cout * ld]
                    };
                    linear::strided((g.cout, k, ld), &mut acc, (k, 1), i > 0, grad, (ld, 1), src, (1, ld));
                }
            });
            acc
        })
        .collect();
    sum_partials(&partials, dw);
}

/// `dw = Σ partials`, added in order for each value (the same bits as one serial pass), in chunks
/// across the rayon pool: with many threads there are as many partial sums of up to millions of
/// weights.
pub(super) fn sum_partials(partials: &[Vec<f32>], dw: &mut [f32]) {
    const CHUNK: usize = 1 << 14;
    dw.par_chunks_mut(CHUNK).enumerate().for_each(|(c, dw)| {
        dw.fill(0.0);
        for part in partials {
            dw.iter_mut().zip(&part[c * CHUNK..]).for_each(|(d, v)| *d += *v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `f(x index, w index, y index)` for every product term of the conv's definition.
    fn terms(g: &ConvGeom, mut f: impl FnMut(usize, usize, usize)) {
        let (ho, wo) = (g.ho(), g.wo());
        for b in 0..g.batch {
            for co in 0..g.cout {
                for oy in 0..ho {
                    for ox in 0..wo {
                        for ci in 0..g.cin {
                            for ky in 0..g.kh {
                                for kx in 0..g.kw {
                                    let iy = (oy * g.stride[0] + ky) as isize - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + kx) as isize - g.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                        continue;
                                    }
                                    f(
                                        ((b * g.cin + ci) * g.h + iy as usize) * g.w + ix as usize,
                                        ((co * g.cin + ci) * g.kh + ky) * g.kw + kx,
                                        ((b * g.cout + co) * ho + oy) * wo + ox,
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The forward pass and both gradients from the definition, summed in f64.
    fn naive(g: &ConvGeom, x: &[f32], w: &[f32], bias: &[f32], dy: &[f32]) -> [Vec<f32>; 3] {
        let (mut y, mut dx, mut dw) = (vec![0.0f64; dy.len()], vec![0.0f64; x.len()], vec![0.0f64; w.len()]);
        for (i, v) in y.iter_mut().enumerate() {
            *v = bias[i / g.p() % g.cout] as f64;
        }
        terms(g, |xi, wi, yi| {
            y[yi] += x[xi] as f64 * w[wi] as f64;
            dx[xi] += dy[yi] as f64 * w[wi] as f64;
            dw[wi] += dy[yi] as f64 * x[xi] as f64;
        });
        [y, dx, dw].map(|v| v.into_iter().map(|v| v as f32).collect())
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(40_503));
                (v >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}, index {i}: {x} vs {y}");
        }
    }

    fn geoms() -> Vec<ConvGeom> {
        let g = |cin, h, w, cout, k, s, p| ConvGeom {
            batch: 3,
            cin,
            h,
            w,
            cout,
            kh: k,
            kw: k,
            stride: [s, s],
            pad: [p, p],
        };
        let batch = |batch, geom: ConvGeom| ConvGeom { batch, ..geom };
        vec![
            g(3, 8, 8, 5, 3, 1, 1),
            g(4, 7, 9, 6, 3, 2, 1),
            g(3, 11, 11, 4, 7, 2, 3),
            g(5, 6, 6, 7, 1, 1, 0),
            g(5, 7, 7, 3, 1, 2, 0),
            g(3, 8, 8, 4, 4, 4, 0),
            g(2, 2, 2, 3, 3, 1, 1),
            batch(70, g(4, 3, 3, 5, 3, 1, 1)),
            batch(9, g(3, 4, 4, 2, 1, 2, 0)),
            g(3, 1, 1, 4, 3, 1, 1),
            g(3, 2, 2, 4, 1, 2, 0),
            // Widths that are multiples of 8 (the direct kernels on x86-64 with AVX2): channel
            // counts that leave partial register tiles, one-row planes, odd vector counts.
            g(7, 4, 16, 13, 3, 1, 1),
            g(6, 1, 8, 6, 3, 1, 1),
            batch(9, g(13, 3, 24, 2, 3, 1, 1)),
            // More channels than one input block of the direct kernels, and bands of several images;
            // 64 input channels or more (16-pixel vectors with AVX-512F) forward and backward.
            g(5, 4, 8, 20, 3, 1, 1),
            g(64, 2, 8, 7, 3, 1, 1),
            g(64, 8, 8, 5, 3, 1, 1),
            // Winograd: blocks per row not a multiple of 8 (6: 4 and 2 one by one; 2); two passes over input
            // channels; bands of block rows that cross from one image to the next (9 images, two
            // per run).
            g(32, 4, 12, 33, 3, 1, 1),
            g(150, 6, 4, 40, 3, 1, 1),
            batch(9, g(64, 16, 16, 64, 3, 1, 1)),
            g(5, 4, 12, 66, 3, 1, 1),
            batch(40, g(18, 2, 4, 7, 3, 1, 1)),
            // Winograd on planes that are not a multiple of 8 pixels (the direct kernels' vectors):
            // 6x6 (3 blocks a row, one by one), 14x10, and a ResNet's 14x14 at 224² (7 blocks a row).
            g(32, 6, 6, 9, 3, 1, 1),
            g(33, 14, 10, 34, 3, 1, 1),
            batch(5, g(40, 14, 14, 36, 3, 1, 1)),
            // The per-pixel products past 4 input pixels: a strided conv down to 4x4, an odd plane
            // with output channels that leave a partial tile.
            g(16, 8, 8, 9, 3, 2, 1),
            batch(5, g(20, 3, 5, 17, 3, 1, 1)),
            // ... and on 7x7 planes, which they take from 64 channels and 32 images.
            batch(32, g(64, 7, 7, 66, 3, 1, 1)),
        ]
    }

    /// The forward pass and both gradients of every path that takes a geometry against the
    /// definition, element by element.
    #[test]
    fn conv_matches_definition() {
        let paths = |g: &ConvGeom| {
            let mut paths = vec![Path::Gemm];
            if g.h * g.w <= 16 || path(g) == Path::Pixels {
                paths.push(Path::Pixels);
            }
            if direct::applies(g) {
                paths.push(Path::Direct);
            }
            if winograd::fits(g) {
                paths.push(Path::Winograd);
            }
            paths
        };
        for (g, path) in geoms()
            .into_iter()
            .flat_map(|g| paths(&g).into_iter().map(move |p| (g, p)))
        {
            check(g, path);
        }
    }

    /// The per-pixel products with 16 threads: blocks of output channels smaller than the tasks
    /// of two threads, and a shorter last one.
    #[test]
    fn pixel_products_split_for_many_threads() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(16).build().unwrap();
        pool.install(|| {
            for g in geoms().into_iter().filter(|g| path(g) == Path::Pixels) {
                check(g, Path::Pixels);
            }
        });
    }

    /// The forward pass and both gradients of `path` on `g` against the definition.
    fn check(g: ConvGeom, path: Path) {
        let forward =
            |x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]| forward_on(path, &g, x, w, bias, y, None);
        let backward_input = |w: &[f32], dy: &[f32], dx: &mut [f32]| backward_input_on(path, &g, w, dy, dx);
        let backward_weight =
            |x: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>| backward_weight_on(path, &g, x, dy, dw, db);
        let x = values(g.batch * g.x_len(), 1);
        let w = values(g.cout * g.k(), 2);
        let bias = values(g.cout, 3);
        let dy = values(g.batch * g.y_len(), 4);
        let [y_ref, dx_ref, dw_ref] = naive(&g, &x, &w, &bias, &dy);
        let mut y = vec![9.0; g.batch * g.y_len()];
        forward(&x, &w, Some(&bias), &mut y);
        close(&y, &y_ref, &format!("y {g:?} {path:?}"));
        let mut dx = vec![9.0; x.len()];
        backward_input(&w, &dy, &mut dx);
        close(&dx, &dx_ref, &format!("dx {g:?} {path:?}"));
        let mut dw = vec![9.0; w.len()];
        let mut db = vec![9.0; g.cout];
        backward_weight(&x, &dy, &mut dw, Some(&mut db));
        close(&dw, &dw_ref, &format!("dw {g:?} {path:?}"));
        if path == Path::Winograd {
            // Bands of one block row, and of 4 (the last one shorter where the batch has 6); the
            // dot products in 8-lane registers and, where the CPU has AVX-512, in pairs in
            // 16-lane ones, to the same bits.
            let wide = std::is_x86_feature_detected!("avx512f");
            for rows in [1, 4] {
                let in_bands = |wide| {
                    let mut dw = vec![9.0; w.len()];
                    winograd::backward_weight_in_bands(&g, rows, wide, &x, &dy, &mut dw);
                    dw
                };
                let dw = in_bands(false);
                close(&dw, &dw_ref, &format!("dw {g:?} in bands of {rows} block rows"));
                if wide {
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&in_bands(true)), bits(&dw), "{g:?}, bands of {rows} block rows");
                }
            }
        }
        let p = g.p();
        for (co, d) in db.iter().enumerate() {
            let s: f64 = (0..g.batch)
                .map(|b| dy[(b * g.cout + co) * p..][..p].iter().map(|v| *v as f64).sum::<f64>())
                .sum();
            assert!((*d as f64 - s).abs() < 1e-4, "{g:?} {path:?}");
        }
    }
}
