//! Numerical rank of a representation (method §9): the number of singular values of the feature
//! covariance above 1e-3 of the largest.

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::probe::linalg::symmetric_eigenvalues;

/// Most feature columns used; wider representations are subsampled (seeded) to this many.
pub const MAX_COLUMNS: usize = 8000;
/// Relative threshold on the singular values.
pub const THRESHOLD: f64 = 1e-3;

/// Rank of the row-major `[n, dim]` matrix `x` after centring its columns. The eigenvalues of
/// XᵀX/(n−1) are obtained from the smaller of the two Gram matrices (XᵀX or XXᵀ share their
/// non-zero spectrum).
pub fn numerical_rank(x: &[f32], n: usize, dim: usize, seed: u64) -> usize {
    if n < 2 || dim == 0 || x.len() != n * dim {
        return 0;
    }
    let cols: Vec<usize> = if dim > MAX_COLUMNS {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut c = sample(&mut rng, dim, MAX_COLUMNS).into_vec();
        c.sort_unstable();
        c
    } else {
        (0..dim).collect()
    };
    let d = cols.len();
    let mut m = vec![0f64; n * d];
    for (j, &c) in cols.iter().enumerate() {
        let mean = (0..n).map(|i| x[i * dim + c] as f64).sum::<f64>() / n as f64;
        for i in 0..n {
            m[i * d + j] = x[i * dim + c] as f64 - mean;
        }
    }
    let size = n.min(d);
    let mut gram = vec![0f64; size * size];
    if d <= n {
        for row in m.chunks_exact(d) {
            for a in 0..d {
                let ra = row[a];
                if ra == 0.0 {
                    continue;
                }
                let g = &mut gram[a * d..a * d + d];
                for (b, gb) in g.iter_mut().enumerate().skip(a) {
                    *gb += ra * row[b];
                }
            }
        }
    } else {
        for a in 0..n {
            for b in a..n {
                let (ra, rb) = (&m[a * d..(a + 1) * d], &m[b * d..(b + 1) * d]);
                gram[a * n + b] = ra.iter().zip(rb).map(|(p, q)| p * q).sum();
            }
        }
    }
    for a in 0..size {
        for b in 0..a {
            gram[a * size + b] = gram[b * size + a];
        }
    }
    let ev = symmetric_eigenvalues(&mut gram, size);
    let max = ev.iter().copied().fold(0.0, f64::max);
    if !(max > 0.0) {
        return 0;
    }
    ev.iter().filter(|&&s| s > THRESHOLD * max).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_of_constructed_matrices() {
        // Rows in a 2-D subspace of R^5 (plus centring): rank 2.
        let basis = [[1.0, 0.0, 2.0, 0.0, 1.0], [0.0, 1.0, 0.0, 3.0, -1.0]];
        let coef = [
            [1.0, 2.0],
            [2.0, -1.0],
            [0.5, 0.5],
            [-1.0, 3.0],
            [3.0, 1.0],
            [0.0, -2.0],
        ];
        let x: Vec<f32> = coef
            .iter()
            .flat_map(|c| (0..5).map(move |j| (c[0] * basis[0][j] + c[1] * basis[1][j]) as f32))
            .collect();
        assert_eq!(numerical_rank(&x, 6, 5, 0), 2);
        // Identity-like data of full rank 3 with n = 4 (centring removes one dimension at most).
        let y = [1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        assert_eq!(numerical_rank(&y, 4, 3, 0), 3);
        // Wide case (n < dim) uses the other Gram matrix and agrees: the rank is at most n − 1.
        let wide: Vec<f32> = (0..3 * 7).map(|k| ((k * 37 % 11) as f32).sin()).collect();
        assert_eq!(numerical_rank(&wide, 3, 7, 0), 2);
        assert_eq!(numerical_rank(&[1.0, 1.0, 1.0, 1.0], 2, 2, 0), 0);
    }
}
