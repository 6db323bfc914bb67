//! The `tunnelbench` binary: parse the command line, call the library, map errors to exit codes
//! (2 for what the user can fix, 1 for internal failures).

mod cli;

use clap::Parser;

use std::path::PathBuf;

use cli::{Cli, Command, DataCommand};
use tunnelbench::backend::{self, BackendKind};
use tunnelbench::data::fetch;
use tunnelbench::error::Result;
use tunnelbench::scenario::data::{EMBEDDED, embedded_dir};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli.command) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Backends => {
            for kind in backend::ALL {
                let mark = if kind.is_compiled() {
                    "compiled in"
                } else {
                    "not compiled"
                };
                println!("{:<8} {:<13} {}", kind.name(), mark, kind.describe());
            }
            Ok(())
        }
        Command::Models { classes } => {
            print!("{}", tunnelbench::model::models_table(classes)?);
            Ok(())
        }
        Command::Bench(args) => {
            let kinds: Vec<BackendKind> = if args.backends.is_empty() {
                vec![BackendKind::Flex, BackendKind::Ndarray]
            } else {
                args.backends
                    .iter()
                    .map(|b| BackendKind::parse(b))
                    .collect::<Result<_>>()?
            };
            let spec = tunnelbench::bench::BenchSpec {
                arch: tunnelbench::model::ArchSpec::named(&args.arch).with_width(args.width),
                batch: args.batch,
                resolution: args.resolution,
                classes: args.classes,
                steps: args.steps,
            };
            spec.arch.resolve()?;
            let mut results = Vec::new();
            for kind in kinds {
                let r = tunnelbench::bench::run(kind, &spec)?;
                if !args.json {
                    println!(
                        "{:<8} {} x{} batch {} {}px: train {:.1} img/s, inference {:.1} img/s, features {:.1} img/s ({} params, {} threads)",
                        r.backend,
                        r.arch,
                        r.width,
                        r.batch,
                        r.resolution,
                        r.train_images_per_sec,
                        r.inference_images_per_sec,
                        r.features_images_per_sec,
                        r.parameters,
                        r.threads
                    );
                }
                results.push(r);
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&results)
                        .map_err(|e| tunnelbench::error::Error::Internal(e.to_string()))?
                );
            }
            Ok(())
        }
        Command::Run(args) => {
            tunnelbench::interrupt::install()?;
            let backend = match &args.backend {
                Some(b) => BackendKind::parse(b)?,
                None => BackendKind::default(),
            };
            let opts = tunnelbench::run::RunOptions {
                out: args.out,
                backend,
                data_dir: data_dir(args.data_dir)?,
                quiet: args.quiet,
            };
            tunnelbench::run::run(&args.scenario, &args.sets, &opts)?;
            Ok(())
        }
        Command::Data { command } => match command {
            DataCommand::List { data_dir: dir } => {
                let dir = data_dir(dir)?;
                println!("fetchable data sets (folder {}):", dir.display());
                for info in fetch::list(&dir) {
                    let state = if info.installed {
                        format!(
                            "installed ({} train / {} test)",
                            info.n_train.unwrap_or(0),
                            info.n_test.unwrap_or(0)
                        )
                    } else {
                        format!("not installed: tunnelbench data fetch {}", info.name)
                    };
                    println!("  {:<14} {:<44} {} [{}]", info.name, state, info.origin, info.licence);
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
                let split = fetch::load(&name, &data_dir(dir)?)?;
                fetch::write_subset(&split, train_per_class, test_per_class, seed, &out)?;
                println!(
                    "wrote {name} subset ({train_per_class} + {test_per_class} per class) to {}",
                    out.display()
                );
                Ok(())
            }
            DataCommand::Fetch { name, data_dir: dir } => {
                let dir = data_dir(dir)?;
                let path = fetch::fetch(&name, &dir)?;
                println!("installed {name} in {}", path.display());
                Ok(())
            }
        },
        Command::Analyze { csv, spec, out } => {
            let analysis = tunnelbench::stats::analyze::analyze(&csv, spec.as_deref(), &out)?;
            println!("{analysis}");
            println!("results: {}", out.display());
            Ok(())
        }
    }
}

fn data_dir(arg: Option<PathBuf>) -> Result<PathBuf> {
    match arg {
        Some(d) => Ok(d),
        None => fetch::default_data_dir(),
    }
}
