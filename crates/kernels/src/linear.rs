//! The matrix product of the transformer's linear layers (forward, input gradient and weight
//! gradient), with AVX-512, AVX2 and plain paths that give the same bits.
//!
//! Every output sums its products in the order of the inner index with fused multiply-adds from
//! zero, one chunk of [`KC`] products at a time, the chunks added to the output in order, and the
//! bias added last; vectors run across output columns, never across a sum. So the vector width,
//! the tile sizes and the thread count change which outputs share a register and a task, never
//! the rounding of any output.

use rayon::prelude::*;

/// A matrix operand: element (i, j) at `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl Mat<'_> {
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }

    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// Columns of a packed panel of the right operand.
const NR: usize = 16;
/// Products per chunk of a sum.
const KC: usize = 2048;
/// Rows of the output per task (columns: as many as keep every thread busy).
const MB: usize = 48;
/// The largest tile: 8 rows by 2 panels.
const TILE: usize = 8 * 2 * NR;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// 8 rows × 2 panels of 16-lane vectors.
    Avx512,
    /// 6 rows × 1 panel of two 8-lane vectors.
    Avx2,
    /// Scalar fused multiply-adds.
    Plain,
}

impl Path {
    fn detect() -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Path::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Path::Avx2;
            }
        }
        Path::Plain
    }

    /// Rows and panels of a tile.
    fn tile(self) -> (usize, usize) {
        match self {
            Path::Avx512 => (8, 2),
            Path::Avx2 => (6, 1),
            Path::Plain => (4, 1),
        }
    }
}

/// `out[m × n]` (row-major) `= a[m × k] · b[k × n]`, plus `bias[n]` on every row when given.
pub fn matmul(m: usize, n: usize, k: usize, a: Mat, b: Mat, bias: Option<&[f32]>, out: &mut [f32]) {
    matmul_on(Path::detect(), m, n, k, a, b, bias, out)
}

/// The output as a pointer that tasks writing disjoint tiles share.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every task writes its own rows × columns block of the output and nothing else.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The element at `offset` (a method, so that closures capture the whole `Out`).
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

#[allow(clippy::too_many_arguments)]
fn matmul_on(path: Path, m: usize, n: usize, k: usize, a: Mat, b: Mat, bias: Option<&[f32]>, out: &mut [f32]) {
    assert_eq!(out.len(), m * n);
    assert!(a.covers(m, k) && b.covers(k, n) && bias.is_none_or(|b| b.len() == n));
    if m == 0 || n == 0 {
        return;
    }
    // The right operand in panels of NR columns, each k × NR, zero beyond the last column.
    let panels = n.div_ceil(NR);
    let mut packed = vec![0.0f32; panels * k * NR];
    if k > 0 {
        packed.par_chunks_mut(k * NR).enumerate().for_each(|(q, panel)| {
            let cols = NR.min(n - q * NR);
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (j, v) in row[..cols].iter_mut().enumerate() {
                    *v = b.at(p, q * NR + j);
                }
            }
        });
    }
    // Whole rows per task where that makes enough tasks, so that each task packs its rows of the
    // left operand once; else the columns are split too. Which task computes an output never
    // changes its sum.
    let row_blocks = m.div_ceil(MB);
    let want = 4 * rayon::current_num_threads();
    let nb = if row_blocks >= want {
        n
    } else {
        n.div_ceil(want.div_ceil(row_blocks)).next_multiple_of(2 * NR)
    };
    let col_blocks = n.div_ceil(nb);
    let dst = Out(out.as_mut_ptr());
    (0..row_blocks * col_blocks).into_par_iter().for_each(|task| {
        let (r0, c0) = (task / col_blocks * MB, task % col_blocks * nb);
        let (rows, cols) = (MB.min(m - r0), nb.min(n - c0));
        // SAFETY: this task's block of rows r0.., columns c0.. lies inside the output (m × n),
        // and no other task writes it.
        let write = |i: usize, j: usize, v: f32, first: bool| unsafe {
            let o = dst.at((r0 + i) * n + c0 + j);
            *o = if first { v } else { *o + v };
        };
        block(path, a, &packed, k, (r0, rows), (c0, cols), write);
        if let Some(bias) = bias {
            for i in 0..rows {
                for j in 0..cols {
                    write(i, j, bias[c0 + j], false);
                }
            }
        }
    });
    if k == 0 {
        for row in out.chunks_exact_mut(n) {
            match bias {
                Some(bias) => row.copy_from_slice(bias),
                None => row.fill(0.0),
            }
        }
    }
}

/// One task: rows `r0..r0 + rows` and columns `c0..c0 + cols` of the output, through `write(i, j,
/// value, first)` (relative indices; `first`: the first chunk of the sum, which replaces).
fn block(
    path: Path,
    a: Mat,
    packed: &[f32],
    k: usize,
    (r0, rows): (usize, usize),
    (c0, cols): (usize, usize),
    write: impl Fn(usize, usize, f32, bool),
) {
    let (mr, np) = path.tile();
    let strips = rows.div_ceil(mr);
    let mut packed_a = vec![0.0f32; strips * mr * KC.min(k)];
    let mut tile = [0.0f32; TILE];
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        pack_rows(a, (r0, rows), (k0, kc), mr, &mut packed_a);
        for i0 in (0..rows).step_by(mr) {
            let live = mr.min(rows - i0);
            let strip = &packed_a[i0 * kc..(i0 + mr) * kc];
            let mut j0 = 0;
            while j0 < cols {
                let q = (c0 + j0) / NR;
                let panel = |q: usize| &packed[q * k * NR + k0 * NR..q * k * NR + (k0 + kc) * NR];
                // Two panels where the path takes two and the block has them, else one.
                let two = np == 2 && j0 + NR < cols;
                let width = if two { 2 * NR } else { NR };
                match (path, two) {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the path was chosen from the CPU's features; the strip holds
                    // kc × 8 values and each panel kc × NR.
                    (Path::Avx512, true) => unsafe { avx512::<2>(kc, strip, [panel(q), panel(q + 1)], &mut tile) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above.
                    (Path::Avx512, false) => unsafe { avx512::<1>(kc, strip, [panel(q)], &mut tile) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above, kc × 6 values in the strip.
                    (Path::Avx2, _) => unsafe { avx2(kc, strip, panel(q), &mut tile) },
                    _ => plain(mr, kc, strip, panel(q), &mut tile),
                }
                for i in 0..live {
                    for j in 0..width.min(cols - j0) {
                        write(i0 + i, j0 + j, tile[i * width + j], k0 == 0);
                    }
                }
                j0 += width;
            }
        }
    }
}

/// Rows `r0..r0 + rows`, products `k0..k0 + kc` of `a`, in strips of `mr` rows, each strip
/// interleaved by product (`strip[p·mr + i]`), rows past the end zero.
fn pack_rows(a: Mat, (r0, rows): (usize, usize), (k0, kc): (usize, usize), mr: usize, packed: &mut [f32]) {
    for (s, strip) in packed.chunks_exact_mut(mr * kc).take(rows.div_ceil(mr)).enumerate() {
        let live = mr.min(rows - s * mr);
        if live < mr {
            strip.fill(0.0);
        }
        let first = (r0 + s * mr) * a.rs + k0 * a.cs;
        if a.cs == 1 {
            // Row-major: each row's products are contiguous.
            for i in 0..live {
                let row = &a.data[first + i * a.rs..][..kc];
                for (v, &x) in strip[i..].iter_mut().step_by(mr).zip(row) {
                    *v = x;
                }
            }
        } else if a.rs == 1 {
            // Column-major (a transpose): each product's rows are contiguous.
            for p in 0..kc {
                strip[p * mr..p * mr + live].copy_from_slice(&a.data[first + p * a.cs..][..live]);
            }
        } else {
            for p in 0..kc {
                for i in 0..live {
                    strip[p * mr + i] = a.data[first + i * a.rs + p * a.cs];
                }
            }
        }
    }
}

/// An `mr × NR` tile (row stride NR) with scalar fused multiply-adds.
fn plain(mr: usize, kc: usize, strip: &[f32], panel: &[f32], tile: &mut [f32; TILE]) {
    tile[..mr * NR].fill(0.0);
    for p in 0..kc {
        for i in 0..mr {
            let a = strip[p * mr + i];
            for j in 0..NR {
                tile[i * NR + j] = a.mul_add(panel[p * NR + j], tile[i * NR + j]);
            }
        }
    }
}

/// An 8 × (NP · 16) tile (row stride NP · 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<const NP: usize>(kc: usize, strip: &[f32], panels: [&[f32]; NP], tile: &mut [f32; TILE]) {
    use std::arch::x86_64::*;
    debug_assert!(strip.len() >= kc * 8 && panels.iter().all(|p| p.len() >= kc * NR));
    let mut c = [[_mm512_setzero_ps(); NP]; 8];
    let mut b = [_mm512_setzero_ps(); NP];
    let (s, bp) = (strip.as_ptr(), panels.map(|p| p.as_ptr()));
    for p in 0..kc {
        for q in 0..NP {
            // SAFETY: p < kc, and each panel holds kc × NR values.
            b[q] = unsafe { _mm512_loadu_ps(bp[q].add(p * NR)) };
        }
        for (i, row) in c.iter_mut().enumerate() {
            // SAFETY: p · 8 + i < kc · 8, the strip's length.
            let a = _mm512_set1_ps(unsafe { *s.add(p * 8 + i) });
            for q in 0..NP {
                row[q] = _mm512_fmadd_ps(a, b[q], row[q]);
            }
        }
    }
    for (i, row) in c.iter().enumerate() {
        for (q, v) in row.iter().enumerate() {
            // SAFETY: i · NP · 16 + q · 16 + 16 ≤ 8 · 2 · 16 = TILE.
            unsafe { _mm512_storeu_ps(tile.as_mut_ptr().add(i * NP * NR + q * NR), *v) };
        }
    }
}

/// A 6 × 16 tile (row stride 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2(kc: usize, strip: &[f32], panel: &[f32], tile: &mut [f32; TILE]) {
    use std::arch::x86_64::*;
    debug_assert!(strip.len() >= kc * 6 && panel.len() >= kc * NR);
    let mut c = [[_mm256_setzero_ps(); 2]; 6];
    let (s, bp) = (strip.as_ptr(), panel.as_ptr());
    for p in 0..kc {
        // SAFETY: p < kc, and the panel holds kc × 16 values.
        let b = unsafe { [_mm256_loadu_ps(bp.add(p * NR)), _mm256_loadu_ps(bp.add(p * NR + 8))] };
        for (i, row) in c.iter_mut().enumerate() {
            // SAFETY: p · 6 + i < kc · 6, the strip's length.
            let a = _mm256_set1_ps(unsafe { *s.add(p * 6 + i) });
            row[0] = _mm256_fmadd_ps(a, b[0], row[0]);
            row[1] = _mm256_fmadd_ps(a, b[1], row[1]);
        }
    }
    for (i, row) in c.iter().enumerate() {
        // SAFETY: i · 16 + 16 ≤ 96 ≤ TILE.
        unsafe {
            _mm256_storeu_ps(tile.as_mut_ptr().add(i * NR), row[0]);
            _mm256_storeu_ps(tile.as_mut_ptr().add(i * NR + 8), row[1]);
        }
    }
}

/// `Σ_i x[i, j]` over the rows of `x` (`rows × n`, row-major), the rows added in order.
pub fn column_sums(n: usize, x: &[f32]) -> Vec<f32> {
    assert!(n > 0 && x.len().is_multiple_of(n));
    let mut sums = vec![0.0f32; n];
    sums.par_chunks_mut(256).enumerate().for_each(|(c, sums)| {
        for row in x.chunks_exact(n) {
            for (s, v) in sums.iter_mut().zip(&row[c * 256..]) {
                *s += v;
            }
        }
    });
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn paths() -> Vec<Path> {
        let mut paths = vec![Path::Plain];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                paths.push(Path::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                paths.push(Path::Avx512);
            }
        }
        paths
    }

    /// Every path against the definition in f64, on shapes with remainders in every direction,
    /// a sum longer than one chunk, transposed operands and a bias; and every path gives the
    /// plain path's bits.
    #[test]
    fn every_path_is_the_product_and_gives_the_same_bits() {
        for (m, n, k, transposed) in [
            (1, 1, 1, false),
            (7, 5, 3, false),
            (50, 45, 19, true),
            (97, 161, 64, false),
            (13, 33, KC + 37, true),
        ] {
            let (av, bv) = (values(m * k, 1), values(k * n, 2));
            let bias = values(n, 3);
            // Transposed: a stored as k × m and b as n × k.
            let (a, b) = if transposed {
                (
                    Mat {
                        data: &av,
                        rs: 1,
                        cs: m,
                    },
                    Mat {
                        data: &bv,
                        rs: 1,
                        cs: k,
                    },
                )
            } else {
                (
                    Mat {
                        data: &av,
                        rs: k,
                        cs: 1,
                    },
                    Mat {
                        data: &bv,
                        rs: n,
                        cs: 1,
                    },
                )
            };
            let mut want = vec![0.0f64; m * n];
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] =
                        (0..k).map(|p| a.at(i, p) as f64 * b.at(p, j) as f64).sum::<f64>() + bias[j] as f64;
                }
            }
            let mut first: Option<Vec<f32>> = None;
            for path in paths() {
                let mut out = vec![f32::NAN; m * n];
                matmul_on(path, m, n, k, a, b, Some(&bias), &mut out);
                for (o, w) in out.iter().zip(&want) {
                    assert!(
                        (*o as f64 - w).abs() <= 1e-5 * (k as f64).sqrt().max(1.0),
                        "{path:?} {m}x{n}x{k}: {o} against {w}"
                    );
                }
                match &first {
                    None => first = Some(out),
                    Some(f) => assert!(
                        f.iter().zip(&out).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{path:?} {m}x{n}x{k}: other bits"
                    ),
                }
            }
        }
    }

    #[test]
    fn column_sums_add_the_rows() {
        let x = values(7 * 300, 4);
        let sums = column_sums(300, &x);
        for j in 0..300 {
            let want: f32 = (0..7).fold(0.0, |s, i| s + x[i * 300 + j]);
            assert_eq!(sums[j].to_bits(), want.to_bits());
        }
    }
}
