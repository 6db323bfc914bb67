//! Scenario files: loading with `--set` overrides, schema errors that name the file and key, and
//! validation of what serde cannot check.

pub mod continual;
pub mod data;
pub mod diff;
pub mod schema;
pub mod study;

use std::path::Path;

pub use schema::{DataKind, DataSpec, Scenario};

use crate::error::{Error, Result};
use crate::stats::inference::MIN_RESAMPLES;

/// Read a scenario file, apply `key=value` overrides, and validate it.
pub fn load(path: &Path, sets: &[String]) -> Result<Scenario> {
    from_table(path, load_table(path, sets)?)
}

/// Parse scenario text, apply `key=value` overrides, and validate it; `origin` names the text in
/// error messages.
pub fn load_str(text: &str, origin: &Path, sets: &[String]) -> Result<Scenario> {
    from_table(origin, parse_table(text, origin, sets)?)
}

/// Read a scenario file as a TOML table and apply `key=value` overrides, without checking it
/// against the schema.
pub fn load_table(path: &Path, sets: &[String]) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Error::input(path, "not a UTF-8 text file"),
        _ => Error::io(path, e),
    })?;
    parse_table(&text, path, sets)
}

fn parse_table(text: &str, path: &Path, sets: &[String]) -> Result<toml::Table> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let before = &text.as_bytes()[..span.start.min(text.len())];
                let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
                format!(" at line {line}")
            })
            .unwrap_or_default();
        Error::input(path, format!("not valid TOML{at}: {}", e.message().trim()))
    })?;
    for set in sets {
        apply_set(&mut table, set)?;
    }
    Ok(table)
}

/// Check a scenario table against the schema and validate it; errors name `path` and the key.
pub fn from_table(path: &Path, table: toml::Table) -> Result<Scenario> {
    if table.contains_key("comparison") && !table.contains_key("id") {
        return Err(Error::input(
            path,
            "a comparison spec (`[[comparison]]`), not a scenario: give it to `analyze --spec`, `collect --spec` or a \
             study's `study.spec`",
        ));
    }
    scenario_of(table).map_err(|e| e.in_file(path))
}

/// The validated scenario of a TOML table; a wrong key or value names the key, not yet the file.
pub fn scenario_of(table: toml::Table) -> Result<Scenario> {
    let scenario: Scenario = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let err = Error::usage(e.into_inner().message());
        if key == "." {
            err
        } else {
            err.context(format!("key `{key}`"))
        }
    })?;
    validate(&scenario)?;
    Ok(scenario)
}

/// Apply one `dotted.key=value` override. The value is parsed as a TOML value when it can be
/// (numbers, booleans, arrays, quoted strings), otherwise taken as a bare string.
pub fn apply_set(table: &mut toml::Table, set: &str) -> Result<()> {
    apply_option(table, "--set", set)
}

/// [`apply_set`] for a `key=value` given to the command-line option `option`, which its errors
/// name.
pub fn apply_option(table: &mut toml::Table, option: &str, set: &str) -> Result<()> {
    let (key, raw) = set
        .split_once('=')
        .ok_or_else(|| Error::usage(format!("{option} `{set}`: expected key=value")))?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    set_value(table, key, value).map_err(|e| Error::usage(format!("{option} `{set}`: {e}")))
}

/// Set `dotted.key` to `value`, creating intermediate tables; `name[i]` is entry `i` of the
/// array `name` (`ood[1].classes`), which must exist.
pub fn set_value(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::usage("empty key"));
    }
    let parts: Vec<&str> = key.split('.').collect();
    let mut current = table;
    for (i, part) in parts.iter().enumerate() {
        let so_far = parts[..=i].join(".");
        let (name, index) = match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
            Some((name, index)) => {
                let index = index
                    .parse::<usize>()
                    .map_err(|_| Error::usage(format!("`{so_far}`: `[{index}]` is not an index")))?;
                (name, Some(index))
            }
            None => (*part, None),
        };
        let last = i + 1 == parts.len();
        let slot = match index {
            None if last => {
                current.insert(name.to_string(), value);
                return Ok(());
            }
            None => current
                .entry(name.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
            Some(index) => {
                let entries = current
                    .get_mut(name)
                    .and_then(toml::Value::as_array_mut)
                    .ok_or_else(|| Error::usage(format!("`{so_far}`: `{name}` is not a list")))?;
                let n = entries.len();
                let slot = entries
                    .get_mut(index)
                    .ok_or_else(|| Error::usage(format!("`{so_far}`: `{name}` has {n} entries")))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
        };
        current = slot
            .as_table_mut()
            .ok_or_else(|| Error::usage(format!("`{so_far}` is not a table")))?;
    }
    Ok(())
}

/// The most replicates a scenario may ask for.
pub const MAX_REPLICATES: usize = 1000;

/// Checks that need more than one field.
pub fn validate(s: &Scenario) -> Result<()> {
    if s.name.trim().is_empty() || s.name.contains(['/', '\\']) || s.name.starts_with('.') {
        return Err(Error::usage(format!(
            "key `name`: `{}` is not a usable run name",
            s.name
        )));
    }
    if !(1..=MAX_REPLICATES).contains(&s.replicates) {
        return Err(Error::usage(format!(
            "key `replicates`: {} is outside 1..={MAX_REPLICATES}",
            s.replicates
        )));
    }
    let tau = s.tunnel_start_id.tau;
    if !(tau > 0.0 && tau <= 1.0) {
        return Err(Error::usage(format!(
            "key `tunnel_start_id.tau`: {tau} is outside (0, 1]"
        )));
    }
    s.model.resolve()?;
    s.model
        .check_resolution(s.resolution)
        .map_err(|e| e.context("key `resolution`"))?;
    match (&s.train, &s.model.weights) {
        (Some(t), _) => t.validate()?,
        (None, None) => {
            return Err(Error::usage(
                "section `[train]` is required (only a scenario that loads `model.weights` may leave it out)",
            ));
        }
        (None, Some(_)) if s.continual.is_some() => {
            return Err(Error::usage(
                "a `[continual]` scenario trains: section `[train]` is required",
            ));
        }
        (None, Some(_)) => {}
    }
    if s.model.weights.is_none() {
        if s.model.key_prefix.is_some() {
            return Err(Error::usage("key `model.key_prefix` needs `model.weights`"));
        }
        if !s.model.ignore_keys.is_empty() {
            return Err(Error::usage("key `model.ignore_keys` needs `model.weights`"));
        }
    }
    let at = |key: String| move |e: Error| e.context(format!("key `{key}`"));
    s.probe.main.validate().map_err(at("probe.main".into()))?;
    for (i, p) in s.probe.also.iter().enumerate() {
        p.validate().map_err(at(format!("probe.also[{i}]")))?;
    }
    let gb = s.probe.feature_memory_gb;
    if !(gb.is_finite() && gb > 0.0 && gb <= 1e6) {
        return Err(Error::usage(format!(
            "key `probe.feature_memory_gb` must be a number of GB > 0, got {gb}"
        )));
    }
    let batch = s.probe.extraction_batch;
    if !(1..=1 << 16).contains(&batch) {
        return Err(Error::usage(format!(
            "key `probe.extraction_batch` must be a number of images from 1 to 65536, got {batch}"
        )));
    }
    let resamples = s.probe.bootstrap;
    if resamples > 0 && resamples < MIN_RESAMPLES {
        return Err(Error::usage(format!(
            "key `probe.bootstrap`: a 95% interval needs at least {MIN_RESAMPLES} resamples of the test \
             images (0 for none), got {resamples}"
        )));
    }
    validate_data("id", &s.id, s.resolution)?;
    if let Some(c) = &s.continual {
        c.validate()?;
        for (i, d) in c.datasets.iter().enumerate() {
            validate_data(&format!("continual.datasets[{i}]"), d, s.resolution)?;
        }
        if c.strategies.contains(&continual::Strategy::Lwf) && c.heads == continual::Heads::Multi {
            return Err(Error::usage(
                "key `continual.strategies`: lwf needs `heads = \"shared\"`",
            ));
        }
        if c.swap.is_some() && !c.strategies.contains(&continual::Strategy::Finetune) {
            return Err(Error::usage(
                "key `continual.swap`: the swap protocol runs on the finetune strategy; add it",
            ));
        }
        let archs = if c.architectures.is_empty() {
            std::slice::from_ref(&s.model)
        } else {
            &c.architectures[..]
        };
        if let Some(swap) = &c.swap {
            // The swap runs on the first architecture's fine-tuned networks.
            let layers = crate::model::layer_names(&archs[0])?.len();
            match swap.k {
                Some(k) if !(1..layers).contains(&k) => {
                    return Err(Error::usage(format!(
                        "key `continual.swap.k`: {k} must be between 1 and {} (`{}` has {layers} probed layers)",
                        layers - 1,
                        archs[0].name
                    )));
                }
                None if !c.layer_probes => {
                    return Err(Error::usage(
                        "key `continual.swap`: without `swap.k` the protocol finds the tunnel from the layer probes; \
                         keep `layer_probes = true` or give `swap.k`",
                    ));
                }
                _ => {}
            }
        }
        for a in archs {
            let layers = crate::model::layer_names(a)?.len();
            let deepest = |key: &str, k: usize, max: usize| {
                if k > max {
                    Err(Error::usage(format!(
                        "key `continual.{key}`: {k} is more than `{}` allows ({max} of its {layers} probed layers)",
                        a.name
                    )))
                } else {
                    Ok(())
                }
            };
            if let Some(k) = c.extractor_layers {
                deepest("extractor_layers", k, layers)?;
            }
            if let Some(t) = &c.truncate {
                if let Some(k) = t.k {
                    deepest("truncate.k", k, layers)?;
                }
                if let Some(continual::Sweep::Depths(d)) = &t.sweep {
                    for &k in d {
                        deepest("truncate.sweep", k, layers - 1)?;
                    }
                }
            }
        }
    }
    let id_label = data_label(&s.id);
    let mut labels = vec![id_label.clone()];
    for (i, o) in s.ood.iter().enumerate() {
        validate_data(&format!("ood[{i}]"), o, s.resolution)?;
        if o == &s.id {
            return Err(Error::usage(format!(
                "key `ood[{i}]`: the OOD set is the ID set itself"
            )));
        }
        let label = data_label(o);
        if labels.contains(&label) {
            return Err(Error::usage(format!(
                "key `ood[{i}]`: label `{label}` is used twice; set `label` to tell the data sets apart"
            )));
        }
        labels.push(label);
    }
    Ok(())
}

/// The label a data set has in outputs.
pub fn data_label(d: &DataSpec) -> String {
    if let Some(l) = &d.label {
        return l.clone();
    }
    let kind = serde_json::to_value(d.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match &d.name {
        Some(n) => n.clone(),
        None => kind,
    }
}

/// The most pixel memory a generated data set may take.
const MAX_GENERATED_BYTES: u128 = 64 << 30;

fn validate_data(at: &str, d: &DataSpec, resolution: usize) -> Result<()> {
    use DataKind::*;
    let present: Vec<(&str, bool)> = vec![
        ("name", d.name.is_some()),
        ("classes", d.classes.is_some()),
        ("train_per_class", d.train_per_class.is_some()),
        ("test_per_class", d.test_per_class.is_some()),
        ("render_size", d.render_size.is_some()),
        ("seed", d.seed.is_some()),
        ("path", d.path.is_some()),
        ("train_images", d.train_images.is_some()),
        ("train_labels", d.train_labels.is_some()),
        ("test_images", d.test_images.is_some()),
        ("test_labels", d.test_labels.is_some()),
        ("train", d.train.is_some()),
        ("test", d.test.is_some()),
    ];
    let subset: &[&str] = &["classes", "train_per_class", "test_per_class", "seed"];
    let (required, allowed): (&[&str], Vec<&str>) = match d.kind {
        Fractal | Shapes | Texture => (
            &["classes", "train_per_class", "test_per_class"],
            vec!["classes", "train_per_class", "test_per_class", "render_size", "seed"],
        ),
        Embedded | Fetched => (&["name"], [&["name"][..], subset].concat()),
        Idx => (
            &["train_images", "train_labels", "test_images", "test_labels"],
            [
                &["train_images", "train_labels", "test_images", "test_labels"][..],
                subset,
            ]
            .concat(),
        ),
        Cifar10 | Cifar100 => (&["path"], [&["path"][..], subset].concat()),
        ImageFolder => (&["train", "test"], [&["train", "test"][..], subset].concat()),
    };
    let kind = serde_json::to_value(d.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    for (key, is_set) in &present {
        if *is_set && !allowed.contains(key) {
            return Err(Error::usage(format!(
                "key `{at}.{key}` does not apply to kind `{kind}` (allowed: kind, label, {})",
                allowed.join(", ")
            )));
        }
    }
    for key in required {
        if !present.iter().any(|(k, s)| k == key && *s) {
            return Err(Error::usage(format!("key `{at}.{key}` is required for kind `{kind}`")));
        }
    }
    for (key, v) in [
        ("classes", d.classes),
        ("train_per_class", d.train_per_class),
        ("test_per_class", d.test_per_class),
    ] {
        if v == Some(0) {
            return Err(Error::usage(format!("key `{at}.{key}` must be > 0")));
        }
    }
    if matches!(d.kind, Fractal | Shapes | Texture) && d.classes.is_some_and(|c| c < 2) {
        return Err(Error::usage(format!("key `{at}.classes` must be >= 2")));
    }
    if d.render_size.is_some_and(|r| !(8..=1024).contains(&r)) {
        return Err(Error::usage(format!("key `{at}.render_size` must be in 8..=1024")));
    }
    if let (Fractal | Shapes | Texture, Some(c), Some(tr), Some(te)) =
        (d.kind, d.classes, d.train_per_class, d.test_per_class)
    {
        // Rendered images are held in memory: refuse what could never fit instead of aborting.
        let side = d.render_size.unwrap_or(resolution) as u128;
        let bytes = c as u128 * (tr as u128 + te as u128) * side * side * 3;
        if bytes > MAX_GENERATED_BYTES {
            return Err(Error::usage(format!(
                "key `{at}`: {c} classes x ({tr} + {te}) images at {side}x{side} need {} GiB; the limit is {} GiB",
                bytes >> 30,
                MAX_GENERATED_BYTES >> 30
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_nested_keys_and_types() {
        let mut t: toml::Table = toml::from_str("[train]\nepochs = 3\n").unwrap();
        apply_set(&mut t, "train.epochs=7").unwrap();
        apply_set(&mut t, "train.augment=true").unwrap();
        apply_set(&mut t, "model.name=vggm-17").unwrap();
        assert_eq!(t["train"]["epochs"].as_integer(), Some(7));
        assert_eq!(t["train"]["augment"].as_bool(), Some(true));
        assert_eq!(t["model"]["name"].as_str(), Some("vggm-17"));
        assert!(apply_set(&mut t, "noequals").is_err());
        assert!(apply_set(&mut t, "train.epochs.x=1").is_err());
        // Entries of lists of tables.
        let mut t: toml::Table = toml::from_str("[[ood]]\nname = \"a\"\n[[ood]]\nname = \"b\"\n").unwrap();
        apply_set(&mut t, "ood[1].classes=4").unwrap();
        apply_set(&mut t, "ood[0]={ name = \"c\" }").unwrap();
        assert_eq!(t["ood"][1]["classes"].as_integer(), Some(4));
        assert_eq!(t["ood"][0]["name"].as_str(), Some("c"));
        let err = |set: &str| apply_set(&mut t.clone(), set).unwrap_err().to_string();
        assert!(err("ood[2].classes=4").contains("`ood[2]`: `ood` has 2 entries"));
        assert!(err("ood[x].classes=4").contains("`[x]` is not an index"));
        assert!(err("id[0].classes=4").contains("`id` is not a list"));
    }
}
