//! Small dense linear algebra in f64 for the closed-form probe and the numerical rank: Cholesky
//! solves and eigenvalues of symmetric matrices (Householder tridiagonalisation + implicit QL).
//! Matrices are row-major `n x n` slices.

/// Dot product with four independent accumulators (vectorisable).
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail: f64 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in xc.zip(yc) {
        for l in 0..4 {
            acc[l] += a[l] * b[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Solve `A X = B` for symmetric positive-definite `A` (n x n) and `B` (n x m), in place in `b`.
/// Returns false when `A` is not positive definite.
pub fn cholesky_solve(a: &mut [f64], n: usize, b: &mut [f64], m: usize) -> bool {
    // Factor A = L Lᵀ, L stored in the lower triangle of `a`.
    for j in 0..n {
        let (head, tail) = a.split_at_mut((j + 1) * n);
        let row_j = &mut head[j * n..];
        let d = row_j[j] - dot(&row_j[..j], &row_j[..j]);
        if !(d > 0.0) || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        row_j[j] = d;
        let row_j = &row_j[..j];
        for row_i in tail.chunks_exact_mut(n) {
            row_i[j] = (row_i[j] - dot(&row_i[..j], row_j)) / d;
        }
    }
    // Forward substitution L Y = B, then back substitution Lᵀ X = Y, column block at a time.
    for i in 0..n {
        substitute(b, m, i, a[i * n + i], (0..i).map(|k| (k, a[i * n + k])));
    }
    for i in (0..n).rev() {
        substitute(b, m, i, a[i * n + i], (i + 1..n).map(|k| (k, a[k * n + i])));
    }
    true
}

/// One step of a triangular solve on the rows of `b` (`m` columns each):
/// `b[i] = (b[i] − Σ l·b[k]) / d` over the (k, l) `terms`.
fn substitute(b: &mut [f64], m: usize, i: usize, d: f64, terms: impl Iterator<Item = (usize, f64)>) {
    for (k, l) in terms {
        if l != 0.0 {
            for c in 0..m {
                b[i * m + c] -= l * b[k * m + c];
            }
        }
    }
    for c in 0..m {
        b[i * m + c] /= d;
    }
}

/// Eigenvalues of a symmetric n x n matrix (destroys `a`), in no particular order.
pub fn symmetric_eigenvalues(a: &mut [f64], n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let (mut d, mut e) = tridiagonalize(a, n);
    tql(&mut d, &mut e);
    d
}

/// Householder reduction to tridiagonal form (eigenvalues only). Returns (diagonal, off-diagonal)
/// with `e[i]` coupling rows i-1 and i (e[0] = 0).
fn tridiagonalize(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    let mut p = vec![0.0; n];
    for i in (1..n).rev() {
        let l = i - 1;
        let mut h = 0.0;
        if l > 0 {
            let scale: f64 = (0..=l).map(|k| a[i * n + k].abs()).sum();
            if scale == 0.0 {
                e[i] = a[i * n + l];
            } else {
                for k in 0..=l {
                    a[i * n + k] /= scale;
                    h += a[i * n + k] * a[i * n + k];
                }
                let f = a[i * n + l];
                let g = if f >= 0.0 { -h.sqrt() } else { h.sqrt() };
                e[i] = scale * g;
                h -= f * g;
                a[i * n + l] = f - g;
                let mut f_acc = 0.0;
                for j in 0..=l {
                    let mut g = 0.0;
                    for k in 0..=j {
                        g += a[j * n + k] * a[i * n + k];
                    }
                    for k in j + 1..=l {
                        g += a[k * n + j] * a[i * n + k];
                    }
                    p[j] = g / h;
                    f_acc += p[j] * a[i * n + j];
                }
                let hh = f_acc / (h + h);
                for j in 0..=l {
                    let f = a[i * n + j];
                    let g = p[j] - hh * f;
                    p[j] = g;
                    for k in 0..=j {
                        a[j * n + k] -= f * p[k] + g * a[i * n + k];
                    }
                }
            }
        } else {
            e[i] = a[i * n + l];
        }
        d[i] = h;
    }
    for i in 0..n {
        d[i] = a[i * n + i];
    }
    (d, e)
}

/// Implicit QL iterations on a tridiagonal matrix; eigenvalues end up in `d`.
fn tql(d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    for l in 0..n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            if iter > 60 {
                break;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + if g >= 0.0 { r.abs() } else { -r.abs() });
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut i = m;
            let mut early = false;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    early = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if early {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // A = [[4,2],[2,3]], b = [2, 1] → x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(cholesky_solve(&mut a, 2, &mut b, 1));
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
        let mut not_pd = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky_solve(&mut not_pd, 2, &mut [1.0, 1.0], 1));
    }

    #[test]
    fn eigenvalues_match_numpy() {
        // numpy 2.4.6: np.linalg.eigvalsh([[2,-1,0,0],[-1,2,-1,0],[0,-1,2,-1],[0,0,-1,2]])
        let mut a = vec![
            2.0, -1.0, 0.0, 0.0, -1.0, 2.0, -1.0, 0.0, 0.0, -1.0, 2.0, -1.0, 0.0, 0.0, -1.0, 2.0,
        ];
        let mut ev = symmetric_eigenvalues(&mut a, 4);
        ev.sort_by(f64::total_cmp);
        let expected = [
            0.3819660112501051,
            1.381966011250105,
            2.618033988749895,
            3.618033988749895,
        ];
        for (a, b) in ev.iter().zip(expected) {
            assert!((a - b).abs() < 1e-10, "{ev:?}");
        }
        // A rank-1 matrix vvᵀ has one non-zero eigenvalue |v|².
        let v = [1.0, 2.0, 3.0];
        let mut m: Vec<f64> = (0..9).map(|k| v[k / 3] * v[k % 3]).collect();
        let mut ev = symmetric_eigenvalues(&mut m, 3);
        ev.sort_by(f64::total_cmp);
        assert!(ev[0].abs() < 1e-10 && ev[1].abs() < 1e-10 && (ev[2] - 14.0).abs() < 1e-10);
    }
}
