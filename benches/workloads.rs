//! Criterion benches of the four workloads behind a study, at the quick scenario's sizes
//! (VGGm-17 x1/8, batch 128, 32x32) and at VGGm-11 full width: one training step (forward +
//! backward + AdamW) per CPU backend, one eval-mode pass giving every probed layer's features, and
//! the two probe fits (paper protocol and closed form) on a 3,000 x 256 feature matrix.
//! `tunnelbench bench` measures the same workloads as a command.

use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use tunnelbench::backend::{BackendKind, probe_device};
use tunnelbench::bench::{BenchSpec, PROBE_DIM, PROBE_SAMPLES, SyntheticProbe, TrainStep};
use tunnelbench::model::ArchSpec;
use tunnelbench::probe::{ProbeConfig, fit};

fn specs() -> [(&'static str, BenchSpec); 2] {
    let spec = |name: &str, width: f64| BenchSpec {
        arch: ArchSpec::named(name).with_width(width),
        batch: 128,
        resolution: 32,
        classes: 10,
        steps: 1,
    };
    [
        ("quick_vggm17_w0.125", spec("vggm-17", 0.125)),
        ("vggm11_w1", spec("vggm-11", 1.0)),
    ]
}

fn train_step(c: &mut Criterion) {
    tunnelbench::kernel::keep_freed_memory();
    for (label, spec) in specs() {
        let mut group = c.benchmark_group(format!("train_step_{label}_b128_32px"));
        group.sample_size(10);
        for kind in [BackendKind::Flex, BackendKind::Ndarray] {
            if kind == BackendKind::Ndarray && spec.arch.width > 0.5 {
                continue; // minutes per step: not a useful comparison
            }
            let mut trainer = TrainStep::new(kind, &spec).expect("model builds");
            group.bench_function(kind.name(), |b| b.iter(|| trainer.step().expect("step runs")));
        }
        group.finish();
    }
}

fn features(c: &mut Criterion) {
    for (label, spec) in specs() {
        let mut group = c.benchmark_group(format!("features_all_layers_{label}_b128_32px"));
        group.sample_size(10);
        let kind = BackendKind::Flex;
        let trainer = TrainStep::new(kind, &spec).expect("model builds");
        let model = trainer.model().expect("model").valid();
        let x = Tensor::<4>::random([128, 3, 32, 32], Distribution::Normal(0.0, 1.0), &kind.device());
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                for f in model.forward_features(x.clone()).features {
                    let _ = f.into_data();
                }
            })
        });
        group.finish();
    }
}

fn probes(c: &mut Criterion) {
    let synthetic = SyntheticProbe::new(PROBE_SAMPLES, PROBE_DIM);
    let data = synthetic.data();
    let device = probe_device();
    let mut group = c.benchmark_group(format!("probe_fit_{PROBE_SAMPLES}x{PROBE_DIM}"));
    group.sample_size(10);
    for (name, cfg) in [
        ("paper", ProbeConfig::paper()),
        ("closed_form", ProbeConfig::closed_form()),
    ] {
        group.bench_function(name, |b| b.iter(|| fit(&cfg, &data, 0, &device).expect("probe fits")));
    }
    group.finish();
}

criterion_group!(benches, train_step, features, probes);
criterion_main!(benches);
