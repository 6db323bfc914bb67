//! The `[continual]` section of a scenario.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::ArchSpec;

/// A continual-learning strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Naive fine-tuning on each task in turn.
    Finetune,
    /// Upper bound: train on the union of all tasks seen so far.
    Joint,
    /// Experience replay from a reservoir buffer.
    Replay,
    /// Elastic weight consolidation (diagonal empirical Fisher).
    Ewc,
    /// Learning without forgetting (distillation on the old classes).
    Lwf,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Finetune => "finetune",
            Strategy::Joint => "joint",
            Strategy::Replay => "replay",
            Strategy::Ewc => "ewc",
            Strategy::Lwf => "lwf",
        }
    }
}

/// How the classifier is organised across tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Heads {
    /// One head over all classes (class-incremental).
    Shared,
    /// One head per task, trained and scored on its own classes (task-incremental).
    Multi,
}

/// Where the truncated network is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutRule {
    /// `k` probed layers, given.
    Given,
    /// The ID-95% start (method §2.7) of the task-1 probe curve of the full network after task 1.
    Id95,
    /// The OOD-peak start of the task-2 probe curve of the full network after task 1.
    OodPeak,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruncateConfig {
    pub rule: CutRule,
    /// Layers kept (rule = "given").
    #[serde(default)]
    pub k: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinualConfig {
    /// Number of tasks (with `classes_per_task`), or give `task_classes`.
    #[serde(default)]
    pub tasks: Option<usize>,
    #[serde(default)]
    pub classes_per_task: Option<usize>,
    /// Explicit class ids per task (original ids).
    #[serde(default)]
    pub task_classes: Option<Vec<Vec<u32>>>,
    /// Shuffle the class order with this seed before cutting tasks (identity when absent).
    #[serde(default)]
    pub class_order_seed: Option<u64>,
    #[serde(default = "default_heads")]
    pub heads: Heads,
    #[serde(default = "default_strategies")]
    pub strategies: Vec<Strategy>,
    /// Backbones to benchmark; default: the scenario's `[model]`.
    #[serde(default)]
    pub architectures: Vec<ArchSpec>,
    /// Also train the truncated network (no tunnel); absent: full network only.
    #[serde(default)]
    pub truncate: Option<TruncateConfig>,
    /// Replay buffer size (images).
    #[serde(default = "default_buffer")]
    pub replay_buffer: usize,
    /// EWC penalty weight λ.
    #[serde(default = "default_ewc")]
    pub ewc_lambda: f64,
    /// LwF distillation weight and temperature.
    #[serde(default = "default_lwf_alpha")]
    pub lwf_alpha: f64,
    #[serde(default = "default_lwf_t")]
    pub lwf_temperature: f64,
    /// Probe every layer on every task's data after each task.
    #[serde(default = "default_true")]
    pub layer_probes: bool,
    /// Run the extractor/tunnel swap and fine-tune protocol (method §8.1; two tasks).
    #[serde(default)]
    pub swap: Option<SwapConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapConfig {
    /// Tunnel = layers k+1..L. Absent: the ID-95% rule on the task-1 curve after task 1.
    #[serde(default)]
    pub k: Option<usize>,
    /// Fine-tuning epochs on task-1 data (the paper: 50 with StepLR; CPU scenarios use fewer).
    #[serde(default = "default_ft_epochs")]
    pub finetune_epochs: usize,
    /// Fine-tuning learning rate.
    #[serde(default = "default_ft_lr")]
    pub finetune_lr: f64,
}

fn default_heads() -> Heads {
    Heads::Shared
}
fn default_strategies() -> Vec<Strategy> {
    vec![Strategy::Finetune]
}
fn default_buffer() -> usize {
    200
}
fn default_ewc() -> f64 {
    100.0
}
fn default_lwf_alpha() -> f64 {
    1.0
}
fn default_lwf_t() -> f64 {
    2.0
}
fn default_true() -> bool {
    true
}
fn default_ft_epochs() -> usize {
    5
}
fn default_ft_lr() -> f64 {
    1e-3
}

impl ContinualConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::usage(format!("key `continual.{m}")));
        match (&self.task_classes, self.tasks, self.classes_per_task) {
            (Some(lists), None, None) => {
                if lists.is_empty() || lists.iter().any(|l| l.is_empty()) {
                    return bad("task_classes`: empty task list".into());
                }
            }
            (None, Some(t), Some(c)) => {
                if t == 0 || c == 0 {
                    return bad("tasks` and `classes_per_task` must be > 0".into());
                }
            }
            (Some(_), _, _) => return bad("task_classes` excludes `tasks` and `classes_per_task`".into()),
            _ => return bad("tasks`: give `tasks` and `classes_per_task`, or `task_classes`".into()),
        }
        if self.strategies.is_empty() {
            return bad("strategies`: at least one strategy".into());
        }
        if self.strategies.contains(&Strategy::Replay) && self.replay_buffer == 0 {
            return bad("replay_buffer` must be > 0 for the replay strategy".into());
        }
        if !(self.ewc_lambda >= 0.0 && self.ewc_lambda.is_finite()) {
            return bad("ewc_lambda` must be >= 0".into());
        }
        if !(self.lwf_temperature > 0.0 && self.lwf_alpha >= 0.0) {
            return bad("lwf_temperature` must be > 0 and `lwf_alpha` >= 0".into());
        }
        if let Some(t) = &self.truncate {
            match (t.rule, t.k) {
                (CutRule::Given, None) => return bad("truncate.k` is required for rule \"given\"".into()),
                (CutRule::Given, Some(0)) => return bad("truncate.k` must be > 0".into()),
                (CutRule::Id95 | CutRule::OodPeak, Some(_)) => {
                    return bad("truncate.k` applies to rule \"given\" only".into());
                }
                _ => {}
            }
        }
        if self.swap.is_some() && self.n_tasks() != 2 {
            return bad("swap`: the swap protocol needs exactly 2 tasks".into());
        }
        for a in &self.architectures {
            a.resolve()?;
        }
        Ok(())
    }

    pub fn n_tasks(&self) -> usize {
        match &self.task_classes {
            Some(l) => l.len(),
            None => self.tasks.unwrap_or(0),
        }
    }
}
