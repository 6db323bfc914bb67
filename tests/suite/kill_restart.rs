//! Crash safety: a small multi-run study is killed with SIGKILL at 20 points spread over its whole
//! duration (training, probing, writing), then restarted. After every kill no file under its final
//! name is half-written, and after the restart the outputs equal an uninterrupted run's.

use crate::common::{bin, read, scenario, tempdir};

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KILL_POINTS: u32 = 20;
/// Kills that may come too late (and are tried again earlier) before the test gives up.
const MAX_MISSES: u32 = 20;

/// The study, writing to `out`.
fn study(out: &Path) -> Command {
    let mut c = bin();
    c.args([
        "run",
        scenario("tiny-study.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    c
}

fn run_to_end(out: &Path) {
    let o = study(out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every file under a final (non-temporary) name must be complete.
fn assert_no_half_written_file(dir: &Path, point: u32) {
    let mut all = Vec::new();
    files(dir, &mut all);
    for p in all {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // a temporary file, never read under this name
        }
        let bytes = std::fs::read(&p).unwrap();
        let ctx = format!("kill point {point}: {}", p.display());
        if name.ends_with(".csv") {
            let text = String::from_utf8(bytes).expect(&ctx);
            assert!(text.ends_with('\n'), "{ctx}: no final newline");
            let mut lines = text.lines();
            let cols = lines.next().expect(&ctx).split(',').count();
            for l in lines {
                assert_eq!(l.split(',').count(), cols, "{ctx}: short row {l:?}");
            }
        } else if name.ends_with(".json") || name == "done" || name == "failed" {
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        } else if name.ends_with(".svg") {
            assert!(
                String::from_utf8_lossy(&bytes).trim_end().ends_with("</svg>"),
                "{ctx}: truncated svg"
            );
        } else if name.ends_with(".png") {
            assert!(
                bytes.starts_with(b"\x89PNG") && bytes.ends_with(&[0xAE, 0x42, 0x60, 0x82]),
                "{ctx}: truncated png"
            );
        }
    }
}

#[test]
fn sigkill_at_20_points_then_restart_gives_the_uninterrupted_outputs() {
    let dir = tempdir().unwrap();
    let reference = dir.path().join("reference");
    let t = Instant::now();
    run_to_end(&reference);
    let want = read(&reference.join("study_metrics.csv"));
    let mut runs: Vec<String> = std::fs::read_dir(reference.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    runs.sort();

    // A run's length varies (the first one pays for cold caches; the machine may be shared). A kill
    // planned after the process has already finished is a miss: the run's own length becomes the
    // new estimate and the point is tried again, in a fresh directory, so every point lands inside
    // a running process.
    let mut duration = t.elapsed();
    let mut misses = 0;
    for point in 1..=KILL_POINTS {
        let out = dir.path().join(format!("k{point}"));
        loop {
            let delay = duration.mul_f64(point as f64 / (KILL_POINTS + 1) as f64);
            let start = Instant::now();
            let mut child = study(&out).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            // Polled, so that a run which ends before its kill tells how long it took.
            while start.elapsed() < delay && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            let took = start.elapsed();
            // SIGKILL: no handler runs, whatever was being written stays as it was.
            let _ = child.kill();
            if child.wait().unwrap().signal() == Some(libc::SIGKILL) {
                break;
            }
            misses += 1;
            assert!(
                misses <= MAX_MISSES,
                "{misses} kills came after the run had finished (the last at point {point}: \
                 planned {delay:?} after the start, the run took {took:?})"
            );
            duration = duration.min(took);
            std::fs::remove_dir_all(&out).unwrap();
        }
        assert_no_half_written_file(&out, point);
        run_to_end(&out);
        assert_eq!(read(&out.join("study_metrics.csv")), want, "kill point {point}");
        for run in &runs {
            for f in ["probes.csv", "metrics.csv"] {
                let (a, b) = (
                    reference.join("runs").join(run).join(f),
                    out.join("runs").join(run).join(f),
                );
                assert_eq!(read(&a), read(&b), "kill point {point}: {}", b.display());
            }
        }
    }
}
