//! The CPU kernels of tunnelbench's default backend, on contiguous NCHW `f32` slices, with no
//! tensor library: a 2D convolution in its three products ([`conv`]: direct AVX2 kernels and
//! Winograd F(2x2, 3x3) for the 3x3 stride-1 convolutions of the VGG and ResNet stages, a matrix
//! product per kernel tap for the smallest planes, im2col + matrix product for the rest) and batch
//! norm with batch or running statistics followed by ReLU and 2x2 max-pool ([`norm`]), and the
//! transformer block's layer norm, GELU and self-attention ([`transformer`]), each with its
//! backward pass, and the AdamW step of a parameter ([`optim`]). tunnelbench registers them as
//! burn backend-extension ops; see README.md here for how they work and how they are checked.
//! [`isa`] holds the switch that makes an AVX-512 machine take the AVX2 path, [`alloc`] the
//! allocator settings the binary and the examples run with.

// `!(x > 0.0)` is used on purpose: it is true for NaN too (a NaN activation is a dead unit).
#![allow(clippy::neg_cmp_op_on_partial_ord)]

/// Runs an element-wise loop compiled for the widest vector unit of the CPU. The loops use only
/// IEEE-exact operations, fused multiply-adds where written (`transformer::fma`) and nowhere
/// else, so every width gives the same bits.
macro_rules! widest {
    ($body:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,fma")]
            fn wide512<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            #[target_feature(enable = "avx2,fma")]
            fn wide256<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has the features.
                unsafe { wide512(|| $body($($arg),*)) }
            } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has the features.
                unsafe { wide256(|| $body($($arg),*)) }
            } else {
                $body($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        $body($($arg),*)
    }};
}

pub mod alloc;
pub mod conv;
#[cfg(target_arch = "x86_64")]
mod direct;
pub mod isa;
pub mod linear;
pub mod norm;
pub mod optim;
pub mod transformer;
#[cfg(target_arch = "x86_64")]
mod winograd;

/// An output that parallel tasks share, each writing its own disjoint elements through the
/// pointer and nothing else.
#[derive(Clone, Copy)]
pub(crate) struct Out(pub(crate) *mut f32);
// SAFETY: the tasks that share an `Out` write disjoint elements of it (each user says which),
// and nothing reads the output while they run.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The element at `offset` (a method, so that closures capture the whole `Out`).
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Test data shared by the unit tests.
#[cfg(test)]
mod testing {
    use std::mem::MaybeUninit;

    /// A written slice as an output whose every element the kernel writes.
    pub fn uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
        // SAFETY: MaybeUninit<f32> has f32's layout, and every f32 is a valid MaybeUninit.
        unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), out.len()) }
    }

    /// A deterministic pseudo-random vector, uniform in [lo, hi) (xorshift).
    pub fn values(n: usize, seed: u64, (lo, hi): (f32, f32)) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                lo + (s >> 40) as f32 / (1u64 << 24) as f32 * (hi - lo)
            })
            .collect()
    }
}
