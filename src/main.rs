//! The `tunnelbench` binary: parse the command line, call the library, map errors to exit codes
//! (2 for what the user can fix, 1 for internal failures).

mod cli;

use clap::Parser;

use std::path::PathBuf;

use cli::{Cli, Command, DataCommand};
use tunnelbench::{BackendKind, EMBEDDED, Error, Result, embedded_dir};

/// Large blocks on a cache line, for the kernels' vector loads (see the allocator's module).
#[global_allocator]
static ALLOCATOR: tunnelbench_kernels::alloc::LineAligned = tunnelbench_kernels::alloc::LineAligned;

fn main() {
    // Output piped into a reader that stops early (`tunnelbench backends | head`) ends the process
    // quietly, as other command-line tools do, instead of a panic on the failed write.
    // SAFETY: restoring the default disposition of one signal, before any other thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // The instruction set first: it must be chosen before anything reads the CPU's features.
    let setup = tunnelbench::configure();
    // The command runs on a worker of rayon's pool: a kernel's parallel loop then starts on that
    // worker, the others stealing their parts, instead of waking the pool from outside and
    // sleeping until it is done, once per operation. The workers get twice the usual 8 MiB stack
    // of a main thread. (Building the pool fails only where it exists already, and then it is
    // used as it is.)
    let _ = rayon::ThreadPoolBuilder::new().stack_size(16 << 20).build_global();
    if let Err(e) = setup.and_then(|()| rayon::scope(|_| dispatch(cli.command))) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Backends => {
            for kind in tunnelbench::BACKENDS {
                let mark = if kind.is_compiled() {
                    "compiled in"
                } else {
                    "not compiled"
                };
                println!("{:<8} {:<13} {}", kind.name(), mark, kind.describe());
            }
            let m = tunnelbench::Machine::current();
            println!(
                "CPU: {} ({} threads), vector path {} ({}=avx2 takes the AVX2 path)",
                m.cpu,
                m.threads,
                m.isa,
                tunnelbench::ISA_ENV
            );
            Ok(())
        }
        Command::Infer(args) => {
            let opts = tunnelbench::InferOptions {
                arch: tunnelbench::arch_spec(&args.arch, args.width, &args.model)?,
                weights: args.weights,
                key_prefix: args.key_prefix,
                ignore_keys: args.ignore_keys,
                input: args.input,
                out: args.out,
                classes: args.classes,
                layers: args.layers,
                backend: BackendKind::parse(&args.backend)?,
                batch: args.batch,
            };
            println!("{}", tunnelbench::infer(&opts)?);
            Ok(())
        }
        Command::Models { classes } => {
            print!("{}", tunnelbench::models_table(classes)?);
            Ok(())
        }
        Command::Bench(args) => {
            let kinds: Vec<BackendKind> = if args.backends.is_empty() {
                tunnelbench::BACKENDS
                    .iter()
                    .copied()
                    .filter(|k| k.is_compiled() && k.is_cpu())
                    .collect()
            } else {
                args.backends
                    .iter()
                    .map(|b| BackendKind::parse(b))
                    .collect::<Result<_>>()?
            };
            let spec = tunnelbench::BenchSpec {
                arch: tunnelbench::ArchSpec::named(&args.arch).with_width(args.width),
                batch: args.batch,
                resolution: args.resolution,
                classes: args.classes,
                steps: args.steps,
            };
            if spec.batch < 2 || spec.steps == 0 {
                return Err(Error::usage(format!(
                    "--batch must be at least 2 and --steps at least 1, got {} and {}",
                    spec.batch, spec.steps
                )));
            }
            // The architecture's own errors name it and its width; only then is the resolution checked.
            spec.arch.resolve()?;
            spec.arch
                .check_resolution(spec.resolution)
                .map_err(|e| e.context("--resolution"))?;
            let mut results = Vec::new();
            for kind in kinds {
                let r = tunnelbench::run_bench(kind, &spec)?;
                if !args.json {
                    println!(
                        "{:<8} {} x{} batch {} {}px: train {:.1} img/s, inference {:.1} img/s, features {:.1} img/s ({} params, {} threads); probe fit on {}x{}: paper {:.3} s, closed form {:.3} s",
                        r.backend,
                        r.arch,
                        r.width,
                        r.batch,
                        r.resolution,
                        r.train_images_per_sec,
                        r.inference_images_per_sec,
                        r.features_images_per_sec,
                        r.parameters,
                        r.threads,
                        r.probe_samples,
                        r.probe_dim,
                        r.probe_paper_secs,
                        r.probe_closed_form_secs
                    );
                    let st = &r.train_stage_secs;
                    println!(
                        "{:<8} training step stages (median ms): data {:.1}, forward {:.1}, backward {:.1}, optimizer {:.1}",
                        "",
                        st.data * 1e3,
                        st.forward * 1e3,
                        st.backward * 1e3,
                        st.optimizer * 1e3
                    );
                }
                results.push(r);
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&results).map_err(|e| Error::Internal(e.to_string()))?
                );
            }
            Ok(())
        }
        Command::Run(args) => {
            tunnelbench::install_interrupt_handler()?;
            let backend = match &args.scenario.backend {
                Some(b) => BackendKind::parse(b)?,
                None => BackendKind::default(),
            };
            let shard = args.shard.as_deref().map(tunnelbench::parse_shard).transpose()?;
            let mut sc = tunnelbench::load_scenario(&args.scenario.file, &args.scenario.sets)?;
            if let Some(from) = &args.trained {
                sc = tunnelbench::probe_trained(sc, from)?;
            }
            let out = args
                .scenario
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(&sc.name));
            let opts = tunnelbench::RunOptions {
                out: Some(out.clone()),
                backend,
                data_dir: data_dir(args.data_dir)?,
                quiet: args.quiet,
                table: true,
                force: args.force,
            };
            if sc.study.is_none() {
                return tunnelbench::run_scenario(&sc, &args.scenario.file, &out, shard, &opts);
            }
            if args.force {
                return Err(Error::usage(
                    "--force applies to single runs and runs with replicates; a study resumes into its folder",
                ));
            }
            let plan = tunnelbench::plan_study(&args.scenario.file, &args.scenario.sets)?;
            let outcome = tunnelbench::run_study(&plan, &out, shard, &opts, &mut |l| eprintln!("{l}"))?;
            println!(
                "study `{}`: {} ran, {} done earlier, {} failed ({} failed earlier)",
                plan.name,
                outcome.ran.len(),
                outcome.skipped_done.len(),
                outcome.failed.len(),
                outcome.skipped_failed.len()
            );
            if let Some((i, n)) = shard {
                println!(
                    "shard {i}/{n} finished; merge the shards with: tunnelbench collect {}",
                    out.display()
                );
                return Ok(());
            }
            let collected = tunnelbench::collect(std::slice::from_ref(&out), &out, None)?;
            print!("{}", collected.text());
            Ok(())
        }
        Command::Compare {
            run_dir,
            baseline,
            record,
            all,
        } => {
            if record {
                let b = tunnelbench::record_baseline(&run_dir, &baseline)?;
                println!(
                    "recorded {} metrics of {} ({} replicate(s)) into {}",
                    b.metrics.len(),
                    run_dir.display(),
                    b.replicates,
                    baseline.display()
                );
                if b.replicates < 2 {
                    eprintln!(
                        "warning: one replicate has no spread to test against: compare will judge by the thresholds alone; record a run with `replicates = 5` or more"
                    );
                }
                return Ok(());
            }
            let verdict = tunnelbench::compare(&run_dir, &baseline)?;
            print!("{}", verdict.text(all));
            if verdict.regressed() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Report { dir } => {
            let written = tunnelbench::write_report(&dir)?;
            for p in written {
                println!("wrote {}", p.display());
            }
            Ok(())
        }
        Command::Plan { scenario, sets, json } => {
            let plan = tunnelbench::plan_study(&scenario, &sets)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan).map_err(|e| Error::Internal(e.to_string()))?
                );
            } else {
                print!("{}", plan.text());
            }
            Ok(())
        }
        Command::Collect { dirs, out, spec } => {
            if let [dir] = dirs.as_slice()
                && tunnelbench::is_replicate_folder(dir)
            {
                if out.as_ref().is_some_and(|o| o != dir) || spec.is_some() {
                    return Err(Error::usage(
                        "--out and --spec apply to study folders; a run's replicates are aggregated in its own folder",
                    ));
                }
                eprintln!("{}", tunnelbench::aggregate_replicates(dir, None)?);
                return Ok(());
            }
            let out = out.unwrap_or_else(|| dirs[0].clone());
            let collected = tunnelbench::collect(&dirs, &out, spec.as_deref())?;
            print!("{}", collected.text());
            Ok(())
        }
        Command::Slurm(args) => {
            // A study's plan entries, or a scenario's replicates.
            let sc = tunnelbench::load_scenario(&args.scenario.file, &args.scenario.sets)?;
            let (name, runs) = if sc.study.is_some() {
                let plan = tunnelbench::plan_study(&args.scenario.file, &args.scenario.sets)?;
                (plan.name, plan.runs.len())
            } else if sc.replicates > 1 {
                (sc.name.clone(), sc.replicates)
            } else {
                return Err(Error::usage(format!(
                    "{}: a Slurm job array needs a study ([study]) or replicates (replicates = N)",
                    args.scenario.file.display()
                )));
            };
            if let Some(b) = &args.scenario.backend {
                BackendKind::parse(b)?;
            }
            let out = args.scenario.out.unwrap_or_else(|| PathBuf::from("runs").join(&name));
            let bin = match args.bin {
                Some(b) => b,
                None => std::env::current_exe().map_err(|e| Error::io("tunnelbench binary", e))?,
            };
            let job = tunnelbench::SlurmJob {
                bin: tunnelbench::absolute_path(&bin)?,
                scenario: tunnelbench::absolute_path(&args.scenario.file)?,
                out: tunnelbench::absolute_path(&out)?,
                // More shards than runs would start array tasks that have nothing to run.
                shards: args.shards.min(runs),
                sets: args.scenario.sets,
                backend: args.scenario.backend,
                sbatch: args.sbatch,
                job_name: format!("tunnelbench-{name}"),
            };
            let dir = tunnelbench::write_slurm_scripts(&job)?;
            if job.shards < args.shards {
                eprintln!(
                    "note: --shards {} is more than the {runs} runs: one shard per run",
                    args.shards
                );
            }
            println!(
                "{runs} runs in {} shards: wrote {}/array.sbatch, collect.sbatch and submit.sh; submit with: {}/submit.sh",
                job.shards,
                dir.display(),
                dir.display()
            );
            Ok(())
        }
        Command::Data { command } => match command {
            DataCommand::List { data_dir: dir } => {
                let dir = data_dir(dir)?;
                println!("fetchable data sets (folder {}):", dir.display());
                for info in tunnelbench::list_datasets(&dir) {
                    let state = if info.installed {
                        format!(
                            "installed ({} train / {} test)",
                            info.n_train.unwrap_or(0),
                            info.n_test.unwrap_or(0)
                        )
                    } else {
                        format!("not installed: tunnelbench data fetch {}", info.name)
                    };
                    println!("  {:<14} {}", info.name, info.description);
                    println!("  {:<14} {:<44} {} [{}]", "", state, info.origin, info.licence);
                }
                println!("embedded subsets (no download; folder {}):", embedded_dir().display());
                for name in EMBEDDED {
                    let ok = embedded_dir().join(name).join("manifest.json").exists();
                    println!("  {:<14} {}", name, if ok { "available" } else { "missing" });
                }
                println!("procedural generators: fractal, shapes, texture (any classes, any resolution)");
                Ok(())
            }
            DataCommand::Subset {
                name,
                train_per_class,
                test_per_class,
                seed,
                out,
                data_dir: dir,
            } => {
                let split = tunnelbench::load_fetched(&name, &data_dir(dir)?)?;
                tunnelbench::write_subset(&split, train_per_class, test_per_class, seed, &out)?;
                println!(
                    "wrote {name} subset ({train_per_class} + {test_per_class} per class) to {}",
                    out.display()
                );
                Ok(())
            }
            DataCommand::Fetch { name, data_dir: dir } => {
                let dir = data_dir(dir)?;
                let path = tunnelbench::fetch_dataset(&name, &dir)?;
                println!("installed {name} in {}", path.display());
                Ok(())
            }
        },
        Command::Analyze {
            csv,
            spec,
            out,
            resamples,
            folds,
            seed,
            against,
        } => {
            use tunnelbench_stats::analyze::{AnalyzeOptions, analyze_with};
            let opts = AnalyzeOptions {
                uncertainty: tunnelbench_stats::study::ShapUncertainty { resamples, folds, seed },
                ..AnalyzeOptions::default()
            };
            let analysis = analyze_with(&csv, spec.as_deref(), &out, &opts)?;
            println!("{analysis}");
            if let Some(other) = against {
                let text = tunnelbench_stats::agreement::write_against(&analysis, &other, spec.as_deref(), &out)?;
                println!("{text}");
            }
            println!("results: {}", out.display());
            Ok(())
        }
    }
}

fn data_dir(arg: Option<PathBuf>) -> Result<PathBuf> {
    match arg {
        Some(d) => Ok(d),
        None => tunnelbench::default_data_dir(),
    }
}
