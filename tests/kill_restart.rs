//! Crash safety: a small multi-run study is killed with SIGKILL at 20 points spread over its whole
//! duration (training, probing, writing), then restarted. After every kill no file under its final
//! name is half-written, and after the restart the outputs equal an uninterrupted run's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const KILL_POINTS: u32 = 20;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tunnelbench"))
}

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/tiny-study.toml")
}

fn run_to_end(out: &Path) {
    let o = bin()
        .args([
            "run",
            scenario().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
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

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn sigkill_at_20_points_then_restart_gives_the_uninterrupted_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let t = Instant::now();
    run_to_end(&reference);
    let duration = t.elapsed();
    let want = read(&reference.join("study_metrics.csv"));
    let mut runs: Vec<String> = std::fs::read_dir(reference.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    runs.sort();

    let mut killed_while_running = 0;
    for point in 1..=KILL_POINTS {
        let out = dir.path().join(format!("k{point}"));
        let mut child = bin()
            .args([
                "run",
                scenario().to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(duration.mul_f64(point as f64 / (KILL_POINTS + 1) as f64));
        // SIGKILL: no handler runs, whatever was being written stays as it was.
        if child.try_wait().unwrap().is_none() {
            killed_while_running += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
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
    // The kills landed inside the run, not after it.
    assert!(
        killed_while_running >= KILL_POINTS - 2,
        "only {killed_while_running} kills hit a running process"
    );
}
