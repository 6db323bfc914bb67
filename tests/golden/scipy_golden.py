"""Golden values for crates/stats/tests/golden_stats.rs and crates/stats/src/inference.rs.

scipy 1.17.1 (python 3.11): scipy.stats.wilcoxon(x, y) with defaults, scipy.stats.t.ppf,
scipy.special.erfc. Legacy policies (scipy 1.9 / 1.7 `method="auto"`) are transcribed from
scipy 1.9.3 `scipy/stats/_morestats.py::wilcoxon` below (no wheels of those releases exist for
this python); the exact distribution comes from scipy's own `_get_wilcoxon_distr`.
Cliff's delta: neilernst/cliffsDelta `cliffs_delta` (the O(n*m) definition, copied below).
Run: python3 scipy_golden.py
"""
import numpy as np
import scipy
from scipy import stats, special
from scipy.stats._hypotests import _get_wilcoxon_distr

print("# scipy", scipy.__version__)


def legacy_wilcoxon(x, y, limit):
    d = np.asarray(x, float) - np.asarray(y, float)
    method = "exact" if len(d) <= limit else "approx"
    n_zero = np.sum(d == 0)
    if n_zero > 0 and method == "exact":
        method = "approx"
    if method == "approx":
        d = d[d != 0]
    count = len(d)
    r = stats.rankdata(abs(d))
    r_plus = np.sum((d > 0) * r)
    r_minus = np.sum((d < 0) * r)
    T = min(r_plus, r_minus)
    if method == "approx":
        mn = count * (count + 1.0) * 0.25
        se = count * (count + 1.0) * (2.0 * count + 1.0)
        _, repnum = np.unique(r, return_counts=True)
        repnum = repnum[repnum > 1]  # == scipy 1.9 find_repeats(r)[1]
        if repnum.size != 0:
            se -= 0.5 * (repnum * (repnum * repnum - 1)).sum()
        se = np.sqrt(se / 24)
        z = (T - mn) / se
        prob = 2.0 * stats.norm.sf(abs(z))
    else:
        cnt = _get_wilcoxon_distr(count) * 2.0**count  # counts
        r_plus = int(r_plus)
        if r_plus == (len(cnt) - 1) // 2:
            prob = 1.0
        else:
            p_less = np.sum(cnt[: r_plus + 1]) / 2**count
            p_greater = np.sum(cnt[r_plus:]) / 2**count
            prob = 2 * min(p_greater, p_less)
    return T, min(prob, 1.0), method


rng = np.random.default_rng(7)
cases = {
    # n = 9, no ties, no zeros: exact
    "exact9": (np.round(rng.normal(0.3, 1, 9), 6), np.zeros(9)),
    # n = 12 with ties and one zero: modern -> permutation; legacy -> normal
    "ties_zero12": ([1, 2, 2, 3, -1, 0, 4, 4, -2, 5, 6, -3], np.zeros(12)),
    # n = 20 with ties, no zeros: modern -> normal; legacy 1.9/1.7 -> exact
    "ties20": ([1, 2, 2, 3, -1, 7, 4, 4, -2, 5, 6, -3, 8, 9, 9, -4, 10, 11, 12, 13], np.zeros(20)),
    # n = 30 no ties: exact for modern and 1.9, normal for 1.7
    "exact30": (np.round(rng.normal(0.4, 1, 30), 6), np.zeros(30)),
    # n = 60 with zeros: normal everywhere
    "normal60": (np.round(rng.normal(0.2, 1, 60), 1), np.zeros(60)),
    # n = 80 strong shift: tiny p
    "tiny80": (np.round(rng.normal(3, 0.5, 80), 4), np.zeros(80)),
}
for name, (x, y) in cases.items():
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    res = stats.wilcoxon(x, y)
    l9 = legacy_wilcoxon(x, y, 50)
    l7 = legacy_wilcoxon(x, y, 25)
    print(f"{name}: x = {list(map(float, x))}")
    print(f"  modern T={float(res.statistic)!r} p={float(res.pvalue)!r}")
    print(f"  1.9    T={float(l9[0])!r} p={float(l9[1])!r} {l9[2]}")
    print(f"  1.7    T={float(l7[0])!r} p={float(l7[1])!r} {l7[2]}")
res = stats.wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0], np.zeros(12), method="asymptotic")
print("asymptotic z", float(res.zstatistic))

for x in [0.0, 0.1, 0.5, 1.0, 1.4999, 1.5, 2.0, 3.5, 5.0, 9.6, 15.0, 26.0]:
    print(f"erfc({x}) = {float(special.erfc(x))!r}")
for p, df in [(0.975, 1), (0.975, 2), (0.975, 3), (0.975, 7), (0.975, 15), (0.975, 95), (0.975, 255), (0.6, 4), (0.999, 5), (0.025, 10), (0.9995, 2.5)]:
    print(f"t.ppf({p}, {df}) = {float(stats.t.ppf(p, df))!r}")


def cliffs_delta(lst1, lst2):
    m, n = len(lst1), len(lst2)
    lst2 = sorted(lst2)
    j = more = less = 0
    for repeats, x in _runs(sorted(lst1)):
        while j <= (n - 1) and lst2[j] < x:
            j += 1
        more += j * repeats
        while j <= (n - 1) and lst2[j] == x:
            j += 1
        less += (n - j) * repeats
    d = (more - less) / (m * n)
    return d


def _runs(lst):
    for j, two in enumerate(lst):
        if j == 0:
            one, i = two, 0
        if one != two:
            yield j - i, one
            i = j
        one = two
    yield j - i + 1, two


a = [1, 2, 2, 3, 5, 5, 0.5, 7, 7, 7]
b = [2, 2, 4, 5, 1, 9, 0.1]
print("cliffs", cliffs_delta(a, b), cliffs_delta(b, a))

# Replicates (crates/stats/src/inference.rs, crates/stats/src/paired.rs, src/compare/): t-interval, paired t,
# Welch, the prediction test of one new value, Holm and Benjamini-Hochberg (statsmodels 0.15.0 and
# scipy's false_discovery_control), and the percentile bootstrap of a paired mean difference.
from statsmodels.stats.multitest import multipletests

x = [0.81, 0.79, 0.83, 0.80, 0.78]
y = [0.76, 0.77, 0.80, 0.74, 0.75]
m, s = np.mean(x), np.std(x, ddof=1)
print("t.interval", stats.t.interval(0.95, len(x) - 1, loc=m, scale=s / np.sqrt(len(x))))
print("ttest_rel", stats.ttest_rel(x, y))
print("welch", stats.ttest_ind(x, y, equal_var=False))
print("welch unequal n", stats.ttest_ind([0.5, 0.52, 0.49, 0.55, 0.51, 0.50, 0.53], [0.44, 0.47], equal_var=False))
t = (0.70 - m) / (s * np.sqrt(1 + 1 / len(x)))
print("prediction t", t, "p", 2 * stats.t.sf(abs(t), len(x) - 1))
h = stats.t.ppf(0.975, len(x) - 1) * s * np.sqrt(1 + 1 / len(x))
print("prediction interval", m - h, m + h)
p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.5]
print("holm", multipletests(p, method="holm")[1])
print("fdr_bh", multipletests(p, method="fdr_bh")[1], stats.false_discovery_control(p))
d = np.array(x) - np.array(y)
print("bootstrap", stats.bootstrap((d,), np.mean, n_resamples=200000, method="percentile", random_state=1).confidence_interval)
print("wilcoxon 1..7", stats.wilcoxon([1, 2, 3, 4, 5, 6, 7], [0] * 7))
print("t.ppf(0.975, 2)", stats.t.ppf(0.975, 2))

# Welch's test from summaries, for a comparison with a published mean ± SEM (stats::inference::welch_t_summary).
print("welch from stats", stats.ttest_ind_from_stats(19.876, 0.045, 5, 19.90, 0.02 * np.sqrt(20), 20, equal_var=False))
print("welch from stats", stats.ttest_ind_from_stats(98.05, 1.2 * np.sqrt(5), 5, 85.15, 1.00 * np.sqrt(20), 20, equal_var=False))
