//! Helpers shared by the test modules: the binary, the repository's files, scratch folders.

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
