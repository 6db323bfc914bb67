//! The extractor/tunnel swap and fine-tune protocol of method §8.1 ([H24] Table 2), on two tasks.

use burn::module::Module;
use serde::Serialize;

use super::{SequenceResult, Setup, class_groups, evaluate};
use crate::error::{Error, Result};
use crate::metrics::tunnel;
use crate::model::Backbone;
use crate::progress::Reporter;
use crate::results::SwapRecord;
use crate::scenario::continual::{Heads, SwapConfig};
use crate::seed::derive_seed;
use crate::stats::describe::finite;
use crate::train::{self, TrainConfig, TrainExtras};

#[derive(Clone, Debug, Serialize)]
pub struct SwapResult {
    pub architecture: String,
    pub k: usize,
    pub layers: usize,
    pub k_rule: String,
    /// A change is the drop from the original-task row (E1+T1 for task 1, E2+T2 for task 2), or the
    /// gain over E2+T2's task-1 accuracy for the fine-tuned rows; in points.
    pub rows: Vec<SwapRecord>,
    pub assumptions: Vec<String>,
}

/// E_a + T_b with the head of task `head_task` (0-based), validation mode.
fn combo(models: &[Backbone], e: usize, t: usize, head_task: usize, k: usize) -> Result<Backbone> {
    Backbone::combine(&models[e], &models[t], k, &models[head_task].head)
}

pub fn run(
    s: &Setup,
    cfg: &SwapConfig,
    seq: &SequenceResult,
    models: &[Backbone],
    reporter: &mut Reporter,
) -> Result<SwapResult> {
    if models.len() != 2 || s.tasks.len() != 2 {
        return Err(Error::usage("the swap protocol needs exactly 2 tasks"));
    }
    let layers = seq.layers;
    let (k, k_rule) = match cfg.k {
        Some(k) if k >= 1 && k < layers => (k, "given".to_string()),
        Some(k) => {
            return Err(Error::usage(format!(
                "key `continual.swap.k`: {k} must be between 1 and {} (the network has {layers} probed layers)",
                layers - 1
            )));
        }
        None => {
            let curve = seq.probes.first().and_then(|p| p.first()).ok_or_else(|| {
                Error::usage("the swap protocol without `swap.k` needs `layer_probes = true` to find the tunnel")
            })?;
            let start = tunnel::tunnel_start_id(curve, Default::default()).unwrap_or(layers);
            // The tunnel is layers start+1..L; the extractor keeps at least one layer and the tunnel too.
            (
                start.clamp(1, layers - 1),
                "ID-95% rule on the task-1 probe curve after task 1".to_string(),
            )
        }
    };
    let mut rows = Vec::new();
    let score = |m: &Backbone, j: usize| -> Result<f64> {
        let task = &s.tasks[j];
        Ok(evaluate(m, &task.test, &task.classes, &s.norm, &s.device)?.0)
    };
    // Task j is always scored with head H_j, task-aware.
    let eval_pair = |e: usize, t: usize| -> Result<(f64, f64)> {
        Ok((
            score(&combo(models, e, t, 0, k)?, 0)?,
            score(&combo(models, e, t, 1, k)?, 1)?,
        ))
    };
    let (e1t1, e1t2, e2t2, e2t1) = (eval_pair(0, 0)?, eval_pair(0, 1)?, eval_pair(1, 1)?, eval_pair(1, 0)?);
    let pts = |v: f64| 100.0 * v;
    let row = |combination: &str, (task1, task2): (f64, f64), task1_change: Option<f64>, task2_change: Option<f64>| {
        SwapRecord {
            combination: combination.into(),
            task1_accuracy: finite(task1),
            task2_accuracy: finite(task2),
            task1_change_points: task1_change.and_then(finite),
            task2_change_points: task2_change.and_then(finite),
        }
    };
    rows.push(row("E1 + T1", e1t1, None, None));
    rows.push(row("E1 + T2", e1t2, Some(pts(e1t2.0 - e1t1.0)), None));
    rows.push(row("E2 + T2", e2t2, None, None));
    rows.push(row("E2 + T1", e2t1, None, Some(pts(e2t1.1 - e2t2.1))));

    // Fine-tune on task-1 data with only the extractor trainable.
    let ad = s.device.clone().autodiff();
    let ft_cfg = TrainConfig {
        epochs: cfg.finetune_epochs,
        lr: cfg.finetune_lr,
        warmup_epochs: 0,
        augment: false,
        ..s.train.clone()
    };
    let task1 = &s.tasks[0];
    let multi = s.cfg.heads == Heads::Multi;
    for (label, tunnel_from) in [("E2 + T1 (FT)", 0usize), ("E2 (FT)", 1usize)] {
        reporter.message(&format!(
            "swap protocol: fine-tuning {label} on task 1 ({} epochs)",
            ft_cfg.epochs
        ));
        let start = combo(models, 1, tunnel_from, 0, k)?.fork(&ad).train();
        let mut units = start.units;
        for u in units.iter_mut().skip(k) {
            *u = u.clone().freeze();
        }
        let model = Backbone {
            stem: start.stem,
            units,
            head: start.head.freeze(),
        };
        let outcome = train::train(
            model,
            &task1.train,
            &task1.test,
            &s.norm,
            &ft_cfg,
            derive_seed(s.seed, &format!("swap-ft:{label}")),
            &s.device,
            TrainExtras {
                class_groups: multi.then(|| class_groups(&s.tasks, s.n_classes)),
                ..TrainExtras::default()
            },
            &mut |_| {},
        )?;
        let acc = score(&outcome.last.valid(), 0)?;
        rows.push(row(label, (acc, f64::NAN), Some(pts(acc - e2t2.0)), None));
    }
    let assumptions = vec![
        format!(
            "heads: {} (task j is always scored with head H_j, masked to task j's classes)",
            if multi {
                "task-specific heads H1, H2 (the rows of one linear layer, each task's softmax over its own classes); H_t is the head after task t"
            } else {
                "one shared head; H_t is its state after task t"
            }
        ),
        format!(
            "tunnel = probed layers {}..{} ({k_rule}); extractor = layers 1..{k} with the stem",
            k + 1,
            layers
        ),
        "ResNet cut: a block's shortcut goes with its second conv".into(),
        format!(
            "fine-tuning: task-1 training data, extractor trainable, tunnel and head frozen (BatchNorm in eval mode), AdamW lr {}, {} epochs, constant lr (the paper: 50 epochs with StepLR)",
            cfg.finetune_lr, cfg.finetune_epochs
        ),
        format!(
            "task 2 starts from the task-1 weights with a fresh optimiser; {}",
            if s.train.mixup_cutmix {
                "mixup (p 0.6, Beta(0.1, 0.1)) or CutMix (p 0.4, Beta(1, 1)) on every batch, fine-tuning included"
            } else {
                "no mixup/cutmix"
            }
        ),
    ];
    Ok(SwapResult {
        architecture: seq.architecture.clone(),
        k,
        layers,
        k_rule,
        rows,
        assumptions,
    })
}
