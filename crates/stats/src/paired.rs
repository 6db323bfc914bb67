//! A comparison of two conditions measured on the same seeds: the mean paired difference with
//! its 95% t- and bootstrap intervals, a paired test that can reach significance at the number of
//! seeds used, and Cliff's δ.

use serde::Serialize;

use super::cliffs::cliffs_delta;
use super::describe::{mean, sample_sd};
use super::inference::{LEVEL, Summary, bootstrap_mean_interval, paired_t};
use super::wilcoxon::{WilcoxonOptions, wilcoxon_diffs};

/// Pairs from which the Wilcoxon signed-rank test is the primary test: below 6 its exact
/// two-sided p-value cannot fall under 0.05 (its smallest value is 2/2ⁿ), so the paired t-test is.
pub const WILCOXON_FROM: usize = 6;

/// Bootstrap resamples of the paired mean difference.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// The primary test of a paired comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairedTest {
    PairedT,
    Wilcoxon,
}

impl PairedTest {
    pub fn name(self) -> &'static str {
        match self {
            PairedTest::PairedT => "paired t",
            PairedTest::Wilcoxon => "Wilcoxon",
        }
    }
}

/// `a − b` over seeds where both are defined.
#[derive(Clone, Debug, Serialize)]
pub struct Paired {
    pub n: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    pub mean_diff: f64,
    pub sd_diff: f64,
    /// 95% t-interval of the mean difference.
    pub ci_low: f64,
    pub ci_high: f64,
    /// 95% percentile bootstrap interval of the mean difference.
    pub boot_low: f64,
    pub boot_high: f64,
    pub test: PairedTest,
    /// The primary test's p-value (two-sided).
    pub p: f64,
    pub p_t: f64,
    /// NaN below [`WILCOXON_FROM`] pairs.
    pub p_wilcoxon: f64,
    /// Cliff's δ of the a values against the b values (unpaired, as in the factor study).
    pub cliffs_delta: f64,
}

impl Paired {
    /// Compares `a[i]` with `b[i]` (the same seed); pairs with a non-finite side are left out.
    /// `seed` seeds the bootstrap.
    pub fn of(a: &[f64], b: &[f64], seed: u64) -> Paired {
        let (a, b): (Vec<f64>, Vec<f64>) = a
            .iter()
            .zip(b)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| (*x, *y))
            .unzip();
        let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let n = d.len();
        let s = Summary::of(&d);
        let (boot_low, boot_high) = bootstrap_mean_interval(&d, BOOTSTRAP_RESAMPLES, seed);
        let p_t = paired_t(&d).p;
        let p_wilcoxon = if n >= WILCOXON_FROM {
            wilcoxon_diffs(&d, &WilcoxonOptions::default()).map_or(f64::NAN, |w| w.p_value)
        } else {
            f64::NAN
        };
        let (test, p) = if n >= WILCOXON_FROM {
            (PairedTest::Wilcoxon, p_wilcoxon)
        } else {
            (PairedTest::PairedT, p_t)
        };
        Paired {
            n,
            mean_a: mean(&a),
            mean_b: mean(&b),
            mean_diff: s.mean,
            sd_diff: sample_sd(&d),
            ci_low: s.ci_low,
            ci_high: s.ci_high,
            boot_low,
            boot_high,
            test,
            p,
            p_t,
            p_wilcoxon,
            cliffs_delta: cliffs_delta(&a, &b).delta,
        }
    }

    /// Half the width of the t-interval.
    pub fn half_width(&self) -> f64 {
        (self.ci_high - self.ci_low) / 2.0
    }

    /// `−44.0 ± 6.1 points (n = 5, paired t p = 0.001)` for a difference scaled by `scale` (100:
    /// fractions as points) with `decimals` digits and `unit` after it.
    pub fn text(&self, scale: f64, decimals: usize, unit: &str) -> String {
        self.sentence(scale, decimals, unit, None)
    }

    /// [`Paired::text`] for one of a family of `m` tests, judged by its Holm-adjusted p-value
    /// `p_holm`: `−44.0 ± 6.1 points (n = 5, paired t p = 0.001; Holm over 36: p = 0.036)`.
    pub fn text_in_family(&self, scale: f64, decimals: usize, unit: &str, p_holm: f64, m: usize) -> String {
        self.sentence(scale, decimals, unit, Some((p_holm, m)))
    }

    fn sentence(&self, scale: f64, decimals: usize, unit: &str, family: Option<(f64, usize)>) -> String {
        if self.n == 0 {
            return "no seed with both values defined".into();
        }
        let hw = self.half_width();
        let d = decimals;
        let diff = if hw.is_finite() {
            format!("{:+.d$} ± {:.d$}{unit}", scale * self.mean_diff, scale * hw)
        } else {
            format!("{:+.d$}{unit}", scale * self.mean_diff)
        };
        let verdict = |p: f64| if p < 1.0 - LEVEL { "" } else { ", not significant" };
        let p = match family {
            _ if !self.p.is_finite() => String::new(),
            Some((adjusted, m)) if adjusted.is_finite() => format!(
                ", {} p = {}; Holm over {m}: p = {}{}",
                self.test.name(),
                p_text(self.p),
                p_text(adjusted),
                verdict(adjusted)
            ),
            _ => format!(", {} p = {}{}", self.test.name(), p_text(self.p), verdict(self.p)),
        };
        format!("{diff} (n = {}{p})", self.n)
    }
}

/// A p-value with three significant digits (`0.001`, `2.4e-5`).
pub fn p_text(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_comparison_of_five_and_of_seven_seeds() {
        let a = [0.81, 0.79, 0.83, 0.80, 0.78];
        let b = [0.76, 0.77, 0.80, 0.74, 0.75];
        let p = Paired::of(&a, &b, 1);
        assert_eq!((p.n, p.test), (5, PairedTest::PairedT));
        // scipy 1.17.1: stats.ttest_rel(a, b).pvalue = 0.006646731211396063
        assert!((p.p - 0.006_646_731_211_396_063).abs() < 1e-9);
        assert!(p.p_wilcoxon.is_nan());
        assert!((p.mean_diff - 0.038).abs() < 1e-12);
        assert!(p.boot_low <= p.mean_diff && p.mean_diff <= p.boot_high);
        // neilernst/cliffsDelta (the O(n·m) definition): 22 pairs a > b, 2 pairs a < b, one tie:
        // δ = (22 − 2) / 25 = 0.8.
        assert!((p.cliffs_delta - 0.8).abs() < 1e-12, "{}", p.cliffs_delta);
        // A pair with an undefined side is left out.
        let q = Paired::of(&[0.81, f64::NAN, 0.83], &[0.76, 0.77, 0.80], 1);
        assert_eq!(q.n, 2);

        // From 6 pairs the exact Wilcoxon test is the primary test.
        // scipy 1.17.1: stats.wilcoxon([1, 2, 3, 4, 5, 6, 7], [0]*7).pvalue = 0.015625 (exact)
        let p = Paired::of(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], &[0.0; 7], 1);
        assert_eq!(p.test, PairedTest::Wilcoxon);
        assert!((p.p - 0.015_625).abs() < 1e-12);
        assert!(
            p.text(1.0, 1, "").contains("Wilcoxon p = 0.016"),
            "{}",
            p.text(1.0, 1, "")
        );
        // One of a family of tests: significant alone, not once adjusted (0.015625 · 4 = 0.0625).
        assert_eq!(
            p.text_in_family(1.0, 1, "", 0.0625, 4),
            "+4.0 ± 2.0 (n = 7, Wilcoxon p = 0.016; Holm over 4: p = 0.062, not significant)"
        );
        assert!(!p.text_in_family(1.0, 1, "", 0.03, 2).contains("not significant"));
    }
}
