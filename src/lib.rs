//! tunnelbench: a benchmark harness for the tunnel effect, out-of-distribution generalization and
//! continual learning of image backbones.
//!
//! # The pipeline, and where each stage lives
//!
//! ```text
//! scenario file ──► scenario ──► replicates ──┬─► run ─────────► results (probes.csv, metrics*.csv,
//!  (TOML)            (schema,     (seed-<k>/,   │  load data        summary.json, curves)
//!                    checks)      aggregates)   │  train
//!                                               │  probe every layer
//!                                               │  metrics
//!                                               └─► cl ──────────► results (accuracy matrices,
//!                                                   task sequences    cl_metrics.json, heatmaps)
//!                                                   swap protocol
//! study section ──► study (plan, resume, shards, Slurm) ──► runs ──► collect ──► stats (analysis)
//! a run folder + a baseline ──► compare (verdicts)          a folder ──► study::report
//! ```
//!
//! Underneath, from the bottom: [`error`] and `seed` (leaves); [`isa`], [`kernel`] and
//! [`backend`] (the default backend's own kernels and the vector path); [`data`] (loaders,
//! generators, transforms), [`model`] (backbones), `train`, [`probe`] and `metrics`: the
//! stages that import nothing above them. Above them [`scenario`], [`run`], `cl`,
//! [`replicates`], [`study`], [`stats`], [`compare`]; `results` (atomic writes and the
//! records of the result tables) and [`plot`] (charts as SVG and PNG) serve them all. The module
//! graph has no cycle (`tests/suite/layering.rs` keeps it so).
//!
//! The science each stage implements is described in `docs/method.md`, cited in the code as
//! "method §N".

// `!(x > 0.0)` is used on purpose: it rejects NaN together with the out-of-range values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod backend;
pub mod bench;
pub(crate) mod cl;
pub mod compare;
pub mod data;
pub mod error;
pub mod interrupt;
pub mod isa;
pub(crate) mod json;
pub mod kernel;
pub(crate) mod metrics;
pub mod model;
pub mod probe;
pub(crate) mod progress;
pub mod replicates;
pub(crate) mod results;
pub mod run;
pub mod scenario;
pub(crate) mod seed;
pub mod study;
pub(crate) mod train;

/// The plotting and statistics crates, under the names the harness uses for them.
pub(crate) use tunnelbench_plot as plot;
pub(crate) use tunnelbench_stats as stats;

#[cfg(test)]
mod scratch;
