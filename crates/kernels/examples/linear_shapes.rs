//! GFLOPS of the linear layers' product on the ViT-T's shapes at 32² (batch 128: 2,048 token
//! rows): the forward products, the input gradients (`dY·Wᵀ`) and the weight gradients (`Xᵀ·dY`)
//! of a block's four layers, each the fastest of 30 calls on the machine's threads.
//! `benches/reference/linear_shapes.py` times PyTorch's on the same shapes.
//!
//!     cargo run --release -p tunnelbench-kernels --example linear_shapes
//!
//! `TUNNELBENCH_ISA=avx2` in front takes the AVX2 path on an AVX-512 machine, as it does for the binary.

use std::mem::MaybeUninit;
use std::time::Instant;

use tunnelbench_kernels::linear::{Mat, Then, matmul};

/// The layers of a ViT-T block: name, input and output features.
const LAYERS: [(&str, usize, usize); 4] = [
    ("qkv", 192, 576),
    ("proj", 192, 192),
    ("fc1", 192, 768),
    ("fc2", 768, 192),
];
const ROWS: usize = 2048;

/// Large blocks on a cache line, as in the tunnelbench binary.
#[global_allocator]
static ALLOCATOR: tunnelbench_kernels::alloc::LineAligned = tunnelbench_kernels::alloc::LineAligned;

fn main() {
    // The binary's process setup: the vector path that `TUNNELBENCH_ISA` asks for, freed memory kept.
    tunnelbench_kernels::isa::configure().unwrap_or_else(|why| panic!("{why}"));
    tunnelbench_kernels::alloc::keep_freed_memory();
    let mut total = 0.0;
    for (product, kind) in [("forward", 0), ("input grad", 1), ("weight grad", 2)] {
        for (layer, d_in, d_out) in LAYERS {
            // (m, n, k) and the operands' layouts, as the linear layer's forward and backward passes
            // give them.
            let (m, n, k) = match kind {
                0 => (ROWS, d_out, d_in),
                1 => (ROWS, d_in, d_out),
                _ => (d_in, d_out, ROWS),
            };
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
            let (a, b) = match kind {
                0 => (Mat { data: &a, rs: k, cs: 1 }, Mat { data: &b, rs: n, cs: 1 }),
                1 => (Mat { data: &a, rs: k, cs: 1 }, Mat { data: &b, rs: 1, cs: k }),
                _ => (Mat { data: &a, rs: 1, cs: m }, Mat { data: &b, rs: n, cs: 1 }),
            };
            let mut out = vec![MaybeUninit::<f32>::uninit(); m * n];
            let best = (0..30)
                .map(|_| {
                    let t = Instant::now();
                    matmul(m, n, k, a, b, None, Then::Nothing, &mut out);
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min);
            total += best;
            let gflops = 2.0 * (m * n * k) as f64 / best / 1e9;
            println!(
                "{product:11} {layer:4} {m:4}x{n:3}x{k:4}: {:6.3} ms {gflops:6.1} GFLOPS",
                best * 1e3
            );
        }
    }
    println!("12 blocks' products, forward and backward: {:.1} ms", total * 12e3);
}
