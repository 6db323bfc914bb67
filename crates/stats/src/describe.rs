//! Descriptive statistics: mean, sample s.d., Student-t confidence interval and Pearson's r.

/// `Some(v)` for a finite value, `None` for NaN or an infinity (an undefined number, an empty
/// cell in a tidy CSV).
pub fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Arithmetic mean; NaN for an empty slice.
/// −1, 0 or +1: the sign of `x`, zero a sign of its own (a SHAP slope of exactly zero is a
/// variable no tree splits on).
pub fn sign(x: f64) -> i8 {
    (x > 0.0) as i8 - (x < 0.0) as i8
}

pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (n − 1 denominator); NaN below two values.
pub fn sample_sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v);
    let ss: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (v.len() - 1) as f64).sqrt()
}

/// mean ± t_{(1+level)/2, n−1}·s/√n, the interval the paper prints (Table 12). NaN bounds below
/// two values.
pub fn t_interval(v: &[f64], level: f64) -> (f64, f64) {
    let n = v.len();
    if n < 2 {
        return (f64::NAN, f64::NAN);
    }
    let m = mean(v);
    let h = student_t_quantile(0.5 + level / 2.0, (n - 1) as f64) * sample_sd(v) / (n as f64).sqrt();
    (m - h, m + h)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta I_x(a, b) by Lentz's continued fraction, using the symmetry
/// I_x(a,b) = 1 − I_{1−x}(b,a) where the fraction converges slowly.
pub fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    // Modified Lentz: away from zero by at least `TINY`.
    const TINY: f64 = 1e-300;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    // One term of the continued fraction, of coefficient `aa`: the factor it multiplies `h` by.
    let mut step = |aa: f64| {
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        d * c
    };
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2)));
        let del = step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)));
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Upper tail P(T > t) of Student's t for t ≥ 0.
fn t_upper_tail(t: f64, df: f64) -> f64 {
    0.5 * reg_inc_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// Student t CDF.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t >= 0.0 {
        1.0 - t_upper_tail(t, df)
    } else {
        t_upper_tail(-t, df)
    }
}

/// Student t quantile (inverse CDF), found by bisection on the tail probability down to
/// adjacent floats, so its accuracy is that of the incomplete beta (~1e-14 relative).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p.min(1.0 - p);
    let mut hi = 1.0;
    while t_upper_tail(hi, df) > q {
        hi *= 2.0;
        if hi > 1e300 {
            break;
        }
    }
    let mut lo = 0.0;
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if t_upper_tail(mid, df) > q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = 0.5 * (lo + hi);
    if p > 0.5 { t } else { -t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cauchy_quantile_is_closed_form() {
        // df = 1 is the Cauchy distribution: F^{-1}(p) = tan(π(p − 1/2)).
        for p in [0.6, 0.9, 0.975, 0.999] {
            let want = (std::f64::consts::PI * (p - 0.5)).tan();
            let got = student_t_quantile(p, 1.0);
            assert!((got - want).abs() / want < 1e-12, "{p}: {got} vs {want}");
        }
    }

    #[test]
    fn ln_gamma_integers() {
        let mut f = 1.0f64;
        for n in 1..20 {
            assert!((ln_gamma(n as f64) - f.ln()).abs() < 1e-12, "{n}");
            f *= n as f64;
        }
    }
}
