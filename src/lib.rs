//! tunnelbench: a benchmark harness for the tunnel effect, out-of-distribution generalization and
//! continual learning of image backbones.

pub mod backend;
pub mod bench;
pub mod data;
pub mod error;
pub mod interrupt;
pub mod metrics;
pub mod model;
pub mod probe;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod train;
