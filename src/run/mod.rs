//! `tunnelbench run`: train a backbone, probe every layer on ID and OOD data, compute the tunnel
//! metrics, and write tidy results, a summary and plots into the run folder.

mod curves;
mod outputs;
mod summary;

pub(crate) use summary::truncate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde::Serialize;

use crate::backend::BackendKind;
use crate::data::{ImageDataset, split};
use crate::error::{Error, Result};
use crate::metrics::evaluation::{DataHits, Intervals, Network, test_set_bootstrap};
use crate::metrics::rank::numerical_rank;
use crate::metrics::tunnel::{self, OodMetrics, TunnelClass};
use crate::model::{Backbone, Checkpoint, LayerInfo, layer_names, parameter_count};
use crate::probe::{self, Hits, ProbeConfig, ProbeData, extract_layers, feature_dims, layer_groups};
use crate::progress::Reporter;
use crate::results::{DatasetSummary, MeanMetrics, RunSummary, Seeds, Timings};
use crate::scenario::data::{PreparedData, load_prepared};
use crate::scenario::diff::{NOT_THE_EXPERIMENT, differences};
use crate::scenario::{Scenario, data_label};
use crate::seed::derive_seed;
use crate::stats::describe::finite;
use crate::stats::inference::{available_threads, wilson_interval};
use crate::train::resume::STATE_FILE;
use crate::train::{self, Progress, TrainReport};

use outputs::{saved_network, write_outputs};
use summary::{agreement, text_summary};

/// Command-line options of a run.
#[derive(Clone)]
pub struct RunOptions {
    pub out: Option<PathBuf>,
    pub backend: BackendKind,
    pub data_dir: PathBuf,
    pub quiet: bool,
    /// Print the results table at the end (off for the replicates of a run).
    pub table: bool,
    /// A finished run in the output folder is moved aside (`<out>.previous-<k>`) instead of
    /// refusing to run.
    pub force: bool,
}

/// One probe result: a row of probes.csv.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ProbeRow {
    pub model: String,
    pub probe: String,
    pub dataset: String,
    pub role: String,
    pub layer_index: usize,
    pub layer_name: String,
    pub feature_dim: usize,
    pub n_classes: usize,
    pub accuracy: f64,
    /// Numerical rank of the layer's ID test representation (ID rows only).
    pub rank: Option<usize>,
    /// Test images the accuracy is measured on, and its 95% Wilson interval (method §2.8); empty
    /// in the files of earlier versions.
    #[serde(default)]
    pub n_test: Option<usize>,
    #[serde(default)]
    pub ci_low: Option<f64>,
    #[serde(default)]
    pub ci_high: Option<f64>,
}

/// Metrics of one (model, probe, OOD set): a row of metrics_all.csv.
#[derive(Clone, Debug, Serialize)]
pub struct MetricsRow {
    pub model: String,
    pub probe: String,
    pub ood_dataset: String,
    #[serde(flatten)]
    pub metrics: OodMetrics,
    /// Their 95% intervals over resamples of the test images.
    pub intervals: Intervals,
}

/// Images per forward pass when a loaded checkpoint is scored or a control's batch norm calibrated.
const EVAL_BATCH: usize = 64;

/// Make sure the output folder can be written before any work starts.
pub fn check_writable(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::usage(format!(
            "{} is a file, not a folder: give --out a folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(|e| Error::io(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Empties the folder of an interrupted run, to run it again, but for the state its training would
/// go on from (`training.ckpt`).
pub fn clear_interrupted(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.file_name().is_some_and(|n| n == STATE_FILE) {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// A stratified subsample of at most `max` images (seeded), or all images.
fn probe_train_indices(ds: &ImageDataset, max: usize, seed: u64) -> Result<Option<Vec<usize>>> {
    if max == 0 || ds.len() <= max {
        return Ok(None);
    }
    let per_class = (max / ds.n_classes().max(1)).max(1);
    let smallest = ds.class_counts().into_iter().filter(|&c| c > 0).min().unwrap_or(0);
    Ok(Some(split::sample_per_class(ds, per_class.min(smallest), seed)?))
}

/// Run an already loaded and validated scenario into `out_dir`, in the stages of the pipeline:
/// load the data, train the backbone, probe every layer of every network, compute the metrics,
/// write the results.
pub fn run_loaded(sc: &Scenario, path: &Path, out_dir: &Path, opts: &RunOptions) -> Result<RunSummary> {
    let t_total = Instant::now();
    let mut stage = Stage {
        sc,
        opts,
        reporter: Reporter::new(opts.quiet),
        device: opts.backend.device(),
        seeds: Seeds {
            scenario: sc.seed,
            init: derive_seed(sc.seed, "init"),
            data_order: derive_seed(sc.seed, "data-order"),
            probe: derive_seed(sc.seed, "probe"),
        },
        timings: Timings::default(),
    };
    let checkpoint = out_dir.join(STATE_FILE);
    let scenario = own_checkpoint(sc, &checkpoint)?;
    let (id, oods) = stage.load_data(path)?;
    let trained = stage.train(&id, &checkpoint, &scenario)?;
    let probes: Vec<ProbeConfig> = std::iter::once(sc.probe.main.clone())
        .chain(sc.probe.also.iter().cloned())
        .collect();
    let probed = stage.probe(&trained, &probes, &id, &oods)?;
    let (metrics_rows, means) = stage.metrics(&trained, &probes, &probed, &id, &oods)?;
    let probe_agreement = agreement(&probed.rows, &trained.models, &probes);
    let network = match (&sc.train, sc.save_model) {
        (Some(_), true) => Some(saved_network(sc, &trained, &id)?),
        _ => None,
    };
    let mut timings = stage.timings;
    timings.total = t_total.elapsed().as_secs_f64();
    let summary = RunSummary {
        scenario: sc.name.clone(),
        scenario_file: path.display().to_string(),
        config: sc.clone(),
        backend: opts.backend.name().to_string(),
        machine: crate::isa::Machine::current(),
        seeds: stage.seeds,
        parameters: trained.parameters,
        probed_layers: trained.layers.len(),
        resampler: crate::data::transform::RESAMPLER.to_string(),
        datasets: probed.datasets.clone(),
        backbone_accuracy: trained.report.best_val_accuracy,
        train: trained.report,
        means,
        probe_agreement,
        timings_secs: timings,
        out_dir: out_dir.display().to_string(),
    };
    // Last point at which Ctrl-C stops the run; once writing starts, it completes.
    crate::interrupt::check()?;
    write_outputs(out_dir, &summary, &probed, &metrics_rows, network.as_deref(), sc)?;
    // The run is finished: the state that training would have gone on from is not needed.
    if checkpoint.exists() {
        std::fs::remove_file(&checkpoint).map_err(|e| Error::io(&checkpoint, e))?;
    }
    if opts.table {
        stage
            .reporter
            .line(&text_summary(&summary, &probed.rows, &metrics_rows, sc));
    }
    Ok(summary)
}

/// What every stage of a run uses: the scenario, the options, the progress display, the training
/// device, the seeds, and the time each stage took.
struct Stage<'a> {
    sc: &'a Scenario,
    opts: &'a RunOptions,
    reporter: Reporter,
    device: Device,
    seeds: Seeds,
    timings: Timings,
}

/// The networks that are probed: the trained backbone and, when asked for, its random-init
/// control (batch-norm statistics calibrated on the ID training set).
struct Trained {
    models: Vec<(String, Backbone)>,
    layers: Vec<LayerInfo>,
    parameters: usize,
    report: TrainReport,
}

/// Every probe result, the probe time per (network, probe), and the data sets as probed.
struct Probed {
    rows: Vec<ProbeRow>,
    /// Which test images each row's probe classified right, in the order of `rows`.
    hits: Vec<Hits>,
    secs: Vec<Vec<f64>>,
    datasets: Vec<DatasetSummary>,
}

impl Stage<'_> {
    /// The ID set and the OOD sets; a data set that does not fit its spec (e.g. fewer classes than
    /// asked for) is named with the scenario file and the data set's key.
    fn load_data(&mut self, path: &Path) -> Result<(PreparedData, Vec<PreparedData>)> {
        let sc = self.sc;
        let t = Instant::now();
        self.reporter.line(&format!("scenario `{}`: loading data", sc.name));
        if sc.ood.is_empty() {
            self.reporter.line(
                "note: no [[ood]] set: the run gives the ID probe curves (probes.csv) only; r, ρ, A and the \
                 tunnel class compare OOD to ID and stay undefined",
            );
        }
        let named =
            |at: &str, label: &str, e: Error| e.context(format!("key `{at}` (data set `{label}`)")).in_file(path);
        let id_label = data_label(&sc.id);
        let id_seed = sc.id.seed.unwrap_or_else(|| derive_seed(sc.seed, "data:id"));
        let id = load_prepared(
            &sc.id,
            id_label.clone(),
            sc.resolution,
            id_seed,
            &self.opts.data_dir,
            &mut self.reporter,
        )
        .map_err(|e| named("id", &id_label, e))?;
        crate::interrupt::check()?;
        let mut oods = Vec::new();
        for (i, o) in sc.ood.iter().enumerate() {
            let label = data_label(o);
            let seed = o.seed.unwrap_or_else(|| derive_seed(sc.seed, &format!("data:{label}")));
            let loaded = load_prepared(
                o,
                label.clone(),
                sc.resolution,
                seed,
                &self.opts.data_dir,
                &mut self.reporter,
            )
            .map_err(|e| named(&format!("ood[{i}]"), &label, e))?;
            oods.push(loaded);
            crate::interrupt::check()?;
        }
        self.timings.data = t.elapsed().as_secs_f64();
        Ok((id, oods))
    }

    /// Trains the backbone on the ID set (and prepares the random-init control); starts from
    /// `model.weights` when given, and without `[train]` probes that checkpoint as loaded. The
    /// state after every epoch is kept in `state_file`, and training goes on from it when it is
    /// there (`scenario`: the resolved scenario, recorded in it).
    fn train(&mut self, id: &PreparedData, state_file: &Path, scenario: &serde_json::Value) -> Result<Trained> {
        let (sc, device) = (self.sc, &self.device);
        device.seed(self.seeds.init);
        let checkpoint = match &sc.model.weights {
            Some(w) => Some(Checkpoint::read(
                Path::new(w),
                sc.model.key_prefix.as_deref(),
                &sc.model.ignore_keys,
            )?),
            None => None,
        };
        let Some(recipe) = &sc.train else {
            let checkpoint = checkpoint.ok_or_else(|| Error::Internal("no [train] and no weights".into()))?;
            return self.load_only(id, &checkpoint);
        };
        let ad = device.clone().autodiff();
        let mut model = Backbone::new(&sc.model, id.n_classes, sc.resolution, &ad)?;
        let parameters = parameter_count(&model);
        let layers = layer_names(&sc.model)?;
        let control = sc.control.random_init.then(|| model.clone());
        if let Some(ck) = &checkpoint {
            let n = ck.load_into(&mut model, &sc.model, ck.head_classes(&sc.model)? == Some(id.n_classes))?;
            self.reporter.line(&format!(
                "loaded {n} tensors of {}: training starts from them",
                ck.path.display()
            ));
        }
        let (plan, max_steps) = recipe.in_epochs(id.split.train.len());
        self.reporter.line(&format!(
            "training {} (width {}, {parameters} parameters, {} probed layers) on {} ({} train / {} test images, {} classes), {} epochs, backend {}",
            sc.model.name,
            sc.model.width,
            layers.len(),
            id.label,
            id.split.train.len(),
            id.split.test.len(),
            id.n_classes,
            plan.epochs,
            self.opts.backend.name()
        ));
        let t = Instant::now();
        let steps_per_epoch = id.split.train.len().div_ceil(recipe.batch);
        let reporter = &mut self.reporter;
        reporter.start_bar((plan.epochs * steps_per_epoch).min(max_steps), "train");
        // The last-epoch model and the optimizer state are dropped here: only the best model goes on.
        let train::TrainOutcome {
            best: trained, report, ..
        } = train::train(
            model,
            &id.split.train,
            &id.split.test,
            &id.norm,
            recipe,
            self.seeds.data_order,
            device,
            train::TrainExtras {
                checkpoint: Some(train::resume::Checkpointing {
                    path: state_file,
                    scenario,
                }),
                ..train::TrainExtras::default()
            },
            &mut |p| match p {
                Progress::Resumed { epochs, steps } => {
                    reporter.advance_by(steps);
                    reporter.line(&format!(
                        "going on after epoch {epochs}/{} from {}",
                        plan.epochs,
                        state_file.display()
                    ));
                }
                Progress::Step => reporter.tick(),
                Progress::Epoch(log) => reporter.message(&format!(
                    "epoch {:>3}/{}: lr {:.2e}, loss {:.4}, val acc {:.2}% ({:.1}s)",
                    log.epoch,
                    plan.epochs,
                    log.lr,
                    log.train_loss,
                    100.0 * log.val_accuracy,
                    log.secs
                )),
            },
        )
        .inspect_err(|e| {
            // Only an interruption leaves a state worth going on from: training that diverged
            // would diverge again from it.
            if !matches!(e, Error::Interrupted) {
                let _ = std::fs::remove_file(state_file);
            }
        })?;
        reporter.finish_bar();
        self.timings.train = t.elapsed().as_secs_f64();
        reporter.line(&format!(
            "best validation accuracy {:.2}% at epoch {} ({:.0} img/s)",
            100.0 * report.best_val_accuracy,
            report.best_epoch,
            report.images_per_sec
        ));
        let mut models: Vec<(String, Backbone)> = vec![("trained".to_string(), trained)];
        if let Some(c) = control {
            let calibrated = train::calibrate_batchnorm(c, &id.split.train, &id.norm, recipe.batch, 1, device)?;
            models.push(("random-init".to_string(), calibrated));
        }
        Ok(Trained {
            models,
            layers,
            parameters,
            report,
        })
    }

    /// The checkpoint as loaded, untrained: its own classifier when it has one for the ID set's
    /// classes (the backbone accuracy is then its ID test accuracy; otherwise undefined).
    fn load_only(&mut self, id: &PreparedData, ck: &Checkpoint) -> Result<Trained> {
        let (sc, device) = (self.sc, &self.device);
        let control = match sc.control.random_init {
            true => Some(Backbone::new(
                &sc.model,
                id.n_classes,
                sc.resolution,
                &device.clone().autodiff(),
            )?),
            false => None,
        };
        let mut model = Backbone::new(&sc.model, id.n_classes, sc.resolution, device)?;
        let with_head = ck.head_classes(&sc.model)? == Some(id.n_classes);
        let t = Instant::now();
        let n = ck.load_into(&mut model, &sc.model, with_head)?;
        let accuracy = if with_head {
            train::evaluate(&model, &id.split.test, &id.norm, EVAL_BATCH, device)?
        } else {
            f64::NAN
        };
        self.timings.train = t.elapsed().as_secs_f64();
        self.reporter.line(&format!(
            "loaded {n} tensors of {} into {} (width {}), not trained{}",
            ck.path.display(),
            sc.model.name,
            sc.model.width,
            if with_head {
                format!(": ID test accuracy {:.2}% with its own classifier", 100.0 * accuracy)
            } else {
                String::new()
            }
        ));
        if let Some(saved) = &ck.saved {
            self.reporter.line(&format!(
                "the network was trained by scenario `{}` (seed {}) on {} at {}x{}, epoch {}",
                saved.scenario, saved.seed, saved.trained_on, saved.resolution, saved.resolution, saved.epoch
            ));
            if saved.seed != sc.seed {
                self.reporter.line(&format!(
                    "note: this run's seed is {}: its probes draw other samples and initial weights than the \
                     training run's (seed {})",
                    sc.seed, saved.seed
                ));
            }
        }
        let parameters = parameter_count(&model);
        let mut models: Vec<(String, Backbone)> = vec![("trained".to_string(), model)];
        if let Some(c) = control {
            let calibrated = train::calibrate_batchnorm(c, &id.split.train, &id.norm, EVAL_BATCH, 1, device)?;
            models.push(("random-init".to_string(), calibrated));
        }
        Ok(Trained {
            models,
            layers: layer_names(&sc.model)?,
            parameters,
            report: TrainReport {
                best_epoch: ck.saved.as_ref().map_or(0, |s| s.epoch),
                best_val_accuracy: accuracy,
                epochs: Vec::new(),
                train_secs: 0.0,
                images_per_sec: 0.0,
            },
        })
    }

    /// Extracts every probed layer's features of every network on every data set and fits each
    /// probe on them (the ID set's numerical rank per layer too).
    fn probe(
        &mut self,
        trained: &Trained,
        probes: &[ProbeConfig],
        id: &PreparedData,
        oods: &[PreparedData],
    ) -> Result<Probed> {
        let (sc, device, seeds) = (self.sc, &self.device, &self.seeds);
        let probe_device = crate::backend::probe_device();
        let (models, layers) = (&trained.models, &trained.layers);
        let mut out = Probed {
            rows: Vec::new(),
            hits: Vec::new(),
            secs: vec![vec![0f64; probes.len()]; models.len()],
            datasets: Vec::new(),
        };
        let datasets: Vec<(&PreparedData, &str)> = std::iter::once((id, "id"))
            .chain(oods.iter().map(|o| (o, "ood")))
            .collect();
        let budget = (sc.probe.feature_memory_gb * 1e9) as u64;
        for (data, role) in &datasets {
            let sub = probe_train_indices(
                &data.split.train,
                sc.probe.max_train,
                derive_seed(seeds.probe, &data.label),
            )?;
            let train_ds = match &sub {
                Some(idx) => data.split.train.subset(idx)?,
                None => data.split.train.clone(),
            };
            out.datasets.push(DatasetSummary {
                label: data.label.clone(),
                role: role.to_string(),
                n_classes: data.n_classes,
                n_train: data.split.train.len(),
                n_test: data.split.test.len(),
                n_probe_train: train_ds.len(),
            });
            for (mi, (model_name, model)) in models.iter().enumerate() {
                crate::interrupt::check()?;
                // The layers in groups whose features fit `probe.feature_memory_gb`, one pass
                // over the data per group; the same features, rows and seeds as a single pass.
                let n_images = train_ds.len() + data.split.test.len();
                let dims = feature_dims(model, &train_ds, &data.norm, device)?;
                for group in layer_groups(&dims, n_images, budget) {
                    let t = Instant::now();
                    self.reporter.start_bar(n_images, "features");
                    let reporter = &mut self.reporter;
                    let mut extract = |ds: &ImageDataset| {
                        extract_layers(
                            model,
                            ds,
                            &data.norm,
                            sc.probe.extraction_batch,
                            device,
                            group.clone(),
                            &mut *reporter,
                        )
                    };
                    let (train_f, _) = extract(&train_ds)?;
                    let (test_f, _) = extract(&data.split.test)?;
                    self.timings.features += t.elapsed().as_secs_f64();
                    self.reporter.start_bar(group.len() * probes.len(), "probes");
                    for (layer, (tr, te)) in layers[group].iter().zip(train_f.iter().zip(test_f.iter())) {
                        let rank = (*role == "id").then(|| {
                            numerical_rank(
                                &te.data,
                                data.split.test.len(),
                                te.dim,
                                derive_seed(seeds.probe, "rank"),
                            )
                        });
                        for (pi, cfg) in probes.iter().enumerate() {
                            crate::interrupt::check()?;
                            let t = Instant::now();
                            let pd = ProbeData {
                                dim: tr.dim,
                                train_x: &tr.data,
                                train_y: &train_ds.labels,
                                test_x: &te.data,
                                test_y: &data.split.test.labels,
                                n_classes: data.n_classes,
                            };
                            let seed =
                                derive_seed(seeds.probe, &format!("{}:{}:{}", data.label, layer.index, cfg.label()));
                            let result = probe::fit(cfg, &pd, seed, &probe_device)?;
                            let secs = t.elapsed().as_secs_f64();
                            out.secs[mi][pi] += secs;
                            self.timings.probes += secs;
                            let n_test = result.hits.len();
                            let correct = result.hits.iter().map(|&h| h as usize).sum();
                            let (ci_low, ci_high) = wilson_interval(correct, n_test);
                            out.rows.push(ProbeRow {
                                model: model_name.clone(),
                                probe: cfg.label(),
                                dataset: data.label.clone(),
                                role: role.to_string(),
                                layer_index: layer.index,
                                layer_name: layer.name.clone(),
                                feature_dim: tr.dim,
                                n_classes: data.n_classes,
                                accuracy: result.accuracy,
                                rank,
                                n_test: Some(n_test),
                                ci_low: finite(ci_low),
                                ci_high: finite(ci_high),
                            });
                            out.hits.push(result.hits);
                            self.reporter.tick();
                        }
                    }
                }
            }
        }
        self.reporter.finish_bar();
        Ok(out)
    }

    /// The tunnel metrics per (network, probe, OOD set) and their means per (network, probe), with
    /// their intervals over resamples of the test images.
    fn metrics(
        &self,
        trained: &Trained,
        probes: &[ProbeConfig],
        probed: &Probed,
        id: &PreparedData,
        oods: &[PreparedData],
    ) -> Result<(Vec<MetricsRow>, Vec<MeanMetrics>)> {
        let of = |model: &str, probe: &str, dataset: &str| -> Vec<(&ProbeRow, &Hits)> {
            probed
                .rows
                .iter()
                .zip(&probed.hits)
                .filter(|(r, _)| r.model == model && r.probe == probe && r.dataset == dataset)
                .collect()
        };
        let curve = |model: &str, probe: &str, dataset: &str| -> Vec<f64> {
            of(model, probe, dataset).iter().map(|(r, _)| r.accuracy).collect()
        };
        let hits = |model: &str, probe: &str, data: &PreparedData| DataHits {
            layers: of(model, probe, &data.label)
                .iter()
                .map(|(_, h)| h.as_slice())
                .collect(),
            n_classes: data.n_classes,
        };
        let threads = available_threads();
        let mut rows = Vec::new();
        let mut means = Vec::new();
        for (mi, (model_name, _)) in trained.models.iter().enumerate() {
            for (pi, cfg) in probes.iter().enumerate() {
                let label = cfg.label();
                let id_curve = curve(model_name, &label, &id.label);
                let network = Network {
                    id: hits(model_name, &label, id),
                    oods: oods.iter().map(|o| hits(model_name, &label, o)).collect(),
                };
                let resampled = test_set_bootstrap(
                    &[network],
                    self.sc.probe.bootstrap,
                    derive_seed(self.seeds.probe, &format!("bootstrap:{model_name}:{label}")),
                    threads,
                );
                let mut group = Vec::new();
                for (o, intervals) in oods.iter().zip(resampled.per_ood) {
                    let m = tunnel::ood_metrics(
                        &id_curve,
                        &curve(model_name, &label, &o.label),
                        id.n_classes,
                        o.n_classes,
                        self.sc.tunnel_start_id,
                    )?;
                    group.push(m.clone());
                    rows.push(MetricsRow {
                        model: model_name.clone(),
                        probe: label.clone(),
                        ood_dataset: o.label.clone(),
                        metrics: m,
                        intervals,
                    });
                }
                let mean =
                    |f: &dyn Fn(&OodMetrics) -> f64| tunnel::mean_all_defined(&group.iter().map(f).collect::<Vec<_>>());
                let mean_r = mean(&|m| m.retained_pct.value);
                means.push(MeanMetrics {
                    model: model_name.clone(),
                    probe: label,
                    mean_retained_pct: mean_r,
                    mean_pearson: mean(&|m| m.pearson.value),
                    mean_alignment: mean(&|m| m.alignment.value),
                    tunnel_class: TunnelClass::from_mean_retained(mean_r),
                    probe_secs: probed.secs[mi][pi],
                    intervals: resampled.mean,
                    tunnel_class_share: resampled.class_share,
                });
            }
        }
        Ok((rows, means))
    }
}

/// The resolved scenario as JSON, once checked against the one that the training state at
/// `checkpoint` (of an interrupted run) was written for: another scenario's state is an error
/// naming the settings that differ, never used and never overwritten.
fn own_checkpoint(sc: &Scenario, checkpoint: &Path) -> Result<serde_json::Value> {
    let now = serde_json::to_value(sc).map_err(|e| Error::Internal(format!("scenario: {e}")))?;
    if let Some(before) = train::resume::recorded_scenario(checkpoint)? {
        let differ = differences(&now, &before, &NOT_THE_EXPERIMENT);
        if !differ.is_empty() {
            let differ: Vec<String> = differ.iter().map(|d| d.text("checkpoint")).collect();
            return Err(Error::input(
                checkpoint,
                format!(
                    "the training state of an interrupted run of another scenario ({}); delete it to train from \
                     the start, or give another --out",
                    differ.join("; ")
                ),
            ));
        }
    }
    Ok(now)
}
