//! Helpers shared by the test modules: the binary, the repository's files, scratch folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../src/scratch.rs"]
mod scratch;
pub use scratch::tempdir;

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tunnelbench"))
}

/// Runs the binary with `args` and waits for it.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scenario of the tests, `tests/scenarios/<name>`.
pub fn scenario(name: &str) -> PathBuf {
    root().join("tests/scenarios").join(name)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `run <scenario> --out <out>`, then `extra`, and waits for it.
pub fn run_to(scenario: &Path, out: &Path, extra: &[&str]) -> Output {
    run(&[&["run", s(scenario), "--out", s(out)], extra].concat())
}

/// Asserts that `o` exited with success, showing its stderr otherwise.
pub fn ok(o: &Output) {
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// Asserts that each of `files` is a file in `dir`.
pub fn assert_files(dir: &Path, files: &[&str]) {
    for f in files {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
}

/// The names of the entries of `dir`; none when `dir` does not exist.
pub fn entry_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that `o` exited with code 2 (a bad input) and that its stderr contains each of `fragments`.
pub fn refused(o: &Output, fragments: &[&str]) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for f in fragments {
        assert!(err.contains(f), "no `{f}` in: {err}");
    }
}

/// A JSON file, parsed.
/// Runs the test scenario `name` quietly into a fresh folder: the folder's guard, the run's output
/// folder, and its cl_metrics.json.
pub fn run_cl(name: &str) -> (scratch::ScratchDir, PathBuf, serde_json::Value) {
    let dir = tempdir().unwrap();
    let out = dir.path().join("cl");
    ok(&run_to(&scenario(name), &out, &["--quiet"]));
    let json = read_json(&out.join("cl_metrics.json"));
    (dir, out, json)
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under `dir`, recursively and in name order (only those with one of `extensions`,
/// when given); nothing when `dir` does not exist.
pub fn files_under(dir: &Path, extensions: Option<&[&str]>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            out.extend(files_under(&path, extensions));
        } else if path.is_file()
            && extensions.is_none_or(|exts| {
                path.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| exts.contains(&e))
            })
        {
            out.push(path);
        }
    }
    out
}

/// The columns of a study table that `analyze` reads.
pub const STUDY_HEADER: &str = "Pearson Correlation,ID OOD Alignment,Percentage OOD retained,Stem,Spatial Reduction,CNN vs ViT,Augmentations,Resolution,ID Class Count,OverParam. Level,Depth";

/// A small, well-formed tunnelbench study (with `run_id` and `ood_dataset` columns): two
/// architectures, without and with augmentation, two OOD sets each; runs `run0` to `run3`.
pub fn small_study() -> String {
    let mut s = format!("run_id,ood_dataset,{STUDY_HEADER}\n");
    let mut id = 0;
    for (stem, sr, arch, gamma, depth) in [(3, 0.5, "CNN", 74.6, 11), (8, 1.0, "Transformer", 44.3, 12)] {
        for aug in [0, 2] {
            for (k, ood) in ["stl10", "cifar100"].iter().enumerate() {
                let r = 60.0 + 10.0 * aug as f64 + 3.0 * k as f64 + stem as f64;
                s += &format!(
                    "run{id},{ood},{:.2},{:.3},{r},{stem},{sr},{arch},{aug},32,10,{gamma},{depth}\n",
                    0.5 + r / 200.0,
                    0.1 + r / 1000.0
                );
            }
            id += 1;
        }
    }
    s
}

/// Accuracies by (architecture, variant, strategy, eval), then by (after task, task).
pub type AccuracyMatrices = BTreeMap<[String; 4], BTreeMap<(usize, usize), f64>>;

/// A continual-learning run's accuracy_matrix.csv; an empty cell is NaN.
pub fn accuracy_matrices(path: &Path) -> AccuracyMatrices {
    let mut rdr = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = AccuracyMatrices::new();
    for rec in rdr.records() {
        let r = rec.unwrap();
        let v = if r[6].is_empty() {
            f64::NAN
        } else {
            r[6].parse().unwrap()
        };
        out.entry([0, 1, 2, 3].map(|i| r[i].to_string()))
            .or_default()
            .insert((r[4].parse().unwrap(), r[5].parse().unwrap()), v);
    }
    out
}
