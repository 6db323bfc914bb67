//! Running a study: each planned run goes into `<out>/runs/<run id>/`; a `done` marker (written
//! last, atomically) makes a run complete, so a restarted study skips finished runs and redoes
//! the others from scratch. A diverged run gets a `failed` marker and the study goes on.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Plan, PlannedRun};
use crate::error::{Error, Result};
use crate::results::{PLAN_FILE, write_atomic};
use crate::run::{self, RunOptions};
use crate::scenario::diff::{NOT_THE_EXPERIMENT, differences};

pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// Content of a run's `done` marker: the key facts of its summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DoneMarker {
    pub run_id: String,
    /// The configuration the run is a replicate of (absent: the run id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(default)]
    pub replicate: usize,
    pub index: usize,
    pub seed: u64,
    pub variables: Vec<(String, String)>,
    pub backbone_accuracy: f64,
    pub parameters: usize,
    pub mean_retained_pct: f64,
    pub mean_pearson: f64,
    pub mean_alignment: f64,
    pub tunnel_class: Option<String>,
    pub secs: f64,
}

impl DoneMarker {
    /// The id of the run's configuration.
    pub fn config_id(&self) -> &str {
        self.config.as_deref().unwrap_or(&self.run_id)
    }
}

/// Content of a run's `failed` marker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailedMarker {
    pub run_id: String,
    pub index: usize,
    pub variables: Vec<(String, String)>,
    pub reason: String,
}

/// What happened to the runs of one invocation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StudyOutcome {
    pub out_dir: PathBuf,
    pub ran: Vec<String>,
    pub skipped_done: Vec<String>,
    pub skipped_failed: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub shard: Option<(usize, usize)>,
}

/// The runs of a shard: plan indices congruent to `i` modulo `n`.
pub fn shard_runs(plan: &Plan, shard: Option<(usize, usize)>) -> Vec<&PlannedRun> {
    plan.runs
        .iter()
        .filter(|r| shard.is_none_or(|(i, n)| r.index % n == i))
        .collect()
}

pub fn run_dir(out: &Path, id: &str) -> PathBuf {
    out.join("runs").join(id)
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(format!("json: {e}")))
}

/// Refuses a study folder whose finished runs have the other layout (replicates in
/// `runs/<config>/seed-<k>/` against single runs in `runs/<config>/`): running into it would mix
/// the two, or remove finished replicates as an interrupted run.
fn check_layout(out: &Path, plan: &Plan, r: &PlannedRun) -> Result<()> {
    let config = out.join("runs").join(&r.config);
    let finished = |d: &Path| d.join(DONE).is_file() || d.join(FAILED).is_file();
    let conflict = if plan.replicates > 1 {
        finished(&config).then_some("a single-seed run")
    } else {
        std::fs::read_dir(&config)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("seed-") && finished(&e.path()))
            .then_some("replicates (seed-*/)")
    };
    match conflict {
        Some(what) => Err(Error::input(
            &config,
            format!(
                "holds {what} of an earlier study with {} replicates; give another --out",
                if plan.replicates > 1 { "no" } else { "several" }
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses a study folder holding finished (or failed) runs that the plan does not have: the
/// scenario, or its `--set`, changed since they ran, and the folder's tables would mix two
/// experiments. The message names one such run and what differs.
fn check_plan(out: &Path, plan: &Plan) -> Result<()> {
    if !out.join("runs").is_dir() {
        return Ok(());
    }
    let found = super::collect::find_runs(&[out.to_path_buf()])?;
    let planned = |id: &str| plan.runs.iter().any(|r| r.id == id);
    let strays: Vec<(&str, &[(String, String)])> = found
        .finished
        .iter()
        .map(|r| (r.id.as_str(), &r.marker.variables[..]))
        .chain(found.failed.iter().map(|m| (m.run_id.as_str(), &m.variables[..])))
        .filter(|(id, _)| !planned(id))
        .collect();
    let Some(&(id, variables)) = strays.first() else {
        return Ok(());
    };
    let vars = variables
        .iter()
        .map(|(n, l)| format!("{n}={l}"))
        .collect::<Vec<_>>()
        .join(" ");
    let why = match plan.runs.iter().find(|r| r.variables == variables) {
        None => format!("run with {vars}, which the plan no longer has"),
        Some(r) => {
            let now = r.scenario.as_ref().map(serde_json::to_value).transpose();
            let now = now.map_err(|e| Error::Internal(format!("scenario: {e}")))?;
            let before = crate::results::recorded_scenario(&run_dir(out, id));
            // A run's name is its id and its seed derives from it: neither is a setting.
            let ignore: Vec<&str> = NOT_THE_EXPERIMENT.iter().copied().chain(["seed"]).collect();
            let differs: Vec<String> = match now.zip(before) {
                Some((now, before)) => differences(&now, &before, &ignore)
                    .iter()
                    .map(|d| d.text("finished"))
                    .collect(),
                None => Vec::new(),
            };
            if differs.is_empty() {
                format!("run with {vars} from another version of the scenario")
            } else {
                format!("the scenario changed since it ran: {}", differs.join("; "))
            }
        }
    };
    Err(Error::input(
        out,
        format!(
            "holds {} finished or failed run(s) that this study's plan does not have, e.g. runs/{id} ({why}); nothing \
             was changed. Give the study another --out, or move those runs out of runs/ to keep them apart",
            strays.len()
        ),
    ))
}

/// Run the planned runs of `shard` (all when `None`) into `out`; `log` receives progress lines.
pub fn run_study(
    plan: &Plan,
    out: &Path,
    shard: Option<(usize, usize)>,
    opts: &RunOptions,
    log: &mut dyn FnMut(&str),
) -> Result<StudyOutcome> {
    run::check_writable(out)?;
    // A study's folder is its own: never one that holds a single run or replicates.
    let other = crate::replicates::single_run_in(out).or_else(|| crate::replicates::replicates_in(out));
    if let Some(what) = other {
        return Err(Error::input(
            out,
            format!("holds {what}, not a study; nothing was changed. Give the study another --out"),
        ));
    }
    let mine = shard_runs(plan, shard);
    for r in &mine {
        check_layout(out, plan, r)?;
    }
    check_plan(out, plan)?;
    std::fs::create_dir_all(out.join("runs")).map_err(|e| Error::io(out.join("runs"), e))?;
    write_atomic(&out.join(PLAN_FILE), &to_json(plan)?)?;
    let mut outcome = StudyOutcome {
        out_dir: out.to_path_buf(),
        shard,
        ..Default::default()
    };
    let shard_text = shard.map(|(i, n)| format!(" (shard {i}/{n})")).unwrap_or_default();
    log(&format!(
        "study `{}`: {} of {} runs{shard_text} into {}",
        plan.name,
        mine.len(),
        plan.runs.len(),
        out.display()
    ));
    for (k, r) in mine.iter().enumerate() {
        let dir = run_dir(out, &r.id);
        let vars: Vec<String> = r.variables.iter().map(|(n, l)| format!("{n}={l}")).collect();
        let head = format!("[{}/{}] {} ({})", k + 1, mine.len(), r.id, vars.join(" "));
        if dir.join(DONE).is_file() {
            log(&format!("{head}: done earlier, skipped"));
            outcome.skipped_done.push(r.id.clone());
            continue;
        }
        if dir.join(FAILED).is_file() {
            log(&format!(
                "{head}: failed earlier (see {}), skipped; delete its folder to retry",
                dir.join(FAILED).display()
            ));
            outcome.skipped_failed.push(r.id.clone());
            continue;
        }
        if dir.exists() {
            // An interrupted run: start it again, from its training state when it has one.
            run::clear_interrupted(&dir)?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        log(&format!("{head}: running"));
        let t = Instant::now();
        let scenario = r
            .scenario
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("study run {} has no scenario (a plan read back)", r.id)))?;
        match run::run_loaded(scenario, Path::new(&plan.scenario_file), &dir, opts) {
            Ok(summary) => {
                let main = scenario.probe.main.label();
                let m = summary.means.iter().find(|m| m.model == "trained" && m.probe == main);
                let marker = DoneMarker {
                    run_id: r.id.clone(),
                    config: (r.config != r.id).then(|| r.config.clone()),
                    replicate: r.replicate,
                    index: r.index,
                    seed: r.seed,
                    variables: r.variables.clone(),
                    backbone_accuracy: summary.backbone_accuracy,
                    parameters: summary.parameters,
                    mean_retained_pct: m.map_or(f64::NAN, |m| m.mean_retained_pct),
                    mean_pearson: m.map_or(f64::NAN, |m| m.mean_pearson),
                    mean_alignment: m.map_or(f64::NAN, |m| m.mean_alignment),
                    tunnel_class: m.and_then(|m| m.tunnel_class).map(|c| c.name().to_string()),
                    secs: t.elapsed().as_secs_f64(),
                };
                write_atomic(&dir.join(DONE), &to_json(&marker)?)?;
                log(&format!(
                    "{head}: done in {:.0} s, accuracy {:.2}%, mean r {:.2}%",
                    marker.secs,
                    100.0 * marker.backbone_accuracy,
                    marker.mean_retained_pct
                ));
                outcome.ran.push(r.id.clone());
            }
            Err(Error::TrainingDiverged(reason)) => {
                let marker = FailedMarker {
                    run_id: r.id.clone(),
                    index: r.index,
                    variables: r.variables.clone(),
                    reason: format!("training diverged: {reason}"),
                };
                write_atomic(&dir.join(FAILED), &to_json(&marker)?)?;
                log(&format!("{head}: FAILED, {}", marker.reason));
                outcome.failed.push((r.id.clone(), marker.reason));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(outcome)
}
