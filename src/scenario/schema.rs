//! The scenario file schema (TOML). Every table denies unknown keys; errors name the file and the
//! dotted key path.

use serde::{Deserialize, Serialize};

use crate::model::ArchSpec;
use crate::probe::ProbeConfig;
use crate::train::TrainConfig;

/// Where a data set comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// Procedural FractalDB-style IFS fractals.
    Fractal,
    /// Procedural random closed spline shapes.
    Shapes,
    /// Procedural oriented/spectral noise textures.
    Texture,
    /// A small real subset shipped in the repository's `data/` folder.
    Embedded,
    /// A data set installed by `tunnelbench data fetch NAME`.
    Fetched,
    /// IDX files (MNIST family), raw or gzipped.
    Idx,
    /// CIFAR-10 binary batches in a folder.
    Cifar10,
    /// CIFAR-100 binary files in a folder.
    Cifar100,
    /// ImageFolder trees: `train/<class>/*.png|jpg` and `test/<class>/...`.
    ImageFolder,
}

/// How a data set's images become the network's input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preprocess {
    /// Method §3.4: the shorter side to ⌊256/224·res⌋ (bicubic), a centre crop to the resolution,
    /// the ImageNet statistics (CIFAR at 32²: only the CIFAR statistics).
    #[default]
    ResizeCrop,
    /// The image at its stored size, zero-padded around to the resolution, its pixels in [0, 1]
    /// without normalisation: the input of MNIST protocols such as van de Ven & Tolias (2018).
    Pad,
}

impl Preprocess {
    fn is_default(&self) -> bool {
        *self == Preprocess::default()
    }
}

/// A data set: its source and an optional subset. Which keys apply depends on `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub kind: DataKind,
    /// Label used in outputs; defaults to the source name.
    #[serde(default)]
    pub label: Option<String>,
    /// Embedded / fetched data set name (e.g. `fashion-mnist`).
    #[serde(default)]
    pub name: Option<String>,
    /// Generators: number of classes. Other kinds: keep the first `classes` classes.
    #[serde(default)]
    pub classes: Option<usize>,
    /// Generators: images per class to render. Other kinds: sample this many per class (seeded).
    #[serde(default)]
    pub train_per_class: Option<usize>,
    #[serde(default)]
    pub test_per_class: Option<usize>,
    /// Generators: resolution at which images are rendered (default: the model's resolution).
    #[serde(default)]
    pub render_size: Option<usize>,
    /// Generator / subset seed (default: derived from the scenario seed).
    #[serde(default)]
    pub seed: Option<u64>,
    /// IDX: training images / labels and test images / labels; CIFAR: the folder.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub train_images: Option<String>,
    #[serde(default)]
    pub train_labels: Option<String>,
    #[serde(default)]
    pub test_images: Option<String>,
    #[serde(default)]
    pub test_labels: Option<String>,
    /// ImageFolder: the training and test roots.
    #[serde(default)]
    pub train: Option<String>,
    #[serde(default)]
    pub test: Option<String>,
    /// How the images become the input (`resize-crop` unless given).
    #[serde(default, skip_serializing_if = "Preprocess::is_default")]
    pub preprocess: Preprocess,
}

/// Probes: the main protocol plus others reported beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSection {
    /// The protocol that defines metrics.csv.
    pub main: ProbeConfig,
    /// Further protocols, each probed on every layer and reported in metrics_all.csv.
    #[serde(default)]
    pub also: Vec<ProbeConfig>,
    /// Cap on probe-training images per data set (seeded stratified sample); 0 = all.
    #[serde(default)]
    pub max_train: usize,
    /// Most memory (GB, 10^9 bytes) that the features of one data set held at once may take:
    /// layers whose features would not fit are extracted in further passes over the data.
    #[serde(
        default = "default_feature_memory_gb",
        skip_serializing_if = "is_default_feature_memory_gb"
    )]
    pub feature_memory_gb: f64,
    /// Images per forward pass of feature extraction: the network's activations for this many
    /// images are the largest term of a probe run's memory.
    #[serde(
        default = "default_extraction_batch",
        skip_serializing_if = "is_default_extraction_batch"
    )]
    pub extraction_batch: usize,
    /// Resamples of the test images behind the 95% intervals of r, ρ and A (method §2.8); 0 for
    /// none.
    #[serde(default = "default_bootstrap", skip_serializing_if = "is_default_bootstrap")]
    pub bootstrap: usize,
}

/// Default of `probe.bootstrap`.
pub const DEFAULT_BOOTSTRAP: usize = 1000;

fn default_bootstrap() -> usize {
    DEFAULT_BOOTSTRAP
}

fn is_default_bootstrap(v: &usize) -> bool {
    *v == DEFAULT_BOOTSTRAP
}

/// Default of `probe.feature_memory_gb`.
pub const DEFAULT_FEATURE_MEMORY_GB: f64 = 2.0;

fn default_feature_memory_gb() -> f64 {
    DEFAULT_FEATURE_MEMORY_GB
}

fn is_default_feature_memory_gb(v: &f64) -> bool {
    *v == DEFAULT_FEATURE_MEMORY_GB
}

/// Default of `probe.extraction_batch`.
pub const DEFAULT_EXTRACTION_BATCH: usize = 256;

fn default_extraction_batch() -> usize {
    DEFAULT_EXTRACTION_BATCH
}

fn is_default_extraction_batch(v: &usize) -> bool {
    *v == DEFAULT_EXTRACTION_BATCH
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Probe the same architecture untrained (BN statistics from the ID training data).
    #[serde(default = "yes")]
    pub random_init: bool,
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection { random_init: true }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Master seed; every random stream derives its own seed from it.
    #[serde(default)]
    pub seed: u64,
    /// Complete runs with seeds derived from `seed` (replicate 0 keeps it), each in
    /// `<out>/seed-<k>/`, aggregated across seeds at the top of the run folder.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replicates: usize,
    /// Input resolution of the backbone; every data set is processed at it (method §3.4).
    pub resolution: usize,
    pub id: DataSpec,
    #[serde(default)]
    pub ood: Vec<DataSpec>,
    pub model: ArchSpec,
    /// The training recipe; absent when `model.weights` is probed as loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainConfig>,
    pub probe: ProbeSection,
    #[serde(default)]
    pub control: ControlSection,
    /// ID-based tunnel start rule (method §2.7).
    #[serde(default)]
    pub tunnel_start_id: crate::metrics::tunnel::IdStartRule,
    /// A run that trains keeps its trained network in its folder (`model.safetensors`), to be
    /// probed again without training (`model.weights`, `run --trained`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub save_model: bool,
    /// A continual-learning scenario: the ID data set is split into a task sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continual: Option<super::continual::ContinualConfig>,
    /// A factor study: the runs this scenario expands into (`tunnelbench plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<super::study::StudySection>,
}
