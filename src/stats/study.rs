//! A study's metric table (the [H24] CSV schema), its models, tunnel classes, the comparison
//! specification (pairing groups) and the SHAP variable-importance analysis.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cliffs::{CliffMagnitude, cliffs_delta};
use super::describe::{mean, t_interval};
use super::gbm::{GbmParams, fit_huber, r2_score};
use super::treeshap::gbm_shap;
use super::wilcoxon::{WilcoxonOptions, wilcoxon};
use crate::error::{Error, Result};

pub const COL_PEARSON: &str = "Pearson Correlation";
pub const COL_ALIGNMENT: &str = "ID OOD Alignment";
pub const COL_RETAINED: &str = "Percentage OOD retained";
pub const COL_ARCH: &str = "CNN vs ViT";

/// The eight study variables, in the order of the reference CSV.
pub const VARIABLES: [&str; 8] = [
    "Stem",
    "Spatial Reduction",
    COL_ARCH,
    "Augmentations",
    "Resolution",
    "ID Class Count",
    "OverParam. Level",
    "Depth",
];

/// Columns that name the model a row belongs to, in order of preference.
pub const MODEL_ID_COLUMNS: [&str; 2] = ["model_id", "run_id"];
pub const OOD_COLUMN: &str = "ood_dataset";
/// Filter key that selects by model id instead of by a column.
pub const MODEL_KEY: &str = "@model";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    RetainedPct,
    Pearson,
    Alignment,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::RetainedPct, Metric::Pearson, Metric::Alignment];
    pub fn key(self) -> &'static str {
        match self {
            Metric::RetainedPct => "retained_pct",
            Metric::Pearson => "pearson",
            Metric::Alignment => "alignment",
        }
    }
    pub fn column(self) -> &'static str {
        match self {
            Metric::RetainedPct => COL_RETAINED,
            Metric::Pearson => COL_PEARSON,
            Metric::Alignment => COL_ALIGNMENT,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Metric::RetainedPct => "% OOD retained",
            Metric::Pearson => "Pearson ρ",
            Metric::Alignment => "ID/OOD alignment",
        }
    }
}

/// One (model, OOD set) row.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyRow {
    /// 1-based line in the file (the header is line 1).
    pub line: usize,
    pub retained_pct: f64,
    pub pearson: f64,
    pub alignment: f64,
    /// Raw cells of [`VARIABLES`], in that order.
    pub variables: Vec<String>,
    /// Every cell by column name, for filters on extra columns.
    pub cells: BTreeMap<String, String>,
    pub model: usize,
    /// Pairs rows across models: the `ood_dataset` cell, or the row's position inside its model.
    pub ood_key: String,
}

impl StudyRow {
    pub fn metric(&self, m: Metric) -> f64 {
        match m {
            Metric::RetainedPct => self.retained_pct,
            Metric::Pearson => self.pearson,
            Metric::Alignment => self.alignment,
        }
    }
}

pub use crate::metrics::tunnel::TunnelClass;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub id: String,
    pub n_rows: usize,
    /// Cells of [`VARIABLES`].
    pub variables: Vec<String>,
    pub mean_retained_pct: f64,
    pub mean_pearson: f64,
    pub mean_alignment: f64,
    pub class: Option<TunnelClass>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    pub negligible: usize,
    pub weak: usize,
    pub medium: usize,
    pub strong: usize,
}

#[derive(Debug, Clone)]
pub struct Study {
    pub path: PathBuf,
    pub rows: Vec<StudyRow>,
    /// Model ids in order of first appearance (block index for files without an id column).
    pub model_ids: Vec<String>,
    pub columns: Vec<String>,
}

fn parse_number(path: &Path, line: usize, col: &str, cell: &str) -> Result<f64> {
    let t = cell.trim();
    let v: f64 = t
        .parse()
        .map_err(|_| Error::input(path, format!("line {line}, column '{col}': '{t}' is not a number")))?;
    if !v.is_finite() {
        return Err(Error::input(
            path,
            format!("line {line}, column '{col}': '{t}' is not a finite number (undefined metric)"),
        ));
    }
    Ok(v)
}

/// Canonical text of a variable cell so that `0.5` and `0.50` pair.
fn canonical(cell: &str) -> String {
    let t = cell.trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => format!("{v}"),
        _ => t.to_string(),
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Study {
    /// Reads a metrics CSV. Models are identified by a `model_id`/`run_id` column when present;
    /// otherwise consecutive rows form blocks (one per model) whose size is the number of distinct
    /// `ood_dataset` values, or, without that column, the greatest common divisor of the runs of
    /// consecutive rows with identical variables (8 for the reference file, whose identical
    /// models 28/29 and 56/57 are never adjacent).
    pub fn read(path: &Path) -> Result<Study> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Study> {
        if text.trim().is_empty() {
            return Err(Error::input(path, "the file is empty"));
        }
        // Flexible, so that a short or long row is reported below with its line and cell count.
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| Error::input(path, format!("cannot read the header: {e}")))?
            .iter()
            .map(|s| s.trim_start_matches('\u{feff}').to_string())
            .collect();
        let col_index = |name: &str| header.iter().position(|h| h == name);
        let mut required = vec![COL_PEARSON, COL_ALIGNMENT, COL_RETAINED];
        required.extend(VARIABLES);
        let mut idx = BTreeMap::new();
        for c in &required {
            let i = col_index(c)
                .ok_or_else(|| Error::input(path, format!("missing column '{c}' (header: {})", header.join(","))))?;
            idx.insert(*c, i);
        }
        let id_col = MODEL_ID_COLUMNS.iter().find_map(|c| col_index(c));
        let ood_col = col_index(OOD_COLUMN);

        let mut rows = Vec::new();
        let mut model_cells: Vec<Option<String>> = Vec::new();
        let mut ood_cells: Vec<Option<String>> = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| Error::input(path, format!("malformed CSV: {e}")))?;
            let line = rec.position().map(|p| p.line() as usize).unwrap_or(rows.len() + 2);
            if rec.len() != header.len() {
                return Err(Error::input(
                    path,
                    format!("line {line}: {} cells but the header has {}", rec.len(), header.len()),
                ));
            }
            let cell = |c: &str| rec.get(idx[c]).unwrap_or("");
            let num = |c: &str| parse_number(path, line, c, cell(c));
            let retained_pct = num(COL_RETAINED)?;
            let pearson = num(COL_PEARSON)?;
            let alignment = num(COL_ALIGNMENT)?;
            let mut variables = Vec::with_capacity(VARIABLES.len());
            for v in VARIABLES {
                let raw = cell(v);
                if raw.trim().is_empty() {
                    return Err(Error::input(path, format!("line {line}, column '{v}': empty cell")));
                }
                if v != COL_ARCH {
                    parse_number(path, line, v, raw)?;
                }
                variables.push(canonical(raw));
            }
            let cells = header.iter().cloned().zip(rec.iter().map(str::to_string)).collect();
            model_cells.push(id_col.and_then(|i| rec.get(i)).map(str::to_string));
            ood_cells.push(ood_col.and_then(|i| rec.get(i)).map(str::to_string));
            rows.push(StudyRow {
                line,
                retained_pct,
                pearson,
                alignment,
                variables,
                cells,
                model: 0,
                ood_key: String::new(),
            });
        }
        if rows.is_empty() {
            return Err(Error::input(path, "no data rows after the header"));
        }

        let mut model_ids: Vec<String> = Vec::new();
        if id_col.is_some() {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (r, id) in rows.iter_mut().zip(&model_cells) {
                let id = id.clone().unwrap_or_default();
                if id.trim().is_empty() {
                    return Err(Error::input(path, format!("line {}: empty model id", r.line)));
                }
                let n = seen.len();
                let m = *seen.entry(id.clone()).or_insert(n);
                if m == model_ids.len() {
                    model_ids.push(id);
                }
                r.model = m;
            }
        } else {
            let block = if ood_col.is_some() {
                let mut names: Vec<&String> = ood_cells.iter().flatten().collect();
                names.sort();
                names.dedup();
                names.len()
            } else {
                let mut g = 0;
                let mut run = 1;
                for i in 1..=rows.len() {
                    if i < rows.len() && rows[i].variables == rows[i - 1].variables {
                        run += 1;
                    } else {
                        g = gcd(g, run);
                        run = 1;
                    }
                }
                g
            };
            if block == 0 || rows.len() % block != 0 {
                return Err(Error::input(
                    path,
                    format!(
                        "cannot split {} rows into models of {block} rows; add a model_id column",
                        rows.len()
                    ),
                ));
            }
            for (i, r) in rows.iter_mut().enumerate() {
                r.model = i / block;
            }
            model_ids = (0..rows.len() / block).map(|b| b.to_string()).collect();
        }

        // Variables must be constant within a model; OOD keys are positions unless named.
        let mut first: Vec<Option<usize>> = vec![None; model_ids.len()];
        let mut position = vec![0usize; model_ids.len()];
        for i in 0..rows.len() {
            let m = rows[i].model;
            match first[m] {
                None => first[m] = Some(i),
                Some(f) if rows[f].variables != rows[i].variables => {
                    return Err(Error::input(
                        path,
                        format!(
                            "line {}: model '{}' has different variables than on line {}",
                            rows[i].line, model_ids[m], rows[f].line
                        ),
                    ));
                }
                Some(_) => {}
            }
            rows[i].ood_key = match &ood_cells[i] {
                Some(o) => o.trim().to_string(),
                None => format!("slot{}", position[m]),
            };
            position[m] += 1;
        }
        Ok(Study {
            path: path.to_path_buf(),
            rows,
            model_ids,
            columns: header,
        })
    }

    pub fn n_models(&self) -> usize {
        self.model_ids.len()
    }

    /// Mean metrics and tunnel class per model (§2.6), in model order.
    pub fn model_summaries(&self) -> Vec<ModelSummary> {
        (0..self.n_models())
            .map(|m| {
                let rows: Vec<&StudyRow> = self.rows.iter().filter(|r| r.model == m).collect();
                let avg = |k: Metric| mean(&rows.iter().map(|r| r.metric(k)).collect::<Vec<_>>());
                let mean_retained_pct = avg(Metric::RetainedPct);
                ModelSummary {
                    id: self.model_ids[m].clone(),
                    n_rows: rows.len(),
                    variables: rows[0].variables.clone(),
                    mean_retained_pct,
                    mean_pearson: avg(Metric::Pearson),
                    mean_alignment: avg(Metric::Alignment),
                    class: TunnelClass::from_mean_retained(mean_retained_pct),
                }
            })
            .collect()
    }
}

pub fn class_counts(models: &[ModelSummary]) -> ClassCounts {
    let mut c = ClassCounts::default();
    for m in models {
        match m.class {
            Some(TunnelClass::Negligible) => c.negligible += 1,
            Some(TunnelClass::Weak) => c.weak += 1,
            Some(TunnelClass::Medium) => c.medium += 1,
            Some(TunnelClass::Strong) => c.strong += 1,
            None => {}
        }
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Comparison specification

/// A filter value: numbers match numerically (relative tolerance 1e-9), text matches exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CellValue {
    Number(f64),
    Text(String),
}

impl CellValue {
    fn matches(&self, cell: &str) -> bool {
        let cell = cell.trim();
        match self {
            CellValue::Number(v) => cell
                .parse::<f64>()
                .map(|c| (c - v).abs() <= 1e-9 * v.abs().max(1.0))
                .unwrap_or(false),
            CellValue::Text(s) => cell == s,
        }
    }
}

/// Column (or [`MODEL_KEY`]) → accepted values; a row passes when every listed column matches
/// one of its values.
pub type Filter = BTreeMap<String, Vec<CellValue>>;

/// One paired (or, with `paired = false`, unpaired) comparison of two groups of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonDef {
    pub name: String,
    pub a_label: String,
    pub b_label: String,
    #[serde(default = "all_metrics")]
    pub metrics: Vec<Metric>,
    /// Rows must pass at least one of these filters (none: every row).
    #[serde(default, rename = "where")]
    pub within: Vec<Filter>,
    /// Rows passing any of these filters are dropped.
    #[serde(default)]
    pub exclude: Vec<Filter>,
    pub a: Filter,
    pub b: Filter,
    /// Variables allowed to differ between paired rows; pairs share the OOD set and every other
    /// variable. Rows with the same key pair in file order.
    #[serde(default)]
    pub vary: Vec<String>,
    #[serde(default = "yes")]
    pub paired: bool,
    /// Fail instead of skipping when a group has no rows.
    #[serde(default)]
    pub required: bool,
}

fn all_metrics() -> Vec<Metric> {
    Metric::ALL.to_vec()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "comparison")]
    pub comparisons: Vec<ComparisonDef>,
}

impl ComparisonSpec {
    pub fn load(path: &Path) -> Result<ComparisonSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let spec: ComparisonSpec = toml::from_str(&text).map_err(|e| Error::input(path, e.to_string()))?;
        if spec.comparisons.is_empty() {
            return Err(Error::input(path, "no [[comparison]] entries"));
        }
        Ok(spec)
    }

    /// The [H24] §7.4 pairing groups. Models the variables cannot tell apart (the reference
    /// file's CIFAR-100 VGGm-11, blocks 28/29, and its C100×S500 subset twin, blocks 56/57) are
    /// separated by model id; in studies without those ids the affected comparisons fall back
    /// to the variables alone.
    pub fn h24() -> ComparisonSpec {
        h24_spec()
    }
}

fn f(entries: &[(&str, &[f64])]) -> Filter {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|x| CellValue::Number(*x)).collect()))
        .collect()
}

fn and(a: &Filter, b: &Filter) -> Filter {
    let mut out = a.clone();
    out.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

fn cmp_def(name: String, a_label: &str, b_label: &str, a: Filter, b: Filter) -> ComparisonDef {
    ComparisonDef {
        name,
        a_label: a_label.to_string(),
        b_label: b_label.to_string(),
        metrics: all_metrics(),
        within: Vec::new(),
        exclude: Vec::new(),
        a,
        b,
        vary: Vec::new(),
        paired: true,
        required: false,
    }
}

const G_VIT_T: f64 = 44.28166613;
const G_VIT_TP: f64 = 66.22516556;
const G_VGG11: f64 = 74.67104484;
const G_R18: f64 = 88.56333225;
const G_VGG17: f64 = 158.49837;
const G_R34: f64 = 168.3650514;
const G_CIFAR11: f64 = 189.2;
const G_CIFAR17: f64 = 401.6;

fn h24_spec() -> ComparisonSpec {
    let sr = "Spatial Reduction";
    let gamma = "OverParam. Level";
    let arch_vary: Vec<String> = ["Stem", sr, COL_ARCH, gamma, "Depth"].map(String::from).to_vec();
    let ids = |v: &[u32]| -> Filter {
        [(
            MODEL_KEY.to_string(),
            v.iter().map(|i| CellValue::Text(i.to_string())).collect(),
        )]
        .into_iter()
        .collect()
    };
    let res_32_224 = f(&[("Resolution", &[32.0, 224.0])]);
    // ImageNet-100 backbones (§6.2), by their γ and stem geometry.
    let vgg11 = f(&[("Stem", &[3.0]), (sr, &[0.5]), (gamma, &[G_VGG11])]);
    let vgg17 = f(&[("Stem", &[3.0]), (sr, &[0.5]), (gamma, &[G_VGG17])]);
    let r18 = f(&[(gamma, &[G_R18])]);
    let r34 = f(&[(gamma, &[G_R34])]);
    let vit_t = f(&[(gamma, &[G_VIT_T])]);
    let vit_tp = f(&[(gamma, &[G_VIT_TP])]);
    let mut out = Vec::new();

    let mut c = cmp_def(
        "augmentation".into(),
        "no aug",
        "aug",
        f(&[("Augmentations", &[0.0])]),
        f(&[("Augmentations", &[2.0])]),
    );
    c.vary = vec!["Augmentations".into()];
    out.push(c);

    let res = [32.0, 64.0, 128.0, 224.0];
    for i in 0..res.len() {
        for j in i + 1..res.len() {
            let (r1, r2) = (res[i], res[j]);
            let mut c = cmp_def(
                format!("resolution_{r1}_vs_{r2}"),
                &format!("{r1}px"),
                &format!("{r2}px"),
                f(&[("Resolution", &[r1])]),
                f(&[("Resolution", &[r2])]),
            );
            c.within = vec![vgg17.clone(), r18.clone(), vit_tp.clone()];
            c.vary = vec!["Resolution".into()];
            out.push(c);
        }
    }

    let mut c = cmp_def(
        "spatial_reduction_1_vs_0.5".into(),
        "φ = 1",
        "φ = 0.5",
        f(&[(sr, &[1.0])]),
        f(&[(sr, &[0.5])]),
    );
    c.within = vec![f(&[
        ("Stem", &[3.0]),
        ("Resolution", &[32.0]),
        ("ID Class Count", &[100.0]),
        (gamma, &[G_VGG11, G_VGG17, G_CIFAR11, G_CIFAR17]),
    ])];
    c.exclude = vec![ids(&[56, 57])];
    c.vary = vec![sr.into()];
    out.push(c);

    let stems = [
        ("3", f(&[("Stem", &[3.0]), (sr, &[0.5]), (gamma, &[G_VGG11, G_VGG17])])),
        ("7", f(&[("Stem", &[7.0])])),
        ("8", f(&[("Stem", &[8.0])])),
    ];
    for i in 0..3 {
        for j in i + 1..3 {
            let mut c = cmp_def(
                format!("stem_{}_vs_{}", stems[i].0, stems[j].0),
                &format!("stem {}", stems[i].0),
                &format!("stem {}", stems[j].0),
                stems[i].1.clone(),
                stems[j].1.clone(),
            );
            c.within = vec![and(&res_32_224, &f(&[("ID Class Count", &[100.0])]))];
            c.vary = arch_vary.clone();
            out.push(c);
        }
    }

    let families = [
        (
            "VGGm",
            f(&[("Stem", &[3.0]), (sr, &[0.5]), (gamma, &[G_VGG11, G_VGG17])]),
        ),
        ("ResNet", f(&[("Stem", &[7.0])])),
        ("ViT", f(&[("Stem", &[8.0])])),
    ];
    for i in 0..3 {
        for j in i + 1..3 {
            let mut c = cmp_def(
                format!("family_{}_vs_{}", families[i].0, families[j].0),
                families[i].0,
                families[j].0,
                families[i].1.clone(),
                families[j].1.clone(),
            );
            c.within = vec![f(&[("ID Class Count", &[100.0])])];
            c.paired = false;
            out.push(c);
        }
    }

    let mut c = cmp_def(
        "depth_11_vs_17".into(),
        "depth 11",
        "depth 17",
        f(&[("Depth", &[11.0])]),
        f(&[("Depth", &[17.0])]),
    );
    c.within = vec![f(&[
        ("Stem", &[3.0]),
        ("ID Class Count", &[100.0]),
        ("Resolution", &[32.0, 224.0]),
        (gamma, &[G_VGG11, G_VGG17]),
    ])];
    c.vary = vec!["Depth".into(), gamma.into()];
    out.push(c);

    let depth_groups = [
        ("11", "VGGm-11", &vgg11, "74.67"),
        ("12", "ViT-T", &vit_t, "44.28"),
        ("17", "VGGm-17", &vgg17, "158.5"),
        ("18R", "ResNet-18", &r18, "88.56"),
        ("18V", "ViT-T+", &vit_tp, "66.23"),
        ("34", "ResNet-34", &r34, "168.37"),
    ];
    for i in 0..depth_groups.len() {
        for j in i + 1..depth_groups.len() {
            let (a, b) = (&depth_groups[i], &depth_groups[j]);
            if a.0 == "11" && b.0 == "17" {
                continue;
            }
            let mut c = cmp_def(
                format!("depth_{}_vs_{}", a.0, b.0),
                &format!("depth {} ({})", a.0, a.1),
                &format!("depth {} ({})", b.0, b.1),
                a.2.clone(),
                b.2.clone(),
            );
            c.within = vec![res_32_224.clone()];
            c.vary = arch_vary.clone();
            out.push(c);
        }
    }
    let mut by_gamma = depth_groups.to_vec();
    by_gamma.sort_by(|a, b| a.3.parse::<f64>().unwrap_or(0.0).total_cmp(&b.3.parse().unwrap_or(0.0)));
    for i in 0..by_gamma.len() {
        for j in i + 1..by_gamma.len() {
            let (a, b) = (&by_gamma[i], &by_gamma[j]);
            let mut c = cmp_def(
                format!("overparam_{}_vs_{}", a.3, b.3),
                &format!("γ {} ({})", a.3, a.1),
                &format!("γ {} ({})", b.3, b.1),
                a.2.clone(),
                b.2.clone(),
            );
            c.within = vec![res_32_224.clone()];
            c.vary = arch_vary.clone();
            out.push(c);
        }
    }

    // ID data: VGGm-11 at 32² on ImageNet-100, CIFAR-10, CIFAR-100.
    let common = f(&[
        ("Stem", &[3.0]),
        (sr, &[0.5]),
        ("Depth", &[11.0]),
        ("Resolution", &[32.0]),
    ]);
    let id_groups = [
        ("ImageNet-100", f(&[(gamma, &[G_VGG11]), ("ID Class Count", &[100.0])])),
        ("CIFAR-10", f(&[(gamma, &[G_CIFAR11]), ("ID Class Count", &[10.0])])),
        ("CIFAR-100", f(&[(gamma, &[G_CIFAR11]), ("ID Class Count", &[100.0])])),
    ];
    for i in 0..3 {
        for j in i + 1..3 {
            let mut c = cmp_def(
                format!("id_data_{}_vs_{}", id_groups[i].0, id_groups[j].0),
                id_groups[i].0,
                id_groups[j].0,
                id_groups[i].1.clone(),
                id_groups[j].1.clone(),
            );
            c.within = vec![common.clone()];
            c.exclude = vec![ids(&[56, 57])];
            c.vary = vec!["ID Class Count".into(), gamma.into()];
            out.push(c);
        }
    }

    // ImageNet-100 subsets (VGGm-11, 32²), by γ = P/N and class count.
    let subsets = [
        ("C100xS100", f(&[(gamma, &[946.0]), ("ID Class Count", &[100.0])])),
        ("C100xS200", f(&[(gamma, &[473.0])])),
        ("C100xS500", f(&[(gamma, &[G_CIFAR11]), ("ID Class Count", &[100.0])])),
        ("C100xS700", f(&[(gamma, &[135.14])])),
        ("C10xS1000", f(&[(gamma, &[946.0]), ("ID Class Count", &[10.0])])),
        ("C50xS200", f(&[(gamma, &[946.0]), ("ID Class Count", &[50.0])])),
    ];
    let subset_pairs = [
        (4, 5, "classes"),
        (4, 0, "classes"),
        (5, 0, "classes"),
        (0, 1, "samples"),
        (0, 2, "samples"),
        (0, 3, "samples"),
        (1, 2, "samples"),
        (1, 3, "samples"),
        (2, 3, "samples"),
    ];
    for (i, j, kind) in subset_pairs {
        let mut c = cmp_def(
            format!("{kind}_{}_vs_{}", subsets[i].0, subsets[j].0),
            subsets[i].0,
            subsets[j].0,
            subsets[i].1.clone(),
            subsets[j].1.clone(),
        );
        c.within = vec![common.clone()];
        c.exclude = vec![ids(&[28, 29])];
        c.vary = vec!["ID Class Count".into(), gamma.into()];
        out.push(c);
    }
    ComparisonSpec {
        name: "h24".into(),
        comparisons: out,
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluating comparisons

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
        });
    }
    Ok(Evaluated::Done(out))
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

// ---------------------------------------------------------------------------------------------
// SHAP analysis

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSlope {
    pub feature: String,
    /// OLS slope of SHAP on code / max(code); None when the variable takes a single value.
    pub slope: Option<f64>,
    /// slope / Σ|slope| over the metric's features (the paper's normalisation).
    pub slope_l1: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapResult {
    pub metric: Metric,
    /// In-sample R² of the boosted model.
    pub r2: f64,
    pub expected_value: f64,
    /// In [`VARIABLES`] order.
    pub slopes: Vec<FeatureSlope>,
}

/// Ordinal codes of a column: rank among its sorted distinct values (`pandas.factorize(sort=True)`).
fn ordinal_codes(cells: &[&str], numeric: bool) -> Vec<usize> {
    let mut distinct: Vec<&str> = cells.to_vec();
    if numeric {
        distinct.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap_or(f64::NAN)
                .total_cmp(&b.parse::<f64>().unwrap_or(f64::NAN))
        });
    } else {
        distinct.sort();
    }
    distinct.dedup();
    cells
        .iter()
        .map(|c| distinct.iter().position(|d| d == c).unwrap_or(0))
        .collect()
}

/// The design matrix of [H24] §7.5: seven ordinal columns in order (Stem, Spatial Reduction,
/// Augmentations, Resolution, ID Class Count, OverParam. Level, Depth), then one-hot `CNN vs ViT`
/// columns last. Returns the matrix and each variable's codes (in [`VARIABLES`] order).
pub fn shap_design(study: &Study) -> (Vec<Vec<f64>>, Vec<Vec<usize>>) {
    let codes: Vec<Vec<usize>> = VARIABLES
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let cells: Vec<&str> = study.rows.iter().map(|r| r.variables[j].as_str()).collect();
            ordinal_codes(&cells, *v != COL_ARCH)
        })
        .collect();
    let arch = VARIABLES.iter().position(|v| *v == COL_ARCH).unwrap_or(2);
    let n_arch = codes[arch].iter().max().map_or(1, |m| m + 1);
    let x = (0..study.rows.len())
        .map(|i| {
            let mut row: Vec<f64> = (0..VARIABLES.len())
                .filter(|&j| j != arch)
                .map(|j| codes[j][i] as f64)
                .collect();
            row.extend((0..n_arch).map(|k| if codes[arch][i] == k { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    (x, codes)
}

/// Fits the Huber GBM on one metric (r as a fraction), explains it with TreeSHAP, merges the
/// architecture dummies and regresses each variable's SHAP values on its scaled code.
pub fn shap_analysis(study: &Study, metric: Metric, params: &GbmParams) -> Result<ShapResult> {
    let (x, codes) = shap_design(study);
    let scale = if metric == Metric::RetainedPct { 0.01 } else { 1.0 };
    let y: Vec<f64> = study.rows.iter().map(|r| r.metric(metric) * scale).collect();
    let model = fit_huber(&x, &y, params)?;
    let pred: Vec<f64> = x.iter().map(|r| model.predict(r)).collect();
    let r2 = r2_score(&y, &pred);
    let arch = VARIABLES.iter().position(|v| *v == COL_ARCH).unwrap_or(2);
    let mut shap_by_var: Vec<Vec<f64>> = vec![Vec::with_capacity(x.len()); VARIABLES.len()];
    let mut expected_value = f64::NAN;
    for row in &x {
        let (phi, e) = gbm_shap(&model, row);
        expected_value = e;
        let mut col = 0;
        for (j, s) in shap_by_var.iter_mut().enumerate() {
            if j == arch {
                s.push(phi[VARIABLES.len() - 1..].iter().sum());
            } else {
                s.push(phi[col]);
                col += 1;
            }
        }
    }
    let raw: Vec<Option<f64>> = (0..VARIABLES.len())
        .map(|j| {
            let max = *codes[j].iter().max().unwrap_or(&0);
            if max == 0 {
                return None;
            }
            let xs: Vec<f64> = codes[j].iter().map(|&c| c as f64 / max as f64).collect();
            ols_slope(&xs, &shap_by_var[j])
        })
        .collect();
    let l1: f64 = raw.iter().flatten().map(|b| b.abs()).sum();
    let slopes = VARIABLES
        .iter()
        .zip(&raw)
        .map(|(v, s)| FeatureSlope {
            feature: v.to_string(),
            slope: *s,
            slope_l1: s.and_then(|b| (l1 > 0.0).then(|| b / l1)),
        })
        .collect();
    Ok(ShapResult {
        metric,
        r2,
        expected_value,
        slopes,
    })
}

/// Least-squares slope b of y = a + b·x; None when x is constant.
pub fn ols_slope(x: &[f64], y: &[f64]) -> Option<f64> {
    let mx = mean(x);
    let my = mean(y);
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    if sxx == 0.0 || !sxx.is_finite() {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    Some(sxy / sxx)
}
