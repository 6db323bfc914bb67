//! Continual-learning scenarios (method §8): class-incremental task sequences, training with and
//! without the tunnel, evaluation and layer-wise probes after every task, forgetting metrics from
//! the stored raw values, baseline strategies, and the extractor/tunnel swap protocol.

mod output;
mod regularizers;
mod swap;

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::Serialize;

use crate::scenario::continual::TruncateConfig;
pub use crate::scenario::continual::{ContinualConfig, CutRule, Heads, Strategy};

use crate::data::split::{ClassOrder, Task, TaskSpec, class_incremental};
use crate::data::transform::Normalization;
use crate::data::{DataSplit, ImageDataset};
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
    pub train_secs: f64,
}

/// Everything a CL run produces.
#[derive(Clone, Debug, Serialize)]
pub struct ClSummary {
    pub scenario: String,
    pub tasks: Vec<Vec<u32>>,
    pub heads: Heads,
    pub sequences: Vec<SequenceResult>,
    pub truncation: Vec<TruncationChoice>,
    pub swap: Option<swap::SwapResult>,
    pub secs: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TruncationChoice {
    pub architecture: String,
    pub rule: CutRule,
    pub k: usize,
    pub layers: usize,
    pub note: String,
}

/// Data shared by every sequence.
struct Setup<'a> {
    tasks: Vec<Task>,
    n_classes: usize,
    norm: Normalization,
    cfg: &'a ContinualConfig,
    train: &'a TrainConfig,
    probe: &'a ProbeConfig,
    device: Device,
    seed: u64,
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
    let (train_f, _) = extract_features(model, &task.train, &s.norm, 256, &s.device)?;
    let (test_f, _) = extract_features(model, &task.test, &s.norm, 256, &s.device)?;
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

/// Reservoir sample over (task, image) pairs (Vitter's algorithm R), seeded.
struct Reservoir {
    capacity: usize,
    seen: usize,
    items: Vec<(usize, usize)>,
    rng: rand_chacha::ChaCha8Rng,
}

impl Reservoir {
    fn new(capacity: usize, seed: u64) -> Self {
        use rand::SeedableRng;
        Reservoir {
            capacity,
            seen: 0,
            items: Vec::new(),
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn add_task(&mut self, task: usize, n: usize) {
        use rand::Rng;
        for i in 0..n {
            self.seen += 1;
            if self.items.len() < self.capacity {
                self.items.push((task, i));
            } else {
                let j = self.rng.random_range(0..self.seen);
                if j < self.capacity {
                    self.items[j] = (task, i);
                }
            }
        }
    }

    fn dataset(&self, tasks: &[Task]) -> Result<Option<ImageDataset>> {
        let mut out: Option<ImageDataset> = None;
        for (t, task) in tasks.iter().enumerate() {
            let idx: Vec<usize> = self.items.iter().filter(|(a, _)| *a == t).map(|(_, i)| *i).collect();
            if idx.is_empty() {
                continue;
            }
            let part = task.train.subset(&idx)?;
            out = Some(match out {
                Some(o) => o.concat(&part)?,
                None => part,
            });
        }
        Ok(out)
    }
}

/// Train one task sequence and record everything.
fn run_sequence(
    s: &Setup,
    arch: &ArchSpec,
    cut: Option<usize>,
    strategy: Strategy,
    reporter: &mut Reporter,
    keep_models: bool,
) -> Result<(SequenceResult, Vec<Backbone>)> {
    let t0 = Instant::now();
    let n_tasks = s.tasks.len();
    let multi = s.cfg.heads == Heads::Multi;
    let ad = s.device.clone().autodiff();
    let arch_label = arch_label(arch);
    s.device.seed(derive_seed(s.seed, &format!("init:{arch_label}")));
    let mut model = Backbone::new(arch, s.n_classes, &ad)?;
    if let Some(k) = cut {
        model = model.truncated(k, &ad)?;
    }
    let names: Vec<String> = layer_names(arch)?
        .into_iter()
        .take(model.n_layers())
        .map(|l: LayerInfo| l.name)
        .collect();
    let variant = if cut.is_some() { "truncated" } else { "full" };
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
    for t in 0..n_tasks {
        let task = &s.tasks[t];
        let mut train_set = task.train.clone();
        match strategy {
            Strategy::Joint => {
                for earlier in &s.tasks[..t] {
                    train_set = train_set.concat(&earlier.train)?;
                }
            }
            Strategy::Replay => {
                if let Some(buf) = reservoir.dataset(&s.tasks)? {
                    train_set = train_set.concat(&buf)?;
                }
            }
            _ => {}
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
        };
        reporter.message(&format!(
            "{arch_label} {variant} {}: task {}/{} ({} classes, {} training images)",
            strategy.name(),
            t + 1,
            n_tasks,
            task.classes.len(),
            train_set.len()
        ));
        let outcome = train::train_with(
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
        if keep_models {
            kept.push(valid);
        }
        match strategy {
            Strategy::Replay => reservoir.add_task(t, task.train.len()),
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

/// Choose the cut of the truncated network from the full network's first sequence.
fn choose_cut(cfg: &TruncateConfig, full: &SequenceResult) -> (usize, String) {
    let layers = full.layers;
    match cfg.rule {
        CutRule::Given => (cfg.k.unwrap_or(layers).min(layers), "given".into()),
        CutRule::Id95 => match full.probes.first().and_then(|p| p.first()) {
            Some(curve) => {
                let k = tunnel::tunnel_start_id(curve, Default::default()).unwrap_or(layers);
                (k, "ID-95% rule on the task-1 probe curve after task 1".into())
            }
            None => (layers, "no layer probes: kept every layer".into()),
        },
        CutRule::OodPeak => match full.probes.first().and_then(|p| p.get(1)) {
            Some(curve) => {
                let k = tunnel::tunnel_start_ood(curve).unwrap_or(layers);
                (k, "OOD-peak rule on the task-2 probe curve after task 1".into())
            }
            None => (layers, "fewer than 2 tasks or no layer probes: kept every layer".into()),
        },
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
    )?;
    let spec = match &cfg.task_classes {
        Some(lists) => TaskSpec::Explicit(lists.clone()),
        None => TaskSpec::Uniform {
            n_tasks: cfg.tasks.unwrap_or(0),
            classes_per_task: cfg.classes_per_task.unwrap_or(0),
            order: match cfg.class_order_seed {
                Some(seed) => ClassOrder::Seeded(seed),
                None => ClassOrder::Identity,
            },
        },
    };
    let split = DataSplit {
        train: id.split.train.clone(),
        test: id.split.test.clone(),
    };
    let tasks = class_incremental(&split, &spec)?;
    let task_lists: Vec<Vec<u32>> = tasks.iter().map(|t| t.classes.clone()).collect();
    reporter.line(&format!(
        "continual scenario `{}`: {} tasks of {:?} classes from {} ({} heads)",
        sc.name,
        tasks.len(),
        task_lists.iter().map(|t| t.len()).collect::<Vec<_>>(),
        id.label,
        if cfg.heads == Heads::Multi {
            "task-specific"
        } else {
            "shared"
        }
    ));
    let setup = Setup {
        tasks,
        n_classes: id.n_classes,
        norm: id.norm,
        cfg,
        train: &sc.train,
        probe: &sc.probe.main,
        device: opts.backend.device(),
        seed: sc.seed,
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
            let (res, models) = run_sequence(&setup, arch, None, strategy, &mut reporter, keep)?;
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
            let (k, note) = choose_cut(tc, full);
            reporter.line(&format!(
                "{}: truncated network keeps the first {k} of {} probed layers ({note})",
                arch_label(arch),
                full.layers
            ));
            truncation.push(TruncationChoice {
                architecture: arch_label(arch),
                rule: tc.rule,
                k,
                layers: full.layers,
                note,
            });
            for &strategy in &cfg.strategies {
                let (res, _) = run_sequence(&setup, arch, Some(k), strategy, &mut reporter, false)?;
                reporter.line(&sequence_line(&res));
                sequences.push(res);
            }
        }
    }
    let summary = ClSummary {
        scenario: sc.name.clone(),
        tasks: task_lists,
        heads: cfg.heads,
        sequences,
        truncation,
        swap: swap_result,
        secs: t0.elapsed().as_secs_f64(),
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
