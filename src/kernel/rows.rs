//! Softmax, cross-entropy and dot products whose bits do not depend on the CPU's vector width.
//!
//! burn's CPU backend sums along the last axis (and over a whole tensor) with one accumulator
//! per vector lane: 8 lanes with AVX2, 16 with AVX-512. A cross-entropy over 10 classes therefore
//! rounds differently on the two kinds of machine, and training turns the last-bit difference into
//! a different network within a few epochs. Its matrix product has one x86-64 path (AVX2 + FMA),
//! summing each output in the same order on every such CPU, so the sums here are matrix products
//! with a column of ones; reductions over the first axis (bias gradients) already add rows in
//! order. The formulas avoid broadcasting a tracked column over a row, whose gradient would be a
//! last-axis sum again.

use burn::tensor::Tensor;

/// Σ_j x[i, j] as a column `[n, 1]`.
pub fn row_sums(x: Tensor<2>) -> Tensor<2> {
    let [_, k] = x.dims();
    let ones = Tensor::<2>::ones([k, 1], &x.device());
    x.matmul(ones)
}

/// The mean of a column `[n, 1]`, as a tensor of one value.
fn column_mean(col: Tensor<2>) -> Tensor<1> {
    let [n, _] = col.dims();
    let ones = Tensor::<2>::ones([1, n], &col.device());
    ones.matmul(col).reshape([1]).div_scalar(n as f64)
}

/// Softmax over each row of an untracked `[n, k]` tensor (the normaliser is broadcast, so a
/// gradient through it would sum along rows).
pub fn softmax(x: Tensor<2>) -> Tensor<2> {
    let m = x.clone().max_dim(1);
    let e = (x - m).exp();
    e.clone() / row_sums(e)
}

/// Mean over rows of the cross-entropy between the softmax of `logits` and soft `targets` whose
/// rows each sum to 1: `mean_i (logsumexp_i(x) − Σ_j t_ij x_ij)`, which equals
/// `−mean_i Σ_j t_ij log softmax(x)_ij` for such targets. A class with target 0 and a logit far
/// below the row's maximum (a masked class) adds nothing, and gets no gradient.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let m = logits.clone().detach().max_dim(1);
    let lse = row_sums((logits.clone() - m.clone()).exp()).log() + m;
    column_mean(lse - row_sums(logits * targets))
}

/// Σ a_i b_i of two vectors of the same length, as a tensor of one value.
pub fn dot(a: Tensor<1>, b: Tensor<1>) -> Tensor<1> {
    let [n] = a.dims();
    a.reshape([1, n]).matmul(b.reshape([n, 1])).reshape([1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    #[test]
    fn cross_entropy_matches_the_definition() {
        let x = [1.0f32, 2.0, 0.5, -1.0, 3.0, -7.0, 0.0, 0.25, 0.5];
        // Row 2 masks its last class (target 0, logit far below).
        let t = [0.1f32, 0.8, 0.1, 0.05, 0.9, 0.05, 0.2, 0.8, 0.0];
        let mut x_masked = x;
        x_masked[8] -= 1.0e9;
        let got = cross_entropy(t2(x_masked.to_vec(), [3, 3]), t2(t.to_vec(), [3, 3]))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0] as f64;
        let mut want = 0.0;
        for i in 0..3 {
            let row = &x[i * 3..i * 3 + 3];
            let live = if i == 2 { &row[..2] } else { row };
            let lse = live.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
            want -= (0..live.len())
                .map(|j| t[i * 3 + j] as f64 * (row[j] as f64 - lse))
                .sum::<f64>();
        }
        want /= 3.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn softmax_rows_sum_to_one_and_dot_is_the_sum_of_products() {
        let p = softmax(t2(vec![1.0, 2.0, 3.0, -5.0, 0.0, 5.0], [2, 3]))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for row in p.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert!(p[2] > p[1] && p[1] > p[0]);
        let d = Device::flex();
        let a = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [3]), &d);
        let b = Tensor::<1>::from_data(TensorData::new(vec![4.0f32, -5.0, 6.0], [3]), &d);
        assert_eq!(dot(a, b).into_data().try_to_vec::<f32>().unwrap(), vec![12.0]);
    }
}
