//! Tunnel metrics of method §2: % OOD retained r, Pearson ρ, ID/OOD alignment A, tunnel classes
//! and both tunnel starts. Pure functions over probe curves; undefined values are NaN with a reason
//! code, never 0 and never a panic.

use serde::Serialize;

use crate::error::{Error, Result};

/// A metric value that may be undefined, with the reason when it is.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Value {
    pub value: f64,
    pub reason: Option<&'static str>,
}

impl Value {
    pub fn ok(value: f64) -> Self {
        Value { value, reason: None }
    }
    pub fn undefined(reason: &'static str) -> Self {
        Value {
            value: f64::NAN,
            reason: Some(reason),
        }
    }
    pub fn is_defined(&self) -> bool {
        self.reason.is_none() && self.value.is_finite()
    }
}

fn valid_curve(c: &[f64]) -> bool {
    c.iter().all(|a| a.is_finite() && (0.0..=1.0).contains(a))
}

/// Index (0-based) of the first maximum; `None` for an empty curve.
pub fn first_argmax(c: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in c.iter().enumerate() {
        if best.is_none_or(|b| v > c[b]) {
            best = Some(i);
        }
    }
    best
}

/// % OOD performance retained (method §2.1): 100 · ood[L] / max ood.
pub fn retained_pct(ood: &[f64]) -> Value {
    if ood.is_empty() || !valid_curve(ood) {
        return Value::undefined("invalid_input");
    }
    let m = first_argmax(ood).unwrap_or(0);
    if ood[m] == 0.0 {
        return Value::undefined("ood_all_zero");
    }
    Value::ok(100.0 * ood[ood.len() - 1] / ood[m])
}

/// Pearson correlation between two curves over all layers (method §2.2), clamped to [-1, 1].
pub fn pearson(id: &[f64], ood: &[f64]) -> Result<Value> {
    if id.len() != ood.len() {
        return Err(Error::Internal(format!(
            "curves of unequal length {} and {}",
            id.len(),
            ood.len()
        )));
    }
    if !valid_curve(id) || !valid_curve(ood) {
        return Ok(Value::undefined("invalid_input"));
    }
    if id.len() < 2 {
        return Ok(Value::undefined("too_few_layers"));
    }
    Ok(pearson_raw(id, ood))
}

/// Pearson correlation of two equal-length series, NaN with a reason for constant input.
pub fn pearson_raw(x: &[f64], y: &[f64]) -> Value {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 {
        return Value::undefined("id_curve_constant");
    }
    if syy == 0.0 {
        return Value::undefined("ood_curve_constant");
    }
    Value::ok((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// ID/OOD alignment (method §2.3): (id[L] − 1/K_id) · (ood[L] − 1/K_ood).
pub fn alignment(id: &[f64], ood: &[f64], id_classes: usize, ood_classes: usize) -> Value {
    if id.is_empty() || ood.is_empty() || !valid_curve(id) || !valid_curve(ood) || id_classes == 0 || ood_classes == 0 {
        return Value::undefined("invalid_input");
    }
    let a = id[id.len() - 1] - 1.0 / id_classes as f64;
    let b = ood[ood.len() - 1] - 1.0 / ood_classes as f64;
    Value::ok(a * b)
}

/// OOD-based tunnel start (method §2.7): the 1-based OOD-best layer m when a tunnel is present
/// (m < L and ood[m] > ood[L]); `None` means no tunnel.
pub fn tunnel_start_ood(ood: &[f64]) -> Option<usize> {
    if ood.is_empty() || !valid_curve(ood) {
        return None;
    }
    let m = first_argmax(ood)?;
    let last = ood.len() - 1;
    (m < last && ood[m] > ood[last]).then_some(m + 1)
}

/// Options of the ID-based tunnel start of [M23] (method §2.7).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdStartRule {
    /// Threshold τ (0.95 or 0.98 in the literature).
    pub tau: f64,
    /// Reference accuracy: the last layer's (`false`) or the best layer's (`true`).
    pub reference_max: bool,
    /// Strict comparison `>` instead of `>=`.
    pub strict: bool,
}

impl Default for IdStartRule {
    fn default() -> Self {
        IdStartRule {
            tau: 0.95,
            reference_max: false,
            strict: false,
        }
    }
}

/// ID-based tunnel start: the smallest 1-based l with id[l] ≥ τ·reference. Equal to L means no
/// tunnel; `None` when the curve is invalid.
pub fn tunnel_start_id(id: &[f64], rule: IdStartRule) -> Option<usize> {
    if id.is_empty() || !valid_curve(id) {
        return None;
    }
    let reference = if rule.reference_max {
        id.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    } else {
        id[id.len() - 1]
    };
    let threshold = rule.tau * reference;
    id.iter()
        .position(|&a| if rule.strict { a > threshold } else { a >= threshold })
        .map(|i| i + 1)
}

pub use tunnelbench_stats::TunnelClass;

/// Mean of values that must all be defined (method §2.4: an aggregate is NaN if any member is).
pub fn mean_all_defined(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Curve normalised by its maximum (method §2.5); all NaN when the maximum is 0.
pub fn normalised(c: &[f64]) -> Vec<f64> {
    let max = c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !(max > 0.0) {
        return vec![f64::NAN; c.len()];
    }
    c.iter().map(|v| v / max).collect()
}

/// All metrics of one (backbone, OOD set).
#[derive(Clone, Debug, Serialize)]
pub struct OodMetrics {
    pub retained_pct: Value,
    pub pearson: Value,
    pub alignment: Value,
    pub tunnel_start_ood: Option<usize>,
    pub tunnel_start_id: Option<usize>,
    pub ood_peak_layer: Option<usize>,
    pub id_final_accuracy: f64,
    pub ood_final_accuracy: f64,
}

pub fn ood_metrics(
    id: &[f64],
    ood: &[f64],
    id_classes: usize,
    ood_classes: usize,
    rule: IdStartRule,
) -> Result<OodMetrics> {
    Ok(OodMetrics {
        retained_pct: retained_pct(ood),
        pearson: pearson(id, ood)?,
        alignment: alignment(id, ood, id_classes, ood_classes),
        tunnel_start_ood: tunnel_start_ood(ood),
        tunnel_start_id: tunnel_start_id(id, rule),
        ood_peak_layer: if valid_curve(ood) {
            first_argmax(ood).map(|m| m + 1)
        } else {
            None
        },
        id_final_accuracy: id.last().copied().unwrap_or(f64::NAN),
        ood_final_accuracy: ood.last().copied().unwrap_or(f64::NAN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_on_a_tunnel_curve() {
        let ood = [0.2, 0.5, 0.4, 0.25];
        let r = retained_pct(&ood);
        assert!((r.value - 50.0).abs() < 1e-12);
        assert_eq!(tunnel_start_ood(&ood), Some(2));
    }

    #[test]
    fn retained_without_tunnel_is_100_and_no_start() {
        let ood = [0.1, 0.3, 0.5];
        assert_eq!(retained_pct(&ood).value, 100.0);
        assert_eq!(tunnel_start_ood(&ood), None);
        // A plateau reaching the last layer is not a tunnel either: ties go to the earliest layer
        // but a_m must exceed a_p.
        assert_eq!(tunnel_start_ood(&[0.1, 0.5, 0.5]), None);
        assert_eq!(retained_pct(&[0.1, 0.5, 0.5]).value, 100.0);
    }

    #[test]
    fn undefined_cases_are_nan_with_reasons() {
        let r = retained_pct(&[0.0, 0.0]);
        assert!(r.value.is_nan());
        assert_eq!(r.reason, Some("ood_all_zero"));
        assert_eq!(retained_pct(&[0.5, f64::NAN]).reason, Some("invalid_input"));
        assert_eq!(retained_pct(&[0.5, 1.5]).reason, Some("invalid_input"));
        assert_eq!(pearson(&[0.5], &[0.4]).unwrap().reason, Some("too_few_layers"));
        assert_eq!(
            pearson(&[0.5, 0.5], &[0.4, 0.3]).unwrap().reason,
            Some("id_curve_constant")
        );
        assert_eq!(
            pearson(&[0.5, 0.6], &[0.3, 0.3]).unwrap().reason,
            Some("ood_curve_constant")
        );
        assert!(pearson(&[0.5, 0.6], &[0.3]).is_err());
        assert!(normalised(&[0.0, 0.0]).iter().all(|v| v.is_nan()));
        assert!(mean_all_defined(&[1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn pearson_matches_numpy() {
        // numpy 2.4.6: np.corrcoef([0.2,0.4,0.6,0.65,0.66],[0.3,0.5,0.55,0.4,0.2])[0,1]
        let id = [0.2, 0.4, 0.6, 0.65, 0.66];
        let ood = [0.3, 0.5, 0.55, 0.4, 0.2];
        let p = pearson(&id, &ood).unwrap();
        assert!((p.value - 0.027228035240015065).abs() < 1e-12, "{}", p.value);
        // Rescaling a curve does not change ρ.
        let scaled: Vec<f64> = ood.iter().map(|v| v * 0.5).collect();
        assert!((pearson(&id, &scaled).unwrap().value - p.value).abs() < 1e-12);
        assert_eq!(pearson(&id, &id).unwrap().value, 1.0);
    }

    #[test]
    fn alignment_keeps_sign() {
        // (0.8 − 0.1)·(0.3 − 0.5) = −0.14
        let a = alignment(&[0.5, 0.8], &[0.4, 0.3], 10, 2);
        assert!((a.value + 0.14).abs() < 1e-12);
    }

    #[test]
    fn id_start_rules() {
        let id = [0.5, 0.9, 0.96, 1.0, 0.97];
        // τ·id[L] = 0.9215: first l with id ≥ it is layer 3.
        assert_eq!(tunnel_start_id(&id, IdStartRule::default()), Some(3));
        // Best-layer reference 1.0, strict: 0.95 < 0.96 → layer 3; τ = 0.98 → layer 4.
        let max_rule = IdStartRule {
            tau: 0.95,
            reference_max: true,
            strict: true,
        };
        assert_eq!(tunnel_start_id(&id, max_rule), Some(3));
        assert_eq!(tunnel_start_id(&id, IdStartRule { tau: 0.98, ..max_rule }), Some(4));
        // A table that gives some keys keeps the defaults of the others.
        let partial: IdStartRule = toml::from_str("tau = 0.98").unwrap();
        assert_eq!(
            partial,
            IdStartRule {
                tau: 0.98,
                ..IdStartRule::default()
            }
        );
        // ge vs gt at equality.
        let eq = [0.95, 1.0];
        assert_eq!(tunnel_start_id(&eq, IdStartRule::default()), Some(1));
        assert_eq!(
            tunnel_start_id(
                &eq,
                IdStartRule {
                    strict: true,
                    ..Default::default()
                }
            ),
            Some(2)
        );
        // An increasing curve has its start at L: no tunnel.
        assert_eq!(tunnel_start_id(&[0.1, 0.5, 0.9], IdStartRule::default()), Some(3));
        assert_eq!(tunnel_start_id(&[], IdStartRule::default()), None);
    }

    #[test]
    fn classes_follow_the_paper_bins() {
        use TunnelClass::*;
        let cases = [
            (100.0, Negligible),
            (95.0, Negligible),
            (94.99, Weak),
            (90.0, Weak),
            (89.9, Medium),
            (80.0, Medium),
            (79.99, Strong),
            (10.0, Strong),
        ];
        for (r, c) in cases {
            assert_eq!(TunnelClass::from_mean_retained(r), Some(c), "r = {r}");
        }
        assert_eq!(TunnelClass::from_mean_retained(f64::NAN), None);
    }
}
