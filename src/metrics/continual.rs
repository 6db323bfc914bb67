//! Continual-learning metrics of method §8.3–8.4, computed from stored raw accuracies.
//! `r[i][j]` is the accuracy on task j after training task i (0-based here, 1-based in the text).

use serde::Serialize;

use super::tunnel::Value;

/// The summary metrics of one accuracy matrix.
#[derive(Clone, Debug, Serialize)]
pub struct ClMetrics {
    /// Average accuracy after the last task: (1/T) Σ_j R[T][j].
    pub acc: Value,
    /// Average incremental accuracy: mean over i of the average accuracy on tasks ≤ i after task i.
    pub aia: Value,
    /// Average forgetting (Chaudhry et al. 2018).
    pub forgetting: Value,
    /// Backward transfer (Lopez-Paz & Ranzato 2017).
    pub bwt: Value,
    /// Forward transfer against a random-init baseline; undefined without one.
    pub fwt: Value,
    /// Plasticity: the mean accuracy on each task right after learning it, (1/T) Σ_j R[j][j].
    pub plasticity: Value,
    /// Forgetting relative to what was learned: F / plasticity. A network that forgets less only
    /// because it learned less shows it here.
    pub relative_forgetting: Value,
}

fn square(r: &[Vec<f64>]) -> bool {
    r.iter().all(|row| row.len() == r.len())
}

fn finite(r: &[Vec<f64>]) -> bool {
    r.iter().flatten().all(|v| v.is_finite())
}

/// Average accuracy after the last task.
pub fn average_accuracy(r: &[Vec<f64>]) -> Value {
    if r.is_empty() || !square(r) || !finite(r) {
        return Value::undefined("invalid_input");
    }
    let last = &r[r.len() - 1];
    Value::ok(last.iter().sum::<f64>() / last.len() as f64)
}

/// Average incremental accuracy: (1/T) Σ_i (1/i) Σ_{j≤i} R[i][j].
pub fn average_incremental_accuracy(r: &[Vec<f64>]) -> Value {
    if r.is_empty() || !square(r) || !finite(r) {
        return Value::undefined("invalid_input");
    }
    let t = r.len();
    let total: f64 = (0..t).map(|i| r[i][..=i].iter().sum::<f64>() / (i + 1) as f64).sum();
    Value::ok(total / t as f64)
}

/// Average forgetting: f_j = max_{l<T} R[l][j] − R[T][j] for j < T; F = mean f_j.
/// `from_task_j` restricts l to j ≤ l ≤ T−1 (the variant of method §8.3).
pub fn average_forgetting(r: &[Vec<f64>], from_task_j: bool) -> Value {
    if r.is_empty() || !square(r) || !finite(r) {
        return Value::undefined("invalid_input");
    }
    let t = r.len();
    if t == 1 {
        return Value::undefined("single_task");
    }
    let total: f64 = (0..t - 1)
        .map(|j| {
            let start = if from_task_j { j } else { 0 };
            let best = (start..t - 1).map(|l| r[l][j]).fold(f64::NEG_INFINITY, f64::max);
            best - r[t - 1][j]
        })
        .sum();
    Value::ok(total / (t - 1) as f64)
}

/// Backward transfer: (1/(T−1)) Σ_{i<T} (R[T][i] − R[i][i]).
pub fn backward_transfer(r: &[Vec<f64>]) -> Value {
    if r.is_empty() || !square(r) || !finite(r) {
        return Value::undefined("invalid_input");
    }
    let t = r.len();
    if t == 1 {
        return Value::undefined("single_task");
    }
    let total: f64 = (0..t - 1).map(|i| r[t - 1][i] - r[i][i]).sum();
    Value::ok(total / (t - 1) as f64)
}

/// Forward transfer: (1/(T−1)) Σ_{i=2..T} (R[i−1][i] − b[i]), with `b` the random-init accuracies.
/// `per_task_heads` makes it undefined (R[i−1][i] would use an untrained head).
pub fn forward_transfer(r: &[Vec<f64>], baseline: Option<&[f64]>, per_task_heads: bool) -> Value {
    if r.is_empty() || !square(r) || !finite(r) {
        return Value::undefined("invalid_input");
    }
    let t = r.len();
    if t == 1 {
        return Value::undefined("single_task");
    }
    if per_task_heads {
        return Value::undefined("fwt_untrained_head");
    }
    let Some(b) = baseline else {
        return Value::undefined("no_random_init_baseline");
    };
    if b.len() != t || b.iter().any(|v| !v.is_finite()) {
        return Value::undefined("invalid_input");
    }
    let total: f64 = (1..t).map(|i| r[i - 1][i] - b[i]).sum();
    Value::ok(total / (t - 1) as f64)
}

/// Plasticity: (1/T) Σ_j R[j][j], the accuracy on each task right after learning it.
pub fn plasticity(r: &[Vec<f64>]) -> Value {
    if r.is_empty() || !square(r) || !finite(r) {
        return Value::undefined("invalid_input");
    }
    Value::ok((0..r.len()).map(|j| r[j][j]).sum::<f64>() / r.len() as f64)
}

/// Forgetting relative to plasticity: F / ((1/T) Σ_j R[j][j]).
pub fn relative_forgetting(r: &[Vec<f64>]) -> Value {
    let (f, p) = (average_forgetting(r, false), plasticity(r));
    if !f.is_defined() {
        return f;
    }
    if !p.is_defined() || p.value <= 0.0 {
        return Value::undefined("nothing_learned");
    }
    Value::ok(f.value / p.value)
}

pub fn cl_metrics(r: &[Vec<f64>], baseline: Option<&[f64]>, per_task_heads: bool) -> ClMetrics {
    ClMetrics {
        acc: average_accuracy(r),
        aia: average_incremental_accuracy(r),
        forgetting: average_forgetting(r, false),
        bwt: backward_transfer(r),
        fwt: forward_transfer(r, baseline, per_task_heads),
        plasticity: plasticity(r),
        relative_forgetting: relative_forgetting(r),
    }
}

/// Layer-wise probe forgetting (method §8.4) for one layer: `p[i][j]` is the probe accuracy on
/// task j after task i. Returns Δ[i][j] = P[j][j] − P[i][j] for i > j (NaN elsewhere).
pub fn probe_forgetting(p: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let t = p.len();
    (0..t)
        .map(|i| {
            (0..t)
                .map(|j| if i > j { p[j][j] - p[i][j] } else { f64::NAN })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Value, b: f64) {
        assert!(a.is_defined(), "{a:?}");
        assert!((a.value - b).abs() < 1e-12, "{} vs {b}", a.value);
    }

    #[test]
    fn single_task_edge_case() {
        let r = vec![vec![0.8]];
        let m = cl_metrics(&r, Some(&[0.1]), false);
        close(m.acc, 0.8);
        close(m.aia, 0.8);
        assert_eq!(m.forgetting.reason, Some("single_task"));
        assert_eq!(m.bwt.reason, Some("single_task"));
        assert_eq!(m.fwt.reason, Some("single_task"));
        close(m.plasticity, 0.8);
        assert_eq!(m.relative_forgetting.reason, Some("single_task"));
    }

    #[test]
    fn two_task_closed_forms() {
        // method §8.3: ACC = (R21+R22)/2, F = R11 − R21, BWT = R21 − R11, FWT = R12 − b2.
        let r = vec![vec![0.9, 0.15], vec![0.4, 0.85]];
        let b = [0.1, 0.12];
        let m = cl_metrics(&r, Some(&b), false);
        close(m.acc, (0.4 + 0.85) / 2.0);
        close(m.forgetting, 0.9 - 0.4);
        close(m.bwt, 0.4 - 0.9);
        close(m.fwt, 0.15 - 0.12);
        close(m.aia, (0.9 + (0.4 + 0.85) / 2.0) / 2.0);
        close(m.plasticity, (0.9 + 0.85) / 2.0);
        close(m.relative_forgetting, (0.9 - 0.4) / ((0.9 + 0.85) / 2.0));
        assert_eq!(cl_metrics(&r, Some(&b), true).fwt.reason, Some("fwt_untrained_head"));
        assert_eq!(cl_metrics(&r, None, false).fwt.reason, Some("no_random_init_baseline"));
    }

    #[test]
    fn three_task_matrix_by_hand() {
        let r = vec![vec![0.9, 0.1, 0.2], vec![0.7, 0.8, 0.1], vec![0.5, 0.6, 0.95]];
        // f_1 = max(0.9, 0.7) − 0.5 = 0.4; f_2 = max(0.1, 0.8) − 0.6 = 0.2 → F = 0.3.
        close(average_forgetting(&r, false), 0.3);
        // Restricted: f_2 = max(0.8) − 0.6 = 0.2 (same here); f_1 = max(0.9,0.7) − 0.5.
        close(average_forgetting(&r, true), 0.3);
        // BWT = ((0.5 − 0.9) + (0.6 − 0.8)) / 2 = −0.3.
        close(backward_transfer(&r), -0.3);
        // FWT = ((0.1 − 0.05) + (0.1 − 0.0)) / 2 = 0.075.
        close(forward_transfer(&r, Some(&[0.0, 0.05, 0.0]), false), 0.075);
        close(average_accuracy(&r), (0.5 + 0.6 + 0.95) / 3.0);
        close(
            average_incremental_accuracy(&r),
            (0.9 + 0.75 + (0.5 + 0.6 + 0.95) / 3.0) / 3.0,
        );
        // The restriction matters when an early row beats later ones for a later task.
        let r2 = vec![vec![0.9, 0.7], vec![0.5, 0.6]];
        close(average_forgetting(&r2, false), 0.4);
        let r3 = vec![vec![0.9, 0.9, 0.0], vec![0.8, 0.5, 0.0], vec![0.8, 0.4, 0.9]];
        // Unrestricted f_2 = max(0.9, 0.5) − 0.4 = 0.5; restricted = 0.5 − 0.4 = 0.1.
        close(average_forgetting(&r3, false), (0.1 + 0.5) / 2.0);
        close(average_forgetting(&r3, true), (0.1 + 0.1) / 2.0);
    }

    #[test]
    fn invalid_matrices() {
        assert_eq!(average_accuracy(&[]).reason, Some("invalid_input"));
        assert_eq!(average_accuracy(&[vec![0.1, 0.2]]).reason, Some("invalid_input"));
        assert_eq!(
            backward_transfer(&[vec![f64::NAN, 0.1], vec![0.1, 0.1]]).reason,
            Some("invalid_input")
        );
    }

    #[test]
    fn layer_probe_forgetting() {
        let p = vec![vec![0.8, 0.3], vec![0.6, 0.9]];
        let d = probe_forgetting(&p);
        assert!((d[1][0] - 0.2).abs() < 1e-12);
        assert!(d[0][0].is_nan() && d[0][1].is_nan() && d[1][1].is_nan());
    }
}
