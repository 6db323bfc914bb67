//! The GPU code path, compiled only with `--features wgpu` and run where a Vulkan adapter exists: a
//! GPU, or Mesa's lavapipe software rasteriser on a CPU-only machine (Debian `mesa-vulkan-drivers`).
//!
//!     cargo test --release --features wgpu --test suite wgpu::
//!
//! The same weights give the same logits and per-layer features on wgpu as on flex, and training
//! steps on wgpu run and keep the network finite.
#![cfg(feature = "wgpu")]

use tunnelbench::BackendKind;

#[test]
fn wgpu_matches_flex_and_trains() {
    crate::gpu_check::matches_flex_and_trains(BackendKind::Wgpu, 1e-3);
}
