//! What every GPU backend must do, shared by the `wgpu` and `cuda` tests: the same weights give the
//! same logits and per-layer features on the GPU as on flex (the default CPU backend), and training
//! steps on the GPU run and keep the network finite.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use tunnelbench::{ArchSpec, Backbone, BackendKind, BenchSpec, TrainStep, floats};

fn input(device: &burn::tensor::Device) -> Tensor<4> {
    let values: Vec<f32> = (0..2 * 3 * 32 * 32)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(values, [2, 3, 32, 32]), device)
}

fn assert_close(a: &[f32], b: &[f32], tolerance: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(
        worst <= tolerance * scale,
        "{what}: max |flex - GPU| = {worst} (scale {scale}, tolerance {tolerance} of the scale)"
    );
}

/// VGGm-11, ResNet-18 and ViT-T at width 1/16 with the same weights on flex and on `kind`: logits
/// and every probed layer's features within `tolerance` of the largest value; then three training
/// steps on `kind`.
pub fn matches_flex_and_trains(kind: BackendKind, tolerance: f32) {
    let flex = BackendKind::Flex.device();
    let gpu = kind.device();
    for arch in ["vggm-11", "resnet-18", "vit-t"] {
        let spec = ArchSpec::named(arch).with_width(0.0625);
        let model = Backbone::new(&spec, 10, 32, &flex).expect("model builds");
        let on_gpu = model.clone().fork(&gpu);
        let (a, b) = (
            model.forward_features(input(&flex)),
            on_gpu.forward_features(input(&gpu)),
        );
        assert_close(
            &floats(a.logits).unwrap(),
            &floats(b.logits).unwrap(),
            tolerance,
            &format!("{} {arch} logits", kind.name()),
        );
        assert_eq!(a.features.len(), b.features.len());
        for (i, (fa, fb)) in a.features.into_iter().zip(b.features).enumerate() {
            assert_close(
                &floats(fa).unwrap(),
                &floats(fb).unwrap(),
                tolerance,
                &format!("{} {arch} layer {}", kind.name(), i + 1),
            );
        }
    }

    let spec = BenchSpec {
        arch: ArchSpec::named("vggm-11").with_width(0.0625),
        batch: 16,
        resolution: 32,
        classes: 10,
        steps: 1,
    };
    let mut trainer = TrainStep::new(kind, &spec).expect("GPU trainer builds");
    for _ in 0..3 {
        trainer.step().expect("GPU training step");
    }
    let model = trainer.model().expect("model").valid();
    let logits = floats(model.forward(input(&gpu))).unwrap();
    assert!(
        logits.iter().all(|v| v.is_finite()),
        "{} training produced non-finite logits",
        kind.name()
    );
}
