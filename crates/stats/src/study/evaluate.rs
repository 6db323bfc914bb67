//! Evaluating a comparison on a study: the paired rows, Wilcoxon, Cliff's δ and the group means.

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonResult {
    pub name: String,
    pub a: String,
    pub b: String,
    pub metric: Metric,
    pub n_pairs: usize,
    pub n_a: usize,
    pub n_b: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    pub ci95_a: (f64, f64),
    pub ci95_b: (f64, f64),
    /// Wilcoxon T = min(R+, R−); absent for unpaired comparisons.
    pub wilcoxon_statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub z: Option<f64>,
    pub wilcoxon_method: Option<String>,
    pub zeros_dropped: Option<usize>,
    /// Signed δ (positive: group a larger).
    pub cliffs_delta: f64,
    pub cliffs_delta_abs: f64,
    pub magnitude: Option<CliffMagnitude>,
    /// `p_value` adjusted (Holm) over the analysis's comparisons of the same metric.
    #[serde(default)]
    pub p_holm: Option<f64>,
    /// Pairs of models behind the pairs of rows (0 for an unpaired comparison).
    #[serde(default)]
    pub n_model_pairs: usize,
    /// Wilcoxon p-value with a model pair as the unit: each pair's differences averaged over its
    /// rows (OOD sets), so that rows of one model do not count as independent.
    #[serde(default)]
    pub p_models: Option<f64>,
    /// `p_models` adjusted (Holm) over the analysis's comparisons of the same metric.
    #[serde(default)]
    pub p_models_holm: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedComparison {
    pub name: String,
    pub reason: String,
}

fn row_passes(study: &Study, row: &StudyRow, filter: &Filter) -> bool {
    filter.iter().all(|(col, vals)| {
        let cell = if col == MODEL_KEY {
            study.model_ids[row.model].as_str()
        } else {
            row.cells.get(col).map(String::as_str).unwrap_or("")
        };
        vals.iter().any(|v| match (col == MODEL_KEY, v) {
            (true, CellValue::Number(n)) => cell == format!("{n}"),
            _ => v.matches(cell),
        })
    })
}

fn check_filter_keys(study: &Study, spec_name: &Path, def: &ComparisonDef) -> Result<()> {
    let filters = def.within.iter().chain(&def.exclude).chain([&def.a, &def.b]);
    for fl in filters {
        for k in fl.keys() {
            if k != MODEL_KEY && !study.columns.iter().any(|c| c == k) {
                return Err(Error::input(
                    spec_name,
                    format!(
                        "comparison '{}': filter column '{k}' is not in {}",
                        def.name,
                        study.path.display()
                    ),
                ));
            }
        }
    }
    for v in &def.vary {
        if !VARIABLES.contains(&v.as_str()) {
            return Err(Error::input(
                spec_name,
                format!(
                    "comparison '{}': vary names '{v}', which is not a study variable",
                    def.name
                ),
            ));
        }
    }
    Ok(())
}

/// Outcome of one spec entry: results per metric, or why it was skipped.
pub enum Evaluated {
    Done(Vec<ComparisonResult>),
    Skipped(SkippedComparison),
}

/// Selects both groups, pairs them (same OOD set and every variable outside `vary`, equal keys
/// paired in file order) and computes means, Wilcoxon and Cliff's δ for each metric.
pub fn evaluate(study: &Study, spec_name: &Path, def: &ComparisonDef, wopts: &WilcoxonOptions) -> Result<Evaluated> {
    check_filter_keys(study, spec_name, def)?;
    let pool: Vec<&StudyRow> = study
        .rows
        .iter()
        .filter(|r| def.within.is_empty() || def.within.iter().any(|fl| row_passes(study, r, fl)))
        .filter(|r| !def.exclude.iter().any(|fl| row_passes(study, r, fl)))
        .collect();
    let ga: Vec<&StudyRow> = pool.iter().copied().filter(|r| row_passes(study, r, &def.a)).collect();
    let gb: Vec<&StudyRow> = pool.iter().copied().filter(|r| row_passes(study, r, &def.b)).collect();
    if ga.is_empty() || gb.is_empty() {
        let which = if ga.is_empty() { &def.a_label } else { &def.b_label };
        let reason = format!("group '{which}' has no rows in this study");
        if def.required {
            return Err(Error::input(
                &study.path,
                format!("comparison '{}': {reason}", def.name),
            ));
        }
        return Ok(Evaluated::Skipped(SkippedComparison {
            name: def.name.clone(),
            reason,
        }));
    }
    if let Some(r) = ga.iter().find(|r| gb.iter().any(|s| s.line == r.line)) {
        return Err(Error::input(
            spec_name,
            format!("comparison '{}': line {} is in both groups", def.name, r.line),
        ));
    }

    let pairs: Option<Vec<(&StudyRow, &StudyRow)>> = if def.paired {
        let key = |r: &StudyRow| -> Vec<String> {
            let mut k = vec![r.ood_key.clone()];
            for (v, cell) in VARIABLES.iter().zip(&r.variables) {
                if !def.vary.iter().any(|x| x == v) {
                    k.push(cell.clone());
                }
            }
            k
        };
        let mut bucket_b: BTreeMap<Vec<String>, Vec<&StudyRow>> = BTreeMap::new();
        for r in &gb {
            bucket_b.entry(key(r)).or_default().push(r);
        }
        let mut used: BTreeMap<Vec<String>, usize> = BTreeMap::new();
        let mut pairs = Vec::new();
        for r in &ga {
            let k = key(r);
            let u = used.entry(k.clone()).or_insert(0);
            let Some(s) = bucket_b.get(&k).and_then(|v| v.get(*u)) else {
                return Err(unpaired(study, def, r, &def.a_label, &def.b_label));
            };
            *u += 1;
            pairs.push((*r, *s));
        }
        for (k, v) in &bucket_b {
            let u = used.get(k).copied().unwrap_or(0);
            if let Some(r) = v.get(u) {
                return Err(unpaired(study, def, r, &def.b_label, &def.a_label));
            }
        }
        Some(pairs)
    } else {
        None
    };

    let model_pairs = pairs.as_deref().map_or_else(Vec::new, model_pairs_of);
    let mut out = Vec::new();
    for &metric in &def.metrics {
        let (va, vb): (Vec<f64>, Vec<f64>) = match &pairs {
            Some(p) => p.iter().map(|(a, b)| (a.metric(metric), b.metric(metric))).unzip(),
            None => (
                ga.iter().map(|r| r.metric(metric)).collect(),
                gb.iter().map(|r| r.metric(metric)).collect(),
            ),
        };
        let w = match &pairs {
            Some(_) => Some(wilcoxon(&va, &vb, wopts)?),
            None => None,
        };
        let per_model = match &pairs {
            Some(p) => Some(wilcoxon_diffs(&model_pair_means(p, metric), wopts)?),
            None => None,
        };
        let cd = cliffs_delta(&va, &vb);
        out.push(ComparisonResult {
            name: def.name.clone(),
            a: def.a_label.clone(),
            b: def.b_label.clone(),
            metric,
            n_pairs: pairs.as_ref().map_or(0, Vec::len),
            n_a: va.len(),
            n_b: vb.len(),
            mean_a: mean(&va),
            mean_b: mean(&vb),
            ci95_a: t_interval(&va, 0.95),
            ci95_b: t_interval(&vb, 0.95),
            wilcoxon_statistic: w.as_ref().map(|w| w.statistic),
            p_value: w.as_ref().map(|w| w.p_value),
            z: w.as_ref().map(|w| w.z),
            wilcoxon_method: w.as_ref().map(|w| w.method.as_str().to_string()),
            zeros_dropped: w.as_ref().map(|w| w.zeros_dropped),
            cliffs_delta: cd.delta,
            cliffs_delta_abs: cd.delta.abs(),
            magnitude: cd.magnitude,
            p_holm: None,
            n_model_pairs: model_pairs.len(),
            p_models: per_model.map(|w| w.p_value),
            p_models_holm: None,
        });
    }
    Ok(Evaluated::Done(out))
}

/// The distinct (model a, model b) pairs behind pairs of rows, in order of first appearance.
fn model_pairs_of(pairs: &[(&StudyRow, &StudyRow)]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (a, b) in pairs {
        if !out.contains(&(a.model, b.model)) {
            out.push((a.model, b.model));
        }
    }
    out
}

/// Each model pair's mean difference a − b over its pairs of rows, in [`model_pairs_of`]'s order.
fn model_pair_means(pairs: &[(&StudyRow, &StudyRow)], metric: Metric) -> Vec<f64> {
    model_pairs_of(pairs)
        .iter()
        .map(|&(ma, mb)| {
            let d: Vec<f64> = pairs
                .iter()
                .filter(|(a, b)| (a.model, b.model) == (ma, mb))
                .map(|(a, b)| a.metric(metric) - b.metric(metric))
                .collect();
            mean(&d)
        })
        .collect()
}

fn unpaired(study: &Study, def: &ComparisonDef, r: &StudyRow, own: &str, other: &str) -> Error {
    Error::input(
        &study.path,
        format!(
            "comparison '{}': unpaired design: line {} (model '{}', OOD '{}', group '{own}') has no \
             counterpart in group '{other}' sharing the OOD set and every variable except [{}]",
            def.name,
            r.line,
            study.model_ids[r.model],
            r.ood_key,
            def.vary.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six models without augmentation and their six augmented twins, four OOD rows each, every
    /// twin higher. Over 24 pairs of rows the test is far below 0.05; over the 6 pairs of models
    /// it can be no lower than scipy's exact two-sided p for six positive differences,
    /// `scipy.stats.wilcoxon([1, 2, 3, 4, 5, 6]).pvalue` = 0.03125.
    #[test]
    fn the_model_pair_is_the_unit_of_p_models() {
        let mut text = String::from(crate::study::TEST_HEADER);
        for m in 0..6 {
            for aug in [0, 2] {
                for ood in 0..4 {
                    let r = 60.0 + m as f64 + ood as f64 * 0.37 + aug as f64 * (2.5 + m as f64 * 0.05);
                    text.push_str(&format!(
                        "m{m}a{aug},o{ood},0.5,0.1,{r:.3},3,1,CNN,{aug},32,100,{},11\n",
                        50 + m
                    ));
                }
            }
        }
        let study = Study::parse(Path::new("twins.csv"), &text).unwrap();
        let def = ComparisonSpec::h24()
            .comparisons
            .into_iter()
            .find(|c| c.name == "augmentation")
            .unwrap();
        let Evaluated::Done(results) = evaluate(&study, Path::new("h24"), &def, &WilcoxonOptions::default()).unwrap()
        else {
            panic!("augmentation skipped");
        };
        let r = results.iter().find(|r| r.metric == Metric::RetainedPct).unwrap();
        assert_eq!((r.n_pairs, r.n_model_pairs), (24, 6));
        assert!(r.p_value.unwrap() < 1e-4, "{:?}", r.p_value);
        assert!((r.p_models.unwrap() - 0.03125).abs() < 1e-15, "{:?}", r.p_models);
    }
}
