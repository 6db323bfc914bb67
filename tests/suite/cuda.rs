//! burn's CUDA backend, compiled only with `--features cuda` and run where an NVIDIA GPU and its
//! driver are (there is no software CUDA device, so CI, without a GPU, compiles this but does not
//! run it):
//!
//!     cargo test --release --features cuda --test suite cuda::
//!
//! The same weights give the same logits and per-layer features on cuda as on flex, and training
//! steps on cuda run and keep the network finite. The tolerance is looser than wgpu's: burn's CUDA
//! kernels may run f32 convolutions and matrix products on TF32 tensor cores (10-bit mantissa,
//! relative error up to ~1e-3 per product, compounding over the layers).
#![cfg(feature = "cuda")]

use tunnelbench::BackendKind;

#[test]
fn cuda_matches_flex_and_trains() {
    crate::gpu_check::matches_flex_and_trains(BackendKind::Cuda, 2e-2);
}
