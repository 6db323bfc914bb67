//! Scratch folders for tests: a fresh, empty folder under the system's temporary directory,
//! removed with everything in it when the value is dropped. The unit tests use it as
//! `crate::scratch`; the integration tests include this same file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new folder named by the process, a per-process counter and the clock, so parallel tests and
/// concurrent test processes never share one.
pub fn tempdir() -> std::io::Result<ScratchDir> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!(
        "tunnelbench-test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = std::env::temp_dir().join(name);
    std::fs::create_dir(&path)?;
    Ok(ScratchDir(path))
}
