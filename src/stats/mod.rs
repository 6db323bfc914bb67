//! Statistics over tunnel metrics: paired tests, effect sizes, descriptive summaries, the
//! gradient-boosting + TreeSHAP variable-importance analysis, and the `analyze` command.
//!
//! Everything here is a pure function over numbers (no tensors), so it can be checked against
//! scipy / scikit-learn / shap reference values.

pub mod analyze;
pub mod cliffs;
pub mod describe;
pub mod gbm;
pub mod inference;
pub mod paired;
pub mod study;
pub mod treeshap;
pub mod wilcoxon;
