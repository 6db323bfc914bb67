//! The `[study]` section of a scenario: the variables whose grid the study runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DataSpec;

/// The `[study]` section of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudySection {
    /// Comparison spec (TOML, the `analyze --spec` format), relative to the scenario file;
    /// default: the built-in [H24] spec.
    #[serde(default)]
    pub spec: Option<String>,
    /// Named data specs: a string value of the key `id`, or the strings of an `ood` list, name
    /// entries of this table.
    #[serde(default)]
    pub data: BTreeMap<String, DataSpec>,
    /// Variables whose values are crossed (product, first variable slowest).
    #[serde(default)]
    pub vary: Vec<Variable>,
    /// Variable name → value (or value label): a run matching every entry of one filter is
    /// dropped from the product.
    #[serde(default)]
    pub exclude: Vec<toml::Table>,
    /// An explicit list of runs instead of a product: each entry maps dotted keys to values.
    #[serde(default)]
    pub runs: Vec<toml::Table>,
}

/// One study variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Name in plans and `exclude` filters (default: the key).
    #[serde(default)]
    pub name: Option<String>,
    /// Dotted scenario key that each value is assigned to. Without it, every value is a level
    /// `{ label = "..", set = { "dotted.key" = value, .. } }`.
    #[serde(default)]
    pub key: Option<String>,
    pub values: Vec<toml::Value>,
}
