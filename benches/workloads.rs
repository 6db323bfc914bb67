//! Benches of the four workloads behind a study, at the quick scenario's sizes (VGGm-17 x1/8,
//! batch 128, 32x32) and at VGGm-11 full width: one training step (forward + backward + AdamW) per
//! CPU backend, one eval-mode pass giving every probed layer's features, and the two probe fits
//! (paper protocol and closed form) on a 3,000 x 256 feature matrix. `tunnelbench bench` measures
//! the same workloads as a command.
//!
//! The alternatives of a group run side by side: one warm-up call each, then `ROUNDS` rounds
//! (`TUNNELBENCH_BENCH_ROUNDS`, default 10) in which each alternative is timed once, in turn, so a
//! slow minute of the machine falls on all of them. Printed per alternative: the median time of a
//! call and the fastest and slowest rounds. `cargo bench -- NAME` runs the groups whose name
//! contains NAME.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use tunnelbench::{
    ArchSpec, BackendKind, BenchSpec, PROBE_DIM, PROBE_SAMPLES, ProbeConfig, SyntheticProbe, TrainStep,
    fit_probe as fit, probe_device,
};

type Call<'a> = Box<dyn FnMut() + 'a>;

/// Whether the group `name` is to run (`cargo bench -- NAME` runs those whose name contains NAME).
fn wanted(name: &str, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| name.contains(f))
}

/// Times the alternatives of one group in interleaved rounds and prints their medians.
fn group(name: &str, mut alternatives: Vec<(&str, Call)>) {
    let rounds: usize = std::env::var("TUNNELBENCH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(10);
    for (_, call) in alternatives.iter_mut() {
        call();
    }
    let mut seconds = vec![Vec::with_capacity(rounds); alternatives.len()];
    for _ in 0..rounds {
        for ((_, call), times) in alternatives.iter_mut().zip(&mut seconds) {
            let start = Instant::now();
            call();
            times.push(start.elapsed().as_secs_f64());
        }
    }
    println!("{name} ({rounds} interleaved rounds)");
    for ((label, _), mut times) in alternatives.iter().zip(seconds) {
        times.sort_by(f64::total_cmp);
        let median = (times[(rounds - 1) / 2] + times[rounds / 2]) / 2.0;
        println!(
            "  {label:<12} median {:>10.3} ms   [{:.3} .. {:.3}]",
            median * 1e3,
            times[0] * 1e3,
            times[rounds - 1] * 1e3
        );
    }
}

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

fn train_step(filter: Option<&str>) {
    for (label, spec) in specs() {
        let name = format!("train_step_{label}_b128_32px");
        if !wanted(&name, filter) {
            continue;
        }
        let mut trainers = Vec::new();
        for kind in [BackendKind::Flex, BackendKind::Ndarray] {
            if kind == BackendKind::Ndarray && spec.arch.width > 0.5 {
                continue; // minutes per step: not a useful comparison
            }
            trainers.push((kind.name(), TrainStep::new(kind, &spec).expect("model builds")));
        }
        let alternatives = trainers
            .iter_mut()
            .map(|(name, trainer)| {
                let call: Call = Box::new(|| trainer.step().expect("step runs"));
                (*name, call)
            })
            .collect();
        group(&name, alternatives);
    }
}

fn features(filter: Option<&str>) {
    for (label, spec) in specs() {
        let name = format!("features_all_layers_{label}_b128_32px");
        if !wanted(&name, filter) {
            continue;
        }
        let kind = BackendKind::Flex;
        let trainer = TrainStep::new(kind, &spec).expect("model builds");
        let model = trainer.model().expect("model").valid();
        let x = Tensor::<4>::random([128, 3, 32, 32], Distribution::Normal(0.0, 1.0), &kind.device());
        let call: Call = Box::new(|| {
            for f in model.forward_features(x.clone()).features {
                let _ = f.into_data();
            }
        });
        group(&name, vec![(kind.name(), call)]);
    }
}

fn probes(filter: Option<&str>) {
    let name = format!("probe_fit_{PROBE_SAMPLES}x{PROBE_DIM}");
    if !wanted(&name, filter) {
        return;
    }
    let synthetic = SyntheticProbe::new(PROBE_SAMPLES, PROBE_DIM);
    let data = synthetic.data();
    let device = probe_device();
    let alternatives = [
        ("paper", ProbeConfig::paper()),
        ("closed_form", ProbeConfig::closed_form()),
    ]
    .into_iter()
    .map(|(name, cfg)| {
        let (data, device) = (&data, &device);
        let call: Call = Box::new(move || {
            fit(&cfg, data, 0, device).expect("probe fits");
        });
        (name, call)
    })
    .collect();
    group(&name, alternatives);
}

/// The binary's allocator, so that the kernels run on the blocks they get there.
#[global_allocator]
static ALLOCATOR: tunnelbench_kernels::alloc::LineAligned = tunnelbench_kernels::alloc::LineAligned;

fn main() {
    tunnelbench::keep_freed_memory();
    // `cargo bench` passes `--bench`; the first other argument filters the groups by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let filter = filter.as_deref();
    train_step(filter);
    features(filter);
    probes(filter);
}
