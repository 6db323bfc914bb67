//! Turning a scenario's data spec into an in-memory, preprocessed train/test split.

use std::path::{Path, PathBuf};

use super::schema::{DataKind, DataSpec, Preprocess};
use crate::data::ImageDataset;
use crate::data::formats::cifar::{load_cifar10, load_cifar100};
use crate::data::formats::idx::load_idx;
use crate::data::formats::image_folder::{FolderIndex, index_image_folder};
use crate::data::synth::{SynthKind, SynthSpec};
use crate::data::transform::{Normalization, pad_to, prepare, prepare_with, resize_size};
use crate::data::{DataSplit, Progress, fetch, split};
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

/// The folder under the data directory that holds the decoded ImageFolder caches.
pub const IMAGE_FOLDER_CACHE: &str = "image-folder-cache";

/// Load the raw (unprepared) split of a data spec. ImageFolder sets come already prepared (see
/// [`load_prepared`]): decoded, resized and cropped once, through the cache under `data_dir`.
pub fn load_raw(
    spec: &DataSpec,
    resolution: usize,
    seed: u64,
    data_dir: &Path,
    progress: &mut dyn Progress,
) -> Result<DataSplit> {
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
            let part = |part: &str, images: &Option<String>, labels: &Option<String>| {
                let images = PathBuf::from(required(images, &format!("{part}_images"))?);
                let labels = PathBuf::from(required(labels, &format!("{part}_labels"))?);
                load_idx(&images, &labels, part, None)
            };
            let train = part("train", &spec.train_images, &spec.train_labels)?;
            let test = part("test", &spec.test_images, &spec.test_labels)?;
            if test.n_classes() > train.n_classes() {
                return Err(Error::input(
                    required(&spec.test_labels, "test_labels")?,
                    format!(
                        "label {} out of range: the training labels only go up to {}",
                        test.n_classes() - 1,
                        train.n_classes() - 1
                    ),
                ));
            }
            let classes = train.n_classes();
            let names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
            let fix = |mut d: ImageDataset| {
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
            // Listed first and subset before decoding: only the images kept are ever decoded,
            // straight to the prepared crop (resize-crop), and cached as they are decoded.
            let size = resize_size(resolution);
            let crop = match spec.preprocess {
                Preprocess::ResizeCrop => resolution,
                Preprocess::Pad => size,
            };
            let cache = data_dir.join(IMAGE_FOLDER_CACHE);
            let (train_root, test_root) = (required(&spec.train, "train")?, required(&spec.test, "test")?);
            let train = index_image_folder(Path::new(train_root))?;
            let test = index_image_folder(Path::new(test_root))?;
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
            let mut decode = |index: &FolderIndex, per_class: Option<usize>, seed: u64| -> Result<ImageDataset> {
                let keep = kept(&index.labels(), spec.classes, per_class, seed)?;
                let mut ds = index.decode(&keep, size, crop, Some(&cache), progress)?;
                ds.class_names.truncate(spec.classes.unwrap_or(usize::MAX));
                Ok(ds)
            };
            let s = DataSplit {
                train: decode(&train, spec.train_per_class, seed)?,
                test: decode(&test, spec.test_per_class, test_seed(seed))?,
            };
            s.validate()?;
            return Ok(s);
        }
    };
    subset(split, spec, seed)
}

/// The seed of the test set's subset.
fn test_seed(seed: u64) -> u64 {
    seed ^ 0x7465_7374
}

/// The indices of `ds` that a subset keeps, in the order it keeps them: the first `classes`
/// classes, then `per_class` images of each (seeded). Only the labels are read.
fn kept(ds: &ImageDataset, classes: Option<usize>, per_class: Option<usize>, seed: u64) -> Result<Vec<usize>> {
    let mut keep: Vec<usize> = (0..ds.len()).collect();
    let mut pool = ds.clone();
    if let Some(k) = classes {
        if k > ds.n_classes() {
            return Err(Error::usage(format!(
                "`classes = {k}` but the data set has only {} classes",
                ds.n_classes()
            )));
        }
        keep = split::first_k_indices(ds, k)?;
        pool = split::first_k_classes(ds, k)?;
    }
    if let Some(n) = per_class {
        keep = split::sample_per_class(&pool, n, seed)?
            .into_iter()
            .map(|i| keep[i])
            .collect();
    }
    Ok(keep)
}

/// First-k classes and n samples per class (seeded), for real data sets.
fn subset(s: DataSplit, spec: &DataSpec, seed: u64) -> Result<DataSplit> {
    let keep = |ds: ImageDataset, per_class: Option<usize>, seed: u64| -> Result<ImageDataset> {
        if spec.classes.is_none() && per_class.is_none() {
            return Ok(ds);
        }
        let mut out = ds.subset(&kept(&ds, spec.classes, per_class, seed)?)?;
        out.class_names.truncate(spec.classes.unwrap_or(usize::MAX));
        Ok(out)
    };
    let s = DataSplit {
        train: keep(s.train, spec.train_per_class, seed)?,
        test: keep(s.test, spec.test_per_class, test_seed(seed))?,
    };
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
    progress: &mut dyn Progress,
) -> Result<PreparedData> {
    let raw = load_raw(spec, resolution, seed, data_dir, progress)?;
    let prepared = spec.kind == DataKind::ImageFolder && spec.preprocess == Preprocess::ResizeCrop;
    let n_classes = raw.train.n_classes();
    let cifar = match spec.kind {
        DataKind::Cifar10 => Some(Normalization::CIFAR10),
        DataKind::Cifar100 => Some(Normalization::CIFAR100),
        _ => None,
    };
    let pad = spec.preprocess == Preprocess::Pad;
    let prep = |ds: &ImageDataset| -> Result<ImageDataset> {
        if prepared {
            Ok(ds.clone())
        } else if pad {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An ImageFolder subset decodes only what it keeps (a corrupt image in a class left out is
    /// never read), and keeps what the same subset of the decoded set would.
    #[test]
    fn image_folder_subsets_before_decoding() {
        let tmp = crate::scratch::tempdir().unwrap();
        for split in ["train", "test"] {
            for c in 0..4u8 {
                let d = tmp.path().join(split).join(format!("c{c}"));
                std::fs::create_dir_all(&d).unwrap();
                for i in 0..5u8 {
                    image::RgbImage::from_pixel(6, 6, image::Rgb([40 * c, 10 * i, 7]))
                        .save(d.join(format!("{i}.png")))
                        .unwrap();
                }
            }
        }
        let spec = |extra: &str| -> DataSpec {
            toml::from_str(&format!(
                "kind = \"image-folder\"\ntrain = \"{}\"\ntest = \"{}\"\n{extra}",
                tmp.path().join("train").display(),
                tmp.path().join("test").display()
            ))
            .unwrap()
        };
        let cache = tmp.path().join("cache");
        let picked = spec("classes = 3\ntrain_per_class = 2\ntest_per_class = 4");
        let all = load_raw(&spec(""), 6, 9, &cache, &mut crate::data::Silent).unwrap();
        let want = subset(all, &picked, 9).unwrap();
        std::fs::write(tmp.path().join("train/c3/4.png"), b"not a png").unwrap();
        let got = load_raw(&picked, 6, 9, &cache, &mut crate::data::Silent).unwrap();
        assert_eq!(got.train.labels, [0, 0, 1, 1, 2, 2]);
        assert_eq!(got.train.class_names.len(), 3);
        for (g, w) in [(&got.train, &want.train), (&got.test, &want.test)] {
            assert_eq!(
                (&g.labels, &g.pixels, &g.class_names),
                (&w.labels, &w.pixels, &w.class_names)
            );
        }
        // The whole set does decode the corrupt image, and says which.
        let err = load_raw(&spec(""), 6, 9, &cache, &mut crate::data::Silent)
            .unwrap_err()
            .to_string();
        assert!(err.contains("4.png"), "{err}");
    }
}
