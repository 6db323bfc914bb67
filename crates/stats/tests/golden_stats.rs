//! Wilcoxon, Cliff's δ, erfc and Student-t quantiles against reference values.
//!
//! Source: tests/golden/scipy_golden.py, run with scipy 1.17.1 / python 3.11:
//! `scipy.stats.wilcoxon(x, y)` (defaults; y = 0), `scipy.special.erfc`, `scipy.stats.t.ppf`.
//! The scipy 1.9 / 1.7 columns come from that script's transcription of scipy 1.9.3's
//! `wilcoxon` (`method="auto"` rule) on scipy's own exact null distribution.
//! Cliff's δ: neilernst/cliffsDelta `cliffs_delta`, copied into the same script.

use tunnelbench_stats::cliffs::cliffs_delta;
use tunnelbench_stats::describe::student_t_quantile;
use tunnelbench_stats::wilcoxon::{WilcoxonMethod, WilcoxonOptions, WilcoxonPolicy, erfc, wilcoxon_diffs};

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

struct Case {
    name: &'static str,
    d: &'static [f64],
    t: f64,
    modern: (f64, WilcoxonMethod),
    v19: (f64, WilcoxonMethod),
    v17: (f64, WilcoxonMethod),
}

use WilcoxonMethod::{Exact, Normal, Permutation};

const CASES: &[Case] = &[
    Case {
        name: "exact9",
        d: &[
            0.30123, 0.598746, 0.025862, -0.590592, -0.154671, -0.691647, 0.360144, 1.640215, -0.192207,
        ],
        t: 19.0,
        modern: (0.734375, Exact),
        v19: (0.734375, Exact),
        v17: (0.734375, Exact),
    },
    Case {
        name: "ties_zero12",
        d: &[1.0, 2.0, 2.0, 3.0, -1.0, 0.0, 4.0, 4.0, -2.0, 5.0, 6.0, -3.0],
        t: 12.0,
        modern: (0.0654296875, Permutation),
        v19: (0.060982971925821625, Normal),
        v17: (0.060982971925821625, Normal),
    },
    Case {
        name: "ties20",
        d: &[
            1.0, 2.0, 2.0, 3.0, -1.0, 7.0, 4.0, 4.0, -2.0, 5.0, 6.0, -3.0, 8.0, 9.0, 9.0, -4.0, 10.0, 11.0, 12.0, 13.0,
        ],
        t: 21.0,
        modern: (0.001695524084579498, Normal),
        v19: (0.000850677490234375, Exact),
        v17: (0.000850677490234375, Exact),
    },
    Case {
        name: "exact30",
        d: &[
            -0.220475, 0.889842, 0.756887, 0.505414, -0.530468, 0.370748, 1.095303, -0.944215, -0.057616, -1.501223,
            -0.889538, -1.441735, 0.164909, -0.867446, 0.671264, 0.556751, 0.213069, -2.11676, -0.138693, 0.351499,
            0.513309, -1.130136, -0.077753, -0.578519, -0.408837, 1.460899, -0.407535, 0.367478, 1.28439, -0.1836,
        ],
        t: 217.0,
        modern: (0.761065473780036, Exact),
        v19: (0.761065473780036, Exact),
        v17: (0.7498711559507313, Normal),
    },
    Case {
        name: "normal60",
        d: &[
            0.1, 0.3, 0.3, -1.0, 0.3, 1.6, -1.3, 1.1, 0.3, -0.4, 2.2, 1.0, -1.0, 0.3, 0.8, 0.0, 0.9, 0.1, 0.9, 1.6,
            -0.5, 0.4, -0.3, 0.3, -1.0, -0.4, 0.0, 1.1, 1.3, -1.1, -0.6, 0.8, -1.8, -0.3, 0.1, 1.5, 0.9, -0.1, -0.2,
            -0.1, 1.7, -0.2, -0.1, 0.6, 0.1, 0.0, -0.9, 0.2, -0.2, 1.4, 0.9, 0.2, 0.9, -0.1, 1.3, 0.2, 0.8, -1.1, 0.5,
            -1.5,
        ],
        t: 594.0,
        modern: (0.06442012209375517, Normal),
        v19: (0.06442012209375517, Normal),
        v17: (0.06442012209375517, Normal),
    },
    Case {
        name: "tiny80",
        d: &[
            1.9823, 2.8478, 2.55, 3.082, 4.1224, 2.5841, 2.688, 3.1027, 3.2465, 2.9118, 2.897, 3.3512, 3.26, 2.4832,
            2.9604, 3.0176, 2.4728, 3.1299, 2.571, 3.486, 3.0964, 3.0447, 2.7045, 2.9407, 2.0011, 2.4343, 3.1814,
            1.9357, 3.4233, 2.127, 3.3784, 2.5773, 3.3895, 3.0655, 2.2316, 3.6246, 3.7209, 2.9671, 2.863, 2.9201,
            2.5124, 3.5493, 2.7286, 2.9744, 2.6034, 2.687, 2.3611, 3.6285, 2.923, 3.483, 3.0067, 2.6528, 2.8367,
            2.7199, 3.004, 2.8124, 2.85, 2.3107, 2.5966, 3.827, 2.6644, 2.473, 3.1687, 3.7036, 2.273, 2.8957, 2.684,
            2.1195, 3.3675, 2.9883, 3.0357, 2.6238, 3.2274, 2.7304, 2.9285, 2.4459, 2.3919, 3.6678, 2.7464, 3.1458,
        ],
        t: 0.0,
        modern: (7.849526548031477e-15, Normal),
        v19: (7.849526548031477e-15, Normal),
        v17: (7.849526548031477e-15, Normal),
    },
];

#[test]
fn wilcoxon_matches_scipy_for_each_policy() {
    for c in CASES {
        for (policy, (p, method)) in [
            (WilcoxonPolicy::ScipyModern, c.modern),
            (WilcoxonPolicy::Scipy19, c.v19),
            (WilcoxonPolicy::Scipy17, c.v17),
        ] {
            let r = wilcoxon_diffs(
                c.d,
                &WilcoxonOptions {
                    policy,
                    round_diffs: None,
                },
            )
            .unwrap();
            assert_eq!(r.statistic, c.t, "{} {policy:?}", c.name);
            assert_eq!(r.method, method, "{} {policy:?}", c.name);
            assert!(
                close(r.p_value, p, 1e-12),
                "{} {policy:?}: p {} vs scipy {p}",
                c.name,
                r.p_value
            );
        }
    }
}

#[test]
fn wilcoxon_reports_zeros_and_z() {
    let r = wilcoxon_diffs(CASES[4].d, &WilcoxonOptions::default()).unwrap();
    assert_eq!((r.n_pairs, r.n, r.zeros_dropped), (60, 57, 3));
    // scipy.stats.wilcoxon(1..=12, 0, method="asymptotic").zstatistic == -3.059411708155671
    // (scipy reports −|z|; R+ is the maximum here, so z is positive).
    let d: Vec<f64> = (1..=12).map(f64::from).collect();
    let r = wilcoxon_diffs(&d, &WilcoxonOptions::default()).unwrap();
    assert!(close(r.z, 3.059411708155671, 1e-12), "{}", r.z);
    // Normal approximation below 10 non-zero pairs carries a warning.
    let r = wilcoxon_diffs(
        &[1.0, 1.0, 2.0, -3.0, 0.0],
        &WilcoxonOptions {
            policy: WilcoxonPolicy::Scipy19,
            round_diffs: None,
        },
    )
    .unwrap();
    assert_eq!(r.method, Normal);
    assert!(r.warning.is_some());
}

#[test]
fn erfc_matches_scipy_into_the_far_tail() {
    let golden = [
        (0.0, 1.0),
        (0.1, 0.8875370839817152),
        (0.5, 0.4795001221869535),
        (1.0, 0.15729920705028516),
        (1.4999, 0.033906748337704726),
        (1.5, 0.03389485352468927),
        (2.0, 0.004677734981047266),
        (3.5, 7.430983723414129e-07),
        (5.0, 1.5374597944280347e-12),
        (9.6, 5.5239445993750256e-42),
        (15.0, 7.212994172451209e-100),
        (26.0, 5.663192408856145e-296),
    ];
    for (x, want) in golden {
        let got = erfc(x);
        assert!(close(got, want, 1e-13), "erfc({x}) = {got}, scipy {want}");
    }
}

#[test]
fn t_quantile_matches_scipy() {
    let golden = [
        (0.975, 1.0, 12.706204736174694),
        (0.975, 2.0, 4.302652729749462),
        (0.975, 3.0, 3.1824463052837078),
        (0.975, 7.0, 2.364624251592784),
        (0.975, 15.0, 2.131449545559776),
        (0.975, 95.0, 1.9852510035054978),
        (0.975, 255.0, 1.9693105698498752),
        (0.6, 4.0, 0.2707222947075976),
        (0.999, 5.0, 5.893429531356009),
        (0.025, 10.0, -2.2281388519862753),
        (0.9995, 2.5, 18.277893528131457),
    ];
    for (p, df, want) in golden {
        let got = student_t_quantile(p, df);
        assert!(close(got, want, 1e-12), "t.ppf({p}, {df}) = {got}, scipy {want}");
    }
}

#[test]
fn cliffs_delta_matches_cliffs_delta_package() {
    let a = [1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 0.5, 7.0, 7.0, 7.0];
    let b = [2.0, 2.0, 4.0, 5.0, 1.0, 9.0, 0.1];
    assert!(close(cliffs_delta(&a, &b).delta, 0.18571428571428572, 1e-15));
    assert!(close(cliffs_delta(&b, &a).delta, -0.18571428571428572, 1e-15));
}
