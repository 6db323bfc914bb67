//! Checkpoints saved by PyTorch: `tunnelbench infer` gives PyTorch's logits and probe features,
//! and a checkpoint that does not fit is one clear error (exit 2). The fixtures in
//! tests/fixtures/pretrained/ were written by benches/reference/pretrained_fixtures.py (reduced
//! torchvision ResNet-50, ViT-B/16 and ConvNeXt-B layouts, random weights; the ViT and ConvNeXt
//! also in timm's and Hugging Face's layouts; their `.pth` copies are not kept, the ResNet's
//! covers the pickle reader); the full-size test writes its own with PyTorch where it is installed.

use std::path::{Path, PathBuf};

use crate::common::*;

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/pretrained")
}

/// `infer` of `weights` on `input` into `out`, with `extra` arguments; the output's arrays.
fn infer(
    arch: &[&str],
    weights: &Path,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> Vec<(String, tunnelbench::NpyArray)> {
    let o = run(&[
        &["infer"][..],
        arch,
        &["--weights", s(weights), "--input", s(input), "--out", s(out)],
        extra,
    ]
    .concat());
    ok(&o);
    tunnelbench::read_npz(out).unwrap()
}

/// The largest difference relative to the largest magnitude of `want`.
fn relative_error(got: &tunnelbench::NpyArray, want: &tunnelbench::NpyArray) -> f32 {
    assert_eq!(got.shape, want.shape);
    let scale = want
        .data
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    got.data
        .iter()
        .zip(&want.data)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// Every array of `got` is within `tol` (relative) of the same-named one of `want`.
fn assert_matches(got: &[(String, tunnelbench::NpyArray)], want: &[(String, tunnelbench::NpyArray)], tol: f32) {
    for (name, g) in got {
        let (_, w) = want
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no `{name}` in the reference"));
        let e = relative_error(g, w);
        assert!(e <= tol, "`{name}`: relative error {e:.2e} > {tol:.0e}");
    }
}

const REDUCED: &[&str] = &["--arch", "resnet-50", "--width", "0.0625"];

#[test]
fn reduced_resnet_50_gives_pytorchs_logits_and_features_from_pth_and_safetensors() {
    let f = fixtures();
    let input = f.join("resnet50-div16-input.npy");
    let want = tunnelbench::read_npz(&f.join("resnet50-div16-expected.npz")).unwrap();
    assert_eq!(want.len(), 50, "logits and the 49 probe points");
    let scratch = tempdir().unwrap();
    let dir = scratch.path();
    for file in ["resnet50-div16.pth", "resnet50-div16.safetensors"] {
        let out = dir.join(format!("{file}.npz"));
        let got = infer(REDUCED, &f.join(file), &input, &out, &["--layers"]);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 50);
        assert_eq!(names[..3], ["logits", "conv1", "layer1.0.conv1"]);
        assert_matches(&got, &want, 1e-3);
        // A second infer into the same file refuses and leaves it alone.
        let before = std::fs::read(&out).unwrap();
        refused(
            &run(&[
                &["infer"][..],
                REDUCED,
                &["--weights", s(&f.join(file)), "--input", s(&input), "--out", s(&out)],
            ]
            .concat()),
            &["exists"],
        );
        assert_eq!(std::fs::read(&out).unwrap(), before);
    }
    // A float16 checkpoint loads as f32: PyTorch's logits with the same (rounded) weights.
    let got = infer(
        REDUCED,
        &f.join("resnet50-div16-f16.safetensors"),
        &input,
        &dir.join("f16.npz"),
        &[],
    );
    let want = tunnelbench::read_npy(&f.join("resnet50-div16-f16-logits.npy")).unwrap();
    assert!(relative_error(&got[0].1, &want) <= 1e-3);
}

/// The reduced ViT: torchvision's `VisionTransformer` of 2 blocks, width 64, 2 heads, patch 8.
const VIT: &[&str] = &[
    "--arch", "vit-b-16", "--model", "depth=2", "--model", "dim=64", "--model", "heads=2", "--model", "patch=8",
];

/// The reduced ConvNeXt-B: its depths, every width divided by 32.
const CONVNEXT: &[&str] = &["--arch", "convnext-b", "--width", "0.03125"];

/// timm's ConvNeXt-V2-B reduced the same way (its GRN blocks; timm's own model is the reference).
const CONVNEXT_V2: &[&str] = &["--arch", "convnext-v2-b", "--width", "0.03125"];

/// torchvision's ViT-B/16 and ConvNeXt-B layouts (reduced) and timm's ConvNeXt-V2-B, and the same
/// weights in timm's and Hugging Face's layouts (which the fixture script checked give the same
/// logits in those libraries' own models): PyTorch's logits and every probed layer's features.
#[test]
fn reduced_vit_b_16_and_convnexts_match_pytorch_in_every_key_layout() {
    let f = fixtures();
    let scratch = tempdir().unwrap();
    let dir = scratch.path();
    for (arch, name, layers, files) in [
        (
            VIT,
            "vit-reduced",
            2,
            &[
                "vit-reduced.safetensors",
                "vit-reduced-timm.safetensors",
                "vit-reduced-transformers.safetensors",
            ][..],
        ),
        (
            CONVNEXT,
            "convnext-div32",
            36,
            &["convnext-div32.safetensors", "convnext-div32-transformers.safetensors"],
        ),
        (
            CONVNEXT_V2,
            "convnextv2-div32",
            36,
            &[
                "convnextv2-div32.safetensors",
                "convnextv2-div32-transformers.safetensors",
            ],
        ),
    ] {
        let input = f.join(format!("{name}-input.npy"));
        let want = tunnelbench::read_npz(&f.join(format!("{name}-expected.npz"))).unwrap();
        for file in files {
            let got = infer(
                arch,
                &f.join(file),
                &input,
                &dir.join(format!("{file}.npz")),
                &["--layers"],
            );
            assert_eq!(got.len(), 1 + layers, "{file}");
            assert_matches(&got, &want, 1e-3);
        }
    }
    // The ViT's other token choices: every token, and the class token alone.
    let input = f.join("vit-reduced-input.npy");
    for tokens in ["all", "class"] {
        let setting = format!("probe_tokens={tokens}");
        let arch = [VIT, &["--model", &setting]].concat();
        let got = infer(
            &arch,
            &f.join("vit-reduced.safetensors"),
            &input,
            &dir.join(format!("{tokens}.npz")),
            &["--layers"],
        );
        let renamed: Vec<(String, tunnelbench::NpyArray)> = got
            .into_iter()
            .skip(1)
            .map(|(n, a)| (format!("{n}:{tokens}"), a))
            .collect();
        let want = tunnelbench::read_npz(&f.join("vit-reduced-expected.npz")).unwrap();
        assert_matches(&renamed, &want, 1e-3);
    }
}

/// A checkpoint read with another class count than its classifier's (or without one: DINO, MAE)
/// gets a fresh classifier, but every layer's features are still the checkpoint's: the ViT's
/// final LayerNorm, which its probe features pass through, is loaded.
#[test]
fn a_fresh_classifier_keeps_the_checkpoints_features() {
    let f = fixtures();
    let scratch = tempdir().unwrap();
    for (arch, name) in [(VIT, "vit-reduced"), (CONVNEXT, "convnext-div32")] {
        let got = infer(
            arch,
            &f.join(format!("{name}.safetensors")),
            &f.join(format!("{name}-input.npy")),
            &scratch.path().join(format!("{name}.npz")),
            &["--layers", "--classes", "3"],
        );
        assert_eq!(got[0].0, "logits");
        assert_eq!(got[0].1.shape, [4, 3]);
        let want = tunnelbench::read_npz(&f.join(format!("{name}-expected.npz"))).unwrap();
        assert_matches(&got[1..], &want, 1e-3);
    }
}

/// With `resample_positions`, the reduced ViT's 4×4 grid of positions in every layout resampled to
/// 2×2 and 6×6 (16² and 48² images) gives what PyTorch gives with the positions resampled by
/// timm's `resample_abs_pos_embed` (the fixture script; without antialiasing the logits would
/// differ by 4.5% and 0.8%).
#[test]
fn vit_positions_resample_to_other_resolutions_as_timm_does() {
    let f = fixtures();
    let scratch = tempdir().unwrap();
    let arch = [VIT, &["--model", "resample_positions=true"]].concat();
    for res in [16, 48] {
        let want = tunnelbench::read_npz(&f.join(format!("vit-reduced-{res}-expected.npz"))).unwrap();
        for layout in ["", "-timm", "-transformers"] {
            let got = infer(
                &arch,
                &f.join(format!("vit-reduced{layout}.safetensors")),
                &f.join(format!("vit-reduced-{res}-input.npy")),
                &scratch.path().join(format!("{res}{layout}.npz")),
                &["--layers"],
            );
            assert_eq!(got.len(), 3);
            assert_matches(&got, &want, 1e-3);
        }
    }
}

/// A copy of the fixture's `.safetensors` with the tensor `from` renamed `to`.
fn renamed(dir: &Path, from: &str, to: &str) -> PathBuf {
    let bytes = std::fs::read(fixtures().join("resnet50-div16.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let quoted = format!("\"{from}\"");
    assert!(header.contains(&quoted), "{from}");
    let header = header.replace(&quoted, &format!("\"{to}\""));
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    let path = dir.join(format!("{to}.safetensors"));
    std::fs::write(&path, out).unwrap();
    path
}

/// A copy of the fixture's `.safetensors` with one more tensor, `name` (one f32), at the end.
fn with_extra_tensor(dir: &Path, name: &str) -> PathBuf {
    let bytes = std::fs::read(fixtures().join("resnet50-div16.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let end = bytes.len() - 8 - n;
    let entry = format!(
        "{{\"{name}\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[{end},{}]}},",
        end + 4
    );
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .unwrap()
        .trim_end()
        .replacen('{', &entry, 1);
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    out.extend_from_slice(&1f32.to_le_bytes());
    let path = dir.join("extra.safetensors");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn a_checkpoint_that_does_not_fit_is_one_error_naming_the_tensor() {
    let f = fixtures();
    let input = f.join("resnet50-div16-input.npy");
    let scratch = tempdir().unwrap();
    let dir = scratch.path();
    let out = dir.join("out.npz");
    let try_infer = |arch: &[&str], weights: &Path, extra: &[&str]| {
        run(&[
            &["infer"][..],
            arch,
            &["--weights", s(weights), "--input", s(&input), "--out", s(&out)],
            extra,
        ]
        .concat())
    };
    let pth = f.join("resnet50-div16.pth");
    // The wrong architecture, and the right one at the wrong width.
    refused(
        &try_infer(&["--arch", "resnet-18", "--width", "0.0625"], &pth, &[]),
        &["resnet50-div16.pth", "unexpected tensor `layer1.0.bn3"],
    );
    refused(
        &try_infer(&["--arch", "resnet-50", "--width", "0.125"], &pth, &[]),
        &["tensor `conv1.weight` has shape [4, 3, 7, 7]", "needs [8, 3, 7, 7]"],
    );
    refused(&try_infer(&["--arch", "vggm-11"], &pth, &[]), &["no checkpoint layout"]);
    // A ViT checkpoint as a ConvNeXt, and with images of another size than its positions fit.
    let vit = f.join("vit-reduced.safetensors");
    refused(
        &try_infer(&["--arch", "convnext-b", "--width", "0.03125"], &vit, &[]),
        &["vit-reduced.safetensors", "unexpected tensor `class_token`"],
    );
    refused(
        &try_infer(VIT, &vit, &[]),
        &[
            "tensor `encoder.pos_embedding` has shape [1, 17, 64]",
            "needs [1, 65, 64]",
            "fit 32x32 images",
            "model.resample_positions = true",
        ],
    );
    // Images that are no whole number of patches (64² with patches of 5).
    refused(
        &try_infer(&[VIT, &["--model", "patch=5"]].concat(), &vit, &[]),
        &[
            "resnet50-div16-input.npy",
            "64 is not a multiple of `vit-b-16`'s patch size 5",
        ],
    );
    refused(
        &try_infer(
            &["--arch", "resnet-50", "--model", "resample_positions=true"],
            &pth,
            &[],
        ),
        &["resample_positions apply to ViTs only"],
    );
    // Images with a NaN (the last value of the last image), and no images per pass.
    let mut bytes = std::fs::read(&input).unwrap();
    let at = bytes.len() - 4;
    bytes[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan = dir.join("nan.npy");
    std::fs::write(&nan, bytes).unwrap();
    refused(
        &run(&[
            &["infer"][..],
            REDUCED,
            &["--weights", s(&pth), "--input", s(&nan), "--out", s(&out)],
        ]
        .concat()),
        &["nan.npy: image 3 holds a non-finite value (NaN)"],
    );
    refused(
        &try_infer(REDUCED, &pth, &["--batch", "0"]),
        &["--batch must be at least 1"],
    );
    assert!(!out.exists());
    // A missing and an unexpected tensor.
    let missing = renamed(dir, "layer4.2.bn3.running_var", "layer4.2.bn3.running_vr");
    refused(
        &try_infer(REDUCED, &missing, &[]),
        &["running_vr.safetensors", "missing tensor `layer4.2.bn3.running_var`"],
    );
    let extra = renamed(dir, "layer2.1.conv2.weight", "layer2.1.conv9.weight");
    refused(
        &try_infer(REDUCED, &extra, &[]),
        &["unexpected tensor `layer2.1.conv9.weight`"],
    );
    // Left out on purpose, the extra tensor is no error, but then the real one is missing.
    refused(
        &try_infer(REDUCED, &extra, &["--ignore-key", "layer2.1.conv9"]),
        &["missing tensor `layer2.1.conv2.weight`"],
    );
    let dropped = with_extra_tensor(dir, "projection_head.0.weight");
    refused(
        &try_infer(REDUCED, &dropped, &[]),
        &["unexpected tensor `projection_head.0.weight`"],
    );
    let got = dir.join("ignored.npz");
    ok(&run(&[
        &["infer"][..],
        REDUCED,
        &["--weights", s(&dropped), "--input", s(&input), "--out", s(&got)],
        &["--ignore-key", "projection_head."],
    ]
    .concat()));
    std::fs::remove_file(&got).unwrap();
    // Truncated files, a file that is no checkpoint, a prefix no key has.
    for name in ["resnet50-div16.pth", "resnet50-div16.safetensors"] {
        let bytes = std::fs::read(f.join(name)).unwrap();
        let cut = dir.join(format!("cut-{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        refused(
            &try_infer(REDUCED, &cut, &[]),
            &[&format!("cut-{name}"), "not a readable checkpoint"],
        );
    }
    refused(
        &try_infer(REDUCED, &root().join("README.md"), &[]),
        &["README.md", "not a readable checkpoint"],
    );
    refused(
        &try_infer(REDUCED, &pth, &["--key-prefix", "module."]),
        &["key prefix `module.`"],
    );
    // Images that are not [N, 3, H, W] float32.
    refused(
        &run(&[
            "infer",
            "--arch",
            "resnet-50",
            "--width",
            "0.0625",
            "--weights",
            s(&pth),
            "--input",
            s(&pth),
            "--out",
            s(&out),
        ]),
        &["not a .npy file"],
    );
    assert!(!out.exists(), "nothing written");
}

/// torchvision's full-size `resnet50`, `vit_b_16` and `convnext_base`, and timm's
/// `convnextv2_base`, saved by PyTorch on the spot (random weights), at 224², from `.pth` and
/// `.safetensors` (and in timm's and Hugging Face's layouts where those libraries are installed). Needs `python3` with torch, torchvision and
/// safetensors (or `TUNNELBENCH_PYTHON`).
#[test]
#[ignore = "full-size models: about 1.5 GB of checkpoints and a few minutes of CPU"]
fn full_size_resnet_50_vit_b_16_and_convnexts_match_pytorch() {
    let python = std::env::var("TUNNELBENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_torch = std::process::Command::new(&python)
        .args(["-c", "import torch, torchvision, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch {
        eprintln!("SKIPPED: `{python}` cannot import torch, torchvision and safetensors (set TUNNELBENCH_PYTHON)");
        return;
    }
    let script = root().join("benches/reference/pretrained_fixtures.py");
    for (model, arch, name, layers, others) in [
        ("resnet50", "resnet-50", "resnet50", 49, &[][..]),
        ("vit", "vit-b-16", "vit_b_16", 12, &["timm", "transformers"]),
        ("convnext", "convnext-b", "convnext_base", 36, &["transformers"]),
        ("convnext-v2", "convnext-v2-b", "convnextv2_base", 36, &["transformers"]),
    ] {
        let scratch = tempdir().unwrap();
        let dir = scratch.path();
        let o = std::process::Command::new(&python)
            .args([s(&script), "--out", s(dir), "--full", "--model", model])
            .output()
            .unwrap();
        if model == "convnext-v2" && String::from_utf8_lossy(&o.stderr).contains("No module named 'timm'") {
            eprintln!("SKIPPED: convnextv2_base (timm is not installed)");
            continue;
        }
        ok(&o);
        let input = dir.join(format!("{name}-input.npy"));
        let want = tunnelbench::read_npz(&dir.join(format!("{name}-expected.npz"))).unwrap();
        let mut files = vec![format!("{name}.pth"), format!("{name}.safetensors")];
        for file in others.iter().map(|lib| format!("{name}-{lib}.safetensors")) {
            if dir.join(&file).exists() {
                files.push(file);
            } else {
                eprintln!("SKIPPED: {file} (its library is not installed)");
            }
        }
        for file in files {
            let got = infer(
                &["--arch", arch],
                &dir.join(&file),
                &input,
                &dir.join(format!("{file}.npz")),
                &["--layers"],
            );
            assert_eq!(got.len(), 1 + layers, "{file}");
            assert_matches(&got, &want, 1e-3);
        }
    }
}

/// An ImageFolder tree `root/{train,test}/{c0..c9}/*.png` of 40×40 images, each class a colour.
fn write_image_folder(root: &Path, classes: usize) {
    for split in ["train", "test"] {
        for c in 0..classes {
            let d = root.join(split).join(format!("c{c}"));
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..4u32 {
                image::RgbImage::from_fn(40, 40, |x, y| {
                    image::Rgb([(25 * c) as u8, (x * 6 + i) as u8, (y * 6) as u8])
                })
                .save(d.join(format!("{i}.png")))
                .unwrap();
            }
        }
    }
}

/// A scenario with `model.weights` and no `[train]` probes the checkpoint as loaded and writes the
/// usual outputs; with the checkpoint's 10 classes its own classifier is used, with 3 a fresh one.
#[test]
fn a_checkpoint_is_probed_without_training() {
    let scratch = tempdir().unwrap();
    let dir = scratch.path();
    write_image_folder(&dir.join("id"), 10);
    write_image_folder(&dir.join("ood"), 3);
    let folder = |name: &str| {
        format!(
            "kind = \"image-folder\"\ntrain = \"{}\"\ntest = \"{}\"",
            dir.join(name).join("train").display(),
            dir.join(name).join("test").display()
        )
    };
    let weights = fixtures().join("resnet50-div16.safetensors");
    let scenario = format!(
        "name = \"pretrained-tiny\"\nresolution = 32\n\n[id]\n{}\n\n[[ood]]\nlabel = \"other\"\n{}\n\n[model]\nname = \"resnet-50\"\n\
         width = 0.0625\nweights = \"{}\"\n\n[probe.main]\nkind = \"closed-form\"\n\n[control]\nrandom_init = true\n",
        folder("id"),
        folder("ood"),
        weights.display()
    );
    let path = dir.join("pretrained.toml");
    std::fs::write(&path, &scenario).unwrap();
    let out = dir.join("out");
    let o = run_to(&path, &out, &["--quiet"]);
    ok(&o);
    assert_files(&out, &["probes.csv", "metrics.csv", "metrics_all.csv", "summary.json"]);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["probed_layers"], 49);
    assert!(
        summary["backbone_accuracy"].is_number(),
        "its own 10-class head scores the ID set"
    );
    assert_eq!(
        summary["train"]["epochs"].as_array().map(Vec::len),
        Some(0),
        "not trained"
    );
    // 49 layers × 2 networks × 2 data sets.
    assert_eq!(read(&out.join("probes.csv")).lines().count(), 1 + 49 * 2 * 2);
    // Three ID classes: the backbone loads, the classifier stays fresh, no ID accuracy is claimed.
    let three = scenario.replace(&folder("id"), &format!("{}\nclasses = 3", folder("id")));
    std::fs::write(&path, three).unwrap();
    let out3 = dir.join("out3");
    ok(&run_to(&path, &out3, &["--quiet"]));
    assert!(read_json(&out3.join("summary.json"))["backbone_accuracy"].is_null());
    // Without weights, [train] is required; a continual scenario always needs it.
    std::fs::write(
        &path,
        scenario.replace(&format!("weights = \"{}\"\n", weights.display()), ""),
    )
    .unwrap();
    refused(
        &run_to(&path, &dir.join("out4"), &["--quiet"]),
        &["[train]", "model.weights"],
    );
    // A checkpoint of another width: one error naming the file and the tensor, nothing written.
    std::fs::write(&path, scenario.replace("width = 0.0625", "width = 0.125")).unwrap();
    refused(
        &run_to(&path, &dir.join("out5"), &["--quiet"]),
        &["resnet50-div16.safetensors", "conv1.weight"],
    );
    assert!(entry_names(&dir.join("out5")).is_empty());
}

/// The same for a ViT-B/16 checkpoint (the reduced layout, 32² like its positions), probed with
/// the class token alone.
#[test]
fn a_vit_checkpoint_is_probed_without_training() {
    let scratch = tempdir().unwrap();
    let dir = scratch.path();
    write_image_folder(&dir.join("id"), 10);
    let weights = fixtures().join("vit-reduced-timm.safetensors");
    let scenario = format!(
        "name = \"vit-tiny\"\nresolution = 32\n\n[id]\nkind = \"image-folder\"\ntrain = \"{0}/train\"\ntest = \"{0}/test\"\n\n\
         [model]\nname = \"vit-b-16\"\ndepth = 2\ndim = 64\nheads = 2\npatch = 8\nprobe_tokens = \"class\"\n\
         weights = \"{1}\"\n\n[probe.main]\nkind = \"closed-form\"\n",
        dir.join("id").display(),
        weights.display()
    );
    let path = dir.join("vit.toml");
    std::fs::write(&path, &scenario).unwrap();
    let out = dir.join("out");
    ok(&run_to(&path, &out, &["--quiet"]));
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["probed_layers"], 2);
    assert!(summary["backbone_accuracy"].is_number());
    let probes = read(&out.join("probes.csv"));
    // 2 layers × (the checkpoint and its random-init control).
    assert_eq!(probes.lines().count(), 1 + 2 * 2);
    assert!(probes.contains("encoder.layers.encoder_layer_1"));
    // A wrong token choice is one error naming the key.
    std::fs::write(&path, scenario.replace("\"class\"", "\"cls\"")).unwrap();
    refused(
        &run_to(&path, &dir.join("out2"), &["--quiet"]),
        &["probe_tokens", "cls"],
    );
}
