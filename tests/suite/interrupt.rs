//! Ctrl-C (SIGINT) stops a run cleanly: exit code 130, a message, and no result or temporary files.

use crate::common::{bin, entry_names, scenario, tempdir};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigint_stops_a_run_with_130_and_no_results() {
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("out");
    let tiny = scenario("tiny.toml");
    // Long enough (hundreds of epochs) that it is still training when the signal comes.
    let mut child = bin()
        .args(["run", tiny.to_str().unwrap(), "--quiet", "--out"])
        .arg(&out)
        .args(["--set", "resolution=32", "--set", "train.epochs=500"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the run ended before the signal");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the run did not stop within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let left = entry_names(&out);
    assert!(left.is_empty(), "files left after SIGINT: {left:?}");
}
