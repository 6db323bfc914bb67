//! `tunnelbench bench`: the four workloads of a study on each backend, on random inputs: training
//! step (forward + backward + AdamW), inference, one eval pass giving every probed layer's features,
//! and the paper and closed-form probe fits (on the CPU, where `run` fits them); and the stages of a
//! training step (data, forward, backward, optimizer) timed one by one.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor};
use serde::Serialize;

use crate::backend::BackendKind;
use crate::data::ImageDataset;
use crate::data::transform::{Augmenter, Normalization};
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
    /// Median seconds of each stage of a training step, over `steps` further steps in which each
    /// stage runs to completion before the next starts.
    pub train_stage_secs: StageSecs,
    pub inference_images_per_sec: f64,
    pub features_images_per_sec: f64,
    /// Probe fits on a synthetic `[probe_samples, probe_dim]` feature matrix with 10 classes.
    pub probe_samples: usize,
    pub probe_dim: usize,
    pub probe_paper_secs: f64,
    pub probe_closed_form_secs: f64,
}

/// The stages of one training step, in seconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StageSecs {
    /// Making the batch as training does: augmenting (random resized crop and flip) and
    /// normalising the images into the input tensor, and the label-smoothed targets.
    pub data: f64,
    /// The forward pass and the loss, up to reading the loss back (as training does every step).
    pub forward: f64,
    /// The backward pass, up to the gradients of every parameter.
    pub backward: f64,
    /// The AdamW step.
    pub optimizer: f64,
}

impl StageSecs {
    /// The per-stage medians of `steps`.
    fn median(steps: &[StageSecs]) -> StageSecs {
        let median = |f: fn(&StageSecs) -> f64| {
            let mut v: Vec<f64> = steps.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            match v.len() {
                0 => 0.0,
                n if n % 2 == 1 => v[n / 2],
                n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
            }
        };
        StageSecs {
            data: median(|s| s.data),
            forward: median(|s| s.forward),
            backward: median(|s| s.backward),
            optimizer: median(|s| s.optimizer),
        }
    }
}

/// Random images at the bench's resolution and the state that turns them into training batches.
struct SyntheticBatches {
    images: ImageDataset,
    augmenter: Augmenter,
    buf: Vec<f32>,
    /// Passed to the augmenter as the epoch, so that every batch draws new crops.
    drawn: u64,
}

impl SyntheticBatches {
    fn new(spec: &BenchSpec) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let res = spec.resolution;
        let mut images = ImageDataset::empty("bench", 3, res, res, (0..spec.classes).map(|c| c.to_string()).collect());
        images.pixels = (0..spec.batch * 3 * res * res)
            .map(|_| rng.random())
            .collect::<Vec<u8>>()
            .into();
        images.labels = (0..spec.batch).map(|i| (i % spec.classes) as u32).collect();
        SyntheticBatches {
            images,
            augmenter: Augmenter::new(res, 3),
            buf: Vec::new(),
            drawn: 0,
        }
    }

    /// The next batch (all the images, new crops) and its label-smoothed targets.
    fn next(&mut self, device: &burn::tensor::Device) -> Result<(Tensor<4>, Tensor<2>)> {
        self.drawn += 1;
        let idx: Vec<usize> = (0..self.images.len()).collect();
        let x = crate::train::batch_tensor(
            &self.images,
            &idx,
            &Normalization::IMAGENET,
            Some((&self.augmenter, self.drawn)),
            &mut self.buf,
            device,
        )?;
        let labels = crate::train::batch_labels(&self.images, &idx);
        let targets = crate::train::soft_targets(&labels, self.images.class_names.len(), 0.1, None, device);
        Ok((x, targets))
    }
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
            optim: crate::train::adamw::FusedAdamW::init(1e-5, 0.05),
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

    /// One training step on a new batch made by `data`, timing each stage; the backend is
    /// synchronised at every stage boundary, so that each stage's work is done within its time.
    fn staged_step(&mut self, data: &mut SyntheticBatches) -> Result<StageSecs> {
        let model = self.model.take().ok_or_else(|| Error::Internal("no model".into()))?;
        let t = Instant::now();
        let (x, targets) = data.next(&self.ad)?;
        sync(&self.ad)?;
        let data = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let loss = crate::kernel::rows::cross_entropy(model.forward(x), targets);
        let _ = loss.clone().into_scalar::<f32>();
        sync(&self.ad)?;
        let forward = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        sync(&self.ad)?;
        let backward = t.elapsed().as_secs_f64();
        let t = Instant::now();
        self.model = Some(self.optim.step(1e-3, model, grads));
        sync(&self.ad)?;
        Ok(StageSecs {
            data,
            forward,
            backward,
            optimizer: t.elapsed().as_secs_f64(),
        })
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
    let mut data = SyntheticBatches::new(spec);
    let stages = (0..spec.steps)
        .map(|_| trainer.staged_step(&mut data))
        .collect::<Result<Vec<_>>>()?;

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
        // The CPU threads the run used: rayon's pool, which `RAYON_NUM_THREADS` sets.
        threads: rayon::current_num_threads(),
        train_images_per_sec: train,
        train_stage_secs: StageSecs::median(&stages),
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
