//! Running a scenario: once, or as `replicates = N` complete runs with seeds derived from the
//! master seed, each in `<out>/seed-<k>/` with its own `done` marker, followed by the aggregates
//! across seeds at the top of the run folder.
//!
//! Replicate 0 keeps the master seed, so `seed-0` is the run a single-seed scenario makes. A
//! restarted run skips the replicates whose marker names the same resolved scenario (its
//! fingerprint), redoes interrupted ones from nothing, and refuses, before any work, a folder
//! whose finished replicates came from another scenario: nothing finished is overwritten.
//! `--shard I/N` runs the replicates k ≡ I (mod N); whichever invocation finds every replicate
//! finished writes the aggregates (`tunnelbench collect DIR` writes them too).

pub mod continual;
mod leaderboard;
mod papers;
mod published;
pub mod tunnel;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::MODEL_FILE;
use crate::results::{PLAN_FILE, write_atomic};
use crate::run::{self, RunOptions};
use crate::scenario::Scenario;
use crate::scenario::diff::{NOT_THE_EXPERIMENT, differences};

/// The marker of a finished replicate.
pub const DONE: &str = "done";
/// The marker of a replicate whose training diverged.
pub const FAILED: &str = "failed";

/// The folder of replicate `k`.
pub fn seed_dir(out: &Path, k: usize) -> PathBuf {
    out.join(format!("seed-{k}"))
}

/// Content of a replicate's `done` or `failed` marker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Marker {
    pub replicate: usize,
    pub seed: u64,
    /// [`fingerprint`] of the replicate's resolved scenario.
    pub fingerprint: String,
    pub secs: f64,
    /// Why training failed (`failed` markers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many replicates the scenario asks for (absent in markers of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<usize>,
}

/// The scenario of replicate `k`: the master scenario with the replicate's seed, run once, and
/// `{replicate}` in `model.weights` replaced by `k`.
pub fn replicate_scenario(sc: &Scenario, k: usize) -> Scenario {
    let mut r = sc.clone();
    r.seed = crate::seed::replicate(sc.seed, k);
    r.replicates = 1;
    if let Some(w) = &mut r.model.weights {
        *w = w.replace(REPLICATE, &k.to_string());
    }
    r
}

/// What stands for the replicate's index in `model.weights`.
const REPLICATE: &str = "{replicate}";

/// `sc` made to probe the networks that the run in `from` trained (`run --trained`): each seed's
/// saved network (`model.safetensors`, or `seed-<k>/model.safetensors` of a run with replicates)
/// is loaded and probed, with no training. `from` may also name one saved network's file.
pub fn probe_trained(mut sc: Scenario, from: &Path) -> Result<Scenario> {
    if sc.study.is_some() || sc.continual.is_some() {
        return Err(Error::usage(
            "--trained applies to single runs and runs with replicates, not to studies or continual-learning scenarios",
        ));
    }
    let single = from.join(MODEL_FILE);
    let weights = if from.is_file() {
        from.to_path_buf()
    } else if single.is_file() && sc.replicates == 1 {
        single
    } else {
        let missing: Vec<String> = (0..sc.replicates)
            .map(|k| seed_dir(from, k).join(MODEL_FILE))
            .filter(|f| !f.is_file())
            .map(|f| f.display().to_string())
            .collect();
        if missing.len() == sc.replicates && !single.is_file() {
            return Err(Error::input(
                from,
                format!(
                    "holds no saved network ({MODEL_FILE}, or seed-<k>/{MODEL_FILE} for replicates): a run keeps \
                     its network unless `save_model = false`"
                ),
            ));
        }
        if !missing.is_empty() {
            return Err(Error::input(
                from,
                format!(
                    "the scenario asks for {} replicates, but no saved network is at {}",
                    sc.replicates,
                    missing.join(", ")
                ),
            ));
        }
        match sc.replicates {
            1 => seed_dir(from, 0).join(MODEL_FILE),
            _ => from.join(format!("seed-{REPLICATE}")).join(MODEL_FILE),
        }
    };
    sc.train = None;
    sc.model.weights = Some(weights.display().to_string());
    sc.model.key_prefix = None;
    sc.model.ignore_keys.clear();
    Ok(sc)
}

/// A stable hash of a resolved scenario: two runs with the same fingerprint ran the same thing.
pub fn fingerprint(sc: &Scenario) -> Result<String> {
    let canonical = serde_json::to_string(sc).map_err(|e| Error::Internal(format!("scenario: {e}")))?;
    Ok(format!("{:016x}", crate::seed::fnv1a(canonical.as_bytes())))
}

fn read_marker(path: &Path) -> Result<Marker> {
    crate::json::read(path, "a replicate marker")
}

/// The state of one replicate's folder.
enum State {
    Done(Marker),
    Failed(Marker),
    /// No folder, or an interrupted one.
    Todo,
}

/// The state of replicate `k` in `out`, to be run as `rs` (fingerprint `fp`); an error when it
/// finished from another scenario. One that differs from `rs` only in what does not change the
/// experiment (its name, the memory bounds of feature extraction) counts as finished.
fn state(out: &Path, k: usize, rs: &Scenario, fp: &str) -> Result<State> {
    let dir = seed_dir(out, k);
    for (name, failed) in [(DONE, false), (FAILED, true)] {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        let m = read_marker(&path)?;
        if m.fingerprint != fp {
            let differs = match crate::results::recorded_scenario(&dir) {
                Some(before) => {
                    let now = serde_json::to_value(rs).map_err(|e| Error::Internal(format!("scenario: {e}")))?;
                    differences(&now, &before, &NOT_THE_EXPERIMENT)
                        .iter()
                        .map(|d| d.text("finished"))
                        .collect()
                }
                None => vec![format!("fingerprint {}, now {fp}", m.fingerprint)],
            };
            if !differs.is_empty() {
                return Err(Error::input(
                    &dir,
                    format!(
                        "this replicate was run from another scenario ({}); give another --out, or delete the folder to run it again",
                        differs.join("; ")
                    ),
                ));
            }
        }
        return Ok(if failed { State::Failed(m) } else { State::Done(m) });
    }
    Ok(State::Todo)
}

/// The finished replicates of a replicate folder, by index (those of `0..n` when `n` is given).
pub fn finished(out: &Path, n: Option<usize>) -> Result<Vec<(usize, Marker)>> {
    let mut found = Vec::new();
    for k in replicate_indices(out)? {
        if n.is_some_and(|n| k >= n) {
            continue;
        }
        let path = seed_dir(out, k).join(DONE);
        if path.is_file() {
            found.push((k, read_marker(&path)?));
        }
    }
    Ok(found)
}

/// The replicates the scenario asks for (as the markers record it) that have neither finished nor
/// failed, a shard not run yet, say: how many it asks for, and the missing ones (`seed-1, seed-3`).
pub fn not_run(done: &[(usize, Marker)], failed: &[(usize, Marker)]) -> Option<(usize, String)> {
    let ran = || done.iter().chain(failed);
    let asked = ran().filter_map(|(_, m)| m.of).max().unwrap_or(0);
    let missing: Vec<String> = (0..asked)
        .filter(|k| !ran().any(|(j, _)| j == k))
        .map(|k| format!("seed-{k}"))
        .collect();
    (!missing.is_empty()).then(|| (asked, missing.join(", ")))
}

/// The replicate failures of a replicate folder.
pub fn failures(out: &Path, n: Option<usize>) -> Result<Vec<(usize, Marker)>> {
    let mut found = Vec::new();
    for k in replicate_indices(out)? {
        let path = seed_dir(out, k).join(FAILED);
        if n.is_none_or(|n| k < n) && path.is_file() {
            found.push((k, read_marker(&path)?));
        }
    }
    Ok(found)
}

/// Indices of the `seed-<k>` folders in `out`, ascending.
fn replicate_indices(out: &Path) -> Result<Vec<usize>> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(Vec::new());
    };
    let mut ks: Vec<usize> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("seed-")?.parse().ok())
        .collect();
    ks.sort_unstable();
    Ok(ks)
}

/// Whether `dir` holds replicates (`seed-<k>/` folders with a marker).
pub fn is_replicate_folder(dir: &Path) -> bool {
    replicate_indices(dir).is_ok_and(|ks| {
        ks.iter().any(|&k| {
            let d = seed_dir(dir, k);
            d.join(DONE).is_file() || d.join(FAILED).is_file()
        })
    })
}

/// Files a finished single-seed run leaves at the top of its folder (written last).
const SINGLE_RUN_FILES: [&str; 2] = ["summary.json", "cl_metrics.json"];

/// The finished single-seed run that `out` holds, if any (what a study must not be run into).
pub fn single_run_in(out: &Path) -> Option<String> {
    SINGLE_RUN_FILES
        .iter()
        .find(|f| out.join(f).is_file())
        .map(|f| format!("a finished run ({f})"))
}

/// The replicates of a run that `out` holds, if any.
pub fn replicates_in(out: &Path) -> Option<String> {
    is_replicate_folder(out).then(|| "the replicates of an earlier run (seed-*/)".to_string())
}

/// What finished work `out` holds that a run of `sc` must not write over: a single-seed run, a
/// study, or, for a single-seed scenario, replicates (a scenario with replicates resumes its own).
fn finished_work(sc: &Scenario, out: &Path) -> Option<String> {
    if let Some(run) = single_run_in(out) {
        return Some(run);
    }
    if out.join(PLAN_FILE).is_file() {
        return Some(format!("a study ({PLAN_FILE})"));
    }
    replicates_in(out).filter(|_| sc.replicates == 1)
}

/// `<out>.previous-<k>` with the first `k` not taken.
fn aside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (1..)
        .map(|k| out.with_file_name(format!("{name}.previous-{k}")))
        .find(|p| !p.exists())
        .expect("a free name")
}

/// Run `sc` (from the file `path`) into `out`: once, or its replicates (those of `shard`).
/// Finished work in `out` is never written over: the run refuses, or with `opts.force` moves the
/// old run aside first.
pub fn run(sc: &Scenario, path: &Path, out: &Path, shard: Option<(usize, usize)>, opts: &RunOptions) -> Result<()> {
    if shard.is_some() && sc.replicates == 1 {
        return Err(Error::usage(format!(
            "--shard applies to study scenarios and to scenarios with replicates; {} has neither",
            path.display()
        )));
    }
    if let Some(what) = finished_work(sc, out) {
        let to = aside(out);
        if !opts.force {
            return Err(Error::input(
                out,
                format!(
                    "holds {what}; nothing was changed. Give another --out, or --force to move it to {} and run again",
                    to.display()
                ),
            ));
        }
        std::fs::rename(out, &to).map_err(|e| Error::io(out, e))?;
        eprintln!("moved the earlier run in {} to {}", out.display(), to.display());
    }
    run::check_writable(out)?;
    // A mistake found only as the run goes (too few classes for the tasks, say) is the scenario's.
    if sc.replicates > 1 {
        run_replicates(sc, path, out, shard, opts)
    } else {
        // Replicate 0: the same scenario, `{replicate}` in `model.weights` made 0.
        run_once(&replicate_scenario(sc, 0), path, out, opts)
    }
    .map_err(|e| e.in_file(path))
}

/// The replicates of `shard` (all when `None`), then the aggregates once every replicate is done.
fn run_replicates(
    sc: &Scenario,
    path: &Path,
    out: &Path,
    shard: Option<(usize, usize)>,
    opts: &RunOptions,
) -> Result<()> {
    let n = sc.replicates;
    let mine: Vec<usize> = (0..n).filter(|k| shard.is_none_or(|(i, m)| k % m == i)).collect();
    // Every finished replicate is checked before any work starts.
    let mut plan = Vec::new();
    for &k in &mine {
        let rs = replicate_scenario(sc, k);
        let fp = fingerprint(&rs)?;
        plan.push((k, state(out, k, &rs, &fp)?, rs, fp));
    }
    let shard_text = shard.map(|(i, m)| format!(" (shard {i}/{m})")).unwrap_or_default();
    eprintln!(
        "scenario `{}`: {} of {n} replicates{shard_text} into {}",
        sc.name,
        mine.len(),
        out.display()
    );
    let opts = RunOptions {
        table: false,
        ..opts.clone()
    };
    for (k, state, rs, fp) in plan {
        let dir = seed_dir(out, k);
        let head = format!("[replicate {}/{n}] seed-{k} (seed {})", k + 1, rs.seed);
        match state {
            State::Done(m) => eprintln!("{head}: done earlier ({:.0} s), skipped", m.secs),
            State::Failed(m) => eprintln!(
                "{head}: failed earlier ({}), skipped; delete {} to retry",
                m.reason.unwrap_or_default(),
                dir.display()
            ),
            State::Todo => run_replicate((k, n), &rs, (path, &dir), fp, &head, &opts)?,
        }
    }
    let done = finished(out, Some(n))?.len();
    let failed = failures(out, Some(n))?.len();
    if done + failed < n {
        let failed = if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        };
        eprintln!(
            "{done} of {n} replicates finished{failed}; run the others (e.g. the other shards), then: tunnelbench collect {}",
            out.display()
        );
        return Ok(());
    }
    eprintln!("{}", aggregate(out, Some(n))?);
    Ok(())
}

/// Replicate `k` (scenario `rs` from the file `path`, fingerprint `fp`) into `dir`;
/// its marker when it ends: `done`, or `failed` when training diverged.
fn run_replicate(
    (k, n): (usize, usize),
    rs: &Scenario,
    (path, dir): (&Path, &Path),
    fp: String,
    head: &str,
    opts: &RunOptions,
) -> Result<()> {
    if dir.exists() {
        // An interrupted replicate: again, from its training state when it has one.
        run::clear_interrupted(dir)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    eprintln!("{head}: running");
    let t = Instant::now();
    let result = run_once(rs, path, dir, opts);
    let mut marker = Marker {
        replicate: k,
        seed: rs.seed,
        fingerprint: fp,
        secs: t.elapsed().as_secs_f64(),
        reason: None,
        of: Some(n),
    };
    match result {
        Ok(()) => {
            write_marker(&dir.join(DONE), &marker)?;
            eprintln!("{head}: done in {:.0} s", marker.secs);
        }
        Err(Error::TrainingDiverged(reason)) => {
            eprintln!("{head}: FAILED, training diverged: {reason}");
            marker.reason = Some(format!("training diverged: {reason}"));
            write_marker(&dir.join(FAILED), &marker)?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

fn write_marker(path: &Path, m: &Marker) -> Result<()> {
    let json = serde_json::to_vec_pretty(m).map_err(|e| Error::Internal(format!("marker: {e}")))?;
    write_atomic(path, &json)
}

/// One run of a scenario into `dir`: the continual-learning pipeline when it has a `[continual]`
/// section, the tunnel pipeline otherwise.
fn run_once(sc: &Scenario, path: &Path, dir: &Path, opts: &RunOptions) -> Result<()> {
    if sc.continual.is_some() {
        crate::cl::run(sc, dir, opts)?;
    } else {
        run::run_loaded(sc, path, dir, opts)?;
    }
    Ok(())
}

/// Writes the aggregates of the finished replicates of `out` (of `0..n` when given) and returns
/// the summary to print.
pub fn aggregate(out: &Path, n: Option<usize>) -> Result<String> {
    let done = finished(out, n)?;
    if done.is_empty() {
        return Err(Error::input(out, "no finished replicate (seed-*/done) to aggregate"));
    }
    let failed = failures(out, n)?;
    let ks: Vec<usize> = done.iter().map(|(k, _)| *k).collect();
    let mut text = if seed_dir(out, ks[0]).join("cl_metrics.json").is_file() {
        continual::aggregate(out, &ks)?
    } else {
        tunnel::aggregate(out, &ks)?
    };
    if let Some((asked, missing)) = not_run(&done, &failed) {
        text.push_str(&format!(
            "{} of {asked} replicates finished; not run: {missing} (the aggregates cover the finished ones)\n",
            done.len()
        ));
    }
    for (k, m) in &failed {
        text.push_str(&format!(
            "seed-{k} left out: {}\n",
            m.reason.as_deref().unwrap_or("failed")
        ));
    }
    Ok(text)
}
