//! Loading PyTorch checkpoints into a backbone: a state dict saved with `torch.save` (`.pth`,
//! `.pt`) or a `.safetensors` file, in torchvision's key layout, through burn's store. Every
//! tensor is accounted for: a missing, unexpected or mis-shaped one is an error naming it, never a
//! partial load. Half-precision tensors load as f32.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    ApplyError, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};
use burn::tensor::DType;

use super::arch::{ArchSpec, Resolved};
use super::backbone::Backbone;
use crate::error::{Error, Result};

/// The tensors of a checkpoint file, by key (a `key_prefix` stripped).
pub struct Checkpoint {
    pub path: PathBuf,
    tensors: BTreeMap<String, PackTensor>,
}

/// PyTorch's BatchNorm step counter: not a parameter, never loaded.
const IGNORED_LEAVES: &[&str] = &["num_batches_tracked"];

impl Checkpoint {
    /// Reads the tensor index of `path` (the data is read when applied). `.safetensors` files are
    /// read as such, anything else as a PyTorch file (zip, legacy or tar format). `key_prefix` is
    /// stripped from every key; then keys starting with one of `ignore` are dropped (a
    /// self-supervised checkpoint's projection head, say).
    pub fn read(path: &Path, key_prefix: Option<&str>, ignore: &[String]) -> Result<Checkpoint> {
        std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let bad = |e: &dyn std::fmt::Display| Error::input(path, format!("not a readable checkpoint: {e}"));
        let safetensors = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
        let tensors = if safetensors {
            SafetensorsStore::from_file(path)
                .get_all_tensors()
                .map_err(|e| bad(&e))?
                .clone()
        } else {
            PytorchStore::from_file(path)
                .map_indices_contiguous(false)
                .get_all_tensors()
                .map_err(|e| bad(&e))?
                .clone()
        };
        if tensors.is_empty() {
            return Err(Error::input(path, "the checkpoint holds no tensors"));
        }
        let tensors = match key_prefix.filter(|p| !p.is_empty()) {
            None => tensors,
            Some(prefix) => {
                if !tensors.keys().any(|k| k.starts_with(prefix)) {
                    return Err(Error::input(
                        path,
                        format!("no tensor key starts with the key prefix `{prefix}`"),
                    ));
                }
                tensors
                    .into_iter()
                    .map(|(k, t)| (k.strip_prefix(prefix).map_or(k.clone(), str::to_string), t))
                    .collect()
            }
        };
        let tensors: BTreeMap<String, PackTensor> = tensors
            .into_iter()
            .filter(|(k, _)| !ignore.iter().any(|p| k.starts_with(p.as_str())))
            .collect();
        if tensors.is_empty() {
            return Err(Error::input(path, "every tensor of the checkpoint is ignored"));
        }
        Ok(Checkpoint {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// The number of classes of the checkpoint's classifier (`fc.weight` rows), if it has one.
    pub fn head_classes(&self) -> Option<usize> {
        self.tensors
            .get("fc.weight")
            .and_then(|t| (t.shape.len() == 2).then(|| t.shape[0]))
    }

    /// Loads the checkpoint into `model` (of architecture `spec`), its classifier too when
    /// `with_head`. Returns how many tensors were applied.
    pub fn load_into(&self, model: &mut Backbone, spec: &ArchSpec, with_head: bool) -> Result<usize> {
        let layout = torch_layout(spec)?;
        let err = |msg: String| Error::input(&self.path, msg);
        let mut renamed = Vec::new();
        for (key, tensor) in &self.tensors {
            let (module, leaf) = key.rsplit_once('.').unwrap_or(("", key));
            if IGNORED_LEAVES.contains(&leaf) {
                continue;
            }
            let Some(ours) = layout.get(module) else {
                return Err(err(format!(
                    "unexpected tensor `{key}` {:?}: architecture `{}` has no module `{module}`{}",
                    tensor.shape.as_slice(),
                    spec.name,
                    hint(&layout)
                )));
            };
            if !with_head && ours.starts_with("head.") {
                continue;
            }
            let mut t = tensor.clone();
            t.name = format!("{ours}.{leaf}");
            renamed.push(t);
        }
        let adapter: Box<dyn ModuleAdapter> = Box::new(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)));
        let result = model.apply(renamed, None, Some(adapter), true);
        let torch_name = |path: &str| torch_key(&layout, path);
        match result.errors.first() {
            Some(ApplyError::ShapeMismatch { path, expected, found }) => {
                return Err(err(format!(
                    "tensor `{}` has shape {:?}; architecture `{}` (width {}) needs {:?}",
                    torch_name(path),
                    found.as_slice(),
                    spec.name,
                    spec.width,
                    expected.as_slice()
                )));
            }
            Some(e) => {
                return Err(err(format!(
                    "{e} (as the checkpoint names it: {})",
                    torch_names(&layout, &e.to_string())
                )));
            }
            None => {}
        }
        // Without the head, the fresh classifier's parameters are missing on purpose.
        let missing: Vec<&str> = result
            .missing
            .iter()
            .map(|(path, _)| path.as_str())
            .filter(|path| with_head || !path.starts_with("head."))
            .collect();
        if let Some(path) = missing.first() {
            return Err(err(format!(
                "missing tensor `{}`: architecture `{}` needs it{}",
                torch_name(path),
                spec.name,
                if missing.len() > 1 {
                    format!(" ({} tensors missing in all)", missing.len())
                } else {
                    String::new()
                }
            )));
        }
        if let Some(path) = result.unused.first() {
            return Err(err(format!(
                "unexpected tensor `{}`: architecture `{}` has no such parameter",
                torch_name(path),
                spec.name
            )));
        }
        Ok(result.applied.len())
    }
}

/// The first few module names of a layout, for an error message.
fn hint(layout: &BTreeMap<String, String>) -> String {
    let mut names: Vec<&str> = layout.keys().map(String::as_str).collect();
    names.sort_by_key(|n| (n.len(), *n));
    format!(" (it has {}, ...)", names[..names.len().min(4)].join(", "))
}

/// The checkpoint key of a backbone parameter path (`units.3.bn.gamma` → `layer1.0.bn3.weight`).
fn torch_key(layout: &BTreeMap<String, String>, path: &str) -> String {
    let (module, leaf) = path.rsplit_once('.').unwrap_or(("", path));
    let leaf = match leaf {
        "gamma" => "weight",
        "beta" => "bias",
        other => other,
    };
    match layout.iter().find(|(_, ours)| ours.as_str() == module) {
        Some((torch, _)) => format!("{torch}.{leaf}"),
        None => path.to_string(),
    }
}

/// Every backbone parameter path named in `text`, as the checkpoint names it.
fn torch_names(layout: &BTreeMap<String, String>, text: &str) -> String {
    text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_'))
        .filter(|w| w.starts_with("units.") || w.starts_with("head.") || w.starts_with("stem."))
        .map(|w| format!("`{}`", torch_key(layout, w)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checkpoint module name → backbone module path, for the architectures whose torchvision
/// layout tunnelbench reads.
fn torch_layout(spec: &ArchSpec) -> Result<BTreeMap<String, String>> {
    let Resolved::Resnet { blocks, expansion, .. } = spec.resolve()? else {
        return Err(Error::usage(format!(
            "architecture `{}` has no checkpoint layout; weights load into resnet-18, resnet-34 and resnet-50 \
             (torchvision's keys)",
            spec.name
        )));
    };
    let mut m = BTreeMap::from([
        ("conv1".to_string(), "units.0.conv".to_string()),
        ("bn1".to_string(), "units.0.bn".to_string()),
        ("fc".to_string(), "head.fc".to_string()),
    ]);
    let convs = if expansion == 1 { 2 } else { 3 };
    let mut unit = 1;
    for (stage, &n) in blocks.iter().enumerate() {
        for b in 0..n {
            let block = format!("layer{}.{b}", stage + 1);
            for c in 1..=convs {
                let u = unit + c - 1;
                m.insert(format!("{block}.conv{c}"), format!("units.{u}.conv"));
                m.insert(format!("{block}.bn{c}"), format!("units.{u}.bn"));
            }
            let last = unit + convs - 1;
            m.insert(format!("{block}.downsample.0"), format!("units.{last}.down_conv"));
            m.insert(format!("{block}.downsample.1"), format!("units.{last}.down_bn"));
            unit += convs;
        }
    }
    Ok(m)
}
