//! Continual-learning scenarios (method §8): class-incremental task sequences, training with and
//! without the tunnel, evaluation and layer-wise probes after every task, forgetting metrics from
//! the stored raw values, baseline strategies, and the extractor/tunnel swap protocol.

mod output;
mod regularizers;
mod replay;
mod swap;
mod tasks;
mod truncation;

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::Serialize;

pub use crate::scenario::continual::{ContinualConfig, CutRule, Heads, Strategy, Trainable};
pub use output::{ClMetricsFile, ClRun};
pub use truncation::TruncationChoice;

use crate::data::ImageDataset;
use crate::data::split::Task;
use crate::data::transform::Normalization;
use crate::error::{Error, Result};
use crate::metrics::continual::{ClMetrics, cl_metrics};
use crate::metrics::tunnel;
use crate::model::{ArchSpec, Backbone, LayerInfo, layer_names};
use crate::probe::{self, ProbeConfig, ProbeData, extract_features};
use crate::progress::Reporter;
use crate::run::RunOptions;
use crate::scenario::Scenario;
use crate::scenario::data::load_prepared;
use crate::seed::derive_seed;
use crate::train::{self, TrainConfig, TrainExtras, batch_tensor};
use replay::Reservoir;
use truncation::{Variant, truncations};

/// One trained sequence: an architecture, a variant (full or truncated at k), a strategy.
#[derive(Clone, Debug, Serialize)]
pub struct SequenceResult {
    pub architecture: String,
    pub variant: String,
    pub strategy: Strategy,
    /// Probed layers of the network trained (k for the truncated one).
    pub layers: usize,
    /// R[i][j]: accuracy on task j after task i, task-aware (masked to task j's classes).
    pub aware: Vec<Vec<f64>>,
    /// The same, task-agnostic (argmax over every class); NaN with task-specific heads.
    pub agnostic: Vec<Vec<f64>>,
    /// b[j]: accuracies of the randomly initialised network (aware, agnostic).
    pub baseline_aware: Vec<f64>,
    pub baseline_agnostic: Vec<f64>,
    /// probes[i][j][l]: probe accuracy of layer l on task j after task i.
    pub probes: Vec<Vec<Vec<f64>>>,
    pub layer_names: Vec<String>,
    pub metrics_aware: ClMetrics,
    pub metrics_agnostic: ClMetrics,
    /// The extractor/tunnel boundary k that `later_tasks_train` or a tunnel-aware strategy used.
    pub extractor_layers: Option<usize>,
    pub train_secs: f64,
}

/// Everything a CL run produces.
#[derive(Clone, Debug, Serialize)]
pub struct ClSummary {
    pub run: ClRun,
    pub sequences: Vec<SequenceResult>,
    pub swap: Option<swap::SwapResult>,
}

/// Data shared by every sequence.
struct Setup<'a> {
    tasks: Vec<Task>,
    n_classes: usize,
    norm: Normalization,
    cfg: &'a ContinualConfig,
    train: &'a TrainConfig,
    probe: &'a ProbeConfig,
    extraction_batch: usize,
    device: Device,
    seed: u64,
    resolution: usize,
}

/// The task of every class (classes in no task get their own group).
fn class_groups(tasks: &[Task], n_classes: usize) -> Vec<usize> {
    let mut g: Vec<usize> = (0..n_classes).map(|c| tasks.len() + c).collect();
    for (t, task) in tasks.iter().enumerate() {
        for &c in &task.classes {
            g[c as usize] = t;
        }
    }
    g
}

/// Accuracy of `model` (validation mode) on `ds`: (task-aware over `classes`, task-agnostic).
fn evaluate(
    model: &Backbone,
    ds: &ImageDataset,
    classes: &[u32],
    norm: &Normalization,
    device: &Device,
) -> Result<(f64, f64)> {
    let k = model.n_classes();
    let mut buf = Vec::new();
    let idx: Vec<usize> = (0..ds.len()).collect();
    let (mut aware, mut agnostic) = (0usize, 0usize);
    for chunk in idx.chunks(256) {
        let x = batch_tensor(ds, chunk, norm, None, &mut buf, device)?;
        let logits = crate::backend::floats(model.forward(x))?;
        for (row, &i) in logits.chunks_exact(k).zip(chunk) {
            let y = ds.labels[i] as usize;
            let best_all = argmax(row.iter().copied().enumerate());
            let best_task = argmax(classes.iter().map(|&c| (c as usize, row[c as usize])));
            agnostic += (best_all == y) as usize;
            aware += (best_task == y) as usize;
        }
    }
    let n = ds.len().max(1) as f64;
    Ok((aware as f64 / n, agnostic as f64 / n))
}

fn argmax(it: impl Iterator<Item = (usize, f32)>) -> usize {
    let mut best = (usize::MAX, f32::NEG_INFINITY);
    for (i, v) in it {
        if v > best.1 || best.0 == usize::MAX {
            best = (i, v);
        }
    }
    best.0
}

/// Probe every layer of `model` on one task's data.
fn probe_layers(model: &Backbone, task: &Task, s: &Setup, seed: u64) -> Result<Vec<f64>> {
    let (train_f, _) = extract_features(model, &task.train, &s.norm, s.extraction_batch, &s.device)?;
    let (test_f, _) = extract_features(model, &task.test, &s.norm, s.extraction_batch, &s.device)?;
    // Probe labels: positions within the task's class list, so the probe has exactly its classes.
    let relabel = |ds: &ImageDataset| -> Vec<u32> {
        ds.labels
            .iter()
            .map(|y| task.classes.iter().position(|c| c == y).unwrap_or(0) as u32)
            .collect()
    };
    let (ytr, yte) = (relabel(&task.train), relabel(&task.test));
    let probe_device = crate::backend::probe_device();
    train_f
        .iter()
        .zip(&test_f)
        .enumerate()
        .map(|(l, (tr, te))| {
            let data = ProbeData {
                dim: tr.dim,
                train_x: &tr.data,
                train_y: &ytr,
                test_x: &te.data,
                test_y: &yte,
                n_classes: task.classes.len(),
            };
            Ok(probe::fit(s.probe, &data, derive_seed(seed, &format!("probe:{l}")), &probe_device)?.accuracy)
        })
        .collect()
}

/// Train one task sequence and record everything.
fn run_sequence(
    s: &Setup,
    arch: &ArchSpec,
    v: &Variant,
    strategy: Strategy,
    reporter: &mut Reporter,
    keep_models: bool,
) -> Result<(SequenceResult, Vec<Backbone>)> {
    let t0 = Instant::now();
    let n_tasks = s.tasks.len();
    let multi = s.cfg.heads == Heads::Multi;
    let ad = s.device.clone().autodiff();
    let arch_label = arch_label(arch);
    // A freshly initialised network of the variant, from the device's current seed.
    let build = || -> Result<Backbone> {
        let model = Backbone::new(&v.arch, s.n_classes, s.resolution, &ad)?;
        match v.cut {
            Some(k) => model.truncated(k, &ad),
            None => Ok(model),
        }
    };
    s.device.seed(derive_seed(s.seed, &format!("init:{arch_label}")));
    let mut model = build()?;
    let names: Vec<String> = layer_names(arch)?
        .into_iter()
        .take(model.n_layers())
        .map(|l: LayerInfo| l.name)
        .collect();
    let variant = v.label.as_str();
    let seq_seed = derive_seed(s.seed, &format!("{arch_label}:{variant}:{}", strategy.name()));

    let init = model.valid();
    let mut baseline_aware = Vec::new();
    let mut baseline_agnostic = Vec::new();
    for task in &s.tasks {
        let (a, g) = evaluate(&init, &task.test, &task.classes, &s.norm, &s.device)?;
        baseline_aware.push(a);
        baseline_agnostic.push(if multi { f64::NAN } else { g });
    }

    let mut aware = vec![vec![f64::NAN; n_tasks]; n_tasks];
    let mut agnostic = vec![vec![f64::NAN; n_tasks]; n_tasks];
    let mut probes = Vec::new();
    let mut kept = Vec::new();
    let mut reservoir = Reservoir::new(s.cfg.replay_buffer, derive_seed(seq_seed, "reservoir"));
    let mut ewc: Option<regularizers::Ewc> = None;
    let mut lwf_prev: Option<Backbone> = None;
    // What trains after task 1, and the extractor/tunnel boundary when that or the strategy needs it.
    let trainable = strategy.trains_after_first().unwrap_or(s.cfg.later_tasks_train);
    let needs_boundary = strategy.is_tunnel_aware() || trainable != Trainable::All;
    let mut boundary: Option<usize> = None;
    let mut optimizer = None;
    for t in 0..n_tasks {
        let task = &s.tasks[t];
        if let (true, Some(k)) = (t > 0, boundary) {
            if strategy.resets_tunnel() {
                s.device.seed(derive_seed(seq_seed, &format!("reset:task{t}")));
                model = model.with_tunnel_of(build()?, k)?;
            }
            // After a reset too: a fresh tunnel is frozen as the old one was.
            model = match trainable {
                Trainable::All => model,
                Trainable::Extractor => model.freeze_tunnel(k),
                Trainable::Tunnel => model.freeze_extractor(k),
                Trainable::Head => model.freeze_extractor(usize::MAX),
            };
        }
        let mut train_set = task.train.clone();
        if strategy == Strategy::Joint {
            for earlier in &s.tasks[..t] {
                train_set = train_set.concat(&earlier.train)?;
            }
        }
        if strategy.replays()
            && let Some(buf) = reservoir.dataset(&s.tasks)?
        {
            train_set = train_set.concat(&buf)?;
        }
        let groups = multi.then(|| class_groups(&s.tasks, s.n_classes));
        let old_classes: Vec<i64> = s.tasks[..t]
            .iter()
            .flat_map(|x| x.classes.iter().map(|&c| c as i64))
            .collect();
        let mut extra = |m: &Backbone, x: &Tensor<4>, logits: &Tensor<2>| -> Tensor<1> {
            let mut loss = Tensor::<1>::zeros([1], &ad);
            if let Some(e) = &ewc {
                loss = loss + e.penalty(m);
            }
            if let Some(prev) = &lwf_prev {
                loss = loss
                    + regularizers::distillation(prev, x, logits, &old_classes, s.cfg.lwf_temperature, &ad)
                        .mul_scalar(s.cfg.lwf_alpha);
            }
            loss
        };
        let use_extra = ewc.is_some() || lwf_prev.is_some();
        let extras = TrainExtras {
            class_groups: groups.clone(),
            extra_loss: if use_extra { Some(&mut extra) } else { None },
            // The earlier tasks' heads are not among what trains after task 1.
            frozen_classes: if trainable == Trainable::All {
                Vec::new()
            } else {
                old_classes.iter().map(|&c| c as u32).collect()
            },
            optimizer: optimizer.take(),
            checkpoint: None,
        };
        reporter.message(&format!(
            "{arch_label} {variant} {}: task {}/{} ({} classes, {} training images)",
            strategy.name(),
            t + 1,
            n_tasks,
            task.classes.len(),
            train_set.len()
        ));
        let outcome = train::train(
            model,
            &train_set,
            &task.test,
            &s.norm,
            s.train,
            derive_seed(seq_seed, &format!("task{t}")),
            &s.device,
            extras,
            &mut |_| {},
        )?;
        model = outcome.last;
        if s.cfg.keep_optimizer_state {
            optimizer = Some(outcome.optimizer);
        }
        let valid = model.valid();
        for (j, other) in s.tasks.iter().enumerate() {
            let (a, g) = evaluate(&valid, &other.test, &other.classes, &s.norm, &s.device)?;
            aware[t][j] = a;
            agnostic[t][j] = if multi { f64::NAN } else { g };
        }
        if s.cfg.layer_probes {
            let row: Vec<Vec<f64>> = s
                .tasks
                .iter()
                .enumerate()
                .map(|(j, other)| probe_layers(&valid, other, s, derive_seed(seq_seed, &format!("p{t}:{j}"))))
                .collect::<Result<_>>()?;
            probes.push(row);
        }
        if t == 0 && needs_boundary {
            let k = match s.cfg.extractor_layers {
                Some(k) => k.min(model.n_layers()),
                None => {
                    let curve = match probes.first().and_then(|p: &Vec<Vec<f64>>| p.first()) {
                        Some(c) => c.clone(),
                        None => probe_layers(&valid, task, s, derive_seed(seq_seed, "p0:0"))?,
                    };
                    tunnel::tunnel_start_id(&curve, Default::default()).unwrap_or(model.n_layers())
                }
            };
            reporter.message(&format!(
                "{arch_label} {variant} {}: extractor = layers 1..{k}, tunnel = layers {}..{}",
                strategy.name(),
                k + 1,
                model.n_layers()
            ));
            boundary = Some(k);
        }
        if keep_models {
            kept.push(valid);
        }
        if strategy.replays() {
            reservoir.add_task(t, task.train.len());
        }
        match strategy {
            Strategy::Ewc => {
                let fisher = regularizers::Ewc::estimate(&model, &task.train, &s.norm, groups.as_deref(), &ad)?;
                ewc = Some(match ewc.take() {
                    Some(prev) => prev.merge(fisher, s.cfg.ewc_lambda),
                    None => fisher.with_lambda(s.cfg.ewc_lambda),
                });
            }
            Strategy::Lwf => lwf_prev = Some(model.clone().freeze()),
            _ => {}
        }
    }
    let metrics_aware = cl_metrics(&aware, Some(&baseline_aware), multi);
    let metrics_agnostic = if multi {
        cl_metrics(&agnostic, None, true)
    } else {
        cl_metrics(&agnostic, Some(&baseline_agnostic), false)
    };
    Ok((
        SequenceResult {
            architecture: arch_label,
            variant: variant.to_string(),
            strategy,
            layers: names.len(),
            aware,
            agnostic,
            baseline_aware,
            baseline_agnostic,
            probes,
            layer_names: names,
            metrics_aware,
            metrics_agnostic,
            extractor_layers: boundary,
            train_secs: t0.elapsed().as_secs_f64(),
        },
        kept,
    ))
}

pub fn arch_label(a: &ArchSpec) -> String {
    if a.width == 1.0 {
        a.name.clone()
    } else {
        format!("{}x{}", a.name, a.width)
    }
}

/// Run the `[continual]` section of a scenario into `out_dir`.
pub fn run(sc: &Scenario, out_dir: &Path, opts: &RunOptions) -> Result<ClSummary> {
    let t0 = Instant::now();
    let cfg = sc
        .continual
        .as_ref()
        .ok_or_else(|| Error::Internal("no [continual] section".into()))?;
    let mut reporter = Reporter::new(opts.quiet);
    let id_seed = sc.id.seed.unwrap_or_else(|| derive_seed(sc.seed, "data:id"));
    let id = load_prepared(
        &sc.id,
        crate::scenario::data_label(&sc.id),
        sc.resolution,
        id_seed,
        &opts.data_dir,
        &mut reporter,
    )?;
    let (tasks, n_classes, labels) = tasks::build(sc, cfg, &id, &opts.data_dir, &mut reporter)?;
    let task_lists: Vec<Vec<u32>> = tasks.iter().map(|t| t.classes.clone()).collect();
    reporter.line(&format!(
        "continual scenario `{}`: {} tasks of {:?} classes from {} ({} heads)",
        sc.name,
        tasks.len(),
        task_lists.iter().map(|t| t.len()).collect::<Vec<_>>(),
        labels.join(" → "),
        if cfg.heads == Heads::Multi {
            "task-specific"
        } else {
            "shared"
        }
    ));
    let setup = Setup {
        tasks,
        n_classes,
        // A sequence of data sets is normalised as its first (the ID set): one network sees them all.
        norm: id.norm,
        cfg,
        train: sc
            .train
            .as_ref()
            .ok_or_else(|| Error::usage("a `[continual]` scenario trains: section `[train]` is required"))?,
        probe: &sc.probe.main,
        extraction_batch: sc.probe.extraction_batch,
        device: opts.backend.device(),
        seed: sc.seed,
        resolution: sc.resolution,
    };
    let archs: Vec<ArchSpec> = if cfg.architectures.is_empty() {
        vec![sc.model.clone()]
    } else {
        cfg.architectures.clone()
    };
    let mut sequences = Vec::new();
    let mut truncation = Vec::new();
    let mut swap_result = None;
    for (ai, arch) in archs.iter().enumerate() {
        let mut first_full: Option<SequenceResult> = None;
        for (si, &strategy) in cfg.strategies.iter().enumerate() {
            let keep = ai == 0 && cfg.swap.is_some() && strategy == Strategy::Finetune;
            let full = Variant {
                label: "full".into(),
                arch: arch.clone(),
                cut: None,
            };
            let (res, models) = run_sequence(&setup, arch, &full, strategy, &mut reporter, keep)?;
            reporter.line(&sequence_line(&res));
            if keep {
                let sw = cfg.swap.as_ref().ok_or_else(|| Error::Internal("swap".into()))?;
                swap_result = Some(swap::run(&setup, sw, &res, &models, &mut reporter)?);
            }
            if si == 0 {
                first_full = Some(res.clone());
            }
            sequences.push(res);
        }
        if let (Some(tc), Some(full)) = (&cfg.truncate, &first_full) {
            for choice in truncations(tc, arch, full, n_classes, sc.resolution)? {
                reporter.line(&format!(
                    "{}: {} keeps the first {} of {} probed layers ({}); {} parameters, the full network {}",
                    choice.architecture,
                    choice.variant,
                    choice.k,
                    choice.layers,
                    choice.note,
                    choice.parameters,
                    choice.parameters_full
                ));
                let variant = Variant {
                    label: choice.variant.clone(),
                    arch: arch.clone().with_width(choice.width),
                    cut: Some(choice.k),
                };
                truncation.push(choice);
                for &strategy in &cfg.strategies {
                    let (res, _) = run_sequence(&setup, arch, &variant, strategy, &mut reporter, false)?;
                    reporter.line(&sequence_line(&res));
                    sequences.push(res);
                }
            }
        }
    }
    let summary = ClSummary {
        run: ClRun {
            scenario: sc.name.clone(),
            config: Some(sc.clone()),
            backend: opts.backend.name().to_string(),
            tasks: task_lists,
            heads: cfg.heads,
            truncation,
            secs: t0.elapsed().as_secs_f64(),
            published: cfg.published.clone(),
        },
        sequences,
        swap: swap_result,
    };
    output::write(out_dir, &summary)?;
    if opts.table {
        reporter.line(&output::table(&summary));
        reporter.line(&format!("results: {}", out_dir.display()));
    }
    Ok(summary)
}

fn sequence_line(r: &SequenceResult) -> String {
    let m = if r.metrics_agnostic.acc.is_defined() {
        &r.metrics_agnostic
    } else {
        &r.metrics_aware
    };
    format!(
        "  {} {} {}: ACC {:.2}%, forgetting {:.2}, BWT {:.2} ({:.0} s)",
        r.architecture,
        r.variant,
        r.strategy.name(),
        100.0 * m.acc.value,
        100.0 * m.forgetting.value,
        100.0 * m.bwt.value,
        r.train_secs
    )
}

/// Build a `[B, 3, H, W]` tensor of one batch on `device` (shared by the regularisers).
pub(crate) fn input_batch(
    ds: &ImageDataset,
    idx: &[usize],
    norm: &Normalization,
    device: &Device,
) -> Result<Tensor<4>> {
    let mut buf = Vec::new();
    batch_tensor(ds, idx, norm, None, &mut buf, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::{SynthKind, SynthSpec};

    /// Every float parameter of `m`, and the running statistics of its batch norms, flattened.
    fn values(m: &impl Module) -> Vec<f32> {
        struct All(Vec<f32>);
        impl burn::module::ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                self.0.extend(crate::backend::floats(p.val()).unwrap());
            }
        }
        let mut all = All(Vec::new());
        m.visit(&mut all);
        all.0
    }

    fn bn_stats(u: &crate::model::backbone::Unit) -> Vec<f32> {
        match u {
            crate::model::backbone::Unit::Conv(c) => crate::backend::floats(c.bn.running_mean.value()).unwrap(),
            _ => unreachable!("a VGG unit"),
        }
    }

    fn head_column(m: &Backbone, c: usize) -> Vec<f32> {
        let w = crate::backend::floats(m.head.fc.weight.val()).unwrap();
        let k = m.n_classes();
        w.iter().skip(c).step_by(k).copied().collect()
    }

    /// Trains a VGGm-11 ×1/16 for one epoch on 4 synthetic classes after `prepare`, with the head
    /// columns of `frozen` classes kept; returns the model before and after (validation mode).
    fn train_once(prepare: impl Fn(Backbone) -> Backbone, frozen: Vec<u32>) -> (Backbone, Backbone) {
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let data = SynthKind::Shapes
            .generate(&SynthSpec {
                n_classes: 4,
                train_per_class: 16,
                test_per_class: 4,
                height: 32,
                width: 32,
                seed: 1,
            })
            .unwrap();
        device.seed(7);
        let model = prepare(Backbone::new(&ArchSpec::named("vggm-11").with_width(0.0625), 4, 32, &ad).unwrap());
        let before = model.valid();
        let cfg: TrainConfig = toml::from_str("epochs = 1\nbatch = 16\nlr = 1e-2\nwarmup_epochs = 0").unwrap();
        let extras = TrainExtras {
            frozen_classes: frozen,
            ..TrainExtras::default()
        };
        let norm = Normalization::IMAGENET;
        let out = train::train(
            model,
            &data.train,
            &data.test,
            &norm,
            &cfg,
            3,
            &device,
            extras,
            &mut |_| {},
        );
        (before, out.unwrap().last.valid())
    }

    #[test]
    fn a_frozen_tunnel_and_frozen_heads_do_not_move() {
        let k = 6;
        let (before, after) = train_once(|m| m.freeze_tunnel(k), vec![0, 1]);
        for (l, (a, b)) in before.units.iter().zip(&after.units).enumerate() {
            if l < k {
                assert_ne!(values(a), values(b), "extractor layer {} did not train", l + 1);
            } else {
                assert_eq!(values(a), values(b), "tunnel layer {} moved", l + 1);
                assert_eq!(
                    bn_stats(a),
                    bn_stats(b),
                    "tunnel layer {} batch-norm statistics moved",
                    l + 1
                );
            }
        }
        for c in 0..4 {
            let same = head_column(&before, c) == head_column(&after, c);
            assert_eq!(same, c < 2, "head column {c}: frozen {}, unchanged {same}", c < 2);
        }
    }

    #[test]
    fn a_frozen_extractor_does_not_move() {
        let k = 4;
        let (before, after) = train_once(|m| m.freeze_extractor(k), Vec::new());
        for (l, (a, b)) in before.units.iter().zip(&after.units).enumerate() {
            assert_eq!(values(a) == values(b), l < k, "layer {}", l + 1);
        }
        assert_ne!(values(&before.head), values(&after.head));
    }

    #[test]
    fn a_reset_tunnel_is_a_fresh_initialisation() {
        let device = Device::flex();
        let spec = ArchSpec::named("vggm-11").with_width(0.0625);
        device.seed(1);
        let trained = Backbone::new(&spec, 4, 32, &device).unwrap();
        device.seed(2);
        let fresh = Backbone::new(&spec, 4, 32, &device).unwrap();
        let reset = trained.clone().with_tunnel_of(fresh.clone(), 6).unwrap();
        for l in 0..reset.n_layers() {
            let want = if l < 6 { &trained.units[l] } else { &fresh.units[l] };
            assert_eq!(values(&reset.units[l]), values(want), "layer {}", l + 1);
            assert_ne!(values(&trained.units[l]), values(&fresh.units[l]));
        }
        assert_eq!(values(&reset.head), values(&trained.head));
    }
}
