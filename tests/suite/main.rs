//! The integration tests, in one binary (each test binary links the whole library and burn).

/// The binary's allocator, so that the kernels run here on the blocks they get there.
#[global_allocator]
static ALLOCATOR: tunnelbench_kernels::alloc::LineAligned = tunnelbench_kernels::alloc::LineAligned;

mod common;

mod bad_inputs;
mod cl;
mod cl_tunnel;
mod cli;
mod cuda;
mod determinism;
mod fuzz_regressions;
mod gpu_check;
mod interrupt;
mod kernels;
mod kill_restart;
mod layering;
mod method_refs;
mod pretrained;
mod reference_csv;
mod replicates;
mod study;
mod study_inputs;
mod trained;
mod wgpu;
