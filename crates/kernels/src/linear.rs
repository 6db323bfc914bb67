//! The matrix product of the transformer's linear layers (forward, input gradient and weight
//! gradient), with AVX-512, AVX2 and plain paths that give the same bits.
//!
//! Every output is one chain of fused multiply-adds from zero in the order of the inner index, the
//! bias added last; vectors run across output columns, never across a sum. The sum goes through
//! the inner index in chunks of [`KC`] products (twice as many on the AVX2 path), so that a chunk
//! of the right operand stays in cache while every row of a task reads it, each chunk taking up
//! the chain where the last one left it in the output. So the vector width, the tile sizes, the
//! chunks and the thread count change which outputs share a register and a task, never the
//! rounding of any output.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::Out;

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
/// Products per chunk of a sum: a chunk of a task's columns of the right operand (128 × 576
/// values, 288 KiB, for the widest ViT-T layer) stays in L2 while the task's rows read it.
const KC: usize = 128;
/// The widest column block of [`product`]: a chunk of the right operand (`KC × NC` values, 256
/// KiB) stays in L2, beside the rest of the task's data, while every row of the output reads it,
/// however wide the product (an im2col'd convolution's columns are its output pixels: 12,544 for a
/// 224² stem, whose product ran at half the speed with chunks of 4,096 columns, 2 MiB).
const NC: usize = 512;
/// Rows of the output per task (columns: as many as keep every thread busy).
const MB: usize = 48;
/// Rows per task of [`matmul`] where a short sum (at most [`SHORT`] products) has rows enough for
/// many tasks: the threads then end within a smaller task of each other (the ViT-T's forward
/// products and input gradients on 2,048 rows ran 1–7% faster than with 48-row tasks). A long sum
/// (a weight gradient, over a batch's rows) keeps [`MB`]: each task reads the whole right operand,
/// too large for the caches there, and twice as many reads of it ran 7–9% slower.
const MB_SHORT: usize = 24;
/// The longest sum that [`MB_SHORT`] rows per task serve.
const SHORT: usize = 4 * KC;
/// The largest tile: 8 rows by 3 panels.
const TILE: usize = 8 * 3 * NR;
/// How many products ahead the AVX2 micro-kernel asks for the right operand's panel rows to be
/// brought into L1: a panel read in place has its rows a whole row of the operand apart (2–3 KiB
/// in a ViT-T's layers), and without the hint each row waited on L2 (the ViT-T's products ran 6–8%
/// faster with it, its weight gradients 10–15%). The AVX-512 kernel, with three panels and 24
/// accumulators, ran its products 15% slower with the same hints, so it goes without.
const AHEAD: usize = 16;
/// The fewest rows of a [`matmul`] whose right operand is packed even where it is row-major. Read
/// in place, each product's 16 columns of a panel lie a whole row of the operand apart (0.75–3 KiB
/// in a ViT-T's layers), so that a panel's rows fall in 4 to 16 of L1's 64 sets; packed, they are
/// one contiguous run. On two threads the ViT-T's forward products (2,048 rows) ran up to 10%
/// faster packed on the AVX2 path, the packing included (medians of three runs: the queries, keys
/// and values' 9%, the MLP's 4% and 4%, the projection level), and up to 12% faster with AVX-512
/// once a tile's panels stayed in L1 for every strip of a task's rows (see [`block`]); the weight
/// gradients (192–768 rows over 2,048 products) ran 4–18% slower packed into a kept buffer (1–20%
/// into a new one per call), the copy of their large right operand then weighing more than it
/// saves.
const PACK_ROWS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// 8 rows × 3 panels of 16-lane vectors.
    Avx512,
    /// 6 rows × 1 panel of two 8-lane vectors.
    Avx2,
    /// Scalar fused multiply-adds.
    Plain,
}

#[cfg(test)]
thread_local! {
    /// The path the tests make [`matmul`] take on their thread.
    static TEST_PATH: std::cell::Cell<Option<Path>> = const { std::cell::Cell::new(None) };
}

impl Path {
    /// The CPU's widest path (in tests, the one they chose).
    fn detect() -> Path {
        #[cfg(test)]
        if let Some(path) = TEST_PATH.get() {
            return path;
        }
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

    /// Products per chunk of a sum in [`block`]: [`KC`], and twice as many on the AVX2 path, whose
    /// tiles read one panel (a chunk of it 16 KiB, where AVX-512's three are 24 KiB at [`KC`]).
    /// There the ViT-T's products, whose sums of 192 products then go in one chunk instead of two,
    /// ran 1–8% faster in the forward pass, 1–4% in the input gradients and level in the weight
    /// gradients (six alternating runs on a Xeon), and chunks of 192, 384 or 512 as fast as 256;
    /// with AVX-512, 192 or 256 products a chunk were level with 128.
    fn chunk(self) -> usize {
        match self {
            Path::Avx2 => 2 * KC,
            _ => KC,
        }
    }

    /// Rows and panels of a tile.
    fn tile(self) -> (usize, usize) {
        match self {
            Path::Avx512 => (8, 3),
            Path::Avx2 => (6, 1),
            Path::Plain => (4, 1),
        }
    }
}

/// What is applied to every output after the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    Nothing,
    /// The exact GELU, bit for bit [`crate::transformer::gelu_forward`]'s, applied by each task
    /// to its block while the block is in cache.
    Gelu,
}

/// `out[m × n]` (row-major) `= a[m × k] · b[k × n]`, plus `bias[n]` on every row when given,
/// then `then` on every output. `out` need not be initialised: every element is written, none is
/// read before it is.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    bias: Option<&[f32]>,
    then: Then,
    out: &mut [MaybeUninit<f32>],
) {
    let path = Path::detect();
    assert_eq!(out.len(), m * n);
    assert!(a.covers(m, k) && b.covers(k, n) && bias.is_none_or(|b| b.len() == n));
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for row in out.chunks_exact_mut(n) {
            for (j, o) in row.iter_mut().enumerate() {
                o.write(bias.map_or(0.0, |b| b[j]));
            }
            // SAFETY: the row was written just above.
            let row = unsafe { std::slice::from_raw_parts_mut(row.as_mut_ptr().cast::<f32>(), n) };
            if then == Then::Gelu {
                crate::transformer::gelu_in_place(row);
            }
        }
        return;
    }
    let panels = Panels::new(b, k, n, true, m < PACK_ROWS);
    // Whole rows per task where that makes enough tasks, so that each task packs its rows of the
    // left operand once; else the columns are split too. Which task computes an output never
    // changes its sum.
    let want = 4 * rayon::current_num_threads();
    let mb = if k <= SHORT && m.div_ceil(MB) >= want {
        MB_SHORT
    } else {
        MB
    };
    let row_blocks = m.div_ceil(mb);
    let nb = if row_blocks >= want {
        n
    } else {
        n.div_ceil(want.div_ceil(row_blocks)).next_multiple_of(3 * NR)
    };
    let col_blocks = n.div_ceil(nb);
    let dst = Out(out.as_mut_ptr().cast::<f32>());
    (0..row_blocks * col_blocks).into_par_iter().for_each(|task| {
        let (r0, c0) = (task / col_blocks * mb, task % col_blocks * nb);
        let (rows, cols) = (mb.min(m - r0), nb.min(n - c0));
        let bias = bias.map(|b| &b[c0..c0 + cols]);
        block(
            path,
            a,
            &panels,
            (r0, rows),
            (c0, cols),
            (0, k),
            (dst, n),
            (false, bias),
        );
        if then == Then::Nothing {
            return;
        }
        for i in 0..rows {
            // SAFETY: row r0 + i, columns c0 .. + cols are this task's, and written by `block`.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.at((r0 + i) * n + c0), cols) };
            crate::transformer::gelu_in_place(row);
        }
    });
}

/// `out[m × n] = a[m × k] · b[k × n]` on the calling thread, row `i` of the output at
/// `out[i·rs..]`; where `carry`, each output's chain of fused multiply-adds starts from its value
/// instead of zero, so that products over consecutive ranges of the inner index make one chain.
pub(crate) fn product(m: usize, n: usize, k: usize, a: Mat, b: Mat, (out, rs): (&mut [f32], usize), carry: bool) {
    assert!(a.covers(m, k) && b.covers(k, n));
    assert!(m == 0 || n == 0 || (m - 1) * rs + n <= out.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !carry {
            out.chunks_mut(rs).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    let panels = Panels::new(b, k, n, false, true);
    let dst = Out(out.as_mut_ptr());
    // Column blocks of equal width (whole tiles), as few as keep each under NC.
    let nc = n.div_ceil(n.div_ceil(NC)).next_multiple_of(3 * NR);
    for c0 in (0..n).step_by(nc) {
        let cols = nc.min(n - c0);
        // A column block of the right operand larger than a chunk (a late conv layer's im2col
        // matrix: 4,608 × 294 values) would be read from memory by every block of rows: there the
        // chunks go outside the row blocks, each read from cache by all of them, and the output's
        // block, carried from chunk to chunk, stays in cache instead.
        let chunk = if k * cols > KC * NC { KC } else { k };
        for k0 in (0..k).step_by(chunk) {
            for r0 in (0..m).step_by(MB) {
                block(
                    Path::detect(),
                    a,
                    &panels,
                    (r0, MB.min(m - r0)),
                    (c0, cols),
                    (k0, chunk.min(k - k0)),
                    (dst, rs),
                    (carry, None),
                );
            }
        }
    }
}

/// [`product`] with the operands given by their (row, column) strides: `dst[m, n] (+)= lhs[m, k]
/// · rhs[k, n]`, the output's rows contiguous, continued from its values where `accumulate` (the
/// convolutions' and the attention's products).
#[allow(clippy::too_many_arguments)]
pub(crate) fn strided(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (rs, cs): (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    assert_eq!(cs, 1, "the output's rows are contiguous");
    let mat = |data, (rs, cs)| Mat { data, rs, cs };
    product(
        m,
        n,
        k,
        mat(lhs, lhs_strides),
        mat(rhs, rhs_strides),
        (dst, rs),
        accumulate,
    );
}

/// NR columns of the right operand from some product on: product `p`'s at `ptr[p·rs ..][..NR]`.
#[derive(Clone, Copy)]
struct Panel {
    ptr: *const f32,
    rs: usize,
}

/// The right operand (`k × n`) as panels of [`NR`] columns. A row-major operand's whole panels
/// can be read in place (packing them would copy every value for one pass over it when the left
/// operand has few rows, as in a weight gradient); the others are packed, `k × NR` each, zero
/// beyond the last column.
struct Panels<'a> {
    b: Mat<'a>,
    k: usize,
    /// Panels read in place: the first `in_place`.
    in_place: usize,
    /// The panels from `in_place` on (and stale values past them).
    packed: Vec<f32>,
}

thread_local! {
    /// The buffer of this thread's last packed panels, kept for the next product: a new one per
    /// call is fresh memory as often as not while a training step holds its activations, and
    /// faulting its pages in cost more than packing a ViT-T's forward products saved.
    static PACKED: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The most values a thread keeps in [`PACKED`] (16 MiB).
const KEPT_PACKED: usize = 4 << 20;

impl Drop for Panels<'_> {
    fn drop(&mut self) {
        if self.packed.len() <= KEPT_PACKED {
            PACKED.set(std::mem::take(&mut self.packed));
        }
    }
}

impl<'a> Panels<'a> {
    /// The panels of `b`, packed by the rayon pool where `parallel`, else on this thread; a
    /// row-major `b`'s whole panels read in place where `read_in_place`.
    fn new(b: Mat<'a>, k: usize, n: usize, parallel: bool, read_in_place: bool) -> Self {
        let in_place = if b.cs == 1 && read_in_place { n / NR } else { 0 };
        let len = (n.div_ceil(NR) - in_place) * k * NR;
        // This thread's buffer from the last call (an empty one if a call on this thread holds it).
        let mut packed = PACKED.take();
        if packed.len() < len {
            packed.resize(len, 0.0);
        }
        let pack = |(q, panel): (usize, &mut [f32])| {
            let c0 = (in_place + q) * NR;
            let cols = NR.min(n - c0);
            if cols < NR {
                panel.fill(0.0);
            }
            if b.cs == 1 {
                // Row-major: each product's columns are contiguous (a whole panel's copied in
                // fixed-size copies, which compile to vector moves where a slice copy is a call).
                for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                    let src = &b.data[p * b.rs + c0..][..cols];
                    match <&[f32; NR]>::try_from(src) {
                        Ok(src) => row.copy_from_slice(src),
                        Err(_) => row[..cols].copy_from_slice(src),
                    }
                }
            } else if b.rs == 1 {
                // Column-major (a transpose): each column's products are contiguous; the panel is
                // written in order, eight products of every column at a time.
                let columns: Vec<&[f32]> = (0..cols).map(|j| &b.data[(c0 + j) * b.cs..][..k]).collect();
                for (p0, rows) in panel.chunks_mut(8 * NR).enumerate() {
                    for (j, column) in columns.iter().enumerate() {
                        for (row, &x) in rows.chunks_exact_mut(NR).zip(&column[p0 * 8..]) {
                            row[j] = x;
                        }
                    }
                }
            } else {
                for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                    for (j, v) in row[..cols].iter_mut().enumerate() {
                        *v = b.at(p, c0 + j);
                    }
                }
            }
        };
        if parallel {
            packed[..len].par_chunks_mut(k * NR).enumerate().for_each(pack);
        } else {
            packed[..len].chunks_mut(k * NR).enumerate().for_each(pack);
        }
        Panels { b, k, in_place, packed }
    }

    /// Panel `q` from product `k0` on.
    fn panel(&self, q: usize, k0: usize) -> Panel {
        if q < self.in_place {
            Panel {
                ptr: self.b.data[k0 * self.b.rs + q * NR..].as_ptr(),
                rs: self.b.rs,
            }
        } else {
            Panel {
                ptr: self.packed[(q - self.in_place) * self.k * NR + k0 * NR..].as_ptr(),
                rs: NR,
            }
        }
    }
}

/// The left operand of a tile: row `i`, product `p` at `ptr[i·rs + p·cs]`.
#[derive(Clone, Copy)]
struct Rows {
    ptr: *const f32,
    rs: usize,
    cs: usize,
}

/// Where a tile's sums go: row `i`, column `j` at `ptr[i·rs + j]`; `carry`: the chain starts
/// from the values there (a chunk after the first) instead of zero; `bias`, unless null: column
/// `j`'s bias at `bias[j]`, added to each sum as it is stored (the last chunk of a sum).
#[derive(Clone, Copy)]
struct Sums {
    ptr: *mut f32,
    rs: usize,
    carry: bool,
    bias: *const f32,
}

/// One task: rows `r0..r0 + rows` and columns `c0..c0 + cols` of the output (row stride `rs`),
/// through `dst`, over the products `p0..p0 + len`. The first chunk of each sum starts from zero
/// (from the output's values where `carry` or `p0 > 0`), the others from what the last one wrote;
/// the last adds `bias` (the block's columns), when given, to every sum it stores.
/// Tiles of whole panels are read from a row-major left operand in place and written straight to
/// the output (with AVX-512, only those of whole rows too); the others go through a packed strip
/// and a tile buffer. Within a chunk, each tile's panels (`kc` × 16 to 48 values, 16–24 KiB) are
/// read by every strip of the task's rows before the next panels, so that they are brought into L1
/// once, and the rows' strips (`mr` × `kc` values, 4–6 KiB each) are read again from L1 or L2: the
/// other order, the right operand's whole chunk streamed from L2 for each strip of rows, ran the
/// ViT-T's products up to 7% slower with AVX-512 (medians of five runs; level on the AVX2 path).
#[allow(clippy::too_many_arguments)]
fn block(
    path: Path,
    a: Mat,
    b: &Panels,
    (r0, rows): (usize, usize),
    (c0, cols): (usize, usize),
    (p0, len): (usize, usize),
    (dst, rs): (Out, usize),
    (carry, bias): (bool, Option<&[f32]>),
) {
    let (mr, np) = path.tile();
    // The packed strips and the tile buffer, made when a tile first needs them (an attention's
    // products need neither).
    let (mut strips, mut tile) = (Vec::new(), Vec::new());
    // The left operand's strips of `mr` rows for the current chunk: (first row, rows, whether the
    // kernel writes it straight to the output, where it is read).
    let mut left: Vec<(usize, usize, bool, Rows)> = Vec::with_capacity(rows.div_ceil(mr));
    let end = p0 + len;
    let chunk = path.chunk();
    for k0 in (p0..end).step_by(chunk) {
        let kc = chunk.min(end - k0);
        // The bias with the last chunk's sums.
        let bias = bias.filter(|_| k0 + kc == end);
        left.clear();
        left.extend((0..rows).step_by(mr).enumerate().map(|(s, i0)| {
            let live = mr.min(rows - i0);
            // The AVX2 and plain kernels take any number of rows up to a tile's, so that a
            // partial tile too is read in place and written straight to the output (16 rows,
            // a ViT-T's tokens at 32², are tiles of 6, 6 and 4 rows there); AVX-512's take 8.
            let fits = live == mr || path != Path::Avx512;
            let rows_at = if a.cs == 1 && fits {
                Rows {
                    ptr: a.data[(r0 + i0) * a.rs + k0..].as_ptr(),
                    rs: a.rs,
                    cs: 1,
                }
            } else {
                if strips.is_empty() {
                    strips = vec![0.0f32; rows.div_ceil(mr) * mr * chunk.min(len)];
                }
                let strip = &mut strips[s * mr * kc..][..mr * kc];
                pack_rows(a, (r0 + i0, live), (k0, kc), mr, strip);
                Rows {
                    ptr: strip.as_ptr(),
                    rs: 1,
                    cs: mr,
                }
            };
            (i0, live, fits, rows_at)
        }));
        // Each tile's panels of the right operand (`kc` × up to 48 values) stay in L1 while every
        // strip of the task's rows passes over them.
        let mut j0 = 0;
        while j0 < cols {
            let q = (c0 + j0) / NR;
            let panel = |q: usize| b.panel(q, k0);
            // As many panels as the path takes and the block has.
            let wide = np.min((cols - j0).div_ceil(NR));
            let width = wide * NR;
            let len = width.min(cols - j0);
            for &(i0, live, fits, left) in &left {
                let direct = fits && len == width;
                // Row i of this tile in the output.
                let row_at = |i: usize| dst.at((r0 + i0 + i) * rs + c0 + j0);
                let out = if direct {
                    Sums {
                        ptr: row_at(0),
                        rs,
                        carry: carry || k0 > 0,
                        bias: bias.map_or(std::ptr::null(), |b| b[j0..].as_ptr()),
                    }
                } else {
                    if tile.is_empty() {
                        tile = vec![0.0f32; TILE];
                    }
                    if carry || k0 > 0 {
                        for i in 0..live {
                            // SAFETY: row r0 + i0 + i, columns c0 + j0 .. + len lie in this
                            // task's block of the output, written by the last chunk.
                            let row = unsafe { std::slice::from_raw_parts(row_at(i), len) };
                            tile[i * width..i * width + len].copy_from_slice(row);
                        }
                    }
                    Sums {
                        ptr: tile.as_mut_ptr(),
                        rs: width,
                        carry: carry || k0 > 0,
                        bias: std::ptr::null(),
                    }
                };
                // SAFETY: the path was chosen from the CPU's features; `left` reaches mr rows ×
                // kc products inside `a` or the strips, each panel reaches kc × NR values from
                // product k0, and `out` reaches mr rows × width columns inside this task's block
                // of the output or the tile buffer.
                unsafe {
                    match (path, wide) {
                        #[cfg(target_arch = "x86_64")]
                        (Path::Avx512, 3) => avx512::<3>(kc, left, [panel(q), panel(q + 1), panel(q + 2)], out),
                        #[cfg(target_arch = "x86_64")]
                        (Path::Avx512, 2) => avx512::<2>(kc, left, [panel(q), panel(q + 1)], out),
                        #[cfg(target_arch = "x86_64")]
                        (Path::Avx512, _) => avx512::<1>(kc, left, [panel(q)], out),
                        #[cfg(target_arch = "x86_64")]
                        (Path::Avx2, _) => avx2_rows(live, kc, left, panel(q), out),
                        _ => plain(live, kc, left, panel(q), out),
                    }
                }
                if !direct {
                    for (i, sums) in tile.chunks_exact_mut(width).take(live).enumerate() {
                        let sums = &mut sums[..len];
                        if let Some(bias) = bias {
                            widest!(add(sums, &bias[j0..j0 + len]));
                        }
                        // SAFETY: row r0 + i0 + i, columns c0 + j0 .. + len lie in this task's
                        // block of the output.
                        unsafe { std::ptr::copy_nonoverlapping(sums.as_ptr(), row_at(i), len) };
                    }
                }
            }
            j0 += width;
        }
    }
}

/// Rows `r0..r0 + rows` (at most `mr`), products `k0..k0 + kc` of `a` into `strip`, interleaved by
/// product (`strip[p·mr + i]`), rows past `rows` zero.
fn pack_rows(a: Mat, (r0, rows): (usize, usize), (k0, kc): (usize, usize), mr: usize, strip: &mut [f32]) {
    let strip = &mut strip[..mr * kc];
    if rows < mr {
        strip.fill(0.0);
    }
    let first = r0 * a.rs + k0 * a.cs;
    if a.rs == 1 && rows == mr && mr == 8 {
        whole_strip::<8>(&a.data[first..], a.cs, strip);
    } else if a.rs == 1 && rows == mr && mr == 6 {
        whole_strip::<6>(&a.data[first..], a.cs, strip);
    } else if a.rs == 1 {
        // Column-major (a transpose): each product's rows are contiguous.
        for p in 0..kc {
            strip[p * mr..p * mr + rows].copy_from_slice(&a.data[first + p * a.cs..][..rows]);
        }
    } else {
        for p in 0..kc {
            for i in 0..rows {
                strip[p * mr + i] = a.data[first + i * a.rs + p * a.cs];
            }
        }
    }
}

/// A whole strip of a transpose (`MR` contiguous rows for each product, products `cs` apart) in
/// fixed-size copies that compile to vector moves (a slice copy of a few values is a call).
#[inline(always)]
fn whole_strip<const MR: usize>(a: &[f32], cs: usize, strip: &mut [f32]) {
    for (p, dst) in strip.chunks_exact_mut(MR).enumerate() {
        let src: &[f32; MR] = a[p * cs..][..MR].try_into().expect("a strip's rows");
        dst.copy_from_slice(src);
    }
}

/// A `rows × NR` tile with scalar fused multiply-adds.
///
/// # Safety
/// As for [`avx512`], with `rows` rows.
unsafe fn plain(rows: usize, kc: usize, a: Rows, panel: Panel, out: Sums) {
    for i in 0..rows {
        for j in 0..NR {
            // SAFETY: the caller's bounds.
            let o = unsafe { out.ptr.add(i * out.rs + j) };
            let mut sum = if out.carry { unsafe { *o } } else { 0.0 };
            for p in 0..kc {
                // SAFETY: the caller's bounds.
                sum = unsafe { (*a.ptr.add(i * a.rs + p * a.cs)).mul_add(*panel.ptr.add(p * panel.rs + j), sum) };
            }
            if !out.bias.is_null() {
                // SAFETY: the caller's bounds.
                sum += unsafe { *out.bias.add(j) };
            }
            // SAFETY: the caller's bounds.
            unsafe { *o = sum };
        }
    }
}

/// An 8 × (NP · 16) tile.
///
/// # Safety
/// The CPU has AVX-512F; `a` reaches 8 rows × `kc` products, each panel `kc` × 16 values, and
/// `out` 8 rows × NP · 16 columns (its bias, unless null, NP · 16 values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<const NP: usize>(kc: usize, a: Rows, panels: [Panel; NP], out: Sums) {
    use std::arch::x86_64::*;
    // SAFETY (the loads): row i, columns q · 16 .. + 16 of `out`.
    let mut c: [[__m512; NP]; 8] = std::array::from_fn(|i| {
        std::array::from_fn(|q| match out.carry {
            true => unsafe { _mm512_loadu_ps(out.ptr.add(i * out.rs + q * NR)) },
            false => _mm512_setzero_ps(),
        })
    });
    let rows: [*const f32; 8] = std::array::from_fn(|i| a.ptr.wrapping_add(i * a.rs));
    // Product p's multiply-adds into every sum of the tile.
    let step = |c: &mut [[__m512; NP]; 8], p: usize| {
        // SAFETY: p < kc.
        let b: [__m512; NP] = std::array::from_fn(|q| unsafe { _mm512_loadu_ps(panels[q].ptr.add(p * panels[q].rs)) });
        for (i, row) in c.iter_mut().enumerate() {
            // SAFETY: row i, product p.
            let x = _mm512_set1_ps(unsafe { *rows[i].add(p * a.cs) });
            for q in 0..NP {
                row[q] = _mm512_fmadd_ps(x, b[q], row[q]);
            }
        }
    };
    // Four products per turn of the loop, so that one turn's counter and pointer updates serve four
    // products' multiply-adds (the ViT-T's products ran 2–9% faster than with one per turn).
    let mut p = 0;
    while p + 4 <= kc {
        for u in 0..4 {
            step(&mut c, p + u);
        }
        p += 4;
    }
    for p in p..kc {
        step(&mut c, p);
    }
    if !out.bias.is_null() {
        // SAFETY: columns q · 16 .. + 16 of the bias.
        let bias: [__m512; NP] = std::array::from_fn(|q| unsafe { _mm512_loadu_ps(out.bias.add(q * NR)) });
        for row in &mut c {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = _mm512_add_ps(*v, b);
            }
        }
    }
    for (i, row) in c.iter().enumerate() {
        for (q, v) in row.iter().enumerate() {
            // SAFETY: row i, columns q · 16 .. + 16.
            unsafe { _mm512_storeu_ps(out.ptr.add(i * out.rs + q * NR), *v) };
        }
    }
}

/// A `rows` × 16 tile, `rows` from 1 to 6.
///
/// # Safety
/// As for [`avx2`] with `rows` rows.
#[cfg(target_arch = "x86_64")]
unsafe fn avx2_rows(rows: usize, kc: usize, a: Rows, panel: Panel, out: Sums) {
    // SAFETY: the caller's.
    unsafe {
        match rows {
            6 => avx2::<6>(kc, a, panel, out),
            5 => avx2::<5>(kc, a, panel, out),
            4 => avx2::<4>(kc, a, panel, out),
            3 => avx2::<3>(kc, a, panel, out),
            2 => avx2::<2>(kc, a, panel, out),
            _ => avx2::<1>(kc, a, panel, out),
        }
    }
}

/// An MR × 16 tile.
///
/// # Safety
/// The CPU has AVX2 and FMA; `a` reaches MR rows × `kc` products, the panel `kc` × 16 values, and
/// `out` MR rows × 16 columns (its bias, unless null, 16 values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<const MR: usize>(kc: usize, a: Rows, panel: Panel, out: Sums) {
    use std::arch::x86_64::*;
    // SAFETY (the loads): row i, columns h · 8 .. + 8 of `out`.
    let mut c: [[__m256; 2]; MR] = std::array::from_fn(|i| {
        std::array::from_fn(|h| match out.carry {
            true => unsafe { _mm256_loadu_ps(out.ptr.add(i * out.rs + h * 8)) },
            false => _mm256_setzero_ps(),
        })
    });
    let rows: [*const f32; MR] = std::array::from_fn(|i| a.ptr.wrapping_add(i * a.rs));
    for p in 0..kc {
        // A hint only: an address past the panel is never read.
        _mm_prefetch::<_MM_HINT_T0>(panel.ptr.wrapping_add((p + AHEAD) * panel.rs).cast());
        // SAFETY: p < kc.
        let b = unsafe {
            [
                _mm256_loadu_ps(panel.ptr.add(p * panel.rs)),
                _mm256_loadu_ps(panel.ptr.add(p * panel.rs + 8)),
            ]
        };
        for (i, row) in c.iter_mut().enumerate() {
            // SAFETY: row i, product p.
            let x = _mm256_set1_ps(unsafe { *rows[i].add(p * a.cs) });
            row[0] = _mm256_fmadd_ps(x, b[0], row[0]);
            row[1] = _mm256_fmadd_ps(x, b[1], row[1]);
        }
    }
    if !out.bias.is_null() {
        // SAFETY: columns h · 8 .. + 8 of the bias.
        let bias: [__m256; 2] = std::array::from_fn(|h| unsafe { _mm256_loadu_ps(out.bias.add(h * 8)) });
        for row in &mut c {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = _mm256_add_ps(*v, b);
            }
        }
    }
    for (i, row) in c.iter().enumerate() {
        for (h, v) in row.iter().enumerate() {
            // SAFETY: row i, columns h · 8 .. + 8.
            unsafe { _mm256_storeu_ps(out.ptr.add(i * out.rs + h * 8), *v) };
        }
    }
}

/// `Σ_i x[i, j]` over the rows of `x` (`rows × n`, row-major), the rows added in order. The
/// columns go to the threads in blocks of [`SUM_BLOCK`], each block's sums held in registers.
pub fn column_sums(n: usize, x: &[f32]) -> Vec<f32> {
    assert!(n > 0 && x.len().is_multiple_of(n));
    let mut sums = vec![0.0f32; n];
    sums.par_chunks_mut(SUM_BLOCK).enumerate().for_each(|(c, sums)| {
        let width = sums.len();
        let rows = x.chunks_exact(n).map(|row| &row[c * SUM_BLOCK..][..width]);
        widest!(sum_rows(sums, rows));
    });
    sums
}

/// Columns per task of [`column_sums`].
const SUM_BLOCK: usize = 64;

/// `sums[j] = Σ row[j]` over `rows` in order; a whole block's sums in a local array.
#[inline(always)]
fn sum_rows<'a>(sums: &mut [f32], rows: impl Iterator<Item = &'a [f32]>) {
    let Ok(block) = <&mut [f32; SUM_BLOCK]>::try_from(&mut *sums) else {
        return rows.for_each(|row| add(sums, row));
    };
    let mut acc = [0.0f32; SUM_BLOCK];
    for row in rows {
        let row: &[f32; SUM_BLOCK] = row.try_into().expect("a whole block");
        for (a, x) in acc.iter_mut().zip(row) {
            *a += x;
        }
    }
    *block = acc;
}

/// `y[j] += x[j]` for the values of `y`.
#[inline(always)]
fn add(y: &mut [f32], x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::uninit;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::testing::values(n, seed, (-1.0, 1.0))
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
    /// sums over several chunks, transposed operands, a bias, rows enough for tasks of
    /// [`MB_SHORT`] rows (on two threads, as all of these) and for [`PACK_ROWS`]; and every path
    /// gives the bits of one chain of fused multiply-adds in the order of the inner index, then
    /// the bias.
    #[test]
    fn every_path_is_the_product_and_gives_the_same_bits() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        for (m, n, k, transposed) in [
            (1, 1, 1, false),
            (7, 5, 3, false),
            (50, 45, 19, true),
            (97, 161, 64, false),
            (13, 33, 2 * KC + 37, true),
            (9, 50, 3 * KC, false),
            (8 * MB + 5, 21, 37, false),
            // Rows enough for the AVX2 path to pack a row-major right operand.
            (PACK_ROWS + 7, 2 * NR + 5, 45, false),
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
            let mut chain = vec![0.0f32; m * n];
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] =
                        (0..k).map(|p| a.at(i, p) as f64 * b.at(p, j) as f64).sum::<f64>() + bias[j] as f64;
                    chain[i * n + j] = (0..k).fold(0.0f32, |s, p| a.at(i, p).mul_add(b.at(p, j), s)) + bias[j];
                }
            }
            for path in paths() {
                // The product on the pool's threads, on `path`.
                let on_path = |then, out: &mut [f32]| {
                    pool.install(|| {
                        TEST_PATH.set(Some(path));
                        matmul(m, n, k, a, b, Some(&bias), then, uninit(out));
                    })
                };
                let mut out = vec![f32::NAN; m * n];
                on_path(Then::Nothing, &mut out);
                for (o, w) in out.iter().zip(&want) {
                    assert!(
                        (*o as f64 - w).abs() <= 1e-5 * (k as f64).sqrt().max(1.0),
                        "{path:?} {m}x{n}x{k}: {o} against {w}"
                    );
                }
                // The fused GELU: the GELU pass's bits on the product's.
                let mut fused = vec![f32::NAN; m * n];
                on_path(Then::Gelu, &mut fused);
                let mut apart = vec![f32::NAN; m * n];
                crate::transformer::gelu_forward(&out, uninit(&mut apart));
                assert!(
                    fused.iter().zip(&apart).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{path:?} {m}x{n}x{k}: the fused GELU differs"
                );
                assert!(
                    chain.iter().zip(&out).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{path:?} {m}x{n}x{k}: not the bits of one chain"
                );
            }
        }
    }

    /// The single-threaded product on more columns than one block takes (three blocks, the right
    /// operand row-major and transposed) and two blocks of rows, its inner index split in two
    /// ranges, the first long enough that its chunks go outside the row blocks, the second
    /// carried on from the first: every path gives the bits of one chain.
    #[test]
    fn a_wide_product_in_column_blocks_and_carried_ranges_is_one_chain() {
        let (m, n, k, split) = (MB + 10, NC + 700, 2 * KC + 5, KC + 40);
        let (av, bv) = (values(m * k, 5), values(k * n, 6));
        let a = Mat {
            data: &av,
            rs: k,
            cs: 1,
        };
        for b in [
            Mat {
                data: &bv,
                rs: n,
                cs: 1,
            },
            Mat {
                data: &bv,
                rs: 1,
                cs: k,
            },
        ] {
            let chain: Vec<f32> = (0..m * n)
                .map(|o| (0..k).fold(0.0f32, |s, p| a.at(o / n, p).mul_add(b.at(p, o % n), s)))
                .collect();
            for path in paths() {
                TEST_PATH.set(Some(path));
                let mut out = vec![f32::NAN; m * n];
                product(m, n, split, a, b, (&mut out, n), false);
                let (a2, b2) = (
                    Mat {
                        data: &av[split..],
                        ..a
                    },
                    Mat {
                        data: &bv[split * b.rs..],
                        ..b
                    },
                );
                product(m, n, k - split, a2, b2, (&mut out, n), true);
                assert!(
                    chain.iter().zip(&out).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{path:?}, right operand strides ({}, {}): not the bits of one chain",
                    b.rs,
                    b.cs
                );
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
