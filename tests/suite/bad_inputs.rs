//! A corpus of bad inputs driven through the real binary: broken scenario files, corrupt data files
//! referenced by scenarios, broken CSV for `analyze`, and a diverging training run. Each must end
//! with exit code 2, a message that names the file and the key or value at fault, and no panic.

use crate::common::{bin, entry_names, ok, refused, root, run_to, small_study, tempdir, text};

use std::io::Write;
use std::path::{Path, PathBuf};

/// A valid, seconds-long scenario; cases edit it textually.
const BASE: &str = r#"name = "bad"
seed = 1
resolution = 32

[id]
kind = "shapes"
classes = 3
train_per_class = 4
test_per_class = 2

[[ood]]
kind = "texture"
classes = 3
train_per_class = 4
test_per_class = 2

[model]
name = "vggm-11"
width = 0.0625

[train]
epochs = 1
batch = 8
lr = 3e-3
warmup_epochs = 0

[probe.main]
kind = "closed-form"

[control]
random_init = false
"#;

/// One bad input: the command line and the fragments its error message must contain.
struct Case {
    name: String,
    args: Vec<String>,
    expect: Vec<String>,
}

/// The test folder: one subfolder per case.
struct Corpus {
    root: PathBuf,
    cases: Vec<Case>,
}

impl Corpus {
    fn new(root: &Path) -> Self {
        Corpus {
            root: root.to_path_buf(),
            cases: Vec::new(),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A `run` case on scenario text `toml`, written to `<case>/<case>.toml`.
    fn scenario(&mut self, name: &str, toml: &str, expect: &[&str]) -> PathBuf {
        let dir = self.dir(name);
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        let mut exp: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
        exp.push(format!("{name}.toml"));
        self.run_case(name, &path, &[], exp);
        path
    }

    fn run_case(&mut self, name: &str, scenario: &Path, extra: &[&str], expect: Vec<String>) {
        let out = self.root.join(name).join("out");
        let mut args: Vec<String> = vec![
            "run".into(),
            scenario.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--quiet".into(),
            "--data-dir".into(),
            self.root.join("no-data").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.cases.push(Case {
            name: name.into(),
            args,
            expect,
        });
    }

    /// A `run` case whose scenario's `[id]` table is `id` (the rest is [`BASE`]).
    fn id_case(&mut self, name: &str, id: &str, expect: &[&str]) {
        let toml = with_id(id);
        self.scenario(name, &toml, expect);
    }

    /// A `run` case whose data file is at fault: the message names that file, not the scenario.
    fn data_case(&mut self, name: &str, id: &str, expect: &[&str]) {
        let p = self.scenario_file(name, &with_id(id));
        self.run_case(name, &p, &[], expect.iter().map(|s| s.to_string()).collect());
    }

    fn analyze(&mut self, name: &str, csv: &Path, spec: Option<&Path>, expect: &[&str]) {
        let mut args = vec!["analyze".to_string(), csv.display().to_string()];
        if let Some(s) = spec {
            args.push("--spec".into());
            args.push(s.display().to_string());
        }
        args.push("--out".into());
        args.push(self.dir(name).join("out").display().to_string());
        self.cases.push(Case {
            name: name.into(),
            args,
            expect: expect.iter().map(|s| s.to_string()).collect(),
        });
    }

    /// Runs every case; returns one line per failure.
    fn check(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for c in &self.cases {
            let o = bin().args(&c.args).output().expect("binary runs");
            let err = String::from_utf8_lossy(&o.stderr);
            let mut why = Vec::new();
            if o.status.code() != Some(2) {
                why.push(format!("exit {:?}, expected 2", o.status.code()));
            }
            if err.contains("panicked") {
                why.push("panicked".into());
            }
            for e in &c.expect {
                if !err.contains(e.as_str()) {
                    why.push(format!("message lacks `{e}`"));
                }
            }
            let out = self.root.join(&c.name).join("out");
            if out.join("probes.csv").exists() || out.join("summary.json").exists() {
                why.push("wrote result files".into());
            }
            if !why.is_empty() {
                failures.push(format!("{}: {} — stderr: {}", c.name, why.join(", "), err.trim()));
            }
        }
        failures
    }
}

/// [`BASE`] with `old` replaced by `new` (which must occur).
fn edit(old: &str, new: &str) -> String {
    assert!(BASE.contains(old), "BASE lacks {old}");
    BASE.replacen(old, new, 1)
}

const BASE_ID: &str = "[id]\nkind = \"shapes\"\nclasses = 3\ntrain_per_class = 4\ntest_per_class = 2\n";

fn with_id(id: &str) -> String {
    edit(BASE_ID, &format!("[id]\n{id}\n"))
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// A valid IDX pair set (3 classes, 6 train and 3 test images of 8x8) in `dir`.
fn write_idx_set(dir: &Path) {
    std::fs::write(dir.join("train-images"), idx_bytes(&[6, 8, 8], &[7; 6 * 64])).unwrap();
    std::fs::write(dir.join("train-labels"), idx_bytes(&[6], &[0, 1, 2, 0, 1, 2])).unwrap();
    std::fs::write(dir.join("test-images"), idx_bytes(&[3, 8, 8], &[9; 3 * 64])).unwrap();
    std::fs::write(dir.join("test-labels"), idx_bytes(&[3], &[0, 1, 2])).unwrap();
}

fn idx_spec(dir: &Path) -> String {
    let p = |f: &str| dir.join(f).display().to_string();
    format!(
        "kind = \"idx\"\ntrain_images = \"{}\"\ntrain_labels = \"{}\"\ntest_images = \"{}\"\ntest_labels = \"{}\"",
        p("train-images"),
        p("train-labels"),
        p("test-images"),
        p("test-labels")
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn cifar10_record(label: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend(std::iter::repeat_n(label.wrapping_mul(20), 3072));
    r
}

fn write_cifar10(dir: &Path) {
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), cifar10_record(b)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), cifar10_record(0)).unwrap();
}

fn png(path: &Path, w: u32, h: u32, v: u8) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([v, x as u8, y as u8]))
        .save(path)
        .unwrap();
}

/// An ImageFolder tree `root/{train,test}/{a,b}/*.png` with mixed image sizes.
fn write_image_folder(root: &Path) {
    for split in ["train", "test"] {
        for (c, class) in ["a", "b"].iter().enumerate() {
            let d = root.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..3u32 {
                png(&d.join(format!("{i}.png")), 10 + 3 * i, 12 + i, 60 * c as u8 + i as u8);
            }
        }
    }
}

fn folder_spec(root: &Path) -> String {
    format!(
        "kind = \"image-folder\"\ntrain = \"{}\"\ntest = \"{}\"",
        root.join("train").display(),
        root.join("test").display()
    )
}

/// `run` cases that replace one piece of [`BASE`]: (case, text replaced, its replacement, what the
/// message must name besides the file).
const EDITS: &[(&str, &str, &str, &[&str])] = &[
    // Unknown keys at every level.
    ("unknown_top_key", "seed = 1\n", "seed = 1\ncolour = 3\n", &["colour"]),
    (
        "unknown_id_key",
        "classes = 3\n",
        "classes = 3\nshade = 1\n",
        &["id", "shade"],
    ),
    (
        "unknown_ood_key",
        "kind = \"texture\"\n",
        "kind = \"texture\"\nhue = 1\n",
        &["ood[0]", "hue"],
    ),
    (
        "unknown_model_key",
        "width = 0.0625\n",
        "width = 0.0625\nlayers = 3\n",
        &["model", "layers"],
    ),
    (
        "unknown_train_key",
        "epochs = 1\n",
        "epochz = 1\n",
        &["train", "epochz"],
    ),
    (
        "unknown_probe_key",
        "kind = \"closed-form\"\n",
        "kind = \"closed-form\"\nalpha = 1\n",
        &["probe.main", "alpha"],
    ),
    (
        "unknown_control_key",
        "random_init = false\n",
        "random_init = false\nshuffle = true\n",
        &["control", "shuffle"],
    ),
    // Wrong types.
    (
        "resolution_is_text",
        "resolution = 32",
        "resolution = \"16\"",
        &["resolution"],
    ),
    ("lr_is_text", "lr = 3e-3", "lr = \"fast\"", &["train.lr"]),
    ("classes_is_float", "classes = 3\n", "classes = 2.5\n", &["id.classes"]),
    // Negative and zero values.
    ("epochs_negative", "epochs = 1", "epochs = -1", &["train.epochs"]),
    ("epochs_zero", "epochs = 1", "epochs = 0", &["epochs must be > 0"]),
    (
        "batch_zero",
        "batch = 8",
        "batch = 0",
        &["train", "batch must be at least 2, got 0"],
    ),
    // A batch of one would skip every step and train nothing.
    (
        "batch_one",
        "batch = 8",
        "batch = 1",
        &["train", "batch must be at least 2, got 1"],
    ),
    ("lr_negative", "lr = 3e-3", "lr = -0.1", &["lr must be > 0", "-0.1"]),
    ("lr_nan", "lr = 3e-3", "lr = nan", &["lr must be > 0", "NaN"]),
    (
        "weight_decay_negative",
        "lr = 3e-3",
        "lr = 3e-3\nweight_decay = -1",
        &["weight_decay", "-1"],
    ),
    ("classes_zero", "classes = 3\n", "classes = 0\n", &["id.classes", "> 0"]),
    ("classes_one", "classes = 3\n", "classes = 1\n", &["id.classes", ">= 2"]),
    (
        "test_per_class_zero",
        "test_per_class = 2\n",
        "test_per_class = 0\n",
        &["id.test_per_class"],
    ),
    ("seed_negative", "seed = 1", "seed = -5", &["seed"]),
    (
        "probe_ridge_zero",
        "kind = \"closed-form\"\n",
        "kind = \"closed-form\"\nridge_lambda = 0\n",
        &["key `probe.main`", "ridge_lambda", "got 0"],
    ),
    (
        "probe_epochs_zero",
        "kind = \"closed-form\"\n",
        "kind = \"paper\"\nepochs = 0\n",
        &["key `probe.main`", "epochs must be > 0"],
    ),
    (
        "feature_memory_zero",
        "[probe.main]\n",
        "[probe]\nfeature_memory_gb = 0\n\n[probe.main]\n",
        &["probe.feature_memory_gb", "got 0"],
    ),
    (
        "feature_memory_text",
        "[probe.main]\n",
        "[probe]\nfeature_memory_gb = \"lots\"\n\n[probe.main]\n",
        &["probe.feature_memory_gb"],
    ),
    (
        "extraction_batch_zero",
        "[probe.main]\n",
        "[probe]\nextraction_batch = 0\n\n[probe.main]\n",
        &["probe.extraction_batch", "got 0"],
    ),
    // The OOD set is the ID set; two OOD sets with one label.
    (
        "ood_equals_id",
        "kind = \"texture\"\n",
        "kind = \"shapes\"\n",
        &["ood[0]", "ID set itself"],
    ),
    (
        "ood_label_twice",
        "[model]",
        "[[ood]]\nkind = \"texture\"\nclasses = 4\ntrain_per_class = 4\ntest_per_class = 2\n\n[model]",
        &["ood[1]", "texture", "used twice"],
    ),
    // Contradictory options: a ViT knob on a CNN.
    (
        "vit_knob_on_cnn",
        "width = 0.0625\n",
        "width = 0.0625\nheads = 4\n",
        &["vggm-11", "ViTs only"],
    ),
    // Names and resolutions.
    ("empty_name", "name = \"bad\"", "name = \"\"", &["key `name`"]),
    (
        "name_with_slash",
        "name = \"bad\"",
        "name = \"../up\"",
        &["key `name`", "../up"],
    ),
    (
        "resolution_too_small",
        "resolution = 32",
        "resolution = 4",
        &["key `resolution`", "4"],
    ),
    (
        "resolution_zero",
        "resolution = 32",
        "resolution = 0",
        &["key `resolution`"],
    ),
    (
        "resolution_too_large",
        "resolution = 32",
        "resolution = 100000",
        &["key `resolution`", "100000"],
    ),
    (
        "resolution_negative",
        "resolution = 32",
        "resolution = -16",
        &["resolution"],
    ),
    (
        "tunnel_start_tau_above_one",
        "[control]",
        "[tunnel_start_id]\ntau = 1.5\n\n[control]",
        &["key `tunnel_start_id.tau`: 1.5 is outside (0, 1]"],
    ),
    (
        "resolution_not_a_whole_number_of_patches",
        "name = \"vggm-11\"",
        "name = \"vit-t\"\npatch = 5",
        &["key `resolution`: 32 is not a multiple of `vit-t`'s patch size 5"],
    ),
    // Data kinds and their keys.
    (
        "unknown_data_kind",
        "kind = \"shapes\"",
        "kind = \"mnist\"",
        &["id.kind", "mnist"],
    ),
    (
        "path_on_generator",
        "classes = 3\n",
        "classes = 3\npath = \"/tmp\"\n",
        &["id.path", "does not apply", "shapes"],
    ),
    (
        "render_size_too_small",
        "classes = 3\n",
        "classes = 3\nrender_size = 2\n",
        &["id.render_size"],
    ),
    // Syntax and missing tables.
    ("invalid_toml", "[train]", "[train", &["not valid TOML", "line 21"]),
    (
        "missing_train_table",
        "[train]\nepochs = 1\nbatch = 8\nlr = 3e-3\nwarmup_epochs = 0\n",
        "",
        &["train"],
    ),
    ("missing_name", "name = \"bad\"\n", "", &["name"]),
    // Architectures.
    (
        "unknown_architecture",
        "vggm-11",
        "vggm-12",
        &["vggm-12", "unknown architecture"],
    ),
    (
        "width_zero",
        "width = 0.0625",
        "width = 0",
        &["width must be in (0, 16]", "got 0"],
    ),
    ("width_negative", "width = 0.0625", "width = -1", &["width", "-1"]),
    (
        "vit_dim_not_divisible_by_heads",
        "name = \"vggm-11\"\nwidth = 0.0625",
        "name = \"vit-t\"\ndim = 100\nheads = 3\npatch = 4",
        &["vit-t", "dim 100", "heads 3"],
    ),
    (
        "vit_heads_zero",
        "name = \"vggm-11\"\nwidth = 0.0625",
        "name = \"vit-t\"\nheads = 0\npatch = 4",
        &["vit-t", "heads 0"],
    ),
    (
        "vit_patch_larger_than_image",
        "name = \"vggm-11\"\nwidth = 0.0625",
        "name = \"vit-t\"\nwidth = 0.25\npatch = 64",
        &["key `resolution`", "vit-t"],
    ),
    (
        "vit_dim_huge",
        "name = \"vggm-11\"\nwidth = 0.0625",
        "name = \"vit-t\"\nheads = 1\ndim = 4611686018427387904",
        &["vit-t", "too large"],
    ),
    (
        "generator_too_large",
        "classes = 3\ntrain_per_class = 4\n",
        "classes = 100000\ntrain_per_class = 100000\n",
        &["key `id`", "GiB"],
    ),
    (
        "epochs_absurd",
        "epochs = 1",
        "epochs = 1000000000000",
        &["train", "epochs must be at most"],
    ),
    // Probes and smoothing.
    (
        "unknown_probe_kind",
        "kind = \"closed-form\"",
        "kind = \"svm\"",
        &["probe.main.kind", "svm"],
    ),
    (
        "train_label_smoothing_one",
        "lr = 3e-3",
        "lr = 3e-3\nlabel_smoothing = 1.0",
        &["label_smoothing", "1"],
    ),
    (
        "probe_label_smoothing_above_one",
        "kind = \"closed-form\"\n",
        "kind = \"paper\"\nlabel_smoothing = 1.5\n",
        &["key `probe.main`", "label_smoothing", "1.5"],
    ),
];

/// `run` cases whose `[id]` table is replaced: (case, the table's keys, what the message must name).
const ID_EDITS: &[(&str, &str, &[&str])] = &[
    // Data kinds without the keys they need, or with an unknown set.
    (
        "idx_without_files",
        "kind = \"idx\"",
        &["id.train_images", "required", "idx"],
    ),
    ("fetched_without_name", "kind = \"fetched\"", &["id.name", "required"]),
    (
        "embedded_unknown_name",
        "kind = \"embedded\"\nname = \"imagenet\"",
        &["key `id`", "imagenet"],
    ),
    (
        "fetched_not_installed",
        "kind = \"fetched\"\nname = \"mnist\"",
        &["mnist", "not installed", "data fetch"],
    ),
    (
        "fetched_unknown_name",
        "kind = \"fetched\"\nname = \"no-such-set\"",
        &["no-such-set"],
    ),
];

fn scenario_cases(c: &mut Corpus) {
    for (name, old, new, expect) in EDITS {
        c.scenario(name, &edit(old, new), expect);
    }
    for (name, id, expect) in ID_EDITS {
        c.id_case(name, id, expect);
    }
    // A string where a list of tables belongs.
    let no_ood = edit(
        "[[ood]]\nkind = \"texture\"\nclasses = 3\ntrain_per_class = 4\ntest_per_class = 2\n",
        "",
    );
    c.scenario(
        "ood_is_a_string",
        &no_ood.replace("seed = 1\n", "seed = 1\nood = \"texture\"\n"),
        &["key `ood`", "expected a sequence"],
    );
    // The file itself: not UTF-8, a directory, missing, and a bad --set.
    let dir = c.dir("not_utf8");
    let p = dir.join("not_utf8.toml");
    std::fs::write(&p, b"name = \"\xff\xfe\"\n").unwrap();
    c.run_case("not_utf8", &p, &[], vec!["not_utf8.toml".into(), "UTF-8".into()]);
    let p = c.dir("scenario_is_dir").join("scenario_is_dir.toml");
    std::fs::create_dir_all(&p).unwrap();
    c.run_case("scenario_is_dir", &p, &[], vec!["scenario_is_dir.toml".into()]);
    let p = c.root.join("missing_scenario").join("missing.toml");
    c.run_case("missing_scenario", &p, &[], vec!["missing.toml".into()]);
    let p = c.scenario_file("set_without_equals", BASE);
    c.run_case(
        "set_without_equals",
        &p,
        &["--set", "trainepochs"],
        vec!["trainepochs".into()],
    );
    let p = c.scenario_file("set_into_a_value", BASE);
    c.run_case(
        "set_into_a_value",
        &p,
        &["--set", "resolution.x=1"],
        vec!["resolution".into(), "not a table".into()],
    );
}

impl Corpus {
    /// Writes a scenario file without adding a case.
    fn scenario_file(&self, name: &str, toml: &str) -> PathBuf {
        let p = self.dir(name).join(format!("{name}.toml"));
        std::fs::write(&p, toml).unwrap();
        p
    }
}

fn data_cases(c: &mut Corpus) {
    let s = |p: &Path| p.display().to_string();
    // More classes than the data has.
    let d = c.dir("idx_more_classes");
    write_idx_set(&d);
    c.id_case(
        "idx_more_classes",
        &format!("{}\nclasses = 5", idx_spec(&d)),
        &["key `id`", "classes = 5", "only 3"],
    );

    // IDX files: each case breaks one file of an otherwise valid set.
    type Break = fn(&Path) -> Vec<String>;
    let idx_breaks: Vec<(&str, Break)> = vec![
        ("idx_truncated", |d| {
            let mut b = idx_bytes(&[6, 8, 8], &[7; 6 * 64]);
            b.truncate(100);
            std::fs::write(d.join("train-images"), b).unwrap();
            vec!["train-images".into(), "truncated".into()]
        }),
        ("idx_truncated_header", |d| {
            std::fs::write(d.join("train-labels"), [0, 0, 8]).unwrap();
            vec!["train-labels".into(), "truncated IDX header".into()]
        }),
        ("idx_wrong_magic", |d| {
            let mut b = idx_bytes(&[3, 8, 8], &[9; 3 * 64]);
            b[0] = 0x50;
            b[1] = 0x4b;
            std::fs::write(d.join("test-images"), b).unwrap();
            vec!["test-images".into(), "wrong magic".into()]
        }),
        ("idx_wrong_type", |d| {
            let mut b = idx_bytes(&[3], &[0, 1, 2]);
            b[2] = 0x0d;
            std::fs::write(d.join("test-labels"), b).unwrap();
            vec!["test-labels".into(), "0x0d".into()]
        }),
        ("idx_zero_images", |d| {
            std::fs::write(d.join("train-images"), idx_bytes(&[0, 8, 8], &[])).unwrap();
            std::fs::write(d.join("train-labels"), idx_bytes(&[0], &[])).unwrap();
            vec!["train-images".into(), "zero images".into()]
        }),
        ("idx_label_out_of_range", |d| {
            std::fs::write(d.join("test-labels"), idx_bytes(&[3], &[0, 1, 7])).unwrap();
            vec!["test-labels".into(), "label 7 out of range".into()]
        }),
        ("idx_mismatched_counts", |d| {
            std::fs::write(d.join("train-labels"), idx_bytes(&[5], &[0, 1, 2, 0, 1])).unwrap();
            vec!["train-labels".into(), "5 labels for 6 images".into()]
        }),
        ("idx_labels_2d", |d| {
            std::fs::write(d.join("train-labels"), idx_bytes(&[6, 1], &[0, 1, 2, 0, 1, 2])).unwrap();
            vec!["train-labels".into(), "expected [N]".into()]
        }),
        ("idx_trailing_bytes", |d| {
            let mut b = idx_bytes(&[3, 8, 8], &[9; 3 * 64]);
            b.extend_from_slice(b"junk");
            std::fs::write(d.join("test-images"), b).unwrap();
            vec!["test-images".into(), "4 unexpected bytes".into()]
        }),
        ("idx_missing_file", |d| {
            std::fs::remove_file(d.join("test-labels")).unwrap();
            vec!["test-labels".into(), "No such file".into()]
        }),
        ("idx_directory_for_file", |d| {
            std::fs::remove_file(d.join("train-images")).unwrap();
            std::fs::create_dir(d.join("train-images")).unwrap();
            vec!["train-images".into(), "directory".into()]
        }),
        ("idx_corrupt_gzip", |d| {
            let mut b = gzip(&idx_bytes(&[6, 8, 8], &[7; 6 * 64]));
            let n = b.len();
            b.truncate(n / 2);
            std::fs::write(d.join("train-images"), b).unwrap();
            vec!["train-images".into(), "corrupt gzip".into()]
        }),
        ("idx_gzip_of_garbage", |d| {
            std::fs::write(d.join("test-images"), gzip(b"hello, not an idx file")).unwrap();
            vec!["test-images".into(), "wrong magic".into()]
        }),
    ];
    for (name, brk) in idx_breaks {
        let d = c.dir(name);
        write_idx_set(&d);
        let expect = brk(&d);
        let toml = with_id(&idx_spec(&d));
        let p = c.scenario_file(name, &toml);
        c.run_case(name, &p, &[], expect);
    }

    // An unreadable file: permissions do not stop root, so the case is skipped there.
    let d = c.dir("idx_unreadable");
    write_idx_set(&d);
    let f = d.join("train-images");
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if std::fs::read(&f).is_ok() {
        println!("skipping idx_unreadable: a chmod 000 file is still readable (running as root)");
    } else {
        let p = c.scenario_file("idx_unreadable", &with_id(&idx_spec(&d)));
        c.run_case(
            "idx_unreadable",
            &p,
            &[],
            vec!["train-images".into(), "ermission denied".into()],
        );
    }

    // CIFAR-10 binary batches: each case breaks one file of an otherwise valid set.
    type Spoil = fn(&Path);
    let cifar_breaks: [(&str, Spoil, &[&str]); 5] = [
        (
            "cifar_truncated",
            |d| {
                let mut b = cifar10_record(3);
                b.truncate(2000);
                std::fs::write(d.join("data_batch_4.bin"), b).unwrap();
            },
            &["data_batch_4.bin", "truncated", "2000 bytes"],
        ),
        (
            "cifar_label_out_of_range",
            |d| std::fs::write(d.join("test_batch.bin"), cifar10_record(12)).unwrap(),
            &["test_batch.bin", "label 12 out of range"],
        ),
        (
            "cifar_missing_batch",
            |d| std::fs::remove_file(d.join("data_batch_2.bin")).unwrap(),
            &["data_batch_2.bin"],
        ),
        (
            "cifar_empty_batch",
            |d| std::fs::write(d.join("data_batch_5.bin"), b"").unwrap(),
            &["data_batch_5.bin", "zero images"],
        ),
        (
            "cifar_bad_meta",
            |d| std::fs::write(d.join("batches.meta.txt"), "cat\ndog\n").unwrap(),
            &["batches.meta.txt", "2 class names", "expected 10"],
        ),
    ];
    for (name, spoil, expect) in cifar_breaks {
        let d = c.dir(name);
        write_cifar10(&d);
        spoil(&d);
        c.data_case(name, &format!("kind = \"cifar10\"\npath = \"{}\"", s(&d)), expect);
    }
    // A CIFAR-100 batch.
    let d = c.dir("cifar100_coarse_out_of_range");
    let rec = |coarse: u8, fine: u8| [vec![coarse, fine], vec![fine; 3072]].concat();
    std::fs::write(d.join("train.bin"), [rec(1, 2), rec(25, 3)].concat()).unwrap();
    std::fs::write(d.join("test.bin"), rec(1, 2)).unwrap();
    c.data_case(
        "cifar100_coarse_out_of_range",
        &format!("kind = \"cifar100\"\npath = \"{}\"", s(&d)),
        &["train.bin", "record 1", "coarse label 25"],
    );

    // ImageFolder trees: each case spoils one valid tree, then a missing and an empty one.
    let folder_breaks: [(&str, Spoil, &[&str]); 3] = [
        (
            "folder_undecodable",
            |d| std::fs::write(d.join("train/b/9.png"), b"\x89PNG\r\n\x1a\n not really").unwrap(),
            &["9.png", "cannot decode"],
        ),
        (
            "folder_empty_class",
            |d| {
                std::fs::create_dir_all(d.join("test/c")).unwrap();
                std::fs::create_dir_all(d.join("train/c")).unwrap();
                std::fs::write(d.join("train/c/readme.txt"), "no images").unwrap();
            },
            &["train/c", "empty class folder"],
        ),
        (
            "folder_class_mismatch",
            |d| std::fs::rename(d.join("test/b"), d.join("test/z")).unwrap(),
            &["test", "class folder `z`"],
        ),
    ];
    for (name, spoil, expect) in folder_breaks {
        let d = c.dir(name);
        write_image_folder(&d);
        spoil(&d);
        c.data_case(name, &folder_spec(&d), expect);
    }
    let d = c.dir("folder_missing_root");
    c.data_case(
        "folder_missing_root",
        &folder_spec(&d.join("nowhere")),
        &["nowhere/train", "No such file"],
    );
    let d = c.dir("folder_no_classes");
    std::fs::create_dir_all(d.join("train")).unwrap();
    std::fs::create_dir_all(d.join("test")).unwrap();
    c.data_case("folder_no_classes", &folder_spec(&d), &["train", "no class folders"]);
}

fn csv_cases(c: &mut Corpus) {
    let good = small_study();
    let write = |c: &Corpus, name: &str, file: &str, text: &str| {
        let p = c.dir(name).join(file);
        std::fs::write(&p, text).unwrap();
        p
    };
    let p = write(
        c,
        "csv_missing_column",
        "study.csv",
        &good.replace("ID OOD Alignment,", ""),
    );
    c.analyze(
        "csv_missing_column",
        &p,
        None,
        &["study.csv", "missing column 'ID OOD Alignment'"],
    );
    // The Pearson cell of line 4 is NaN.
    let nan: Vec<String> = good
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut f: Vec<&str> = l.split(',').collect();
            if i == 3 {
                f[2] = "NaN";
            }
            f.join(",") + "\n"
        })
        .collect();
    let nan = nan.concat();
    let p = write(c, "csv_nan_cell", "study.csv", &nan);
    c.analyze(
        "csv_nan_cell",
        &p,
        None,
        &["study.csv", "line 4", "Pearson Correlation", "NaN"],
    );
    let text = good.replacen(",74.6,", ",lots,", 1);
    let p = write(c, "csv_text_in_number", "study.csv", &text);
    c.analyze(
        "csv_text_in_number",
        &p,
        None,
        &["study.csv", "line 2", "OverParam. Level", "lots"],
    );
    let p = write(c, "csv_empty", "study.csv", "");
    c.analyze("csv_empty", &p, None, &["study.csv", "empty"]);
    let p = write(c, "csv_short_row", "study.csv", &(good.clone() + "run9,stl10,0.5\n"));
    c.analyze("csv_short_row", &p, None, &["study.csv", "line 10"]);
    let p = c.root.join("csv_missing_file").join("absent.csv");
    c.analyze("csv_missing_file", &p, None, &["absent.csv"]);
    // A scenario given as the comparison spec, and a spec given as the scenario.
    let csv = write(c, "spec_is_a_scenario", "study.csv", &good);
    let quick = root().join("scenarios/quick.toml");
    c.analyze(
        "spec_is_a_scenario",
        &csv,
        Some(&quick),
        &["quick.toml: a scenario, not a comparison spec"],
    );
    let spec = root().join("scenarios/study-mini-spec.toml");
    c.run_case(
        "scenario_is_a_spec",
        &spec,
        &[],
        vec!["study-mini-spec.toml: a comparison spec (`[[comparison]]`), not a scenario".into()],
    );
    // Unpaired design: the augmented CNN lacks its cifar100 row.
    let unpaired: String = good
        .lines()
        .filter(|l| !(l.starts_with("run1,cifar100")))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = write(c, "csv_unpaired", "study.csv", &unpaired);
    let spec = write(
        c,
        "csv_unpaired",
        "spec.toml",
        "[[comparison]]\nname = \"aug\"\na_label = \"none\"\nb_label = \"aug\"\na = { Augmentations = [0] }\nb = { Augmentations = [2] }\nvary = [\"Augmentations\"]\n",
    );
    c.analyze(
        "csv_unpaired",
        &p,
        Some(&spec),
        &["study.csv", "unpaired design", "line 3"],
    );
    let p = write(c, "csv_spec_unknown_key", "study.csv", &good);
    let spec = write(
        c,
        "csv_spec_unknown_key",
        "spec.toml",
        "[[comparison]]\nname = \"x\"\na_label = \"a\"\nb_label = \"b\"\na = {}\nb = {}\ncolour = 1\n",
    );
    c.analyze("csv_spec_unknown_key", &p, Some(&spec), &["spec.toml", "colour"]);
    let spec = write(
        c,
        "csv_spec_unknown_column",
        "spec.toml",
        "[[comparison]]\nname = \"x\"\na_label = \"a\"\nb_label = \"b\"\na = { Colour = [1] }\nb = {}\n",
    );
    c.analyze("csv_spec_unknown_column", &p, Some(&spec), &["spec.toml", "'Colour'"]);
    // One fold leaves nothing to fit for it; three resamples give no 95% interval.
    for (name, flag, value, says) in [
        ("csv_one_fold", "--folds", "1", "at least 2 folds"),
        ("csv_few_resamples", "--resamples", "3", "at least 40 resamples"),
    ] {
        let p = write(c, name, "study.csv", &good);
        c.analyze(name, &p, None, &[&format!("{flag} {value}"), says]);
        c.cases
            .last_mut()
            .unwrap()
            .args
            .extend([flag.to_string(), value.to_string()]);
    }
}

#[test]
fn every_bad_input_is_exit_2_named_and_without_panic() {
    let tmp = tempdir().unwrap();
    let mut c = Corpus::new(tmp.path());
    scenario_cases(&mut c);
    data_cases(&mut c);
    csv_cases(&mut c);
    let n = c.cases.len();
    assert!(n >= 40, "only {n} cases");
    let failures = c.check();
    println!("{n} bad-input cases, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Mixed image sizes are fine in an ImageFolder tree: every image is resized at load time.
#[test]
fn image_folder_with_mixed_sizes_runs() {
    let tmp = tempdir().unwrap();
    write_image_folder(tmp.path());
    let scenario = tmp.path().join("folder.toml");
    let toml = with_id(&folder_spec(tmp.path())).replace("batch = 8", "batch = 4");
    std::fs::write(&scenario, toml).unwrap();
    let out = tmp.path().join("out");
    ok(&run_to(&scenario, &out, &["--quiet"]));
    assert!(out.join("probes.csv").is_file());
}

/// A learning rate that makes the loss explode stops the run with exit code 2, a message that
/// says so and names the learning rate, and no result files.
#[test]
fn diverging_training_is_exit_2_without_results() {
    let tmp = tempdir().unwrap();
    let scenario = tmp.path().join("diverge.toml");
    std::fs::write(
        &scenario,
        edit("lr = 3e-3", "lr = 1e30").replace("epochs = 1", "epochs = 3"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = run_to(&scenario, &out, &["--quiet"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("training diverged") && err.contains("train.lr"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let written = entry_names(&out);
    assert!(written.is_empty(), "files written after divergence: {written:?}");
}

/// Impossible `[continual]` settings, including those found only once the data is loaded, are
/// exit code 2 naming the scenario file and the key, with no result files.
#[test]
fn impossible_continual_settings_name_the_file_and_key() {
    let tmp = tempdir().unwrap();
    let scenario = root().join("scenarios/cl-quick.toml");
    for (i, (set, want)) in [
        (
            "continual.strategies=[\"finetune\", \"ewc\", \"finetune\"]",
            "key `continual.strategies[2]`: `finetune` is listed twice",
        ),
        (
            "continual.swap={finetune_epochs = 0, finetune_lr = 1e-3}",
            "key `continual.swap`: finetune_epochs must be > 0",
        ),
        (
            "continual.classes_per_task=6",
            "key `continual.tasks` and `classes_per_task`: 2 tasks x 6 classes need 12 classes; the data has 10",
        ),
        (
            "continual.tasks=3",
            "key `continual.swap`: the swap protocol needs exactly 2 tasks",
        ),
        // Checked before any sequence is trained, not after.
        (
            "continual.swap.k=10",
            "key `continual.swap.k`: 10 must be between 1 and 9 (`vggm-11` has 10 probed layers)",
        ),
        (
            "continual.layer_probes=false",
            "key `continual.swap`: without `swap.k` the protocol finds the tunnel from the layer probes",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("out{i}"));
        let o = run_to(&scenario, &out, &["--quiet", "--set", "replicates=1", "--set", set]);
        refused(&o, &["cl-quick.toml", want]);
        let written = entry_names(&out);
        assert!(written.is_empty(), "{set}: files written: {written:?}");
    }
}
