//! Which vector instructions the process may use.
//!
//! The switch itself, `TUNNELBENCH_ISA`, lives with the kernels ([`tunnelbench_kernels::isa`]), so
//! that their examples take the same path as the binary; here is what a result records of it.

use crate::error::{Error, Result};
use tunnelbench_kernels::isa::Refused;
pub use tunnelbench_kernels::isa::{ENV, path};

/// Reads [`ENV`] (`auto`, the default, or `avx2`) and applies it. Must run before anything asks
/// which CPU features there are (first thing in `main`, before any thread starts).
pub fn configure() -> Result<()> {
    tunnelbench_kernels::isa::configure().map_err(|refused| match refused {
        Refused::Usage(why) => Error::usage(why),
        Refused::TooLate(why) => Error::Internal(why),
    })
}

/// The machine a result came from, as recorded beside it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    /// The vector path the kernels took ([`path`]).
    pub isa: String,
    pub cpu: String,
    /// Threads of the compute pool.
    pub threads: usize,
}

impl Machine {
    pub fn current() -> Machine {
        Machine {
            isa: path().to_string(),
            cpu: cpu_model(),
            threads: rayon::current_num_threads(),
        }
    }
}

/// The CPU's model name (Linux), or the architecture's name.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
