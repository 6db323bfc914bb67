//! GFLOPS of the fused attention, forward and backward, on the ViT-T's shapes (3 heads of 64) at
//! 32² (batch 128, 16 tokens), 64² (batch 64, 64 tokens) and 224² (batch 8, 784 tokens), each the
//! fastest of 10 calls on the machine's threads. The count is the products' multiply-adds alone
//! (two `tokens² × head_dim` products forward, five backward); the softmax is in the time.
//!
//!     cargo run --release -p tunnelbench-kernels --example attention_shapes
//!
//! `TUNNELBENCH_ISA=avx2` in front takes the AVX2 path on an AVX-512 machine, as it does for the binary.

use std::mem::MaybeUninit;
use std::time::Instant;

use tunnelbench_kernels::transformer::{Attention, attention_backward, attention_forward};

/// Large blocks on a cache line, as in the tunnelbench binary.
#[global_allocator]
static ALLOCATOR: tunnelbench_kernels::alloc::LineAligned = tunnelbench_kernels::alloc::LineAligned;

fn fastest(mut f: impl FnMut()) -> f64 {
    (0..10)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    // The binary's process setup: the vector path that `TUNNELBENCH_ISA` asks for, freed memory kept.
    tunnelbench_kernels::isa::configure().unwrap_or_else(|why| panic!("{why}"));
    tunnelbench_kernels::alloc::keep_freed_memory();
    for (batch, tokens) in [(128, 16), (64, 64), (8, 784)] {
        let a = Attention {
            batch,
            tokens,
            heads: 3,
            head_dim: 64,
        };
        let qkv: Vec<f32> = (0..a.qkv_len()).map(|i| ((i % 13) as f32 - 6.0) * 0.05).collect();
        let dout: Vec<f32> = (0..a.len()).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
        let mut stats = vec![0.0f32; a.stats_len()];
        let mut out = vec![MaybeUninit::<f32>::uninit(); a.len()];
        let mut dqkv = vec![MaybeUninit::<f32>::uninit(); a.qkv_len()];
        let forward = fastest(|| attention_forward(&a, &qkv, Some(&mut stats), &mut out));
        let backward = fastest(|| attention_backward(&a, &qkv, &stats, &dout, &mut dqkv));
        let product = 2.0 * (batch * a.heads * tokens * tokens * a.head_dim) as f64 / 1e9;
        println!(
            "{batch:3} images x {tokens:3} tokens: forward {:7.2} ms {:6.1} GFLOPS, backward {:7.2} ms {:6.1} GFLOPS",
            forward * 1e3,
            2.0 * product / forward,
            backward * 1e3,
            5.0 * product / backward
        );
    }
}
