//! Criterion benches: one training step (forward + backward + AdamW) of VGGm-11 at width 1/4,
//! batch 128, 32x32, on each CPU backend, and the two probe fits.

use criterion::{Criterion, criterion_group, criterion_main};
use tunnelbench::backend::BackendKind;
use tunnelbench::bench::{BenchSpec, TrainStep};
use tunnelbench::model::ArchSpec;

fn spec() -> BenchSpec {
    BenchSpec {
        arch: ArchSpec::named("vggm-11").with_width(0.25),
        batch: 128,
        resolution: 32,
        classes: 10,
        steps: 1,
    }
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step_vggm11_w0.25_b128_32px");
    group.sample_size(10);
    for kind in [BackendKind::Flex, BackendKind::Ndarray] {
        let mut trainer = TrainStep::new(kind, &spec()).expect("model builds");
        group.bench_function(kind.name(), |b| b.iter(|| trainer.step().expect("step runs")));
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
