//! 2D convolution on contiguous NCHW f32 slices: forward, input gradient and weight gradient, each
//! an image-at-a-time im2col (or none for a pointwise conv) and one matrix product, with the batch
//! split across the rayon pool. Groups 1, dilation 1, symmetric padding.

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

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

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]` with explicit (row, column) strides, single-threaded:
/// the callers parallelise over images.
#[allow(clippy::too_many_arguments)]
fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    let extent = |(rs, cs): (usize, usize), rows: usize, cols: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(dst.len() >= extent(dst_strides, m, n));
    assert!(lhs.len() >= extent(lhs_strides, m, k));
    assert!(rhs.len() >= extent(rhs_strides, k, n));
    // SAFETY: the asserts above keep every index the product touches inside the three slices, and
    // `dst` is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_strides.1 as isize,
            dst_strides.0 as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides.1 as isize,
            lhs_strides.0 as isize,
            rhs.as_ptr(),
            rhs_strides.1 as isize,
            rhs_strides.0 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

impl ConvGeom {
    /// Images per matrix product: enough that a product has at least 256 columns, so that the
    /// small late layers (4 or 16 pixels an image) are not one tiny product per image.
    fn group(&self) -> usize {
        256usize.div_ceil(self.p()).clamp(1, self.batch.max(1))
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
const KEPT_SCRATCH: usize = 16 << 20;

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

/// `y[b] = w · cols(x[b]) + bias`, `y` of shape `[batch, cout, ho, wo]`.
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (k, p, nb) = (g.k(), g.p(), g.group());
    assert_eq!(x.len(), g.batch * g.x_len());
    assert_eq!(w.len(), g.cout * k);
    assert_eq!(y.len(), g.batch * g.y_len());
    y.par_chunks_mut(nb * g.y_len())
        .zip(x.par_chunks(nb * g.x_len()))
        .for_each(|(ys, xs)| {
            with_scratch(g, |cols, tmp| {
                let ld = xs.len() / g.x_len() * p;
                let src = g.im2col_group(xs, cols);
                if ld == p {
                    matmul((g.cout, p, k), ys, (p, 1), false, w, (k, 1), src, (p, 1));
                } else {
                    matmul((g.cout, ld, k), tmp, (ld, 1), false, w, (k, 1), src, (ld, 1));
                    scatter(&tmp[..g.cout * ld], g.cout, p, ys);
                }
                if let Some(bias) = bias {
                    for (plane, b) in ys.chunks_mut(p).zip(bias.iter().cycle()) {
                        plane.iter_mut().for_each(|v| *v += *b);
                    }
                }
            })
        });
}

/// `dx[b] = col2im(wᵀ · dy[b])`, `dx` of shape `[batch, cin, h, w]`.
pub fn backward_input(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (k, p, nb) = (g.k(), g.p(), g.group());
    assert_eq!(dy.len(), g.batch * g.y_len());
    assert_eq!(dx.len(), g.batch * g.x_len());
    dx.par_chunks_mut(nb * g.x_len())
        .zip(dy.par_chunks(nb * g.y_len()))
        .for_each(|(dxs, dys)| {
            with_scratch(g, |cols, tmp| {
                if g.in_place() {
                    matmul((k, p, g.cout), dxs, (p, 1), false, w, (1, k), dys, (p, 1));
                    return;
                }
                let ld = dys.len() / g.y_len() * p;
                let src: &[f32] = if ld == p {
                    dys
                } else {
                    gather(dys, g.cout, p, tmp);
                    &tmp[..g.cout * ld]
                };
                matmul((k, ld, g.cout), cols, (ld, 1), false, w, (1, k), src, (ld, 1));
                for (j, dx_b) in dxs.chunks_mut(g.x_len()).enumerate() {
                    col2im(g, &mut cols[j * p..], ld, dx_b);
                }
            })
        });
}

/// `dw = Σ_b dy[b] · cols(x[b])ᵀ` (shape `[cout, cin, kh, kw]`) and, when asked, the bias gradient
/// `Σ_b Σ_p dy[b, :, p]`. The batch is cut into one run of images per thread, each summing into its
/// own buffer.
pub fn backward_weight(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32], dbias: Option<&mut [f32]>) {
    let (k, p, nb) = (g.k(), g.p(), g.group());
    assert_eq!(x.len(), g.batch * g.x_len());
    assert_eq!(dy.len(), g.batch * g.y_len());
    assert_eq!(dw.len(), g.cout * k);
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
                    matmul((g.cout, k, ld), &mut acc, (k, 1), i > 0, grad, (ld, 1), src, (1, ld));
                }
            });
            acc
        })
        .collect();
    dw.fill(0.0);
    for part in &partials {
        dw.iter_mut().zip(part).for_each(|(d, v)| *d += *v);
    }
    if let Some(db) = dbias {
        db.fill(0.0);
        for dy_b in dy.chunks(g.y_len()) {
            for (d, plane) in db.iter_mut().zip(dy_b.chunks(p)) {
                *d += plane.iter().sum::<f32>();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (ho, wo) = (g.ho(), g.wo());
        let mut y = vec![0.0f64; g.batch * g.cout * ho * wo];
        for b in 0..g.batch {
            for co in 0..g.cout {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut s = bias.map_or(0.0, |bb| bb[co] as f64);
                        for ci in 0..g.cin {
                            for ky in 0..g.kh {
                                for kx in 0..g.kw {
                                    let iy = (oy * g.stride[0] + ky) as isize - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + kx) as isize - g.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                        continue;
                                    }
                                    let xv = x[((b * g.cin + ci) * g.h + iy as usize) * g.w + ix as usize];
                                    let wv = w[((co * g.cin + ci) * g.kh + ky) * g.kw + kx];
                                    s += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((b * g.cout + co) * ho + oy) * wo + ox] = s;
                    }
                }
            }
        }
        y.into_iter().map(|v| v as f32).collect()
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

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "index {i}: {x} vs {y}");
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
        vec![
            g(3, 8, 8, 5, 3, 1, 1),
            g(4, 7, 9, 6, 3, 2, 1),
            g(3, 11, 11, 4, 7, 2, 3),
            g(5, 6, 6, 7, 1, 1, 0),
            g(5, 7, 7, 3, 1, 2, 0),
            g(3, 8, 8, 4, 4, 4, 0),
            g(2, 2, 2, 3, 3, 1, 1),
            ConvGeom {
                batch: 70,
                ..g(4, 3, 3, 5, 3, 1, 1)
            },
            ConvGeom {
                batch: 9,
                ..g(3, 4, 4, 2, 1, 2, 0)
            },
            g(3, 1, 1, 4, 3, 1, 1),
        ]
    }

    /// The forward pass against the definition; the two gradients against the adjoint identities
    /// `<dy, conv(x, w)> = <backward_input(dy), x> = <backward_weight(x, dy), w>`, which hold
    /// because the conv is linear in `x` and in `w` separately.
    #[test]
    fn conv_matches_definition_and_adjoints() {
        for g in geoms() {
            let x = values(g.batch * g.x_len(), 1);
            let w = values(g.cout * g.k(), 2);
            let bias = values(g.cout, 3);
            let dy = values(g.batch * g.y_len(), 4);
            let mut y = vec![0.0; g.batch * g.y_len()];
            forward(&g, &x, &w, Some(&bias), &mut y);
            close(&y, &naive_forward(&g, &x, &w, Some(&bias)));

            let mut y0 = vec![0.0; y.len()];
            forward(&g, &x, &w, None, &mut y0);
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
            let lhs = dot(&dy, &y0);

            let mut dx = vec![9.0; x.len()];
            backward_input(&g, &w, &dy, &mut dx);
            assert!((dot(&dx, &x) - lhs).abs() < 1e-3 * (1.0 + lhs.abs()), "{g:?}");

            let mut dw = vec![9.0; w.len()];
            let mut db = vec![9.0; g.cout];
            backward_weight(&g, &x, &dy, &mut dw, Some(&mut db));
            assert!((dot(&dw, &w) - lhs).abs() < 1e-3 * (1.0 + lhs.abs()), "{g:?}");
            let p = g.p();
            for (co, d) in db.iter().enumerate() {
                let s: f64 = (0..g.batch)
                    .map(|b| dy[(b * g.cout + co) * p..][..p].iter().map(|v| *v as f64).sum::<f64>())
                    .sum();
                assert!((*d as f64 - s).abs() < 1e-4, "{g:?}");
            }
        }
    }
}
