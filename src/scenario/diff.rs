//! What two resolved scenarios differ in, key by key, named as `--set` names the keys
//! (`train.epochs`, `ood[2].classes`): `compare` says so when a run is judged against a baseline
//! recorded from other settings, and a resumed run with replicates when a finished replicate
//! came from another scenario.

use serde::Serialize;
use serde_json::Value;

/// Keys that name a run, bound its memory, set how finely its intervals are resampled or whether it
/// keeps its network, without changing its metrics: a finished replicate is resumed across them, and `compare` does not count
/// them as other settings.
pub const NOT_THE_EXPERIMENT: [&str; 6] = [
    "name",
    "description",
    "probe.feature_memory_gb",
    "probe.extraction_batch",
    "probe.bootstrap",
    "save_model",
];

/// One setting in which two resolved scenarios differ; a value that one of them does not set is
/// `None`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub key: String,
    pub now: Option<String>,
    pub before: Option<String>,
}

impl Difference {
    /// `train.epochs = 1 (baseline: 15)`, with `before` naming the other side.
    pub fn text(&self, before: &str) -> String {
        let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
        format!("{} = {} ({before}: {})", self.key, v(&self.now), v(&self.before))
    }
}

/// The settings in which `now` differs from `before` (both a resolved scenario as JSON), leaving
/// out the keys in `ignore` and everything below them. A key one side leaves unset (absent or
/// null) and the other sets is a difference; a table or list on one side only is one difference.
pub fn differences(now: &Value, before: &Value, ignore: &[&str]) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(String::new(), Some(now), Some(before), ignore, &mut out);
    out
}

fn walk(key: String, now: Option<&Value>, before: Option<&Value>, ignore: &[&str], out: &mut Vec<Difference>) {
    if ignore.contains(&key.as_str()) {
        return;
    }
    match (set(now), set(before)) {
        (None, None) => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let sub = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                walk(sub, a.get(k), b.get(k), ignore, out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                walk(format!("{key}[{i}]"), a.get(i), b.get(i), ignore, out);
            }
        }
        (a, b) if a != b => out.push(Difference {
            key,
            now: a.map(shown),
            before: b.map(shown),
        }),
        _ => {}
    }
}

/// A value that is set: neither absent nor null.
fn set(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// A value as a scenario file would write it: a string bare, anything else as JSON, a long one
/// cut short.
fn shown(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    match s.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_changed_setting_as_set_names_it() {
        let before = json!({
            "name": "quick", "seed": 0,
            "train": {"epochs": 15, "lr": 0.003, "augment": false},
            "ood": [{"kind": "embedded", "name": "mnist", "classes": null}, {"kind": "fractal", "classes": 10}],
            "probe": {"extraction_batch": 256},
        });
        let now = json!({
            "name": "quick-copy", "seed": 0,
            "train": {"epochs": 1, "lr": 0.003, "augment": false},
            "ood": [{"kind": "embedded", "name": "mnist"}, {"kind": "fractal", "classes": 20}, {"kind": "embedded", "name": "kmnist"}],
            "probe": {"extraction_batch": 64},
        });
        let d = differences(&now, &before, &NOT_THE_EXPERIMENT);
        let texts: Vec<String> = d.iter().map(|d| d.text("baseline")).collect();
        assert_eq!(
            texts,
            [
                "ood[1].classes = 20 (baseline: 10)",
                r#"ood[2] = {"kind":"embedded","name":"kmnist"} (baseline: unset)"#,
                "train.epochs = 1 (baseline: 15)",
            ]
        );
        assert!(differences(&before, &before, &[]).is_empty());
        // Without the ignore list the run's name and memory bound count too.
        assert_eq!(differences(&now, &before, &[]).len(), 5);
    }

    #[test]
    fn unset_and_null_are_the_same_and_long_values_are_cut() {
        assert!(differences(&json!({"a": null}), &json!({}), &[]).is_empty());
        let long = "x".repeat(100);
        let d = differences(&json!({ "a": long }), &json!({}), &[]);
        assert_eq!(d[0].now.as_ref().unwrap().chars().count(), 61);
        assert_eq!(d[0].text("before"), format!("a = {}… (before: unset)", "x".repeat(60)));
    }
}
