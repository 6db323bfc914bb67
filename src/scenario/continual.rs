//! The `[continual]` section of a scenario.

use serde::{Deserialize, Serialize};

use super::schema::DataSpec;
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
    /// After task 1 the tunnel and the earlier tasks' heads are frozen; the extractor and each
    /// new task's head train.
    FreezeTunnel,
    /// After task 1 the extractor and the earlier tasks' heads are frozen; the tunnel and each
    /// new task's head train.
    FreezeExtractor,
    /// The tunnel is re-initialised before every task after the first.
    ResetTunnel,
    /// `freeze-tunnel` with experience replay.
    #[serde(rename = "freeze-tunnel+replay")]
    FreezeTunnelReplay,
    /// `freeze-extractor` with experience replay.
    #[serde(rename = "freeze-extractor+replay")]
    FreezeExtractorReplay,
    /// `reset-tunnel` with experience replay.
    #[serde(rename = "reset-tunnel+replay")]
    ResetTunnelReplay,
}

/// The part of the network that trains on the tasks after the first (with each new task's head).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trainable {
    /// Every layer, and every head.
    All,
    /// The extractor (the stem and the first k probed layers); the tunnel is frozen.
    Extractor,
    /// The tunnel (probed layers k+1..L); the extractor is frozen.
    Tunnel,
    /// The new task's head only.
    Head,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Finetune => "finetune",
            Strategy::Joint => "joint",
            Strategy::Replay => "replay",
            Strategy::Ewc => "ewc",
            Strategy::Lwf => "lwf",
            Strategy::FreezeTunnel => "freeze-tunnel",
            Strategy::FreezeExtractor => "freeze-extractor",
            Strategy::ResetTunnel => "reset-tunnel",
            Strategy::FreezeTunnelReplay => "freeze-tunnel+replay",
            Strategy::FreezeExtractorReplay => "freeze-extractor+replay",
            Strategy::ResetTunnelReplay => "reset-tunnel+replay",
        }
    }

    /// Whether the strategy trains on a replay buffer of earlier tasks' images.
    pub fn replays(self) -> bool {
        use Strategy::*;
        matches!(
            self,
            Replay | FreezeTunnelReplay | FreezeExtractorReplay | ResetTunnelReplay
        )
    }

    /// What a tunnel-aware strategy trains after task 1 (`None`: not one that freezes).
    pub fn trains_after_first(self) -> Option<Trainable> {
        use Strategy::*;
        match self {
            FreezeTunnel | FreezeTunnelReplay => Some(Trainable::Extractor),
            FreezeExtractor | FreezeExtractorReplay => Some(Trainable::Tunnel),
            _ => None,
        }
    }

    /// Whether the tunnel is re-initialised before every task after the first.
    pub fn resets_tunnel(self) -> bool {
        matches!(self, Strategy::ResetTunnel | Strategy::ResetTunnelReplay)
    }

    /// Whether the strategy needs the extractor/tunnel boundary.
    pub fn is_tunnel_aware(self) -> bool {
        self.trains_after_first().is_some() || self.resets_tunnel()
    }
}

/// What the tasks of a sequence are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sequence {
    /// Class-incremental: the ID set's classes cut into tasks.
    #[default]
    Classes,
    /// Dataset-incremental: `[id]` is task 1, each of `continual.datasets` one more task, each
    /// with its own head.
    Datasets,
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
    /// Where the one truncated network is cut; give this or `sweep`.
    #[serde(default)]
    pub rule: Option<CutRule>,
    /// Layers kept (rule = "given").
    #[serde(default)]
    pub k: Option<usize>,
    /// One truncated network per depth: a list of the probed layers kept, or "all" (every depth
    /// 1..L−1). Variants are named `truncated-<k>`.
    #[serde(default)]
    pub sweep: Option<Sweep>,
    /// Widen each truncated network until it holds about as many parameters as the full one
    /// (within a few per cent), so that it keeps at least the full network's capacity.
    #[serde(default)]
    pub match_params: bool,
}

/// The depths of a truncation sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Sweep {
    Depths(Vec<usize>),
    /// "all".
    Named(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinualConfig {
    /// What the tasks are: the ID set's classes cut into tasks, or whole data sets.
    #[serde(default)]
    pub sequence: Sequence,
    /// The data sets of tasks 2..T (sequence = "datasets"); task 1 is `[id]`.
    #[serde(default)]
    pub datasets: Vec<DataSpec>,
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
    /// What trains on the tasks after the first, for every strategy (method §8.2): "all", or the
    /// "extractor", the "tunnel" or the "head" alone (with each new task's head).
    #[serde(default = "default_trainable")]
    pub later_tasks_train: Trainable,
    /// The extractor/tunnel boundary of `later_tasks_train` and the tunnel-aware strategies: the
    /// extractor is the first k probed layers. Absent: the ID-95% rule (method §2.7) on each
    /// sequence's task-1 probe curve after task 1, as the swap protocol.
    #[serde(default)]
    pub extractor_layers: Option<usize>,
    /// Keep one optimizer, its state included, through a sequence's tasks (as van de Ven &
    /// Tolias's code keeps Adam's moments); false: a fresh optimizer for every task.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_optimizer_state: bool,
    /// Published numbers to set the replicates' results beside (`published_comparison.csv`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
}

/// A published result of the same protocol: the aggregate of a scenario's replicates is set beside
/// it, with the difference and its Welch interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Where it is published ("van de Ven & Tolias (2018), Table 3").
    pub source: String,
    /// The head setting it belongs to: "shared" (compared task-agnostic) or "multi" (task-aware).
    pub heads: Heads,
    pub strategy: Strategy,
    /// A metric of `cl_aggregate.csv`: acc, aia, forgetting, bwt, fwt, plasticity.
    pub metric: String,
    /// In points (accuracy × 100).
    pub mean: f64,
    /// The standard error of `mean`, in points.
    pub sem: f64,
    /// The number of runs behind it.
    pub n: usize,
}

/// The continual-learning metrics that replicates aggregate and compare, and that a published
/// number can name (method §8.3; plasticity: the mean of R[j][j]).
pub const CL_METRICS: [&str; 6] = ["acc", "aia", "forgetting", "bwt", "fwt", "plasticity"];

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

fn default_trainable() -> Trainable {
    Trainable::All
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
        match self.sequence {
            Sequence::Datasets => {
                if self.datasets.is_empty() {
                    return bad("datasets`: sequence \"datasets\" needs at least one data set after [id]".into());
                }
                if self.tasks.is_some() || self.classes_per_task.is_some() || self.task_classes.is_some() {
                    return bad(
                        "sequence`: with \"datasets\" every data set is one task; leave out `tasks`, `classes_per_task` and `task_classes`"
                            .into(),
                    );
                }
                if self.heads != Heads::Multi {
                    return bad(
                        "heads`: a sequence of data sets needs `heads = \"multi\"` (one head per data set)".into(),
                    );
                }
            }
            Sequence::Classes => {
                if !self.datasets.is_empty() {
                    return bad("datasets` needs `sequence = \"datasets\"`".into());
                }
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
            }
        }
        if self.strategies.is_empty() {
            return bad("strategies`: at least one strategy".into());
        }
        if let Some((i, s)) = self
            .strategies
            .iter()
            .enumerate()
            .find(|(i, s)| self.strategies[..*i].contains(s))
        {
            return bad(format!("strategies[{i}]`: `{}` is listed twice", s.name()));
        }
        if let Some(s) = self.strategies.iter().find(|s| s.replays())
            && self.replay_buffer == 0
        {
            return bad(format!("replay_buffer` must be > 0 for the {} strategy", s.name()));
        }
        if self.later_tasks_train != Trainable::All
            && let Some(s) = self.strategies.iter().find(|s| s.trains_after_first().is_some())
        {
            return bad(format!(
                "later_tasks_train`: the {} strategy sets what trains after task 1 itself; leave `later_tasks_train` at \"all\"",
                s.name()
            ));
        }
        for (i, p) in self.published.iter().enumerate() {
            if !CL_METRICS.contains(&p.metric.as_str()) {
                return bad(format!(
                    "published[{i}].metric`: unknown metric {:?}; expected one of {}",
                    p.metric,
                    CL_METRICS.join(", ")
                ));
            }
            if !(p.mean.is_finite() && p.sem >= 0.0 && p.sem.is_finite()) || p.n < 2 {
                return bad(format!(
                    "published[{i}]`: `mean` must be a number, `sem` >= 0 and `n` >= 2 (the number of runs behind the mean)"
                ));
            }
        }
        if self.extractor_layers == Some(0) {
            return bad("extractor_layers` must be > 0".into());
        }
        if !(self.ewc_lambda >= 0.0 && self.ewc_lambda.is_finite()) {
            return bad("ewc_lambda` must be >= 0".into());
        }
        if !(self.lwf_temperature > 0.0 && self.lwf_alpha >= 0.0) {
            return bad("lwf_temperature` must be > 0 and `lwf_alpha` >= 0".into());
        }
        if let Some(t) = &self.truncate {
            match (t.rule, t.k, &t.sweep) {
                (Some(_), _, Some(_)) | (None, _, None) => {
                    return bad("truncate`: give `rule` (one truncated network) or `sweep` (one per depth)".into());
                }
                (Some(CutRule::Given), None, _) => return bad("truncate.k` is required for rule \"given\"".into()),
                (Some(CutRule::Given), Some(0), _) => return bad("truncate.k` must be > 0".into()),
                (Some(CutRule::Id95 | CutRule::OodPeak) | None, Some(_), _) => {
                    return bad("truncate.k` applies to rule \"given\" only".into());
                }
                (None, None, Some(Sweep::Named(n))) if n != "all" => {
                    return bad(format!("truncate.sweep`: \"{n}\" is not a list of depths or \"all\""));
                }
                (None, None, Some(Sweep::Depths(d))) if d.is_empty() || d.contains(&0) => {
                    return bad("truncate.sweep`: depths must be a non-empty list of numbers > 0".into());
                }
                _ => {}
            }
        }
        if let Some(swap) = &self.swap {
            if self.n_tasks() != 2 {
                return bad("swap`: the swap protocol needs exactly 2 tasks".into());
            }
            if swap.finetune_epochs == 0 || !(swap.finetune_lr > 0.0 && swap.finetune_lr.is_finite()) {
                return bad(format!(
                    "swap`: finetune_epochs must be > 0 and finetune_lr > 0, got {} and {}",
                    swap.finetune_epochs, swap.finetune_lr
                ));
            }
        }
        for a in &self.architectures {
            a.resolve()?;
        }
        Ok(())
    }

    pub fn n_tasks(&self) -> usize {
        match (self.sequence, &self.task_classes) {
            (Sequence::Datasets, _) => 1 + self.datasets.len(),
            (Sequence::Classes, Some(l)) => l.len(),
            (Sequence::Classes, None) => self.tasks.unwrap_or(0),
        }
    }
}
