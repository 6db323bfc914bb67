//! Supervised training of a backbone (method §5): AdamW, per-epoch linear warm-up + cosine schedule,
//! cross-entropy with label smoothing, optional augmentation, best-validation checkpoint, and a
//! state after every epoch to go on from after an interruption ([`resume`]). A loss that becomes
//! NaN or infinite stops the run with an error that names the epoch.

pub mod adamw;
pub mod mix;
pub mod resume;
mod trace;

use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::ImageDataset;
use crate::data::transform::{Augmenter, Normalization, to_f32_batch};
use crate::error::{Error, Result};
use crate::json::nan_if_null;
use crate::model::Backbone;
use crate::seed::derive_seed;

/// The training recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training data; or give `iterations`.
    #[serde(default)]
    pub epochs: usize,
    /// Optimizer steps (batches) instead of epochs, the data reshuffled at every pass; the
    /// schedule then spans the passes these steps take. Per task in continual learning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    #[serde(default = "defaults::batch")]
    pub batch: usize,
    pub lr: f64,
    #[serde(default = "defaults::weight_decay")]
    pub weight_decay: f64,
    /// Linear warm-up epochs (method §5: 5), capped at epochs − 1.
    #[serde(default = "defaults::warmup")]
    pub warmup_epochs: usize,
    #[serde(default = "defaults::smoothing")]
    pub label_smoothing: f64,
    /// RandomResizedCrop(scale 0.08–1) + horizontal flip; otherwise the evaluation transform.
    #[serde(default)]
    pub augment: bool,
    /// Mixup or CutMix on every batch (method §8.1, [`mix`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mixup_cutmix: bool,
    /// "adamw" (decoupled weight decay, method §5) or "adam" (weight decay as an L2 term).
    #[serde(default, skip_serializing_if = "is_default")]
    pub optimizer: OptimizerKind,
    /// "cosine" (after the warm-up, method §5) or "constant" (the learning rate after the warm-up).
    #[serde(default, skip_serializing_if = "is_default")]
    pub schedule: Schedule,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The optimizer of a recipe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    #[default]
    Adamw,
    Adam,
}

/// The learning-rate schedule after the warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    #[default]
    Cosine,
    Constant,
}

mod defaults {
    pub fn batch() -> usize {
        128
    }
    pub fn weight_decay() -> f64 {
        0.05
    }
    pub fn warmup() -> usize {
        5
    }
    pub fn smoothing() -> f64 {
        0.1
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::usage(format!("train: {what}")));
        match self.iterations {
            None if self.epochs == 0 => return bad("epochs must be > 0 (or give `iterations` instead)".into()),
            Some(_) if self.epochs != 0 => return bad("give `epochs` or `iterations`, not both".into()),
            Some(0) => return bad("iterations must be > 0".into()),
            Some(n) if n > 100_000_000 => return bad(format!("iterations must be at most 100000000, got {n}")),
            _ => {}
        }
        if self.epochs > 1_000_000 {
            return bad(format!("epochs must be at most 1000000, got {}", self.epochs));
        }
        if self.batch < 2 {
            // A batch of one is skipped (its batch statistics are undefined): nothing would train.
            return bad(format!("batch must be at least 2, got {}", self.batch));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("lr must be > 0, got {}", self.lr));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!("weight_decay must be >= 0, got {}", self.weight_decay));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "label_smoothing must be in [0, 1), got {}",
                self.label_smoothing
            ));
        }
        Ok(())
    }

    /// The recipe with `iterations` turned into the epochs that `n_train` images take for them
    /// (the last, partial pass included), and the step count at which training stops.
    pub fn in_epochs(&self, n_train: usize) -> (TrainConfig, usize) {
        match self.iterations {
            None => (self.clone(), usize::MAX),
            Some(steps) => {
                // Batches of one sample are skipped (batch statistics), so a pass has this many steps.
                let full = n_train / self.batch;
                let per_pass = (full + usize::from(n_train % self.batch >= 2)).max(1);
                let cfg = TrainConfig {
                    epochs: steps.div_ceil(per_pass),
                    ..self.clone()
                };
                (cfg, steps)
            }
        }
    }

    /// Learning rate of epoch `e` (0-based), method §5.
    pub fn lr_at(&self, e: usize) -> f64 {
        let warmup = self.warmup_epochs.min(self.epochs.saturating_sub(1));
        if e < warmup {
            self.lr * (0.01 + 0.99 * e as f64 / warmup as f64)
        } else if self.schedule == Schedule::Constant {
            self.lr
        } else {
            let span = (self.epochs - warmup).max(1) as f64;
            self.lr * 0.5 * (1.0 + (std::f64::consts::PI * (e - warmup) as f64 / span).cos())
        }
    }
}

/// One epoch's log line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub lr: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub val_accuracy: f64,
    pub secs: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainReport {
    pub best_epoch: usize,
    #[serde(deserialize_with = "nan_if_null")]
    pub best_val_accuracy: f64,
    pub epochs: Vec<EpochLog>,
    pub train_secs: f64,
    pub images_per_sec: f64,
}

/// Progress events for a progress bar.
pub enum Progress<'a> {
    /// Training goes on from a saved state after these epochs and optimizer steps.
    Resumed {
        epochs: usize,
        steps: usize,
    },
    /// One optimizer step done.
    Step,
    Epoch(&'a EpochLog),
}

/// Build the f32 input tensor of a batch: augmented (training) or evaluation transform.
pub fn batch_tensor(
    ds: &ImageDataset,
    idx: &[usize],
    norm: &Normalization,
    augment: Option<(&Augmenter, u64)>,
    buf: &mut Vec<f32>,
    device: &Device,
) -> Result<Tensor<4>> {
    let (h, w) = match augment {
        Some((aug, epoch)) => {
            aug.batch(ds, idx, epoch, norm, buf)?;
            (aug.res, aug.res)
        }
        None => {
            to_f32_batch(ds, idx, norm, buf)?;
            (ds.height, ds.width)
        }
    };
    Ok(Tensor::from_data(
        TensorData::new(buf.clone(), [idx.len(), 3, h, w]),
        device,
    ))
}

/// Soft targets `[labels, classes]`: `1 − smoothing` on the label plus `smoothing` spread evenly
/// over the classes the sample's softmax runs over (all of them, or with `groups`, those of its
/// own group).
pub fn soft_targets(
    labels: &[u32],
    classes: usize,
    smoothing: f64,
    groups: Option<&[usize]>,
    device: &Device,
) -> Tensor<2> {
    let mut t = vec![0f32; labels.len() * classes];
    for (row, &y) in t.chunks_exact_mut(classes).zip(labels) {
        let y = y as usize;
        let live = |c: usize| groups.is_none_or(|g| g.get(c) == g.get(y));
        let n = (0..classes).filter(|&c| live(c)).count().max(1);
        for (c, v) in row.iter_mut().enumerate() {
            if live(c) {
                *v = (smoothing / n as f64) as f32;
            }
        }
        row[y] += (1.0 - smoothing) as f32;
    }
    Tensor::from_data(TensorData::new(t, [labels.len(), classes]), device)
}

/// The labels of the images `idx` of `ds`.
pub fn batch_labels(ds: &ImageDataset, idx: &[usize]) -> Vec<u32> {
    idx.iter().map(|&i| ds.labels[i]).collect()
}

/// Top-1 accuracy of a (validation-mode) model on a dataset.
pub fn evaluate(
    model: &Backbone,
    ds: &ImageDataset,
    norm: &Normalization,
    batch: usize,
    device: &Device,
) -> Result<f64> {
    let mut buf = Vec::new();
    let idx: Vec<usize> = (0..ds.len()).collect();
    let mut correct = 0usize;
    for chunk in idx.chunks(batch.max(1)) {
        let x = batch_tensor(ds, chunk, norm, None, &mut buf, device)?;
        let pred = crate::backend::ints(model.forward(x).argmax(1))?;
        correct += pred
            .iter()
            .zip(chunk)
            .filter(|(p, i)| **p == ds.labels[**i] as i64)
            .count();
    }
    Ok(correct as f64 / ds.len().max(1) as f64)
}

/// An additional loss term: (model, input batch, logits) -> scalar loss to add.
pub type ExtraLoss<'a> = &'a mut dyn FnMut(&Backbone, &Tensor<4>, &Tensor<2>) -> Tensor<1>;

/// Options beyond the recipe, used by the continual-learning strategies.
#[derive(Default)]
pub struct TrainExtras<'a> {
    /// Task-specific heads: the task (group) of every class. Each sample's softmax then runs over
    /// its own task's classes only, which makes the rows of one linear layer act as separate
    /// per-task heads.
    pub class_groups: Option<Vec<usize>>,
    /// A regulariser (EWC, LwF) added to the loss.
    pub extra_loss: Option<ExtraLoss<'a>>,
    /// Classes whose head weights stay as they are (earlier tasks' heads that a continual-learning
    /// strategy freezes): restored after every optimizer step, so that neither their gradient nor
    /// the weight decay moves them.
    pub frozen_classes: Vec<u32>,
    /// The optimizer to go on with, its state included (Adam's moments and step count), as a
    /// sequence of tasks that keeps one optimizer does; absent: a fresh one from the recipe.
    pub optimizer: Option<ModuleOptimizer>,
    /// Where to keep the state after every epoch, and to go on from when it is there.
    pub checkpoint: Option<resume::Checkpointing<'a>>,
}

/// The head columns of frozen classes as they were before training, and where they are.
struct FrozenHead {
    weight_mask: Tensor<2, Bool>,
    weight: Tensor<2>,
    bias_mask: Tensor<1, Bool>,
    bias: Option<Tensor<1>>,
}

impl FrozenHead {
    fn capture(model: &Backbone, classes: &[u32]) -> Option<Self> {
        if classes.is_empty() {
            return None;
        }
        let fc = &model.head.fc;
        let [d_in, k] = fc.weight.shape().dims::<2>();
        let weight = fc.weight.val().inner();
        let device = weight.device();
        let mut frozen = vec![false; k];
        for &c in classes {
            if let Some(f) = frozen.get_mut(c as usize) {
                *f = true;
            }
        }
        let bias_mask = Tensor::<1, Bool>::from_data(TensorData::new(frozen, [k]), &device);
        Some(FrozenHead {
            weight_mask: bias_mask.clone().reshape([1, k]).expand([d_in, k]),
            weight,
            bias_mask,
            bias: fc.bias.as_ref().map(|b| b.val().inner()),
        })
    }

    /// `model` with the frozen columns put back.
    fn restore(&self, mut model: Backbone) -> Backbone {
        let fc = &mut model.head.fc;
        fc.weight = fc.weight.clone().map(|w| keep(w, &self.weight_mask, &self.weight));
        if let (Some(b), Some(b0)) = (fc.bias.take(), &self.bias) {
            fc.bias = Some(b.map(|b| keep(b, &self.bias_mask, b0)));
        }
        model
    }
}

/// A parameter tensor with the values of `old` where `mask` holds, as a fresh leaf that keeps the
/// parameter's autodiff settings (as the optimizer's own update does).
fn keep<const D: usize>(t: Tensor<D>, mask: &Tensor<D, Bool>, old: &Tensor<D>) -> Tensor<D> {
    let strategy = t.gradient_checkpointing_strategy();
    let mut kept = Tensor::from_inner(t.inner().mask_where(mask.clone(), old.clone()));
    if let Some(s) = strategy {
        kept = kept.with_gradient_checkpointing_strategy(s);
    }
    kept.require_grad()
}

/// Logit offsets `[batch, classes]` that mask, for each sample, the classes outside its group.
pub fn group_mask(groups: &[usize], ds: &ImageDataset, idx: &[usize], device: &Device) -> Tensor<2> {
    let k = groups.len();
    let mut m = vec![0f32; idx.len() * k];
    for (row, &i) in m.chunks_exact_mut(k).zip(idx) {
        let g = groups.get(ds.labels[i] as usize).copied();
        for (c, v) in row.iter_mut().enumerate() {
            if Some(groups[c]) != g {
                *v = -1.0e9;
            }
        }
    }
    Tensor::from_data(TensorData::new(m, [idx.len(), k]), device)
}

/// What [`train`] returns.
pub struct TrainOutcome {
    /// The model after the last epoch, still on the autodiff device (to continue training).
    pub last: Backbone,
    /// The validation-mode model of the best validation epoch.
    pub best: Backbone,
    pub report: TrainReport,
    /// The optimizer after the last step, to go on with ([`TrainExtras::optimizer`]).
    pub optimizer: ModuleOptimizer,
}

/// Train `model` (whose parameters live on `device.autodiff()`) with the recipe `cfg` and the
/// `extras` beyond it; returns the model after the last epoch, the validation-mode model of the
/// best validation epoch on `device`, and the log.
#[allow(clippy::too_many_arguments)]
pub fn train(
    mut model: Backbone,
    train_ds: &ImageDataset,
    val_ds: &ImageDataset,
    norm: &Normalization,
    cfg: &TrainConfig,
    seed: u64,
    device: &Device,
    mut extras: TrainExtras,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainOutcome> {
    cfg.validate()?;
    if train_ds.len() < 2 {
        return Err(Error::usage(format!(
            "train: `{}` has {} training image(s); a training step needs at least 2",
            train_ds.name,
            train_ds.len()
        )));
    }
    let (cfg, max_steps) = &cfg.in_epochs(train_ds.len());
    let ad = device.clone().autodiff();
    let mut optim = extras.optimizer.take().unwrap_or_else(|| match cfg.optimizer {
        OptimizerKind::Adamw => adamw::FusedAdamW::init(1e-8, cfg.weight_decay as f32),
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay((cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32)))
            .init(),
    });
    let mut steps = 0usize;
    let mut order_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006f_7264_6572);
    let augmenter = cfg.augment.then(|| Augmenter::new(train_ds.height, seed ^ 0x6175_676d));
    let mut mixer = cfg.mixup_cutmix.then(|| mix::Mixer::new(derive_seed(seed, "mix")));
    let mut order: Vec<usize> = (0..train_ds.len()).collect();
    let mut buf = Vec::new();
    let mut best: Option<(usize, f64, Backbone)> = None;
    let frozen_head = FrozenHead::capture(&model, &extras.frozen_classes);
    let mut logs = Vec::new();
    let mut trace = trace::Trace::start(train_ds, norm)?;
    let start = Instant::now();
    let mut images = 0usize;
    let (mut first_epoch, mut earlier_secs) = (0, 0.0);
    let resumed = match &extras.checkpoint {
        Some(c) => resume::read(c.path)?.map(|state| (c.path, state)),
        None => None,
    };
    if let Some((path, state)) = resumed {
        let unfit = |e: burn::store::RecordError| Error::input(path, format!("does not fit this network: {e}"));
        // The initial weights are drawn as the first training step draws them, in the order of
        // the forward pass (a network cloned before training, the random-init control, shares
        // them), then replaced by the saved ones.
        let first = cfg.batch.min(train_ds.len());
        let (h, w) = augmenter
            .as_ref()
            .map_or((train_ds.height, train_ds.width), |a| (a.res, a.res));
        let _ = model.forward(Tensor::zeros([first, 3, h, w], &ad));
        // Folds the batch-norm statistics that pass left pending into the values the saved ones
        // replace (pending, they would overwrite them at the next step).
        let _ = model.valid();
        model = model.try_load_record(state.last).map_err(unfit)?;
        optim = optim
            .from_bytes(state.optimizer)
            .map_err(|e| Error::input(path, format!("not a training checkpoint of this version: {e}")))?;
        let best_model = model.valid().try_load_record(state.best).map_err(unfit)?;
        best = Some((state.best_epoch, state.best_val_accuracy, best_model));
        // Each epoch shuffles the order the one before left: the shuffles of the epochs done are
        // made again.
        for _ in 0..state.epochs {
            order.shuffle(&mut order_rng);
        }
        if let (Some(m), Some(p)) = (mixer.as_mut(), state.mix_position) {
            m.set_position(p);
        }
        (first_epoch, steps, images, earlier_secs, logs) =
            (state.epochs, state.steps, state.images, state.secs, state.logs);
        progress(Progress::Resumed {
            epochs: first_epoch,
            steps,
        });
    }
    for epoch in first_epoch..cfg.epochs {
        let t0 = Instant::now();
        if epoch > 0 {
            // The backend's stream (stochastic depth) from a seed of the epoch: the same draws
            // whether or not training went on from a saved state. The first epoch's stream draws
            // the initial weights as well.
            device.seed(derive_seed(seed, &format!("epoch:{epoch}")));
        }
        let lr = cfg.lr_at(epoch);
        order.shuffle(&mut order_rng);
        let mut loss_sum = 0.0;
        let mut epoch_images = 0usize;
        for (step, chunk) in order.chunks(cfg.batch).enumerate() {
            crate::interrupt::check()?;
            // A final batch of one sample would break batch statistics.
            if chunk.len() < 2 {
                continue;
            }
            if steps == *max_steps {
                break;
            }
            steps += 1;
            epoch_images += chunk.len();
            let x = batch_tensor(
                train_ds,
                chunk,
                norm,
                augmenter.as_ref().map(|a| (a, epoch as u64)),
                &mut buf,
                &ad,
            )?;
            let groups = extras.class_groups.as_deref();
            let labels = batch_labels(train_ds, chunk);
            let mix = mixer.as_mut().map(|m| {
                let [_, _, h, w] = x.dims();
                let group = |i: usize| groups.map(|g| g.get(labels[i] as usize).copied());
                let n = labels.len();
                let mixable: Vec<bool> = (0..n).map(|i| group(i) == group(n - 1 - i)).collect();
                (m.draw(h, w), mixable)
            });
            let x = match &mix {
                Some((m, mixable)) => mix::inputs(m, x, mixable),
                None => x,
            };
            // Nothing reads the model before its forward pass: parameters initialise lazily, on
            // first use, and reading one first would change the order of the random draws.
            let mut logits = model.forward(x.clone());
            if let Some(groups) = groups {
                logits = logits + group_mask(groups, train_ds, chunk, &ad);
            }
            let classes = logits.dims()[1];
            let mut targets = soft_targets(&labels, classes, cfg.label_smoothing, groups, &ad);
            if let Some((m, mixable)) = &mix {
                targets = mix::targets(m, targets, mixable);
            }
            let mut loss = crate::kernel::rows::cross_entropy(logits.clone(), targets);
            if let Some(extra) = extras.extra_loss.as_mut() {
                loss = loss + extra(&model, &x, &logits);
            }
            let loss_value: f64 = loss.clone().into_scalar::<f32>() as f64;
            if !loss_value.is_finite() {
                return Err(Error::TrainingDiverged(format!(
                    "training loss became {loss_value} at epoch {} step {} (learning rate {lr:.3e}); lower `train.lr` (now {:e})",
                    epoch + 1,
                    step + 1,
                    cfg.lr
                )));
            }
            if let Some(t) = trace.as_mut() {
                t.step(&model, loss_value, chunk)?;
            }
            loss_sum += loss_value * chunk.len() as f64;
            images += chunk.len();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            if let Some(f) = &frozen_head {
                model = f.restore(model);
            }
            progress(Progress::Step);
        }
        let valid = model.valid();
        let val_accuracy = evaluate(&valid, val_ds, norm, 256, device)?;
        let log = EpochLog {
            epoch: epoch + 1,
            lr,
            // The mean over the epoch's images (by iterations, the last pass may be partial).
            train_loss: loss_sum
                / if cfg.iterations.is_some() {
                    epoch_images
                } else {
                    train_ds.len()
                }
                .max(1) as f64,
            val_accuracy,
            secs: t0.elapsed().as_secs_f64(),
        };
        progress(Progress::Epoch(&log));
        logs.push(log);
        if best.as_ref().is_none_or(|(_, acc, _)| val_accuracy > *acc) {
            best = Some((epoch + 1, val_accuracy, valid));
        }
        if let (Some(at), Some((e, acc, best_model))) = (&extras.checkpoint, &best) {
            let done = resume::Progress {
                epochs: epoch + 1,
                steps,
                images,
                secs: earlier_secs + start.elapsed().as_secs_f64(),
                logs: &logs,
                best: (*e, *acc, best_model),
                mix_position: mixer.as_ref().map(mix::Mixer::position),
            };
            resume::write(at, done, &model, &optim)?;
        }
    }
    if let Some(t) = trace {
        t.finish(&model)?;
    }
    let (best_epoch, best_val_accuracy, best_model) =
        best.ok_or_else(|| Error::Internal("training ran no epoch".into()))?;
    let train_secs = earlier_secs + start.elapsed().as_secs_f64();
    Ok(TrainOutcome {
        last: model,
        best: best_model,
        optimizer: optim,
        report: TrainReport {
            best_epoch,
            best_val_accuracy,
            epochs: logs,
            train_secs,
            images_per_sec: images as f64 / train_secs,
        },
    })
}

/// Random-init control: set BatchNorm running statistics from the training data (a training-mode
/// forward pass without updates), then return the validation-mode model.
pub fn calibrate_batchnorm(
    model: Backbone,
    train_ds: &ImageDataset,
    norm: &Normalization,
    batch: usize,
    passes: usize,
    device: &Device,
) -> Result<Backbone> {
    let ad = device.clone().autodiff();
    let model = model.fork(&ad);
    let mut buf = Vec::new();
    let idx: Vec<usize> = (0..train_ds.len()).collect();
    for _ in 0..passes {
        for chunk in idx.chunks(batch.max(2)) {
            crate::interrupt::check()?;
            if chunk.len() < 2 {
                continue;
            }
            let x = batch_tensor(train_ds, chunk, norm, None, &mut buf, &ad)?;
            let _ = model.forward(x);
        }
    }
    Ok(model.valid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(text: &str) -> TrainConfig {
        toml::from_str(&format!("lr = 1e-3\n{text}")).unwrap()
    }

    #[test]
    fn iterations_become_the_passes_they_take() {
        // 1000 images in batches of 128: 7 full batches and one of 104, 8 steps a pass.
        let (cfg, steps) = recipe("iterations = 20\nbatch = 128").in_epochs(1000);
        assert_eq!((cfg.epochs, steps), (3, 20));
        // 1025 images: the last batch of one sample is skipped, so still 8 steps a pass.
        assert_eq!(recipe("iterations = 16\nbatch = 128").in_epochs(1025).0.epochs, 2);
        let (cfg, steps) = recipe("epochs = 4").in_epochs(1000);
        assert_eq!((cfg.epochs, steps), (4, usize::MAX));
    }

    #[test]
    fn training_by_iterations_takes_that_many_steps() {
        use crate::data::synth::{SynthKind, SynthSpec};
        let data = SynthKind::Shapes
            .generate(&SynthSpec {
                n_classes: 4,
                train_per_class: 10,
                test_per_class: 2,
                height: 8,
                width: 8,
                seed: 1,
            })
            .unwrap();
        let device = Device::flex();
        let spec = crate::model::ArchSpec {
            dim: Some(16),
            ..crate::model::ArchSpec::named("mlp")
        };
        let model = Backbone::new(&spec, 4, 8, &device.clone().autodiff()).unwrap();
        let cfg = recipe("iterations = 12\nbatch = 8\noptimizer = \"adam\"\nwarmup_epochs = 0");
        let (mut steps, mut epochs) = (0, 0);
        let norm = crate::data::transform::Normalization::IMAGENET;
        let out = train(
            model,
            &data.train,
            &data.test,
            &norm,
            &cfg,
            1,
            &device,
            TrainExtras::default(),
            &mut |p| match p {
                Progress::Step => steps += 1,
                Progress::Epoch(_) => epochs += 1,
                Progress::Resumed { .. } => unreachable!("no checkpoint"),
            },
        )
        .unwrap();
        // 40 images in batches of 8: 5 steps a pass, so 12 steps take 3 passes.
        assert_eq!((steps, epochs, out.report.epochs.len()), (12, 3, 3));
    }

    #[test]
    fn recipes_give_epochs_or_iterations() {
        assert!(recipe("epochs = 2").validate().is_ok());
        assert!(recipe("iterations = 5").validate().is_ok());
        assert!(recipe("").validate().is_err());
        assert!(recipe("epochs = 2\niterations = 5").validate().is_err());
        assert!(recipe("iterations = 0").validate().is_err());
    }

    #[test]
    fn a_constant_schedule_keeps_the_rate_after_the_warm_up() {
        let cfg = recipe("epochs = 10\nwarmup_epochs = 2\nschedule = \"constant\"");
        assert!(cfg.lr_at(0) < 1e-3);
        assert!((2..10).all(|e| cfg.lr_at(e) == 1e-3));
        let cosine = recipe("epochs = 10\nwarmup_epochs = 2");
        assert!(cosine.lr_at(9) < cosine.lr_at(2));
    }
}
