//! Turning a scenario's data spec into an in-memory, preprocessed train/test split.

use std::path::{Path, PathBuf};

use super::schema::{DataKind, DataSpec, Preprocess};
use crate::data::formats::cifar::{load_cifar10, load_cifar100};
use crate::data::formats::idx::load_idx;
use crate::data::formats::image_folder::load_image_folder;
use crate::data::synth::{SynthKind, SynthSpec};
use crate::data::transform::{Normalization, pad_to, prepare, prepare_with, resize_size};
use crate::data::{DataSplit, fetch, split};
use crate::error::{Error, Result};

/// A data set ready for training and probing: 3 channels at the run's resolution.
pub struct PreparedData {
    pub label: String,
    pub split: DataSplit,
    pub norm: Normalization,
    pub n_classes: usize,
}

/// Where the small real subsets shipped with tunnelbench live (`data/` of the source tree, or
/// `$TUNNELBENCH_EMBEDDED`).
pub fn embedded_dir() -> PathBuf {
    std::env::var_os("TUNNELBENCH_EMBEDDED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data"))
}

/// Embedded subsets shipped in the repository.
pub const EMBEDDED: &[&str] = &["fashion-mnist", "mnist", "animal-mnist"];

fn required<'a>(v: &'a Option<String>, key: &str) -> Result<&'a str> {
    v.as_deref()
        .ok_or_else(|| Error::usage(format!("data set key `{key}` is required")))
}

/// Load the raw (unprepared) split of a data spec.
pub fn load_raw(spec: &DataSpec, resolution: usize, seed: u64, data_dir: &Path) -> Result<DataSplit> {
    let synth = |kind: SynthKind| -> Result<DataSplit> {
        let size = spec.render_size.unwrap_or(resolution);
        kind.generate(&SynthSpec {
            n_classes: spec.classes.unwrap_or(10),
            train_per_class: spec.train_per_class.unwrap_or(100),
            test_per_class: spec.test_per_class.unwrap_or(50),
            height: size,
            width: size,
            seed,
        })
    };
    let split = match spec.kind {
        DataKind::Fractal => return synth(SynthKind::Fractal),
        DataKind::Shapes => return synth(SynthKind::Shapes),
        DataKind::Texture => return synth(SynthKind::Texture),
        DataKind::Embedded => {
            let name = required(&spec.name, "name")?;
            if !EMBEDDED.contains(&name) {
                return Err(Error::usage(format!(
                    "no embedded data set `{name}`; embedded: {}",
                    EMBEDDED.join(", ")
                )));
            }
            fetch::load_dir(&embedded_dir().join(name))?
        }
        DataKind::Fetched => fetch::load(required(&spec.name, "name")?, data_dir)?,
        DataKind::Idx => {
            let p = |k: &Option<String>, key| required(k, key).map(PathBuf::from);
            let train = load_idx(
                &p(&spec.train_images, "train_images")?,
                &p(&spec.train_labels, "train_labels")?,
                "train",
                None,
            )?;
            let test = load_idx(
                &p(&spec.test_images, "test_images")?,
                &p(&spec.test_labels, "test_labels")?,
                "test",
                None,
            )?;
            if test.n_classes() > train.n_classes() {
                return Err(Error::input(
                    p(&spec.test_labels, "test_labels")?,
                    format!(
                        "label {} out of range: the training labels only go up to {}",
                        test.n_classes() - 1,
                        train.n_classes() - 1
                    ),
                ));
            }
            let classes = train.n_classes();
            let names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
            let fix = |mut d: crate::data::ImageDataset| {
                d.class_names = names.clone();
                d
            };
            DataSplit {
                train: fix(train),
                test: fix(test),
            }
        }
        DataKind::Cifar10 => load_cifar10(Path::new(required(&spec.path, "path")?))?,
        DataKind::Cifar100 => load_cifar100(Path::new(required(&spec.path, "path")?))?,
        DataKind::ImageFolder => {
            let size = resize_size(resolution);
            let (train_root, test_root) = (required(&spec.train, "train")?, required(&spec.test, "test")?);
            let train = load_image_folder(Path::new(train_root), size)?;
            let test = load_image_folder(Path::new(test_root), size)?;
            if train.class_names != test.class_names {
                let only = |a: &[String], b: &[String]| a.iter().find(|c| !b.contains(c)).cloned();
                let detail = match (
                    only(&test.class_names, &train.class_names),
                    only(&train.class_names, &test.class_names),
                ) {
                    (Some(c), _) => format!("class folder `{c}` is not in {train_root}"),
                    (None, Some(c)) => format!("class folder `{c}` is missing"),
                    (None, None) => "class folders differ".into(),
                };
                return Err(Error::input(
                    test_root,
                    format!("{detail}; train and test must have the same class folders"),
                ));
            }
            DataSplit { train, test }
        }
    };
    subset(split, spec, seed)
}

/// First-k classes and n samples per class (seeded), for real data sets.
fn subset(mut s: DataSplit, spec: &DataSpec, seed: u64) -> Result<DataSplit> {
    if let Some(k) = spec.classes {
        if k > s.train.n_classes() {
            return Err(Error::usage(format!(
                "`classes = {k}` but the data set has only {} classes",
                s.train.n_classes()
            )));
        }
        s.train = split::first_k_classes(&s.train, k)?;
        s.test = split::first_k_classes(&s.test, k)?;
    }
    if let Some(n) = spec.train_per_class {
        let idx = split::sample_per_class(&s.train, n, seed)?;
        s.train = s.train.subset(&idx)?;
    }
    if let Some(n) = spec.test_per_class {
        let idx = split::sample_per_class(&s.test, n, seed ^ 0x7465_7374)?;
        s.test = s.test.subset(&idx)?;
    }
    s.validate()?;
    Ok(s)
}

/// Load and preprocess (method §3.4): CIFAR at 32² is only normalised with CIFAR statistics;
/// everything else is resized (bicubic) and centre-cropped, with ImageNet statistics; with
/// `preprocess = "pad"`, zero-padded to the resolution and left in [0, 1].
pub fn load_prepared(
    spec: &DataSpec,
    label: String,
    resolution: usize,
    seed: u64,
    data_dir: &Path,
) -> Result<PreparedData> {
    let raw = load_raw(spec, resolution, seed, data_dir)?;
    let n_classes = raw.train.n_classes();
    let cifar = match spec.kind {
        DataKind::Cifar10 => Some(Normalization::CIFAR10),
        DataKind::Cifar100 => Some(Normalization::CIFAR100),
        _ => None,
    };
    let pad = spec.preprocess == Preprocess::Pad;
    let prep = |ds: &crate::data::ImageDataset| -> Result<crate::data::ImageDataset> {
        if pad {
            pad_to(ds, resolution)
        } else if cifar.is_some() && resolution == 32 && ds.height == 32 && ds.width == 32 {
            prepare_with(ds, None, 32)
        } else {
            prepare(ds, resolution)
        }
    };
    let split = DataSplit {
        train: prep(&raw.train)?,
        test: prep(&raw.test)?,
    };
    Ok(PreparedData {
        label,
        split,
        norm: match (pad, cifar) {
            (true, _) => Normalization::UNIT,
            (false, cifar) => cifar.unwrap_or(Normalization::IMAGENET),
        },
        n_classes,
    })
}
