//! Statistics over tunnel metrics: paired tests, effect sizes, descriptive summaries, the
//! gradient-boosting + TreeSHAP variable-importance analysis, and the `analyze` command.
//!
//! Everything here is a pure function over numbers (no tensors), so it can be checked against
//! scipy / scikit-learn / shap reference values. It builds and tests without burn.

// `!(x > 0.0)` is used on purpose: it rejects NaN together with the out-of-range values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub use study::TunnelClass;
/// The errors, shared with the plotting crate.
pub use tunnelbench_plot::{Error, Result};

pub mod agreement;
pub mod analyze;
pub mod cliffs;
pub mod describe;
pub mod gbm;
pub mod inference;
pub mod paired;
pub mod study;
pub mod table;
pub mod treeshap;
pub mod wilcoxon;
