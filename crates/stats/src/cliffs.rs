//! Cliff's δ: an unpaired effect size (the pairing is ignored), as in `neilernst/cliffsDelta`.

use serde::{Deserialize, Serialize};

/// Magnitude label on |δ| with the thresholds 0.147 / 0.33 / 0.474 (Romano et al.).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CliffMagnitude {
    Negligible,
    Small,
    Medium,
    Large,
}

impl CliffMagnitude {
    pub fn of(delta: f64) -> Option<Self> {
        let a = delta.abs();
        if a.is_nan() {
            None
        } else if a < 0.147 {
            Some(Self::Negligible)
        } else if a < 0.33 {
            Some(Self::Small)
        } else if a < 0.474 {
            Some(Self::Medium)
        } else {
            Some(Self::Large)
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negligible => "negligible",
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CliffsDelta {
    /// (#{x_i > y_j} − #{x_i < y_j}) / (n·m); positive when `x` tends to be larger. NaN if either
    /// sample is empty.
    pub delta: f64,
    pub magnitude: Option<CliffMagnitude>,
}

/// O((n+m) log(n+m)): sort `y` once, then count the smaller and larger `y` for each `x` by binary
/// search. Ties count in neither term.
pub fn cliffs_delta(x: &[f64], y: &[f64]) -> CliffsDelta {
    if x.is_empty() || y.is_empty() {
        return CliffsDelta {
            delta: f64::NAN,
            magnitude: None,
        };
    }
    let mut ys = y.to_vec();
    ys.sort_by(f64::total_cmp);
    let m = ys.len() as i64;
    let mut net: i64 = 0;
    for &xi in x {
        let below = ys.partition_point(|&v| v < xi) as i64;
        let not_above = ys.partition_point(|&v| v <= xi) as i64;
        net += below - (m - not_above);
    }
    let delta = net as f64 / (x.len() as f64 * ys.len() as f64);
    CliffsDelta {
        delta,
        magnitude: CliffMagnitude::of(delta),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force definition, to check the sorted counting.
    fn brute(x: &[f64], y: &[f64]) -> f64 {
        let mut s = 0i64;
        for a in x {
            for b in y {
                s += (a > b) as i64 - (a < b) as i64;
            }
        }
        s as f64 / (x.len() * y.len()) as f64
    }

    #[test]
    fn matches_brute_force_with_ties() {
        let x = [1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 0.5];
        let y = [2.0, 2.0, 4.0, 5.0, 1.0];
        assert!((cliffs_delta(&x, &y).delta - brute(&x, &y)).abs() < 1e-15);
        assert!((cliffs_delta(&y, &x).delta + brute(&x, &y)).abs() < 1e-15);
    }

    #[test]
    fn magnitude_thresholds() {
        assert_eq!(CliffMagnitude::of(0.1469), Some(CliffMagnitude::Negligible));
        assert_eq!(CliffMagnitude::of(-0.147), Some(CliffMagnitude::Small));
        assert_eq!(CliffMagnitude::of(0.33), Some(CliffMagnitude::Medium));
        assert_eq!(CliffMagnitude::of(-0.474), Some(CliffMagnitude::Large));
        assert!(cliffs_delta(&[], &[1.0]).delta.is_nan());
    }
}
