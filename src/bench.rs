//! `tunnelbench bench`: the four workloads of a study on each backend, on random inputs: training
//! step (forward + backward + AdamW), inference, one eval pass giving every probed layer's features,
//! and the paper and closed-form probe fits (on the CPU, where `run` fits them).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor};
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
    /// `own` (tunnelbench's kernels on the default backend) or `burn` (burn's ops throughout).
    pub kernels: String,
    pub arch: String,
    pub width: f64,
    pub parameters: usize,
    pub batch: usize,
    pub resolution: usize,
    pub threads: usize,
    pub train_images_per_sec: f64,
    pub inference_images_per_sec: f64,
    pub features_images_per_sec: f64,
    /// Probe fits on a synthetic `[probe_samples, probe_dim]` feature matrix with 10 classes.
    pub probe_samples: usize,
    pub probe_dim: usize,
    pub probe_paper_secs: f64,
    pub probe_closed_form_secs: f64,
}

fn sync(device: &burn::tensor::Device) -> Result<()> {
    device
        .sync()
        .map_err(|e| Error::Internal(format!("device sync failed: {e:?}")))
}

/// One training step (forward + backward + AdamW) on random inputs, repeatable.
pub struct TrainStep {
    model: Option<Backbone>,
    optim: burn::optim::ModuleOptimizer,
    /// One random batch, made once: the timed steps are the step alone, as in the PyTorch
    /// reference script.
    x: Tensor<4>,
    /// Label-smoothed targets of the batch, as training builds them.
    targets: Tensor<2>,
    ad: burn::tensor::Device,
}

impl TrainStep {
    pub fn new(kind: BackendKind, spec: &BenchSpec) -> Result<Self> {
        let device = kind.device();
        let ad = device.clone().autodiff();
        device.seed(0);
        Ok(TrainStep {
            model: Some(Backbone::new(&spec.arch, spec.classes, spec.resolution, &ad)?),
            optim: AdamWConfig::new().with_weight_decay(0.05).init(),
            x: Tensor::<4>::random(
                [spec.batch, 3, spec.resolution, spec.resolution],
                Distribution::Normal(0.0, 1.0),
                &ad,
            ),
            targets: crate::train::soft_targets(
                &(0..spec.batch).map(|i| (i % spec.classes) as u32).collect::<Vec<_>>(),
                spec.classes,
                0.1,
                None,
                &ad,
            ),
            ad,
        })
    }

    pub fn step(&mut self) -> Result<()> {
        let model = self.model.take().ok_or_else(|| Error::Internal("no model".into()))?;
        let loss = crate::kernel::rows::cross_entropy(model.forward(self.x.clone()), self.targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(1e-3, model, grads));
        sync(&self.ad)
    }

    pub fn model(&self) -> Option<&Backbone> {
        self.model.as_ref()
    }
}

/// Measure one backend.
pub fn run(kind: BackendKind, spec: &BenchSpec) -> Result<BenchResult> {
    let device = kind.device();
    let mut trainer = TrainStep::new(kind, spec)?;
    let parameters = trainer.model().map(crate::model::parameter_count).unwrap_or(0);
    let shape = [spec.batch, 3, spec.resolution, spec.resolution];
    trainer.step()?;
    let t = Instant::now();
    for _ in 0..spec.steps {
        trainer.step()?;
    }
    let train = (spec.steps * spec.batch) as f64 / t.elapsed().as_secs_f64();

    let valid = trainer
        .model()
        .ok_or_else(|| Error::Internal("no model".into()))?
        .valid();
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
    let (probe_paper_secs, probe_closed_form_secs) =
        probe_times(PROBE_SAMPLES, PROBE_DIM, &crate::backend::probe_device())?;
    Ok(BenchResult {
        backend: kind.name().to_string(),
        kernels: if kind == BackendKind::Flex && crate::kernel::enabled() {
            "own"
        } else {
            "burn"
        }
        .to_string(),
        arch: spec.arch.name.clone(),
        width: spec.arch.width,
        parameters,
        batch: spec.batch,
        resolution: spec.resolution,
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        train_images_per_sec: train,
        inference_images_per_sec: inference,
        features_images_per_sec: features,
        probe_samples: PROBE_SAMPLES,
        probe_dim: PROBE_DIM,
        probe_paper_secs,
        probe_closed_form_secs,
    })
}

/// The quick scenario's probe size: 3,000 training and 1,000 test images.
pub const PROBE_SAMPLES: usize = 3000;
pub const PROBE_DIM: usize = 256;

/// Gaussian class clusters standing in for one layer's features: 10 classes, `n` training and
/// `n / 3` test rows of `dim` columns, deterministic.
pub struct SyntheticProbe {
    pub dim: usize,
    pub train_x: Vec<f32>,
    pub train_y: Vec<u32>,
    pub test_x: Vec<f32>,
    pub test_y: Vec<u32>,
}

impl SyntheticProbe {
    const CLASSES: usize = 10;

    pub fn new(n: usize, dim: usize) -> Self {
        use rand::{Rng, SeedableRng};
        let k = Self::CLASSES;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let centres: Vec<f32> = (0..k * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut make = |n: usize| -> (Vec<f32>, Vec<u32>) {
            let y: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
            let x = y
                .iter()
                .flat_map(|&c| {
                    (0..dim)
                        .map(|j| centres[c as usize * dim + j] + rng.random_range(-2.0f32..2.0))
                        .collect::<Vec<_>>()
                })
                .collect();
            (x, y)
        };
        let (train_x, train_y) = make(n);
        let (test_x, test_y) = make(n / 3);
        SyntheticProbe {
            dim,
            train_x,
            train_y,
            test_x,
            test_y,
        }
    }

    pub fn data(&self) -> crate::probe::ProbeData<'_> {
        crate::probe::ProbeData {
            dim: self.dim,
            train_x: &self.train_x,
            train_y: &self.train_y,
            test_x: &self.test_x,
            test_y: &self.test_y,
            n_classes: Self::CLASSES,
        }
    }
}

/// Seconds to fit one paper probe (30 epochs) and one closed-form probe on Gaussian class clusters,
/// each the fastest of three fits.
fn probe_times(n: usize, dim: usize, device: &burn::tensor::Device) -> Result<(f64, f64)> {
    let synthetic = SyntheticProbe::new(n, dim);
    let data = synthetic.data();
    let best_of_3 = |cfg: &crate::probe::ProbeConfig| -> Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            crate::probe::fit(cfg, &data, 0, device)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    Ok((
        best_of_3(&crate::probe::ProbeConfig::paper())?,
        best_of_3(&crate::probe::ProbeConfig::closed_form())?,
    ))
}
