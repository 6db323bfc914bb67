//! CIFAR-10 / CIFAR-100 binary versions.
//!
//! CIFAR-10 records are 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major
//! 32x32, i.e. already channel-major); CIFAR-100 records are 1 coarse + 1 fine label byte +
//! 3072 pixel bytes, and tunnelbench uses the fine (100-class) labels.

use std::path::{Path, PathBuf};

use super::read_class_names;
use crate::data::{DataSplit, ImageDataset};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    Cifar10,
    Cifar100,
}

const PIXELS: usize = 3 * 32 * 32;

impl CifarKind {
    fn record_len(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1 + PIXELS,
            CifarKind::Cifar100 => 2 + PIXELS,
        }
    }

    pub fn n_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar10",
            CifarKind::Cifar100 => "cifar100",
        }
    }
}

pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Reads one binary batch file into `ds` (appending).
pub fn read_cifar_file(path: &Path, kind: CifarKind, ds: &mut ImageDataset) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_cifar_records(&bytes, path, kind, ds)
}

/// Decodes the records of one batch file's bytes into `ds` (appending); `path` is only used in
/// error messages. `ds` must be a 3x32x32 data set; nothing is appended when an error is returned.
pub fn parse_cifar_records(bytes: &[u8], path: &Path, kind: CifarKind, ds: &mut ImageDataset) -> Result<()> {
    if ds.image_len() != PIXELS {
        return Err(Error::Internal(format!(
            "CIFAR records need a 3x32x32 data set, got {}x{}x{}",
            ds.channels, ds.height, ds.width
        )));
    }
    let rec = kind.record_len();
    if bytes.is_empty() {
        return Err(Error::input(path, "zero images"));
    }
    if !bytes.len().is_multiple_of(rec) {
        return Err(Error::input(
            path,
            format!(
                "truncated: {} bytes is not a whole number of {rec}-byte {} records",
                bytes.len(),
                kind.name()
            ),
        ));
    }
    let mut labels = Vec::with_capacity(bytes.len() / rec);
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        let (label, max, what) = match kind {
            CifarKind::Cifar10 => (r[0], 10, "label"),
            CifarKind::Cifar100 => {
                if r[0] >= 20 {
                    return Err(Error::input(
                        path,
                        format!("record {i}: coarse label {} out of range 0..20", r[0]),
                    ));
                }
                (r[1], 100, "fine label")
            }
        };
        if label as usize >= max {
            return Err(Error::input(
                path,
                format!("record {i}: {what} {label} out of range 0..{max}"),
            ));
        }
        labels.push(label as u32);
    }
    for (r, label) in bytes.chunks_exact(rec).zip(labels) {
        ds.push(&r[rec - PIXELS..], label);
    }
    Ok(())
}

/// Looks for the batch files in `dir` or in the subfolder the official archive unpacks to.
fn resolve_dir(dir: &Path, probe: &str, sub: &str) -> PathBuf {
    if !dir.join(probe).exists() && dir.join(sub).join(probe).exists() {
        dir.join(sub)
    } else {
        dir.to_path_buf()
    }
}

fn names_or(path: &Path, default: impl Fn() -> Vec<String>, n: usize) -> Result<Vec<String>> {
    if !path.exists() {
        return Ok(default());
    }
    let names = read_class_names(path)?;
    if names.len() != n {
        return Err(Error::input(path, format!("{} class names; expected {n}", names.len())));
    }
    Ok(names)
}

/// Loads CIFAR-10 from the directory of `data_batch_{1..5}.bin` + `test_batch.bin`
/// (or its parent); class names from `batches.meta.txt` when present.
pub fn load_cifar10(dir: &Path) -> Result<DataSplit> {
    let dir = resolve_dir(dir, "test_batch.bin", "cifar-10-batches-bin");
    let names = names_or(
        &dir.join("batches.meta.txt"),
        || CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        10,
    )?;
    let mut train = ImageDataset::empty("cifar10-train", 3, 32, 32, names.clone());
    for b in 1..=5 {
        read_cifar_file(&dir.join(format!("data_batch_{b}.bin")), CifarKind::Cifar10, &mut train)?;
    }
    let mut test = ImageDataset::empty("cifar10-test", 3, 32, 32, names);
    read_cifar_file(&dir.join("test_batch.bin"), CifarKind::Cifar10, &mut test)?;
    Ok(DataSplit { train, test })
}

/// Loads CIFAR-100 (fine labels) from the directory of `train.bin` + `test.bin` (or its
/// parent); class names from `fine_label_names.txt` when present, else "0".."99".
pub fn load_cifar100(dir: &Path) -> Result<DataSplit> {
    let dir = resolve_dir(dir, "test.bin", "cifar-100-binary");
    let names = names_or(
        &dir.join("fine_label_names.txt"),
        || (0..100).map(|i| i.to_string()).collect(),
        100,
    )?;
    let mut train = ImageDataset::empty("cifar100-train", 3, 32, 32, names.clone());
    read_cifar_file(&dir.join("train.bin"), CifarKind::Cifar100, &mut train)?;
    let mut test = ImageDataset::empty("cifar100-test", 3, 32, 32, names);
    read_cifar_file(&dir.join("test.bin"), CifarKind::Cifar100, &mut test)?;
    Ok(DataSplit { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record10(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(fill, PIXELS));
        r
    }

    fn write_cifar10(dir: &Path) {
        for b in 1..=5u8 {
            let mut bytes = record10(b, b);
            bytes.extend(record10(0, 100 + b));
            std::fs::write(dir.join(format!("data_batch_{b}.bin")), bytes).unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), record10(9, 7)).unwrap();
    }

    #[test]
    fn cifar10_good() {
        let tmp = crate::scratch::tempdir().unwrap();
        let dir = tmp.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&dir).unwrap();
        write_cifar10(&dir);
        let s = load_cifar10(tmp.path()).unwrap();
        assert_eq!(s.train.len(), 10);
        assert_eq!(s.train.labels[..4], [1, 0, 2, 0]);
        assert_eq!(s.train.image(1)[0], 101);
        assert_eq!(s.test.labels, vec![9]);
        assert_eq!(s.test.class_names[9], "truck");
        s.validate().unwrap();
        // Names from the meta file.
        let names: String = (0..10).map(|i| format!("c{i}\n")).collect();
        std::fs::write(dir.join("batches.meta.txt"), names).unwrap();
        assert_eq!(load_cifar10(&dir).unwrap().train.class_names[3], "c3");
        std::fs::write(dir.join("batches.meta.txt"), "a\nb\n").unwrap();
        assert!(load_cifar10(&dir).unwrap_err().to_string().contains("2 class names"));
    }

    #[test]
    fn cifar10_bad() {
        let tmp = crate::scratch::tempdir().unwrap();
        let dir = tmp.path();
        write_cifar10(dir);
        let mut truncated = record10(1, 1);
        truncated.pop();
        std::fs::write(dir.join("data_batch_3.bin"), truncated).unwrap();
        let e = load_cifar10(dir).unwrap_err().to_string();
        assert!(e.contains("data_batch_3.bin") && e.contains("truncated"), "{e}");
        std::fs::write(dir.join("data_batch_3.bin"), record10(10, 1)).unwrap();
        let e = load_cifar10(dir).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_3.bin") && e.contains("label 10 out of range"),
            "{e}"
        );
        std::fs::write(dir.join("data_batch_3.bin"), b"").unwrap();
        assert!(load_cifar10(dir).unwrap_err().to_string().contains("zero images"));
        std::fs::remove_file(dir.join("data_batch_3.bin")).unwrap();
        let e = load_cifar10(dir).unwrap_err();
        assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("data_batch_3.bin"));
    }

    #[test]
    fn cifar100_fine_labels() {
        let tmp = crate::scratch::tempdir().unwrap();
        let dir = tmp.path();
        let rec = |coarse: u8, fine: u8| {
            let mut r = vec![coarse, fine];
            r.extend(std::iter::repeat_n(fine, PIXELS));
            r
        };
        std::fs::write(dir.join("train.bin"), [rec(3, 99), rec(0, 5)].concat()).unwrap();
        std::fs::write(dir.join("test.bin"), rec(1, 42)).unwrap();
        let s = load_cifar100(dir).unwrap();
        assert_eq!(s.train.labels, vec![99, 5]);
        assert_eq!(s.train.n_classes(), 100);
        assert_eq!(s.test.image(0)[3071], 42);
        std::fs::write(dir.join("test.bin"), rec(1, 100)).unwrap();
        assert!(load_cifar100(dir).unwrap_err().to_string().contains("fine label 100"));
        std::fs::write(dir.join("test.bin"), rec(20, 1)).unwrap();
        assert!(load_cifar100(dir).unwrap_err().to_string().contains("coarse label 20"));
        let names: String = (0..100).map(|i| format!("n{i}\n")).collect();
        std::fs::write(dir.join("test.bin"), rec(1, 2)).unwrap();
        std::fs::write(dir.join("fine_label_names.txt"), names).unwrap();
        assert_eq!(load_cifar100(dir).unwrap().test.class_names[2], "n2");
    }
}
