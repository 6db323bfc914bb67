//! Inference over replicates: summaries with t-intervals, paired and Welch t-tests, the
//! prediction test of one new value against earlier ones, multiple-testing adjustment (Holm,
//! Benjamini–Hochberg), a seeded percentile bootstrap, the Wilson interval of a proportion, and
//! the thread pool of the bootstraps.
//!
//! Where scipy returns NaN for a zero standard error, these return p = 1 when the difference is
//! zero too (no evidence of a difference) and p = 0 otherwise (every replicate agrees, and the new
//! value differs): seeds that give identical values are common for coarse metrics. A standard
//! error or difference below 1e-12 of the values' magnitude is rounding (the mean of equal values
//! need not be exactly that value) and counts as zero.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::describe::{mean, sample_sd, student_t_cdf, student_t_quantile};

/// Confidence level of every interval here.
pub const LEVEL: f64 = 0.95;

/// n, mean, sample s.d. and the 95% t-interval of the mean of replicate values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// NaN below two values.
    pub sd: f64,
    /// NaN below two values.
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Summary {
    /// The summary of the finite values of `values` (undefined replicates left out).
    pub fn of(values: &[f64]) -> Summary {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        let m = mean(&v);
        let sd = sample_sd(&v);
        let h = half_width(sd, n);
        Summary {
            n,
            mean: m,
            sd,
            ci_low: m - h,
            ci_high: m + h,
        }
    }

    /// Half the width of the interval (NaN below two values).
    pub fn half_width(&self) -> f64 {
        half_width(self.sd, self.n)
    }

    /// `mean ± half-width`, the half-width left out below two values; `scale` multiplies both
    /// (100 for accuracies shown in points).
    pub fn text(&self, scale: f64, decimals: usize) -> String {
        if !self.mean.is_finite() {
            return "undefined".into();
        }
        let h = self.half_width();
        if h.is_finite() {
            format!("{:.decimals$} ± {:.decimals$}", scale * self.mean, scale * h)
        } else {
            format!("{:.decimals$}", scale * self.mean)
        }
    }
}

/// t_{0.975, n−1} · sd / √n.
fn half_width(sd: f64, n: usize) -> f64 {
    if n < 2 {
        return f64::NAN;
    }
    student_t_quantile(0.5 + LEVEL / 2.0, (n - 1) as f64) * sd / (n as f64).sqrt()
}

/// A t statistic, its degrees of freedom and two-sided p-value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    pub t: f64,
    pub df: f64,
    pub p: f64,
}

/// Relative size below which a difference or standard error is rounding.
const ROUNDING: f64 = 1e-12;

/// The largest magnitude among `values`.
fn magnitude<'a>(values: impl IntoIterator<Item = &'a f64>) -> f64 {
    values.into_iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// The test of `diff / se` on `df` degrees of freedom, with the zero-s.e. cases of the module doc
/// (`scale`: the magnitude of the values behind them).
fn t_test(diff: f64, se: f64, df: f64, scale: f64) -> TTest {
    if !(df > 0.0) || !diff.is_finite() || !se.is_finite() {
        return TTest {
            t: f64::NAN,
            df,
            p: f64::NAN,
        };
    }
    let tiny = ROUNDING * scale;
    if se <= tiny {
        let (t, p) = if diff.abs() <= tiny {
            (0.0, 1.0)
        } else {
            (diff.signum() * f64::INFINITY, 0.0)
        };
        return TTest { t, df, p };
    }
    let t = diff / se;
    TTest {
        t,
        df,
        p: (2.0 * student_t_cdf(-t.abs(), df)).min(1.0),
    }
}

fn undefined() -> TTest {
    TTest {
        t: f64::NAN,
        df: f64::NAN,
        p: f64::NAN,
    }
}

/// Paired t-test of the differences `d` against 0 (`scipy.stats.ttest_rel`); NaN below two pairs.
pub fn paired_t(d: &[f64]) -> TTest {
    let n = d.len();
    if n < 2 {
        return undefined();
    }
    t_test(mean(d), sample_sd(d) / (n as f64).sqrt(), (n - 1) as f64, magnitude(d))
}

/// Welch's unequal-variance t-test of mean(x) − mean(y) (`scipy.stats.ttest_ind(x, y,
/// equal_var=False)`), with the Welch–Satterthwaite degrees of freedom; NaN below two values on
/// either side.
pub fn welch_t(x: &[f64], y: &[f64]) -> TTest {
    if x.len() < 2 || y.len() < 2 {
        return undefined();
    }
    let side = |v: &[f64]| Group {
        mean: mean(v),
        se: sample_sd(v) / (v.len() as f64).sqrt(),
        n: v.len(),
    };
    welch_t_summary(side(x), side(y), magnitude(x.iter().chain(y)))
}

/// A group as a publication reports it: the mean, its standard error and the number of runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Group {
    pub mean: f64,
    pub se: f64,
    pub n: usize,
}

/// [`welch_t`] from the groups' summaries (`scipy.stats.ttest_ind_from_stats(..., equal_var=False)`
/// with sd = se·√n), for a comparison with a published mean ± SEM; `scale`: the magnitude of the
/// values, below which a difference is rounding. NaN below two runs on either side.
pub fn welch_t_summary(a: Group, b: Group, scale: f64) -> TTest {
    if a.n < 2 || b.n < 2 {
        return undefined();
    }
    let (vx, vy) = (a.se * a.se, b.se * b.se);
    let df = if vx + vy == 0.0 {
        (a.n + b.n) as f64 - 2.0
    } else {
        (vx + vy).powi(2) / (vx * vx / (a.n as f64 - 1.0) + vy * vy / (b.n as f64 - 1.0))
    };
    t_test(a.mean - b.mean, (vx + vy).sqrt(), df, scale)
}

/// Whether a single new value `x` comes from the distribution of `earlier` (normal, unknown mean
/// and variance): t = (x − mean) / (sd·√(1 + 1/n)) on n − 1 degrees of freedom, the statistic
/// behind the prediction interval. NaN below two earlier values.
pub fn prediction_t(earlier: &[f64], x: f64) -> TTest {
    let n = earlier.len();
    if n < 2 {
        return undefined();
    }
    let se = sample_sd(earlier) * (1.0 + 1.0 / n as f64).sqrt();
    t_test(x - mean(earlier), se, (n - 1) as f64, magnitude(earlier).max(x.abs()))
}

/// The 95% prediction interval of one new value: mean ± t_{0.975, n−1}·sd·√(1 + 1/n).
pub fn prediction_interval(earlier: &[f64]) -> (f64, f64) {
    let n = earlier.len();
    if n < 2 {
        return (f64::NAN, f64::NAN);
    }
    let m = mean(earlier);
    let h = student_t_quantile(0.5 + LEVEL / 2.0, (n - 1) as f64) * sample_sd(earlier) * (1.0 + 1.0 / n as f64).sqrt();
    (m - h, m + h)
}

/// Indices of `p` in increasing order of p (NaN last).
fn ascending(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    order
}

/// Holm's step-down adjusted p-values (`statsmodels multipletests(method="holm")`); NaN entries
/// stay NaN and do not count among the tests.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.iter().filter(|v| !v.is_nan()).count();
    let mut out = vec![f64::NAN; p.len()];
    let mut running: f64 = 0.0;
    for (rank, &i) in ascending(p).iter().filter(|&&i| !p[i].is_nan()).enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Benjamini–Hochberg adjusted p-values (`scipy.stats.false_discovery_control`,
/// `statsmodels multipletests(method="fdr_bh")`); NaN entries stay NaN and do not count.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let order: Vec<usize> = ascending(p).into_iter().filter(|&i| !p[i].is_nan()).collect();
    let m = order.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running: f64 = 1.0;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64).min(1.0);
        out[i] = running;
    }
    out
}

/// Percentile bootstrap 95% interval of the mean of `v`: `resamples` resamples with replacement
/// drawn from a ChaCha8 stream seeded with `seed`, the interval's ends the 2.5th and 97.5th
/// percentiles of the resampled means (linear interpolation, as numpy's default). NaN below two
/// values.
pub fn bootstrap_mean_interval(v: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    let n = v.len();
    if n < 2 || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| v[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - LEVEL) / 2.0;
    (percentile(&means, alpha), percentile(&means, 1.0 - alpha))
}

/// The fewest resamples behind a bootstrap interval: its 2.5th percentile then lies between the
/// two smallest values.
pub const MIN_RESAMPLES: usize = 40;

/// The 95% percentile interval of resampled values, undefined ones left out; None when fewer than
/// 90% of the resamples define the value.
pub fn percentile_interval(draws: &[Option<f64>]) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = draws.iter().flatten().copied().collect();
    if v.is_empty() || (v.len() as f64) < 0.9 * draws.len() as f64 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let alpha = (1.0 - LEVEL) / 2.0;
    Some((percentile(&v, alpha), percentile(&v, 1.0 - alpha)))
}

/// The 97.5th percentile of the standard normal distribution (scipy 1.17.1:
/// `stats.norm.ppf(0.975)`).
const Z_975: f64 = 1.959963984540054;

/// The Wilson score 95% interval of a proportion of `k` successes in `n` trials (no continuity
/// correction); NaN for n = 0.
pub fn wilson_interval(k: usize, n: usize) -> (f64, f64) {
    if n == 0 || k > n {
        return (f64::NAN, f64::NAN);
    }
    let (n, p) = (n as f64, k as f64 / n as f64);
    let z2 = Z_975 * Z_975;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z_975 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Runs `f(r)` for r in 0..n on up to `threads` threads; the results in order of r (so that
/// they do not depend on the number of threads when `f` does not).
pub fn spread<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    let mut parts: Vec<Vec<(usize, T)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || (t..n).step_by(threads).map(|r| (r, f(r))).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bootstrap thread panicked"))
            .collect()
    });
    let mut out: Vec<(usize, T)> = parts.iter_mut().flat_map(std::mem::take).collect();
    out.sort_by_key(|(r, _)| *r);
    out.into_iter().map(|(_, v)| v).collect()
}

/// The threads a bootstrap runs on: every core this process may use.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The `q`-quantile of sorted values with linear interpolation (numpy's default).
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos.fract());
    match sorted.get(lo + 1) {
        Some(hi) if frac > 0.0 => sorted[lo] + frac * (hi - sorted[lo]),
        _ => sorted[lo],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: [f64; 5] = [0.81, 0.79, 0.83, 0.80, 0.78];
    const Y: [f64; 5] = [0.76, 0.77, 0.80, 0.74, 0.75];

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1e-300), "{a} vs {b}");
    }

    #[test]
    fn wilson_interval_matches_scipy() {
        // scipy 1.17.1: stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        let cases = [
            (0, 10, 0.0, 0.27753279986288926),
            (7, 10, 0.39677814746114526, 0.892208732593699),
            (10, 10, 0.7224672001371109, 1.0),
            (812, 1000, 0.7866068125887821, 0.8350052901162314),
            (1, 3, 0.06149194472039626, 0.7923403991979523),
        ];
        for (k, n, lo, hi) in cases {
            let (a, b) = wilson_interval(k, n);
            assert!((a - lo).abs() < 1e-12 && (b - hi).abs() < 1e-12, "{k}/{n}: {a} {b}");
        }
        assert!(wilson_interval(0, 0).0.is_nan());
    }

    #[test]
    fn percentile_intervals_need_most_resamples_defined() {
        let draws: Vec<Option<f64>> = (0..=100).map(|i| Some(i as f64)).collect();
        let (lo, hi) = percentile_interval(&draws).unwrap();
        assert!((lo - 2.5).abs() < 1e-12 && (hi - 97.5).abs() < 1e-12, "{lo} {hi}");
        let mut sparse = draws.clone();
        sparse.iter_mut().take(11).for_each(|d| *d = None);
        assert_eq!(percentile_interval(&sparse), None);
        // The results of `spread` come back in order whatever the number of threads.
        assert_eq!(spread(7, 3, |r| r * r), spread(7, 1, |r| r * r));
    }

    #[test]
    fn t_interval_matches_scipy() {
        // scipy 1.17.1: stats.t.interval(0.95, 4, loc=mean(X), scale=std(X, ddof=1)/sqrt(5))
        //   -> (0.7781161161190003, 0.825883883881)
        let s = Summary::of(&X);
        assert_eq!(s.n, 5);
        close(s.ci_low, 0.778_116_116_119_000_3, 1e-12);
        close(s.ci_high, 0.825_883_883_881, 1e-12);
        // Undefined replicates are left out.
        let with_nan = [X[0], f64::NAN, X[1], X[2], X[3], X[4]];
        assert_eq!(Summary::of(&with_nan), s);
    }

    #[test]
    fn paired_t_matches_scipy() {
        // scipy 1.17.1: stats.ttest_rel(X, Y) -> statistic=5.171145012542257,
        //   pvalue=0.006646731211396063, df=4
        let d: Vec<f64> = X.iter().zip(&Y).map(|(a, b)| a - b).collect();
        let r = paired_t(&d);
        close(r.t, 5.171_145_012_542_257, 1e-10);
        close(r.p, 0.006_646_731_211_396_063, 1e-9);
        assert_eq!(r.df, 4.0);
    }

    #[test]
    fn welch_matches_scipy() {
        // scipy 1.17.1: stats.ttest_ind(X, Y, equal_var=False) -> statistic=2.8323527714997443,
        //   pvalue=0.02277666807192051, df=7.754906653901383
        let r = welch_t(&X, &Y);
        close(r.t, 2.832_352_771_499_744_3, 1e-10);
        close(r.p, 0.022_776_668_071_920_51, 1e-9);
        close(r.df, 7.754_906_653_901_383, 1e-10);
        // Unequal sizes: stats.ttest_ind([.5,.52,.49,.55,.51,.50,.53], [.44,.47], equal_var=False)
        //   -> statistic=3.5042627466422256, pvalue=0.09928268466434935, df=1.5985341399119288
        let r = welch_t(&[0.5, 0.52, 0.49, 0.55, 0.51, 0.50, 0.53], &[0.44, 0.47]);
        close(r.t, 3.504_262_746_642_225_6, 1e-10);
        close(r.p, 0.099_282_684_664_349_35, 1e-8);
        close(r.df, 1.598_534_139_911_928_8, 1e-10);
    }

    #[test]
    fn welch_from_summaries_matches_scipy() {
        // scipy 1.17.1: stats.ttest_ind_from_stats(19.876, 0.045, 5, 19.90, 0.02·sqrt(20), 20,
        //   equal_var=False) -> statistic=-0.8458888522201965, pvalue=0.41278747250795145;
        //   (98.05, 1.2·sqrt(5), 5, 85.15, 1.00·sqrt(20), 20) -> statistic=8.258378755671783,
        //   pvalue=6.823199577323286e-06
        let g = |mean: f64, sd: f64, n: usize| Group {
            mean,
            se: sd / (n as f64).sqrt(),
            n,
        };
        let r = welch_t_summary(g(19.876, 0.045, 5), g(19.90, 0.02 * 20f64.sqrt(), 20), 20.0);
        close(r.t, -0.845_888_852_220_196_5, 1e-10);
        close(r.p, 0.412_787_472_507_951_45, 1e-9);
        let r = welch_t_summary(g(98.05, 1.2 * 5f64.sqrt(), 5), g(85.15, 20f64.sqrt(), 20), 100.0);
        close(r.t, 8.258_378_755_671_783, 1e-10);
        close(r.p, 6.823_199_577_323_286e-6, 1e-9);
    }

    #[test]
    fn prediction_test_matches_scipy() {
        // scipy 1.17.1: t = (0.70 − mean(X)) / (std(X, ddof=1)·sqrt(1 + 1/5)) = -4.84070577833776,
        //   2·stats.t.sf(|t|, 4) = 0.00839578278514691; mean ± stats.t.ppf(0.975, 4)·sd·sqrt(1.2)
        //   = (0.7434966714156668, 0.8605033285843335)
        let r = prediction_t(&X, 0.70);
        close(r.t, -4.840_705_778_337_76, 1e-10);
        close(r.p, 0.008_395_782_785_146_91, 1e-9);
        let (lo, hi) = prediction_interval(&X);
        close(lo, 0.743_496_671_415_666_8, 1e-12);
        close(hi, 0.860_503_328_584_333_5, 1e-12);
    }

    #[test]
    fn zero_spread_has_a_defined_p() {
        assert_eq!(paired_t(&[0.0, 0.0, 0.0]).p, 1.0);
        assert_eq!(paired_t(&[0.1, 0.1, 0.1]).p, 0.0);
        assert_eq!(prediction_t(&[0.5, 0.5, 0.5], 0.5).p, 1.0);
        assert_eq!(prediction_t(&[0.5, 0.5, 0.5], 0.6).p, 0.0);
        // The mean of three 0.797s is not exactly 0.797: still no spread, no difference.
        assert_eq!(prediction_t(&[0.797, 0.797, 0.797], 0.797).p, 1.0);
        assert_eq!(welch_t(&[0.797, 0.797], &[0.797, 0.797, 0.797]).p, 1.0);
        assert!(paired_t(&[0.1]).p.is_nan());
    }

    #[test]
    fn adjustments_match_statsmodels_and_scipy() {
        let p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.5];
        // statsmodels 0.15.0: multipletests(p, method="holm")[1]
        let holm_want = [0.06, 0.16, 0.15, 0.035, 0.4, 0.16, 0.5];
        // statsmodels 0.15.0: multipletests(p, method="fdr_bh")[1]; scipy 1.17.1
        // stats.false_discovery_control(p) gives the same values
        let bh_want = [0.035, 0.056, 0.056, 0.035, 0.233_333_333_333_333_36, 0.056, 0.5];
        for (got, want) in holm(&p).iter().zip(holm_want) {
            close(*got, want, 1e-12);
        }
        for (got, want) in benjamini_hochberg(&p).iter().zip(bh_want) {
            close(*got, want, 1e-12);
        }
        // NaN entries are not tests.
        let with_nan = [0.01, f64::NAN, 0.04];
        let h = holm(&with_nan);
        assert!(h[1].is_nan());
        close(h[0], 0.02, 1e-12);
        close(h[2], 0.04, 1e-12);
    }

    #[test]
    fn bootstrap_matches_scipy_percentile_interval() {
        // scipy 1.17.1: stats.bootstrap((X − Y,), np.mean, n_resamples=200000, method="percentile",
        //   random_state=1).confidence_interval -> (0.025999999999999978, 0.052000000000000025).
        // Means of 5 of these differences fall on a grid of 0.002, so two large independent
        // resamplings agree on the grid point at each end.
        let d: Vec<f64> = X.iter().zip(&Y).map(|(a, b)| a - b).collect();
        let (lo, hi) = bootstrap_mean_interval(&d, 200_000, 7);
        close(lo, 0.026, 1e-9);
        close(hi, 0.052, 1e-9);
        assert_eq!(
            bootstrap_mean_interval(&d, 1000, 3),
            bootstrap_mean_interval(&d, 1000, 3)
        );
    }
}
