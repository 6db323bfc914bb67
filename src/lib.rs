//! tunnelbench: a benchmark harness for the tunnel effect, out-of-distribution generalization and
//! continual learning of image backbones.

// `!(x > 0.0)` is used on purpose: it rejects NaN together with the out-of-range values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod backend;
pub mod bench;
pub mod cl;
pub mod compare;
pub mod data;
pub mod error;
pub mod interrupt;
pub mod isa;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod probe;
pub mod progress;
pub mod replicates;
pub mod results;
pub mod run;
pub mod scenario;
pub mod seed;
pub mod stats;
pub mod study;
pub mod train;

#[cfg(test)]
mod scratch;
