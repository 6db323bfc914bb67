//! Backend selection. burn picks the backend at run time through the device; this module names the
//! backends compiled into this binary and refuses, with a clear error, one that is not.

use burn::tensor::Device;

use crate::error::{Error, Result};

/// A compute backend tunnelbench can run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn's pure-Rust CPU backend with SIMD and rayon: the default.
    #[default]
    Flex,
    /// burn's ndarray CPU backend: slow, kept for tiny nets and cross-checks; only with the `ndarray`
    /// cargo feature.
    Ndarray,
    /// GPU through wgpu (Vulkan, Metal, DX12); only with the `wgpu` cargo feature.
    Wgpu,
    /// NVIDIA GPU through burn's CUDA backend (CubeCL's own kernels, the driver loaded at run time);
    /// only with the `cuda` cargo feature.
    Cuda,
    /// libtorch on the CPU (burn's tch backend), for users who already have PyTorch; only with the
    /// `tch` cargo feature, built against an installed PyTorch (`LIBTORCH_USE_PYTORCH=1`).
    Tch,
}

/// Every backend name tunnelbench knows, compiled in or not.
pub const ALL: &[BackendKind] = &[
    BackendKind::Flex,
    BackendKind::Ndarray,
    BackendKind::Wgpu,
    BackendKind::Cuda,
    BackendKind::Tch,
];

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
            BackendKind::Tch => "tch",
        }
    }

    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => true,
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
            BackendKind::Tch => cfg!(feature = "tch"),
        }
    }

    /// Whether it computes on the CPU (flex, ndarray, tch).
    pub fn is_cpu(self) -> bool {
        !matches!(self, BackendKind::Wgpu | BackendKind::Cuda)
    }

    pub fn describe(self) -> &'static str {
        match self {
            BackendKind::Flex => "CPU, pure Rust (SIMD + rayon); the default",
            BackendKind::Ndarray => "CPU, ndarray; slow, for cross-checks; build with --features ndarray",
            BackendKind::Wgpu => "GPU via wgpu (Vulkan/Metal/DX12); build with --features wgpu",
            BackendKind::Cuda => "NVIDIA GPU via CUDA (burn's CubeCL kernels); build with --features cuda",
            BackendKind::Tch => "CPU via libtorch (an installed PyTorch); build with --features tch",
        }
    }

    /// Parse a backend name; a name that is known but not compiled in is an error, never a fallback.
    pub fn parse(name: &str) -> Result<Self> {
        let kind = ALL.iter().copied().find(|k| k.name() == name).ok_or_else(|| {
            Error::usage(format!(
                "unknown backend `{name}`; known backends: {}",
                ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if !kind.is_compiled() {
            return Err(Error::usage(format!(
                "backend `{name}` is not compiled into this binary; rebuild with `--features {name}` \
                 (compiled in: {})",
                compiled().iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(kind)
    }

    /// The plain (inference) device of this backend.
    pub fn device(self) -> Device {
        match self {
            BackendKind::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Device::wgpu(Default::default()),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Device::cuda(0),
            // burn 0.22 marks its libtorch backend deprecated; it is kept here as an opt-in.
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            BackendKind::Tch => Device::libtorch(),
            // Only a backend that is not compiled in comes here, and parse() refuses those.
            #[allow(unreachable_patterns)]
            _ => unreachable!("parse() refuses backends that are not compiled in"),
        }
    }
}

/// The device every probe is fitted on, whatever backend trains the network: the CPU (flex). A probe
/// is a small matrix problem (a few thousand rows, at most a few thousand columns) that the CPU
/// solves faster than a GPU, where each of the paper probe's ~20k small steps pays a kernel launch
/// (measured on an H200: a paper probe 1.14 s on wgpu vs 0.09 s on flex).
pub fn probe_device() -> Device {
    Device::flex()
}

/// The backends compiled into this binary.
pub fn compiled() -> Vec<BackendKind> {
    ALL.iter().copied().filter(|k| k.is_compiled()).collect()
}

/// Read a float tensor back to the host as f32.
pub fn floats<const D: usize>(t: burn::tensor::Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Internal(format!("reading a tensor back: {e:?}")))
}

/// Read an integer tensor back to the host as i64.
pub fn ints<const D: usize>(t: burn::tensor::Tensor<D, burn::tensor::Int>) -> Result<Vec<i64>> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| Error::Internal(format!("reading a tensor back: {e:?}")))
}
