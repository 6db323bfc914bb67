//! Milliseconds of each convolution of a network: the forward pass, the input gradient and the
//! weight gradient, each the fastest of 10 calls on the machine's threads. `resnet` (the default):
//! the ResNet-18's convolutions at 32², batch 128; `resnet224`: the same at 224², batch 32; `vgg`:
//! the 4x4 and 2x2 ones of the VGGm-11 (full width) and of the VGGm-17 at width 1/8, batch 128.
//! `benches/reference/conv_layers.py` times PyTorch's on the same shapes.
//!
//!     cargo run --release -p tunnelbench-kernels --example conv_layers [resnet|resnet224|vgg]
//!
//! `TUNNELBENCH_ISA=avx2` in front takes the AVX2 path on an AVX-512 machine, as it does for the binary.

use std::time::Instant;

use tunnelbench_kernels::conv::{self, ConvGeom};

/// Large blocks on a cache line, as in the tunnelbench binary.
#[global_allocator]
static ALLOCATOR: tunnelbench_kernels::alloc::LineAligned = tunnelbench_kernels::alloc::LineAligned;

/// Input channels, input side, output channels, kernel side, stride, padding, and how many
/// such layers the network has.
type Layer = (usize, usize, usize, usize, usize, usize, usize);

/// The layers, each under the name of its set.
const LAYERS: [(&str, Layer); 28] = [
    ("resnet", (3, 32, 64, 7, 2, 3, 1)),
    ("resnet", (64, 8, 64, 3, 1, 1, 4)),
    ("resnet", (64, 8, 128, 3, 2, 1, 1)),
    ("resnet", (64, 8, 128, 1, 2, 0, 1)),
    ("resnet", (128, 4, 128, 3, 1, 1, 3)),
    ("resnet", (128, 4, 256, 3, 2, 1, 1)),
    ("resnet", (128, 4, 256, 1, 2, 0, 1)),
    ("resnet", (256, 2, 256, 3, 1, 1, 3)),
    ("resnet", (256, 2, 512, 3, 2, 1, 1)),
    ("resnet", (256, 2, 512, 1, 2, 0, 1)),
    ("resnet", (512, 1, 512, 3, 1, 1, 3)),
    ("resnet224", (3, 224, 64, 7, 2, 3, 1)),
    ("resnet224", (64, 56, 64, 3, 1, 1, 4)),
    ("resnet224", (64, 56, 128, 3, 2, 1, 1)),
    ("resnet224", (64, 56, 128, 1, 2, 0, 1)),
    ("resnet224", (128, 28, 128, 3, 1, 1, 3)),
    ("resnet224", (128, 28, 256, 3, 2, 1, 1)),
    ("resnet224", (128, 28, 256, 1, 2, 0, 1)),
    ("resnet224", (256, 14, 256, 3, 1, 1, 3)),
    ("resnet224", (256, 14, 512, 3, 2, 1, 1)),
    ("resnet224", (256, 14, 512, 1, 2, 0, 1)),
    ("resnet224", (512, 7, 512, 3, 1, 1, 3)),
    ("vgg", (256, 4, 512, 3, 1, 1, 1)),
    ("vgg", (512, 4, 512, 3, 1, 1, 1)),
    ("vgg", (512, 2, 512, 3, 1, 1, 2)),
    ("vgg", (32, 4, 64, 3, 1, 1, 1)),
    ("vgg", (64, 4, 64, 3, 1, 1, 3)),
    ("vgg", (64, 2, 64, 3, 1, 1, 4)),
];

fn fastest(mut f: impl FnMut()) -> f64 {
    (0..10)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    // The binary's process setup: the vector path that `TUNNELBENCH_ISA` asks for, freed memory kept.
    tunnelbench_kernels::isa::configure().unwrap_or_else(|why| panic!("{why}"));
    tunnelbench_kernels::alloc::keep_freed_memory();
    let set = std::env::args().nth(1).unwrap_or_else(|| "resnet".into());
    let batch = if set == "resnet224" { 32 } else { 128 };
    let mut total = [0.0; 3];
    for &(_, (cin, side, cout, k, stride, pad, count)) in LAYERS.iter().filter(|(name, _)| *name == set) {
        let g = ConvGeom {
            batch,
            cin,
            h: side,
            w: side,
            cout,
            kh: k,
            kw: k,
            stride: [stride; 2],
            pad: [pad; 2],
        };
        let x: Vec<f32> = (0..batch * cin * side * side).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..cout * cin * k * k).map(|i| (i % 5) as f32 * 0.01).collect();
        let mut y = vec![0.0; batch * cout * g.ho() * g.wo()];
        let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; w.len()]);
        let ms = [
            fastest(|| conv::forward(&g, &x, &w, None, &mut y)),
            fastest(|| conv::backward_input(&g, &w, &y, &mut dx)),
            fastest(|| conv::backward_weight(&g, &x, &y, &mut dw, None)),
        ];
        for (t, m) in total.iter_mut().zip(ms) {
            *t += m * count as f64;
        }
        println!(
            "{cin:3} -> {cout:3} {k}x{k} stride {stride} on {side:2}x{side:<2} x{count}: forward {:6.2}, input grad {:6.2}, weight grad {:6.2} ms",
            ms[0], ms[1], ms[2]
        );
    }
    println!(
        "all layers: forward {:.1}, input grad {:.1}, weight grad {:.1} ms",
        total[0], total[1], total[2]
    );
}
