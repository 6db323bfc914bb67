//! A study's metric table (the [H24] CSV schema), its models, tunnel classes, the comparison
//! specification (pairing groups) and the SHAP variable-importance analysis.

mod evaluate;
mod shap;
mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cliffs::{CliffMagnitude, cliffs_delta};
use super::describe::{mean, t_interval};
use super::gbm::{GbmParams, fit_huber, r2_score};
use super::treeshap::gbm_shap;
use super::wilcoxon::{WilcoxonOptions, wilcoxon, wilcoxon_diffs};
use crate::{Error, Result};

pub use evaluate::*;
pub use shap::*;
pub use spec::*;

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

/// The header of the synthetic studies of the unit tests: a model id, the OOD set, the metrics
/// and the variables.
#[cfg(test)]
pub(crate) const TEST_HEADER: &str = "model_id,ood_dataset,Pearson Correlation,ID OOD Alignment,\
    Percentage OOD retained,Stem,Spatial Reduction,CNN vs ViT,Augmentations,Resolution,ID Class Count,\
    OverParam. Level,Depth\n";

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

/// Tunnel-strength class from the mean r over a backbone's OOD sets (method §2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelClass {
    Negligible,
    Weak,
    Medium,
    Strong,
}

impl TunnelClass {
    pub fn from_mean_retained(mean_r: f64) -> Option<Self> {
        if !mean_r.is_finite() {
            return None;
        }
        Some(if mean_r >= 95.0 {
            TunnelClass::Negligible
        } else if mean_r >= 90.0 {
            TunnelClass::Weak
        } else if mean_r >= 80.0 {
            TunnelClass::Medium
        } else {
            TunnelClass::Strong
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TunnelClass::Negligible => "negligible",
            TunnelClass::Weak => "weak",
            TunnelClass::Medium => "medium",
            TunnelClass::Strong => "strong",
        }
    }
}

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
            // The line of the record's first cell, counted here: after a CRLF line end the csv
            // crate's position (line and byte) is still on the line end, one line short.
            let line = rec
                .position()
                .map(|p| {
                    let bytes = text.as_bytes();
                    let start = (p.byte() as usize..bytes.len())
                        .find(|&i| !matches!(bytes[i], b'\r' | b'\n'))
                        .unwrap_or(bytes.len());
                    bytes[..start].iter().filter(|&&b| b == b'\n').count() + 1
                })
                .unwrap_or(rows.len() + 2);
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
