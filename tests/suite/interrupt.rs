//! Ctrl-C (SIGINT) stops a run cleanly: exit code 130, a message, and no result or temporary files,
//! only the state its training goes on from when the run is started again.

use crate::common::{bin, entry_names, ok, read, run_to, s, scenario, tempdir};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sends SIGINT to `child` and waits (at most a minute) for it to end: its exit code and stderr
/// (what was not read yet).
fn interrupt(mut child: Child) -> (Option<i32>, String) {
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
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
    }
    (status.code(), err)
}

/// A run interrupted during training and started again goes on after its last epoch and ends as
/// the uninterrupted run ends: the same training log, network, probes and metrics, to the bit. For
/// a CNN with augmentation and for a ViT (stochastic depth draws from the backend's stream).
#[test]
fn an_interrupted_run_goes_on_where_training_stopped() {
    let tmp = tempdir().unwrap();
    let tiny = scenario("tiny.toml");
    for (net, sets) in [
        ("cnn", &["train.augment=true"][..]),
        ("vit", &["model.name=vit-t", "model.width=0.25", "model.depth=2"][..]),
    ] {
        let mut args: Vec<&str> = vec!["--set", "train.epochs=8", "--set", "probe.also=[]"];
        for set in sets {
            args.extend(["--set", set]);
        }
        let whole = tmp.path().join(format!("{net}-whole"));
        ok(&run_to(&tiny, &whole, &[&args[..], &["--quiet"]].concat()));
        let out = tmp.path().join(net);
        let mut child = bin()
            .args(["run", s(&tiny), "--out", s(&out)])
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        // Interrupted once the third epoch is logged: the state after it (or a later one) is kept.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("epoch   3/8") {
                break;
            }
        }
        let (code, _) = interrupt(child);
        assert_eq!(code, Some(130), "{net}: {seen}");
        assert_eq!(entry_names(&out), ["training.ckpt"], "{net}");
        let again = run_to(&tiny, &out, &args);
        ok(&again);
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(err.contains("going on after epoch"), "{net}: {err}");
        assert!(
            !err.contains("epoch   1/8"),
            "{net}: trained from the start again: {err}"
        );
        assert!(!out.join("training.ckpt").exists(), "{net}: the state outlived the run");
        same_results(&whole, &out, net);
    }
}

fn same_results(a: &Path, b: &Path, net: &str) {
    for file in ["probes.csv", "metrics_all.csv", "test_hits.bin", "model.safetensors"] {
        assert!(
            std::fs::read(a.join(file)).unwrap() == std::fs::read(b.join(file)).unwrap(),
            "{net}: {file} differs"
        );
    }
    let log = |d: &Path| {
        let summary: serde_json::Value = serde_json::from_str(&read(&d.join("summary.json"))).unwrap();
        let train = &summary["train"];
        let epochs: Vec<_> = train["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["lr"].clone(), e["train_loss"].clone(), e["val_accuracy"].clone()))
            .collect();
        (train["best_epoch"].clone(), epochs)
    };
    assert_eq!(log(a), log(b), "{net}: training log");
}

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
    let (code, err) = interrupt(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<String> = entry_names(&out).into_iter().filter(|f| f != "training.ckpt").collect();
    assert!(left.is_empty(), "files left after SIGINT: {left:?}");
}
