//! The comparison specification: pairing groups of a study's models, each a filter on the variables,
//! and the built-in one of Harun et al. 2024.

use super::*;

/// A filter value: numbers match numerically (relative tolerance 1e-9), text matches exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CellValue {
    Number(f64),
    Text(String),
}

impl CellValue {
    pub(super) fn matches(&self, cell: &str) -> bool {
        let cell = cell.trim();
        match self {
            CellValue::Number(v) => cell
                .parse::<f64>()
                .map(|c| (c - v).abs() <= 1e-9 * v.abs().max(1.0))
                .unwrap_or(false),
            CellValue::Text(s) => cell == s,
        }
    }
}

/// Column (or [`MODEL_KEY`]) → accepted values; a row passes when every listed column matches
/// one of its values.
pub type Filter = BTreeMap<String, Vec<CellValue>>;

/// One paired (or, with `paired = false`, unpaired) comparison of two groups of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonDef {
    pub name: String,
    pub a_label: String,
    pub b_label: String,
    #[serde(default = "all_metrics")]
    pub metrics: Vec<Metric>,
    /// Rows must pass at least one of these filters (none: every row).
    #[serde(default, rename = "where")]
    pub within: Vec<Filter>,
    /// Rows passing any of these filters are dropped.
    #[serde(default)]
    pub exclude: Vec<Filter>,
    pub a: Filter,
    pub b: Filter,
    /// Variables allowed to differ between paired rows; pairs share the OOD set and every other
    /// variable. Rows with the same key pair in file order.
    #[serde(default)]
    pub vary: Vec<String>,
    #[serde(default = "yes")]
    pub paired: bool,
    /// Fail instead of skipping when a group has no rows.
    #[serde(default)]
    pub required: bool,
}

fn all_metrics() -> Vec<Metric> {
    Metric::ALL.to_vec()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "comparison")]
    pub comparisons: Vec<ComparisonDef>,
}

impl ComparisonSpec {
    pub fn load(path: &Path) -> Result<ComparisonSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| Error::input(path, e.to_string()))?;
        if table.contains_key("id") && !table.contains_key("comparison") {
            return Err(Error::input(
                path,
                "a scenario, not a comparison spec: a spec lists `[[comparison]]` entries (see scenarios/study-mini-spec.toml)",
            ));
        }
        let spec: ComparisonSpec = toml::from_str(&text).map_err(|e| Error::input(path, e.to_string()))?;
        if spec.comparisons.is_empty() {
            return Err(Error::input(path, "no [[comparison]] entries"));
        }
        Ok(spec)
    }

    /// The [H24] §7.4 pairing groups. Models the variables cannot tell apart (the reference
    /// file's CIFAR-100 VGGm-11, blocks 28/29, and its C100×S500 subset twin, blocks 56/57) are
    /// separated by model id; in studies without those ids the affected comparisons fall back
    /// to the variables alone.
    pub fn h24() -> ComparisonSpec {
        h24_spec()
    }
}

fn f(entries: &[(&str, &[f64])]) -> Filter {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|x| CellValue::Number(*x)).collect()))
        .collect()
}

fn and(a: &Filter, b: &Filter) -> Filter {
    let mut out = a.clone();
    out.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Every pair `(i, j)`, `i < j`, of `n` items, in order.
fn all_pairs(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).flat_map(move |i| (i + 1..n).map(move |j| (i, j)))
}

/// Group `a` against group `b`, named `{prefix}_{a}_vs_{b}`, each labelled by `label`.
fn group_pair(prefix: &str, a: &(&str, Filter), b: &(&str, Filter), label: impl Fn(&str) -> String) -> ComparisonDef {
    cmp_def(
        format!("{prefix}_{}_vs_{}", a.0, b.0),
        &label(a.0),
        &label(b.0),
        a.1.clone(),
        b.1.clone(),
    )
}

fn cmp_def(name: String, a_label: &str, b_label: &str, a: Filter, b: Filter) -> ComparisonDef {
    ComparisonDef {
        name,
        a_label: a_label.to_string(),
        b_label: b_label.to_string(),
        metrics: all_metrics(),
        within: Vec::new(),
        exclude: Vec::new(),
        a,
        b,
        vary: Vec::new(),
        paired: true,
        required: false,
    }
}

const G_VIT_T: f64 = 44.28166613;
const G_VIT_TP: f64 = 66.22516556;
const G_VGG11: f64 = 74.67104484;
const G_R18: f64 = 88.56333225;
const G_VGG17: f64 = 158.49837;
const G_R34: f64 = 168.3650514;
const G_CIFAR11: f64 = 189.2;
const G_CIFAR17: f64 = 401.6;

fn h24_spec() -> ComparisonSpec {
    let sr = "Spatial Reduction";
    let gamma = "OverParam. Level";
    let arch_vary: Vec<String> = ["Stem", sr, COL_ARCH, gamma, "Depth"].map(String::from).to_vec();
    let ids = |v: &[u32]| -> Filter {
        [(
            MODEL_KEY.to_string(),
            v.iter().map(|i| CellValue::Text(i.to_string())).collect(),
        )]
        .into_iter()
        .collect()
    };
    let res_32_224 = f(&[("Resolution", &[32.0, 224.0])]);
    // ImageNet-100 backbones (§6.2), by their γ and stem geometry.
    let vgg11 = f(&[("Stem", &[3.0]), (sr, &[0.5]), (gamma, &[G_VGG11])]);
    let vgg17 = f(&[("Stem", &[3.0]), (sr, &[0.5]), (gamma, &[G_VGG17])]);
    let r18 = f(&[(gamma, &[G_R18])]);
    let r34 = f(&[(gamma, &[G_R34])]);
    let vit_t = f(&[(gamma, &[G_VIT_T])]);
    let vit_tp = f(&[(gamma, &[G_VIT_TP])]);
    let mut out = Vec::new();

    let mut c = cmp_def(
        "augmentation".into(),
        "no aug",
        "aug",
        f(&[("Augmentations", &[0.0])]),
        f(&[("Augmentations", &[2.0])]),
    );
    c.vary = vec!["Augmentations".into()];
    out.push(c);

    let res = [32.0, 64.0, 128.0, 224.0];
    for (i, j) in all_pairs(res.len()) {
        let (r1, r2) = (res[i], res[j]);
        let mut c = cmp_def(
            format!("resolution_{r1}_vs_{r2}"),
            &format!("{r1}px"),
            &format!("{r2}px"),
            f(&[("Resolution", &[r1])]),
            f(&[("Resolution", &[r2])]),
        );
        c.within = vec![vgg17.clone(), r18.clone(), vit_tp.clone()];
        c.vary = vec!["Resolution".into()];
        out.push(c);
    }

    let mut c = cmp_def(
        "spatial_reduction_1_vs_0.5".into(),
        "φ = 1",
        "φ = 0.5",
        f(&[(sr, &[1.0])]),
        f(&[(sr, &[0.5])]),
    );
    c.within = vec![f(&[
        ("Stem", &[3.0]),
        ("Resolution", &[32.0]),
        ("ID Class Count", &[100.0]),
        (gamma, &[G_VGG11, G_VGG17, G_CIFAR11, G_CIFAR17]),
    ])];
    c.exclude = vec![ids(&[56, 57])];
    c.vary = vec![sr.into()];
    out.push(c);

    let stems = [
        ("3", f(&[("Stem", &[3.0]), (sr, &[0.5]), (gamma, &[G_VGG11, G_VGG17])])),
        ("7", f(&[("Stem", &[7.0])])),
        ("8", f(&[("Stem", &[8.0])])),
    ];
    for (i, j) in all_pairs(stems.len()) {
        let mut c = group_pair("stem", &stems[i], &stems[j], |s| format!("stem {s}"));
        c.within = vec![and(&res_32_224, &f(&[("ID Class Count", &[100.0])]))];
        c.vary = arch_vary.clone();
        out.push(c);
    }

    let families = [
        (
            "VGGm",
            f(&[("Stem", &[3.0]), (sr, &[0.5]), (gamma, &[G_VGG11, G_VGG17])]),
        ),
        ("ResNet", f(&[("Stem", &[7.0])])),
        ("ViT", f(&[("Stem", &[8.0])])),
    ];
    for (i, j) in all_pairs(families.len()) {
        let mut c = group_pair("family", &families[i], &families[j], str::to_string);
        c.within = vec![f(&[("ID Class Count", &[100.0])])];
        c.paired = false;
        out.push(c);
    }

    let mut c = cmp_def(
        "depth_11_vs_17".into(),
        "depth 11",
        "depth 17",
        f(&[("Depth", &[11.0])]),
        f(&[("Depth", &[17.0])]),
    );
    c.within = vec![f(&[
        ("Stem", &[3.0]),
        ("ID Class Count", &[100.0]),
        ("Resolution", &[32.0, 224.0]),
        (gamma, &[G_VGG11, G_VGG17]),
    ])];
    c.vary = vec!["Depth".into(), gamma.into()];
    out.push(c);

    let depth_groups = [
        ("11", "VGGm-11", &vgg11, "74.67"),
        ("12", "ViT-T", &vit_t, "44.28"),
        ("17", "VGGm-17", &vgg17, "158.5"),
        ("18R", "ResNet-18", &r18, "88.56"),
        ("18V", "ViT-T+", &vit_tp, "66.23"),
        ("34", "ResNet-34", &r34, "168.37"),
    ];
    // One comparison per pair of architecture groups, all resolutions pooled, named and labelled by
    // `key` of each group (its depth or its γ) after `word`; a pair compared above (depth 11
    // against 17) is not compared again.
    type Group<'a> = (&'a str, &'a str, &'a Filter, &'a str);
    let mut arch_pairs = |prefix: &str, word: &str, groups: &[Group], key: for<'g> fn(&Group<'g>) -> &'g str| {
        for (a, b) in all_pairs(groups.len()).map(|(i, j)| (&groups[i], &groups[j])) {
            let name = format!("{prefix}_{}_vs_{}", key(a), key(b));
            if out.iter().any(|c| c.name == name) {
                continue;
            }
            let label = |g: &Group| format!("{word} {} ({})", key(g), g.1);
            let mut c = cmp_def(name, &label(a), &label(b), a.2.clone(), b.2.clone());
            c.within = vec![res_32_224.clone()];
            c.vary = arch_vary.clone();
            out.push(c);
        }
    };
    arch_pairs("depth", "depth", &depth_groups, |g| g.0);
    let mut by_gamma = depth_groups.to_vec();
    by_gamma.sort_by(|a, b| a.3.parse::<f64>().unwrap_or(0.0).total_cmp(&b.3.parse().unwrap_or(0.0)));
    arch_pairs("overparam", "γ", &by_gamma, |g| g.3);

    // ID data: VGGm-11 at 32² on ImageNet-100, CIFAR-10, CIFAR-100.
    let common = f(&[
        ("Stem", &[3.0]),
        (sr, &[0.5]),
        ("Depth", &[11.0]),
        ("Resolution", &[32.0]),
    ]);
    let id_groups = [
        ("ImageNet-100", f(&[(gamma, &[G_VGG11]), ("ID Class Count", &[100.0])])),
        ("CIFAR-10", f(&[(gamma, &[G_CIFAR11]), ("ID Class Count", &[10.0])])),
        ("CIFAR-100", f(&[(gamma, &[G_CIFAR11]), ("ID Class Count", &[100.0])])),
    ];
    // The groups `i` and `j` of `groups` at the common architecture, the class count and γ varying.
    let data_pair = |prefix: &str, groups: &[(&str, Filter)], (i, j): (usize, usize), exclude: &[u32]| {
        let mut c = group_pair(prefix, &groups[i], &groups[j], str::to_string);
        c.within = vec![common.clone()];
        c.exclude = vec![ids(exclude)];
        c.vary = vec!["ID Class Count".into(), gamma.into()];
        c
    };
    for pair in [(0, 1), (0, 2), (1, 2)] {
        out.push(data_pair("id_data", &id_groups, pair, &[56, 57]));
    }

    // ImageNet-100 subsets (VGGm-11, 32²), by γ = P/N and class count.
    let subsets = [
        ("C100xS100", f(&[(gamma, &[946.0]), ("ID Class Count", &[100.0])])),
        ("C100xS200", f(&[(gamma, &[473.0])])),
        ("C100xS500", f(&[(gamma, &[G_CIFAR11]), ("ID Class Count", &[100.0])])),
        ("C100xS700", f(&[(gamma, &[135.14])])),
        ("C10xS1000", f(&[(gamma, &[946.0]), ("ID Class Count", &[10.0])])),
        ("C50xS200", f(&[(gamma, &[946.0]), ("ID Class Count", &[50.0])])),
    ];
    let subset_pairs = [
        (4, 5, "classes"),
        (4, 0, "classes"),
        (5, 0, "classes"),
        (0, 1, "samples"),
        (0, 2, "samples"),
        (0, 3, "samples"),
        (1, 2, "samples"),
        (1, 3, "samples"),
        (2, 3, "samples"),
    ];
    for (i, j, kind) in subset_pairs {
        out.push(data_pair(kind, &subsets, (i, j), &[28, 29]));
    }
    ComparisonSpec {
        name: "h24".into(),
        comparisons: out,
    }
}
