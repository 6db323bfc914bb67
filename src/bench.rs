//! `tunnelbench bench`: training-step and inference throughput of a backbone on each backend,
//! measured on random inputs (forward + backward + AdamW for training).

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use serde::Serialize;

use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::model::{ArchSpec, Backbone};

#[derive(Clone, Debug)]
pub struct BenchSpec {
    pub arch: ArchSpec,
    pub batch: usize,
    pub resolution: usize,
    pub classes: usize,
    pub steps: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub backend: String,
    pub arch: String,
    pub width: f64,
    pub parameters: usize,
    pub batch: usize,
    pub resolution: usize,
    pub threads: usize,
    pub train_images_per_sec: f64,
    pub inference_images_per_sec: f64,
    pub features_images_per_sec: f64,
}

fn sync(device: &burn::tensor::Device) -> Result<()> {
    device
        .sync()
        .map_err(|e| Error::Internal(format!("device sync failed: {e:?}")))
}

/// Measure one backend.
pub fn run(kind: BackendKind, spec: &BenchSpec) -> Result<BenchResult> {
    let device = kind.device();
    let ad = device.clone().autodiff();
    device.seed(0);
    let mut model = Backbone::new(&spec.arch, spec.classes, &ad)?;
    let parameters = crate::model::parameter_count(&model);
    let shape = [spec.batch, 3, spec.resolution, spec.resolution];
    let labels: Vec<i64> = (0..spec.batch).map(|i| (i % spec.classes) as i64).collect();
    let mut optim = AdamWConfig::new().with_weight_decay(0.05).init();
    let loss_fn = CrossEntropyLossConfig::new().with_smoothing(Some(0.1)).init(&ad);
    let mut step = |model: Backbone| -> Result<Backbone> {
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad);
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [spec.batch]), &ad);
        let loss = loss_fn.forward(model.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(1e-3, model, grads);
        sync(&ad)?;
        Ok(model)
    };
    model = step(model)?;
    let t = Instant::now();
    for _ in 0..spec.steps {
        model = step(model)?;
    }
    let train = (spec.steps * spec.batch) as f64 / t.elapsed().as_secs_f64();

    let valid = model.valid();
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let _ = valid.forward(x.clone()).into_data();
    let t = Instant::now();
    for _ in 0..spec.steps {
        let _ = valid.forward(x.clone()).into_data();
    }
    let inference = (spec.steps * spec.batch) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..spec.steps {
        let out = valid.forward_features(x.clone());
        for f in out.features {
            let _ = f.into_data();
        }
    }
    let features = (spec.steps * spec.batch) as f64 / t.elapsed().as_secs_f64();
    Ok(BenchResult {
        backend: kind.name().to_string(),
        arch: spec.arch.name.clone(),
        width: spec.arch.width,
        parameters,
        batch: spec.batch,
        resolution: spec.resolution,
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        train_images_per_sec: train,
        inference_images_per_sec: inference,
        features_images_per_sec: features,
    })
}
