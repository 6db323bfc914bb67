//! How far one factor-study analysis agrees with another (a reproduction with the paper's, say):
//! per comparison and metric, whether both studies see the difference between the groups in the
//! same direction; per SHAP slope, whether both have the same sign and whether the other study's
//! slope lies inside this study's bootstrap interval.

use std::fmt::Write as _;
use std::path::Path;

use tunnelbench_plot::write_atomic;

use serde::{Deserialize, Serialize};

use super::analyze::{Analysis, AnalyzeOptions, compute};
use super::describe::sign;
use super::study::{Metric, ShapUncertainty};
use super::table::csv_bytes;
use crate::Result;

/// A row of `agreement.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementRow {
    /// `comparison` (the value is mean b − mean a) or `shap_slope`.
    pub kind: String,
    /// The comparison's name, or the slope's variable.
    pub name: String,
    pub metric: String,
    pub this: Option<f64>,
    /// This study's 95% interval (slopes with resamples only).
    pub this_low: Option<f64>,
    pub this_high: Option<f64>,
    /// This study's p-value over pairs of models, Holm-adjusted (comparisons only).
    pub this_p_models_holm: Option<f64>,
    pub other: Option<f64>,
    /// Both values have the same sign (−, 0 or +); empty when either is undefined.
    pub same_sign: Option<bool>,
    /// The other value lies in this study's interval; empty without one.
    pub other_inside: Option<bool>,
}

/// The agreement of `this` with `other`, comparison by comparison and slope by slope; what only
/// one of them has is left out.
pub fn agreement(this: &Analysis, other: &Analysis) -> Vec<AgreementRow> {
    let same = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| sign(a) == sign(b));
    let mut rows = Vec::new();
    for c in &this.comparisons {
        let Some(o) = other.comparison(&c.name, c.metric) else {
            continue;
        };
        let (d, od) = (c.mean_b - c.mean_a, o.mean_b - o.mean_a);
        rows.push(AgreementRow {
            kind: "comparison".into(),
            name: c.name.clone(),
            metric: c.metric.key().into(),
            this: Some(d),
            this_low: None,
            this_high: None,
            this_p_models_holm: c.p_models_holm,
            other: Some(od),
            same_sign: same(Some(d), Some(od)),
            other_inside: None,
        });
    }
    for r in &this.shap {
        let Some(o) = other.shap.iter().find(|o| o.metric == r.metric) else {
            continue;
        };
        for f in &r.slopes {
            let Some(of) = o.slopes.iter().find(|of| of.feature == f.feature) else {
                continue;
            };
            let inside = f
                .ci_low
                .zip(f.ci_high)
                .zip(of.slope)
                .map(|((lo, hi), v)| lo <= v && v <= hi);
            rows.push(AgreementRow {
                kind: "shap_slope".into(),
                name: f.feature.clone(),
                metric: r.metric.key().into(),
                this: f.slope,
                this_low: f.ci_low,
                this_high: f.ci_high,
                this_p_models_holm: None,
                other: of.slope,
                same_sign: same(f.slope, of.slope),
                other_inside: inside,
            });
        }
    }
    rows
}

/// `agreement.csv`.
pub fn agreement_csv(rows: &[AgreementRow]) -> Result<Vec<u8>> {
    csv_bytes(rows)
}

/// Analyses `other_csv` with the same spec (its point estimates only), writes `agreement.csv` and
/// `agreement.md` of `this` against it into `out_dir`, and returns the summary.
pub fn write_against(this: &Analysis, other_csv: &Path, spec: Option<&Path>, out_dir: &Path) -> Result<String> {
    let point = AnalyzeOptions {
        uncertainty: ShapUncertainty::NONE,
        skip_failing_comparisons: true,
        ..AnalyzeOptions::default()
    };
    let other = compute(other_csv, spec, &point)?;
    let rows = agreement(this, &other);
    let text = agreement_text(this, &other, &rows);
    write_atomic(&out_dir.join("agreement.csv"), &agreement_csv(&rows)?)?;
    let md = format!(
        "# Agreement\n\nComparisons: the direction of mean b − mean a in both studies. SHAP slopes: the sign in both, \
         and whether the other study's slope lies in this study's 95% bootstrap interval. Every row: agreement.csv.\n\n```\n{text}```\n"
    );
    write_atomic(&out_dir.join("agreement.md"), md.as_bytes())?;
    Ok(text)
}

/// Per metric, how many comparisons point the same way and how many slopes share their sign (and
/// hold the other's slope in their interval): a few lines for the terminal and `agreement.md`.
pub fn agreement_text(this: &Analysis, other: &Analysis, rows: &[AgreementRow]) -> String {
    let mut s = format!(
        "agreement of {} with {}:\n",
        this.input.display(),
        other.input.display()
    );
    if !other.skipped_comparisons.is_empty() {
        let names: Vec<&str> = other.skipped_comparisons.iter().map(|k| k.name.as_str()).collect();
        let _ = writeln!(
            s,
            "  not formed in {}: {} (left out)",
            other.input.display(),
            names.join(", ")
        );
    }
    for metric in Metric::ALL {
        let of = |kind: &str| -> Vec<&AgreementRow> {
            rows.iter()
                .filter(|r| r.kind == kind && r.metric == metric.key())
                .collect()
        };
        let count = |v: &[&AgreementRow], f: fn(&AgreementRow) -> Option<bool>| {
            (
                v.iter().filter(|r| f(r) == Some(true)).count(),
                v.iter().filter(|r| f(r).is_some()).count(),
            )
        };
        let comps = of("comparison");
        let slopes = of("shap_slope");
        if comps.is_empty() && slopes.is_empty() {
            continue;
        }
        let (same_c, n_c) = count(&comps, |r| r.same_sign);
        let (same_s, n_s) = count(&slopes, |r| r.same_sign);
        let (inside, n_i) = count(&slopes, |r| r.other_inside);
        let _ = write!(
            s,
            "  {}: {same_c} of {n_c} comparisons in the same direction; {same_s} of {n_s} SHAP slopes with the same sign",
            metric.label()
        );
        if n_i > 0 {
            let _ = write!(
                s,
                ", {inside} of {n_i} of the other's slopes inside this study's 95% intervals"
            );
        }
        s.push('\n');
        let differ: Vec<&str> = comps
            .iter()
            .filter(|r| r.same_sign == Some(false))
            .map(|r| r.name.as_str())
            .collect();
        if !differ.is_empty() {
            let _ = writeln!(s, "    opposite direction: {}", differ.join(", "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(aug_effect: f64) -> String {
        let mut text = String::from(crate::study::TEST_HEADER);
        for m in 0..8 {
            for aug in [0, 2] {
                for ood in 0..3 {
                    let depth = if m % 2 == 0 { 11 } else { 17 };
                    let r = 80.0 - if depth == 17 { 10.0 } else { 0.0 }
                        + aug as f64 * aug_effect
                        + (m * 7 + ood * 3) as f64 % 5.0;
                    text.push_str(&format!(
                        "m{m}a{aug},o{ood},{:.4},{:.4},{r:.3},3,1,CNN,{aug},32,{},50,{depth}\n",
                        r / 100.0,
                        r / 300.0,
                        10 * (1 + m / 2)
                    ));
                }
            }
        }
        text
    }

    fn analysis(dir: &std::path::Path, name: &str, aug_effect: f64) -> Analysis {
        let p = dir.join(name);
        std::fs::write(&p, study(aug_effect)).unwrap();
        let opts = AnalyzeOptions {
            uncertainty: ShapUncertainty {
                resamples: 40,
                folds: 0,
                seed: 0,
            },
            ..AnalyzeOptions::default()
        };
        compute(&p, None, &opts).unwrap()
    }

    /// A study agrees with itself everywhere; against a study whose augmentation effect is
    /// reversed, the augmentation comparison points the other way and its slope changes sign.
    #[test]
    fn agreement_finds_a_reversed_effect() {
        let dir = std::env::temp_dir().join(format!("tunnelbench-agreement-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let this = analysis(&dir, "this.csv", 3.0);
        let same = agreement(&this, &this);
        assert!(!same.is_empty());
        assert!(same.iter().all(|r| r.same_sign != Some(false)), "{same:?}");
        assert!(
            same.iter()
                .filter(|r| r.kind == "shap_slope")
                .all(|r| r.other_inside != Some(false))
        );

        let other = analysis(&dir, "other.csv", -3.0);
        let rows = agreement(&this, &other);
        let aug = rows
            .iter()
            .find(|r| r.kind == "comparison" && r.name == "augmentation" && r.metric == "retained_pct")
            .unwrap();
        assert_eq!(aug.same_sign, Some(false), "{aug:?}");
        assert!(aug.this.unwrap() > 0.0 && aug.other.unwrap() < 0.0);
        let slope = rows
            .iter()
            .find(|r| r.kind == "shap_slope" && r.name == "Augmentations" && r.metric == "retained_pct")
            .unwrap();
        assert_eq!(
            (slope.same_sign, slope.other_inside),
            (Some(false), Some(false)),
            "{slope:?}"
        );
        let text = agreement_text(&this, &other, &rows);
        assert!(text.contains("opposite direction: augmentation"), "{text}");
        let csv = String::from_utf8(agreement_csv(&rows).unwrap()).unwrap();
        assert!(
            csv.starts_with(
                "kind,name,metric,this,this_low,this_high,this_p_models_holm,other,same_sign,other_inside\n"
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
