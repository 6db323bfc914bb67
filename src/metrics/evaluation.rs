//! The uncertainty of one run's metrics that comes from its finite test sets (method §2.8). Each
//! layer's probe accuracy is a proportion of test images (Wilson interval); r, ρ and A are
//! functions of whole curves, so their intervals come from a bootstrap over test images: each
//! resample draws the ID test set and every OOD test set with replacement, the same draw for every
//! layer (every layer is scored on the same images), and recomputes the curves and the metrics.
//! The network and the fitted probes are held fixed: the intervals say how much the numbers would
//! move on other test images, not on other seeds (replicates measure that).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::tunnel::{TunnelClass, Value, alignment, mean_all_defined, pearson, retained_pct};
use tunnelbench_stats::inference::{percentile_interval, spread};

/// The test outcomes of one data set under one network and probe: per probed layer, which test
/// images the probe classified right (1) or wrong (0), in the test set's order.
pub struct DataHits<'a> {
    pub layers: Vec<&'a [u8]>,
    pub n_classes: usize,
}

impl DataHits<'_> {
    fn images(&self) -> usize {
        self.layers.first().map_or(0, |h| h.len())
    }
}

/// The test outcomes of one network and probe: on the ID set and on each OOD set.
pub struct Network<'a> {
    pub id: DataHits<'a>,
    pub oods: Vec<DataHits<'a>>,
}

impl Network<'_> {
    /// The test images of each data set, ID first.
    fn sizes(&self) -> Vec<usize> {
        std::iter::once(&self.id)
            .chain(&self.oods)
            .map(DataHits::images)
            .collect()
    }

    /// The metrics of its curves, each data set's images weighted by `weights` (none: once each).
    fn metrics(&self, weights: Option<&[Vec<u32>]>) -> Draw {
        let w = |i: usize| weights.map(|w| w[i].as_slice());
        let oods: Vec<(Vec<f64>, usize)> = self
            .oods
            .iter()
            .enumerate()
            .map(|(i, o)| (curve(o, w(i + 1)), o.n_classes))
            .collect();
        metrics_of(&curve(&self.id, w(0)), self.id.n_classes, &oods)
    }
}

/// 95% intervals of r (in %), ρ and A; None where the value is undefined in more than a tenth of
/// the resamples (or none were drawn).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    pub retained_pct: Option<(f64, f64)>,
    pub pearson: Option<(f64, f64)>,
    pub alignment: Option<(f64, f64)>,
}

/// The test-set bootstrap of one network and probe.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resampled {
    /// Per OOD set, in the order given.
    pub per_ood: Vec<Intervals>,
    /// Of the means over the OOD sets.
    pub mean: Intervals,
    /// Share of the resamples whose tunnel class (from the mean r) is the point estimate's; None
    /// when the point estimate has no class.
    pub class_share: Option<f64>,
}

/// r, ρ and A of one resample (None: undefined).
type Triple = [Option<f64>; 3];

/// One resample's metrics per OOD set and their means, and its tunnel class.
struct Draw {
    per_ood: Vec<Triple>,
    mean: Triple,
    class: Option<TunnelClass>,
}

/// The accuracy curve of `hits` under per-image weights (how often each image was drawn).
fn curve(data: &DataHits, weights: Option<&[u32]>) -> Vec<f64> {
    data.layers
        .iter()
        .map(|h| {
            let n = h.len().max(1) as f64;
            let k: u64 = match weights {
                Some(w) => h.iter().zip(w).map(|(&a, &c)| (a as u32 * c) as u64).sum(),
                None => h.iter().map(|&a| a as u64).sum(),
            };
            k as f64 / n
        })
        .collect()
}

/// How often each of `n` images is drawn in `n` draws with replacement.
fn draw_counts(n: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let mut counts = vec![0u32; n];
    for _ in 0..n {
        counts[rng.random_range(0..n)] += 1;
    }
    counts
}

/// The metrics of ID and OOD curves, per OOD set and their means, and the class.
fn metrics_of(id: &[f64], id_classes: usize, oods: &[(Vec<f64>, usize)]) -> Draw {
    let defined = |v: Value| v.is_defined().then_some(v.value);
    let per_ood: Vec<Triple> = oods
        .iter()
        .map(|(ood, k)| {
            [
                defined(retained_pct(ood)),
                pearson(id, ood).ok().and_then(defined),
                defined(alignment(id, ood, id_classes, *k)),
            ]
        })
        .collect();
    let mean = |i: usize| {
        let v: Vec<f64> = per_ood.iter().map(|t| t[i].unwrap_or(f64::NAN)).collect();
        Some(mean_all_defined(&v)).filter(|m| m.is_finite())
    };
    let mean = [mean(0), mean(1), mean(2)];
    Draw {
        per_ood,
        class: mean[0].and_then(TunnelClass::from_mean_retained),
        mean,
    }
}

/// The metrics of several networks averaged, each value over the networks that define it.
fn average(draws: Vec<Draw>) -> Draw {
    let mean_of = |triples: Vec<&Triple>| -> Triple {
        std::array::from_fn(|i| {
            let v: Vec<f64> = triples.iter().filter_map(|t| t[i]).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        })
    };
    let n_oods = draws.first().map_or(0, |d| d.per_ood.len());
    let per_ood = (0..n_oods)
        .map(|o| mean_of(draws.iter().map(|d| &d.per_ood[o]).collect()))
        .collect();
    let mean = mean_of(draws.iter().map(|d| &d.mean).collect());
    Draw {
        per_ood,
        class: mean[0].and_then(TunnelClass::from_mean_retained),
        mean,
    }
}

fn intervals(draws: &[&Triple]) -> Intervals {
    let at = |i: usize| percentile_interval(&draws.iter().map(|t| t[i]).collect::<Vec<_>>());
    Intervals {
        retained_pct: at(0),
        pearson: at(1),
        alignment: at(2),
    }
}

/// The test-set bootstrap of the mean of `networks` (one network, or the seeds of a run with
/// replicates, each value averaged over the networks that define it): `resamples` resamples, each
/// one draw of every data set's test images shared by all networks, from a ChaCha8 stream of its
/// own (seeded with `seed`), so that the result does not depend on the number of `threads`. No
/// resamples, no networks, or networks whose data sets differ in size: no intervals.
pub fn test_set_bootstrap(networks: &[Network], resamples: usize, seed: u64, threads: usize) -> Resampled {
    let n_oods = networks.first().map_or(0, |n| n.oods.len());
    let sizes = networks.first().map(Network::sizes);
    if resamples == 0 || networks.iter().any(|n| Some(n.sizes()) != sizes) {
        return Resampled {
            per_ood: vec![Intervals::default(); n_oods],
            ..Resampled::default()
        };
    }
    let sizes = sizes.unwrap_or_default();
    let point = average(networks.iter().map(|n| n.metrics(None)).collect());
    let draws: Vec<Draw> = spread(resamples, threads, |r| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(r as u64);
        let weights: Vec<Vec<u32>> = sizes.iter().map(|&n| draw_counts(n, &mut rng)).collect();
        average(networks.iter().map(|n| n.metrics(Some(&weights))).collect())
    });
    let per_ood = (0..n_oods)
        .map(|o| intervals(&draws.iter().map(|d| &d.per_ood[o]).collect::<Vec<_>>()))
        .collect();
    let class_share = point
        .class
        .map(|c| draws.iter().filter(|d| d.class == Some(c)).count() as f64 / draws.len() as f64);
    Resampled {
        per_ood,
        mean: intervals(&draws.iter().map(|d| &d.mean).collect::<Vec<_>>()),
        class_share,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hits of `n` images with the first `k` right.
    fn hits(k: usize, n: usize) -> Vec<u8> {
        (0..n).map(|i| (i < k) as u8).collect()
    }

    fn data(layers: &[Vec<u8>], n_classes: usize) -> DataHits<'_> {
        DataHits {
            layers: layers.iter().map(|h| h.as_slice()).collect(),
            n_classes,
        }
    }

    /// A network with `classes` classes in its ID and its one OOD set.
    fn net<'a>(id: &'a [Vec<u8>], classes: usize, ood: &'a [Vec<u8>]) -> Network<'a> {
        Network {
            id: data(id, classes),
            oods: vec![data(ood, classes)],
        }
    }

    /// The mean of several networks: two copies of one network give its own intervals; two
    /// networks that err on different images give a narrower interval of their mean than either
    /// alone; test sets of other sizes give none.
    #[test]
    fn networks_share_the_draw_of_the_test_images() {
        let id = latent_hits(300, &[0.50, 0.70, 0.80, 0.85, 0.86]);
        let ood = latent_hits(200, &[0.40, 0.60, 0.55, 0.45, 0.35]);
        let one = test_set_bootstrap(&[net(&id, 10, &ood)], 1000, 5, 2);
        let two = test_set_bootstrap(&[net(&id, 10, &ood), net(&id, 10, &ood)], 1000, 5, 2);
        assert_eq!(one, two);
        // The second network gets the OOD images right and wrong in reverse order.
        let reversed: Vec<Vec<u8>> = ood.iter().map(|h| h.iter().rev().copied().collect()).collect();
        let both = test_set_bootstrap(&[net(&id, 10, &ood), net(&id, 10, &reversed)], 1000, 5, 2);
        let width = |r: &Resampled| r.per_ood[0].retained_pct.map(|(lo, hi)| hi - lo).unwrap();
        assert!(width(&both) < 0.9 * width(&one), "{} {}", width(&both), width(&one));
        let fewer = latent_hits(199, &[0.40, 0.60, 0.55, 0.45, 0.35]);
        let mixed = test_set_bootstrap(&[net(&id, 10, &ood), net(&id, 10, &fewer)], 1000, 5, 2);
        assert_eq!(mixed.per_ood, vec![Intervals::default()]);
    }

    /// A tunnel: the OOD curve peaks in the middle; the intervals hold the point estimates, get
    /// narrower with more test images, and do not depend on the thread count.
    #[test]
    fn intervals_cover_the_estimates_and_shrink_with_more_images() {
        let width = |n: usize| {
            let id = [hits(n * 5 / 10, n), hits(n * 8 / 10, n), hits(n * 9 / 10, n)];
            let ood = [hits(n * 4 / 10, n), hits(n * 6 / 10, n), hits(n * 3 / 10, n)];
            let b = test_set_bootstrap(&[net(&id, 10, &ood)], 400, 7, 2);
            assert_eq!(b, test_set_bootstrap(&[net(&id, 10, &ood)], 400, 7, 1));
            let (lo, hi) = b.per_ood[0].retained_pct.unwrap();
            assert!(lo < 50.0 && 50.0 < hi, "{lo} {hi}");
            let (lo_a, hi_a) = b.per_ood[0].alignment.unwrap();
            // (0.9 − 0.1)·(0.3 − 0.1) = 0.16
            assert!(lo_a < 0.16 && 0.16 < hi_a, "{lo_a} {hi_a}");
            assert_eq!(b.mean, b.per_ood[0]);
            // Mean r 50%: strong in (almost) every resample.
            assert!(b.class_share.unwrap() > 0.95);
            hi - lo
        };
        let (small, large) = (width(200), width(2000));
        assert!(large < small / 2.0, "{small} {large}");
    }

    /// The fixture of tests/golden/bootstrap_golden.py: image i of n has the latent
    /// ((i · 7919) mod n) / n, and a layer of accuracy p gets it right when the latent is below p.
    fn latent_hits(n: usize, p: &[f64]) -> Vec<Vec<u8>> {
        p.iter()
            .map(|&p| {
                (0..n)
                    .map(|i| ((((i * 7919) % n) as f64 / n as f64) < p) as u8)
                    .collect()
            })
            .collect()
    }

    /// The intervals agree with scipy's percentile bootstrap of the same statistics (two samples
    /// resampled independently) to within a twentieth of their width, the Monte Carlo error of
    /// both.
    #[test]
    fn intervals_match_scipy_bootstrap() {
        let id = latent_hits(300, &[0.50, 0.70, 0.80, 0.85, 0.86]);
        let ood = latent_hits(200, &[0.40, 0.60, 0.55, 0.45, 0.35]);
        let b = test_set_bootstrap(&[net(&id, 10, &ood)], 4000, 11, 2);
        // scipy 1.17.1: stats.bootstrap((id, ood), f, paired=False, n_resamples=20000,
        //   method="percentile", random_state=0).confidence_interval (tests/golden/bootstrap_golden.py)
        let golden = [
            (b.per_ood[0].retained_pct, 49.54128440366972, 66.99079171254132),
            (b.per_ood[0].pearson, -0.13232097172712062, 0.12008984099090213),
            (b.per_ood[0].alignment, 0.13936666666666667, 0.24149999999999996),
        ];
        for (ours, lo, hi) in golden {
            let (a, z) = ours.unwrap();
            let tol = 0.05 * (hi - lo);
            assert!((a - lo).abs() < tol && (z - hi).abs() < tol, "{a} {z} vs {lo} {hi}");
        }
    }

    /// Identical hits on every layer: the OOD curve is flat in every resample, ρ undefined, no
    /// interval for it; no resamples, no intervals at all.
    #[test]
    fn undefined_values_have_no_interval() {
        let id = [hits(5, 20), hits(15, 20)];
        let ood = [hits(8, 20), hits(8, 20)];
        let b = test_set_bootstrap(&[net(&id, 2, &ood)], 100, 0, 2);
        assert_eq!(b.per_ood[0].pearson, None);
        assert_eq!(b.per_ood[0].retained_pct, Some((100.0, 100.0)));
        let none = test_set_bootstrap(&[net(&id, 2, &ood)], 0, 0, 2);
        assert_eq!(none.per_ood, vec![Intervals::default()]);
        assert_eq!(none.class_share, None);
    }
}
