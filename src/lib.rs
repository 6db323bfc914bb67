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
//! Underneath, from the bottom: `error` and `seed` (leaves); `isa`, `kernel` and `backend` (the
//! default backend's own kernels and the vector path); `data` (loaders, generators, transforms),
//! `model` (backbones), `train`, `probe` and `metrics`: the stages that import nothing above them.
//! Above them `scenario`, `run`, `cl`, `replicates`, `study`, `compare`; `results` (the records of
//! the result tables) serves them all. The statistics and the charts are the crates
//! `tunnelbench-stats` and `tunnelbench-plot`. The module graph has no cycle
//! (`tests/suite/layering.rs` keeps it so). The modules are private: the items re-exported below
//! are the library's public face.
//!
//! The science each stage implements is described in `docs/method.md`, cited in the code as
//! "method §N".

// `!(x > 0.0)` is used on purpose: it rejects NaN together with the out-of-range values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod backend;
mod bench;
mod cl;
mod compare;
mod data;
mod error;
mod infer;
mod interrupt;
mod isa;
mod json;
mod kernel;
mod metrics;
mod model;
mod probe;
mod progress;
mod replicates;
mod results;
mod run;
mod scenario;
mod seed;
mod study;
mod train;

// The public face: what the binary, the integration tests, the benchmarks and the fuzz targets
// use. Everything else stays inside the crate.

pub use error::{Error, Result};
pub use infer::{InferOptions, arch_spec, infer};

/// Sets the process up before anything else: the vector path (`TUNNELBENCH_ISA`, read before
/// anything looks at the CPU's features), then the kernels' settings.
pub fn configure() -> Result<()> {
    isa::configure().and_then(|()| kernel::configure())
}
pub use interrupt::install as install_interrupt_handler;
pub use isa::{ENV as ISA_ENV, Machine};

// Scenarios, runs, replicates.
pub use replicates::{aggregate as aggregate_replicates, is_replicate_folder, probe_trained, run as run_scenario};
pub use run::RunOptions;
pub use scenario::data::{EMBEDDED, embedded_dir};
pub use scenario::{load as load_scenario, load_str as load_scenario_str};

// Studies.
pub use study::collect::collect;
pub use study::exec::run_study;
pub use study::report::write_report;
pub use study::slurm::{SlurmJob, absolute as absolute_path, write_scripts as write_slurm_scripts};
pub use study::{parse_shard, plan as plan_study};

// Baselines.
pub use compare::{compare, record as record_baseline};

// Data sets: fetching, the parsers (driven by the fuzz targets).
pub use data::ImageDataset;
pub use data::fetch::{
    default_data_dir, fetch as fetch_dataset, list as list_datasets, load as load_fetched, write_subset,
};
pub use data::formats::cifar::{CifarKind, parse_cifar_records};
pub use data::formats::idx::{encode_idx, parse_idx};
pub use data::formats::npy::{Array as NpyArray, read_npy, read_npz, write_npz};

// Backends, backbones, probes and the measurements of the benchmarks and backend tests.
pub use backend::{ALL as BACKENDS, BackendKind, floats, probe_device};
pub use bench::{BenchSpec, PROBE_DIM, PROBE_SAMPLES, SyntheticProbe, TrainStep, run as run_bench};
pub use kernel::transformer::{LAYER_NORM_EPSILON, gelu, layer_norm, linear, linear_gelu, self_attention};
pub use kernel::{
    batch_norm, batch_norm_add_relu, conv_batch_norm, conv_batch_norm_add_relu, conv2d, set_enabled as use_own_kernels,
};
pub use model::{ArchSpec, Backbone, layer_names, models_table};
pub use probe::{ProbeConfig, fit as fit_probe};
pub use tunnelbench_kernels::alloc::keep_freed_memory;

/// The plotting and statistics crates, under the names the harness uses for them.
pub(crate) use tunnelbench_plot as plot;
pub(crate) use tunnelbench_stats as stats;

#[cfg(test)]
mod scratch;
