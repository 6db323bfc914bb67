//! Factor studies: a scenario's `[study]` section expands the base scenario into many runs.
//!
//! Every study variable maps each of its values to overrides of the base scenario (dotted keys,
//! as `--set` takes them), so any scenario key can be varied. The plan is the product of the
//! variables' values minus the `exclude` filters, or an explicit `[[study.runs]]` list. Each run
//! gets a stable id (a readable slug of its variable values plus a hash of its resolved
//! configuration) and its own seed derived from the master seed and that id.
//!
//! ```toml
//! [study]
//! spec = "study-mini-spec.toml"      # comparison spec for `analyze` (default: built-in h24)
//!
//! [[study.vary]]
//! key = "train.augment"
//! values = [false, true]
//!
//! [[study.vary]]                     # a variable whose values set several keys
//! name = "classes"
//! values = [{ label = "c5", set = { "id.classes" = 5 } }, { label = "c10", set = { "id.classes" = 10 } }]
//!
//! [[study.vary]]                     # ID data sets by name, from [study.data.NAME]
//! key = "id"
//! values = ["fmnist", "cifar10"]
//!
//! [[study.exclude]]                  # drop every run whose variables match all of these
//! "train.augment" = true
//! classes = "c5"
//! ```

pub mod collect;
pub mod exec;
pub mod report;
pub mod slurm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scenario::{self, DataSpec, Scenario};
use crate::seed::{derive_seed, fnv1a};

pub use crate::scenario::study::Variable;

/// One run of a study plan, as `study.json` records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Position in the plan (stable order: the product with the first variable slowest, or the
    /// order of `[[study.runs]]`; with replicates, every configuration's first replicate, then
    /// every second one, ...).
    pub index: usize,
    /// The run's folder under `runs/`: the configuration's id, with `/seed-<k>` after it when
    /// the study has replicates.
    pub id: String,
    /// The configuration's id (a readable slug of its variable values and a hash of its
    /// resolved configuration, seed and replicates aside).
    pub config: String,
    /// Which replicate of the configuration this run is.
    pub replicate: usize,
    pub seed: u64,
    /// (variable name, value label) pairs.
    pub variables: Vec<(String, String)>,
    /// The run's resolved scenario. Not in `study.json` (each finished run's `summary.json` keeps
    /// its own as `config`), so `None` in a plan read back with [`Plan::read`].
    #[serde(skip)]
    pub scenario: Option<Scenario>,
}

/// A study's base description and its runs: the record `study.json` holds, which `collect`,
/// `report` and `compare` read back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub scenario_file: String,
    pub master_seed: u64,
    /// Replicates of every configuration.
    pub replicates: usize,
    /// Absolute path of the comparison spec, when the study names one.
    #[serde(default)]
    pub spec: Option<PathBuf>,
    pub runs: Vec<PlannedRun>,
}

/// One assignment of a value to a dotted key.
type Assignment = (String, toml::Value);
/// (variable name, value label, value slug) of one run.
type RunVariables = Vec<(String, String, String)>;

/// A variable's value: its label in plans and ids, and the assignments it makes.
#[derive(Clone, Debug)]
struct Level {
    label: String,
    slug: String,
    raw: toml::Value,
    sets: Vec<Assignment>,
}

/// The label of a plain value in plans.
pub fn value_label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format!("{f}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(a) => format!("[{}]", a.iter().map(value_label).collect::<Vec<_>>().join(",")),
        toml::Value::Table(t) => ["label", "name", "kind"]
            .iter()
            .find_map(|k| t.get(*k).and_then(|v| v.as_str()).map(str::to_string))
            .unwrap_or_else(|| "table".into()),
        toml::Value::Datetime(d) => d.to_string(),
    }
}

/// A compact, file-name-safe slug of one value of `key`.
fn value_slug(key: &str, v: &toml::Value) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    let raw = match v {
        toml::Value::Boolean(true) => last.to_string(),
        toml::Value::Boolean(false) => format!("no-{last}"),
        toml::Value::Integer(_) | toml::Value::Float(_) => format!("{last}{}", value_label(v)),
        // Lists (e.g. OOD sets) would make long ids; the hash tells them apart.
        toml::Value::Array(a) => format!("{last}{}", a.len()),
        _ => value_label(v),
    };
    sanitize(&raw)
}

fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches(['-', '.']).to_string()
}

impl Variable {
    fn name(&self) -> String {
        self.name.clone().or_else(|| self.key.clone()).unwrap_or_default()
    }

    fn levels(&self, at: &str) -> Result<Vec<Level>> {
        if self.values.is_empty() {
            return Err(Error::usage(format!("key `{at}.values` is empty")));
        }
        if self.name.is_none() && self.key.is_none() {
            return Err(Error::usage(format!("key `{at}`: give `key` or `name`")));
        }
        let mut out: Vec<Level> = Vec::new();
        for (i, v) in self.values.iter().enumerate() {
            let level = match (v.as_table().filter(|t| t.contains_key("set")), &self.key) {
                (Some(t), _) => {
                    for k in t.keys() {
                        if k != "set" && k != "label" {
                            return Err(Error::usage(format!(
                                "key `{at}.values[{i}].{k}` is unknown (a level has `label` and `set`)"
                            )));
                        }
                    }
                    let label = t
                        .get("label")
                        .and_then(|l| l.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| Error::usage(format!("key `{at}.values[{i}].label` is required")))?;
                    let sets = t
                        .get("set")
                        .and_then(|s| s.as_table())
                        .ok_or_else(|| Error::usage(format!("key `{at}.values[{i}].set` must be a table")))?
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Level {
                        slug: sanitize(&label),
                        label,
                        raw: v.clone(),
                        sets,
                    }
                }
                (None, Some(key)) => Level {
                    label: value_label(v),
                    slug: value_slug(key, v),
                    raw: v.clone(),
                    sets: vec![(key.clone(), v.clone())],
                },
                (None, None) => {
                    return Err(Error::usage(format!(
                        "key `{at}.values[{i}]`: without `key`, each value must be {{ label = .., set = {{ .. }} }}"
                    )));
                }
            };
            if out.iter().any(|l| l.label == level.label) {
                return Err(Error::usage(format!(
                    "key `{at}.values[{i}]`: the value `{}` appears twice",
                    level.label
                )));
            }
            out.push(level);
        }
        Ok(out)
    }
}

/// Does a variable's level match a filter value (the raw value or its label)?
fn level_matches(level: &Level, want: &toml::Value) -> bool {
    if &level.raw == want {
        return true;
    }
    match (want, &level.raw) {
        (toml::Value::String(s), _) => s == &level.label,
        (toml::Value::Integer(a), toml::Value::Float(b)) => (*a as f64 - b).abs() < 1e-12,
        (toml::Value::Float(a), toml::Value::Integer(b)) => (a - *b as f64).abs() < 1e-12,
        _ => false,
    }
}

/// Replace data-set names by the `[study.data.NAME]` specs they name.
fn resolve_data_names(key: &str, value: toml::Value, data: &BTreeMap<String, DataSpec>) -> Result<toml::Value> {
    let lookup = |name: &str| -> Result<toml::Value> {
        let spec = data.get(name).ok_or_else(|| {
            Error::usage(format!(
                "data set `{name}` (key `{key}`) is not defined in [study.data]; defined: {}",
                data.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        toml::Value::try_from(spec).map_err(|e| Error::Internal(format!("data spec `{name}`: {e}")))
    };
    match (key, value) {
        ("id", toml::Value::String(name)) => lookup(&name),
        ("ood", toml::Value::Array(items)) => Ok(toml::Value::Array(
            items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(name) => lookup(&name),
                    other => Ok(other),
                })
                .collect::<Result<_>>()?,
        )),
        (_, v) => Ok(v),
    }
}

/// Expand a study scenario file (with `--set` overrides applied to the base) into its plan.
/// Fails with a usage error when the scenario has no `[study]` section.
pub fn plan(path: &Path, sets: &[String]) -> Result<Plan> {
    let mut table = scenario::load_table(path, sets)?;
    let base = scenario::from_table(path, table.clone())?;
    let study = base
        .study
        .clone()
        .ok_or_else(|| Error::input(path, "no [study] section: this is a single-run scenario"))?;
    table.remove("study");
    let in_file = |e: Error| e.in_file(path);

    // (variables, assignments) per run, in plan order.
    let mut combos: Vec<(RunVariables, Vec<Assignment>)> = Vec::new();
    if !study.runs.is_empty() {
        if !study.vary.is_empty() || !study.exclude.is_empty() {
            return Err(Error::input(
                path,
                "[study]: give either `vary` (with `exclude`) or an explicit `runs` list, not both",
            ));
        }
        for run in &study.runs {
            let vars = run
                .iter()
                .map(|(k, v)| (k.clone(), value_label(v), value_slug(k, v)))
                .collect();
            let sets = run.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            combos.push((vars, sets));
        }
    } else {
        if study.vary.is_empty() {
            return Err(Error::input(path, "[study] needs `vary` variables or a `runs` list"));
        }
        let mut vars: Vec<(String, Vec<Level>)> = Vec::new();
        for (i, v) in study.vary.iter().enumerate() {
            let levels = v.levels(&format!("study.vary[{i}]")).map_err(in_file)?;
            let name = v.name();
            if vars.iter().any(|(n, _)| n == &name) {
                return Err(Error::input(
                    path,
                    format!("key `study.vary[{i}]`: variable `{name}` appears twice"),
                ));
            }
            vars.push((name, levels));
        }
        for (i, ex) in study.exclude.iter().enumerate() {
            for (name, want) in ex {
                let Some((_, levels)) = vars.iter().find(|(n, _)| n == name) else {
                    return Err(Error::input(
                        path,
                        format!("key `study.exclude[{i}].{name}`: no study variable is named `{name}`"),
                    ));
                };
                if !levels.iter().any(|l| level_matches(l, want)) {
                    return Err(Error::input(
                        path,
                        format!(
                            "key `study.exclude[{i}].{name}`: `{}` is not one of the variable's values",
                            value_label(want)
                        ),
                    ));
                }
            }
        }
        let total: usize = vars.iter().map(|(_, l)| l.len()).product();
        for n in 0..total {
            // Mixed-radix digits, first variable slowest.
            let mut rem = n;
            let mut picks = vec![0usize; vars.len()];
            for (j, (_, levels)) in vars.iter().enumerate().rev() {
                picks[j] = rem % levels.len();
                rem /= levels.len();
            }
            let excluded = study.exclude.iter().any(|ex| {
                ex.iter().all(|(name, want)| {
                    vars.iter()
                        .zip(&picks)
                        .find(|((n, _), _)| n == name)
                        .is_some_and(|((_, levels), &p)| level_matches(&levels[p], want))
                })
            });
            if excluded {
                continue;
            }
            let mut variables = Vec::new();
            let mut sets = Vec::new();
            for ((name, levels), &p) in vars.iter().zip(&picks) {
                let l = &levels[p];
                variables.push((name.clone(), l.label.clone(), l.slug.clone()));
                sets.extend(l.sets.iter().cloned());
            }
            combos.push((variables, sets));
        }
        if combos.is_empty() {
            return Err(Error::input(path, "[study]: the exclusions remove every run"));
        }
    }

    // The comparison spec is read now, so that a bad one stops the study before its runs, not
    // at the analysis after them.
    let spec = match &study.spec {
        Some(s) => {
            let p = path.parent().unwrap_or(Path::new(".")).join(s);
            let p = std::fs::canonicalize(&p).unwrap_or(p);
            tunnelbench_stats::study::ComparisonSpec::load(&p)
                .map_err(|e| Error::from(e).context("key `study.spec`").in_file(path))?;
            Some(p)
        }
        None => None,
    };
    let mut configs: Vec<PlannedRun> = Vec::new();
    for (index, (variables, sets)) in combos.into_iter().enumerate() {
        let what = variables
            .iter()
            .map(|(n, l, _)| format!("{n}={l}"))
            .collect::<Vec<_>>()
            .join(" ");
        let at_run = format!("study run {index} ({what})");
        let mut t = table.clone();
        for (key, value) in sets {
            let value = resolve_data_names(&key, value, &study.data).map_err(in_file)?;
            scenario::set_value(&mut t, &key, value)
                .map_err(|e| e.context(format!("key `{key}`")).context(at_run.clone()).in_file(path))?;
        }
        let mut sc = scenario::scenario_of(t).map_err(|e| e.context(at_run.clone()).in_file(path))?;
        if sc.ood.is_empty() {
            // Every row of the study's table is a (run, OOD set): without one, hours of training
            // would end in an empty analysis.
            return Err(Error::input(
                path,
                format!("{at_run}: no [[ood]] set: a study's metrics compare OOD to ID; add at least one"),
            ));
        }
        // Replicates are runs of the plan: each is one run of its configuration.
        sc.replicates = 1;
        let canonical = serde_json::to_string(&sc).map_err(|e| Error::Internal(format!("run config: {e}")))?;
        let slug = variables
            .iter()
            .map(|(_, _, s)| s.as_str())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        let hash = format!("{:08x}", fnv1a(canonical.as_bytes()) >> 32);
        let id = if slug.is_empty() {
            hash
        } else {
            format!("{slug}-{hash}")
        };
        if let Some(other) = configs.iter().find(|r| r.id == id) {
            return Err(Error::input(
                path,
                format!(
                    "study runs {} and {index} ({what}) resolve to the same configuration (id {id})",
                    other.index
                ),
            ));
        }
        let seed = derive_seed(base.seed, &format!("run:{id}"));
        sc.name = id.clone();
        sc.seed = seed;
        configs.push(PlannedRun {
            index,
            config: id.clone(),
            id,
            replicate: 0,
            seed,
            variables: variables.into_iter().map(|(n, l, _)| (n, l)).collect(),
            scenario: Some(sc),
        });
    }
    let n = base.replicates;
    let mut runs = Vec::with_capacity(configs.len() * n);
    for k in 0..n {
        for c in &configs {
            let mut r = c.clone();
            r.index = runs.len();
            r.replicate = k;
            if n > 1 {
                r.id = format!("{}/seed-{k}", c.config);
                r.seed = crate::seed::replicate(c.seed, k);
                if let Some(sc) = &mut r.scenario {
                    sc.seed = r.seed;
                }
            }
            runs.push(r);
        }
    }
    Ok(Plan {
        name: base.name.clone(),
        scenario_file: path.display().to_string(),
        master_seed: base.seed,
        replicates: n,
        spec,
        runs,
    })
}

impl Plan {
    /// The plan a study folder records (`<dir>/study.json`).
    pub fn read(dir: &Path) -> Result<Plan> {
        crate::json::read(&dir.join(crate::results::PLAN_FILE), "a study plan")
    }

    /// The plan as printed by `tunnelbench plan`.
    pub fn text(&self) -> String {
        let replicates = if self.replicates > 1 {
            format!(
                " ({} configurations × {} replicates)",
                self.runs.len() / self.replicates,
                self.replicates
            )
        } else {
            String::new()
        };
        let mut s = format!(
            "study `{}` ({}): {} runs{replicates}, master seed {}\n",
            self.name,
            self.scenario_file,
            self.runs.len(),
            self.master_seed
        );
        let w = self.runs.iter().map(|r| r.id.len()).max().unwrap_or(0);
        for r in &self.runs {
            let vars: Vec<String> = r.variables.iter().map(|(n, l)| format!("{n}={l}")).collect();
            s.push_str(&format!("{:>4}  {:<w$}  {}\n", r.index, r.id, vars.join(" ")));
        }
        s
    }
}

/// Parse `--shard I/N` (0 <= I < N).
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::usage(format!("--shard `{s}`: expected I/N with 0 <= I < N (e.g. 0/4)"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i: usize = i.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(value_slug("train.augment", &toml::Value::Boolean(true)), "augment");
        assert_eq!(value_slug("train.augment", &toml::Value::Boolean(false)), "no-augment");
        assert_eq!(value_slug("resolution", &toml::Value::Integer(32)), "resolution32");
        assert_eq!(
            value_slug("model.name", &toml::Value::String("VGGm†/11".into())),
            "vggm-11"
        );
    }

    #[test]
    fn shard_parsing() {
        assert_eq!(parse_shard("1/3").unwrap(), (1, 3));
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
