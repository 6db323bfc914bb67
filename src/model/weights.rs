//! Loading checkpoints into a backbone: a PyTorch state dict saved with `torch.save` (`.pth`,
//! `.pt`) or a `.safetensors` file, in torchvision's, timm's or Hugging Face's key layout, or a
//! network a run saved ([`SavedNetwork`]), through burn's store. Every tensor is accounted for: a
//! missing, unexpected or mis-shaped one is an error naming it, never a partial load.
//! Half-precision tensors load as f32.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::burn_pack::{Bytes, Tensor as PackTensor};
use burn::store::{
    ApplyError, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};
use burn::tensor::{DType, TensorData};

use super::arch::{ArchSpec, Resolved};
use super::backbone::Backbone;
use super::saved::SavedNetwork;
use crate::data::transform::{Filter, resize_f32};
use crate::error::{Error, Result};

/// The tensors of a checkpoint file, by key (a `key_prefix` stripped).
pub struct Checkpoint {
    pub path: PathBuf,
    tensors: BTreeMap<String, PackTensor>,
    /// What the network is, when a run saved it (its keys are then the backbone's own).
    pub saved: Option<SavedNetwork>,
}

/// The classifier's linear layer: the part of the head that `with_head = false` leaves fresh. The
/// head's LayerNorm (ViT, ConvNeXt) is the backbone's and always loads: a ViT's probe features
/// pass through it.
const CLASSIFIER: &str = "head.fc.";

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
            saved: if safetensors { SavedNetwork::read(path)? } else { None },
        })
    }

    /// The number of classes of the checkpoint's classifier (the rows of the tensor that loads
    /// into the head's linear layer), if it has one.
    /// A key that the architecture has no place for is an error.
    pub fn head_classes(&self, spec: &ArchSpec) -> Result<Option<usize>> {
        let layout = self.layout(spec)?;
        if let Some(saved) = &self.saved {
            return Ok(Some(saved.classes));
        }
        Ok(self
            .tensors
            .iter()
            .find(|(key, _)| layout.targets(key).iter().any(|t| t.path == "head.fc.weight"))
            .and_then(|(_, t)| (t.shape.len() == 2).then(|| t.shape[0])))
    }

    /// Loads the checkpoint into `model` (of architecture `spec`), its classifier too when
    /// `with_head`. Returns how many tensors were applied.
    pub fn load_into(&self, model: &mut Backbone, spec: &ArchSpec, with_head: bool) -> Result<usize> {
        let layout = self.layout(spec)?;
        let err = |msg: String| Error::input(&self.path, msg);
        let mut renamed = Vec::new();
        let grid = spec.resample_positions.then(|| model.position_grid()).flatten();
        for (key, tensor) in self.loaded() {
            for target in layout.targets(key) {
                if !with_head && target.path.starts_with(CLASSIFIER) {
                    continue;
                }
                let mut t = target
                    .piece
                    .cut(tensor, &target.path)
                    .map_err(|e| err(format!("tensor `{key}`: {e}")))?;
                if let Some(grid) = grid.filter(|_| target.path == "stem.positions") {
                    t = resample_positions(t, grid).map_err(|e| err(format!("tensor `{key}`: {e}")))?;
                }
                renamed.push(t);
            }
        }
        // A saved network's tensors are laid out as the backbone's (a linear layer's weight
        // `[in, out]`, not PyTorch's `[out, in]`).
        let adapter: Box<dyn ModuleAdapter> = match self.saved {
            Some(_) => Box::new(FloatCastAdapter::to(DType::F32)),
            None => Box::new(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32))),
        };
        let result = model.apply(renamed, None, Some(adapter), true);
        let torch_name = |path: &str| layout.torch_key(path);
        match result.errors.first() {
            Some(ApplyError::ShapeMismatch { path, expected, found }) => {
                // A ViT's learned positions fix the input resolution: say which one they fit.
                let positions = match (path.as_str(), spec.resolve()?) {
                    ("stem.positions", Resolved::Vit { patch, .. }) => {
                        let grid = (found.as_slice().get(1).map_or(1, |t| t.saturating_sub(1)) as f64).sqrt();
                        format!(
                            " (its positions fit {0}x{0} images; give images of that size, or set \
                             `model.resample_positions = true` to resample them)",
                            grid.round() as usize * patch
                        )
                    }
                    _ => String::new(),
                };
                return Err(err(format!(
                    "tensor `{}` has shape {:?}; architecture `{}` (width {}) needs {:?}{positions}",
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
                    layout.torch_names(&e.to_string())
                )));
            }
            None => {}
        }
        // Without the head, the fresh classifier's parameters are missing on purpose.
        let missing: Vec<&str> = result
            .missing
            .iter()
            .map(|(path, _)| path.as_str())
            .filter(|path| with_head || !path.starts_with(CLASSIFIER))
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

impl Checkpoint {
    /// The tensors to load: all but BatchNorm's step counters.
    fn loaded(&self) -> impl Iterator<Item = (&String, &PackTensor)> {
        self.tensors.iter().filter(|(key, _)| {
            let leaf = key.rsplit_once('.').map_or(key.as_str(), |(_, l)| l);
            !IGNORED_LEAVES.contains(&leaf)
        })
    }

    /// The key layout of `spec` that the checkpoint is written in; a tensor it has no place for
    /// is an error naming it.
    fn layout(&self, spec: &ArchSpec) -> Result<Layout> {
        let layout = match &self.saved {
            Some(saved) => {
                saved.check_fits(spec, &self.path)?;
                Layout::own(self.tensors.keys())
            }
            None => Layout::of(spec, self)?,
        };
        if let Some((key, tensor)) = self.loaded().find(|(key, _)| layout.targets(key).is_empty()) {
            return Err(Error::input(
                &self.path,
                format!(
                    "unexpected tensor `{key}` {:?}: architecture `{}` ({} layout) has no such module{}",
                    tensor.shape.as_slice(),
                    spec.name,
                    layout.name,
                    layout.hint()
                ),
            ));
        }
        Ok(layout)
    }
}

/// ViT positions `[1, 1 + g², d]` (the class token's first) resampled to `[1, 1 + grid², d]`: the
/// `g × g` grid, each of the `d` channels a plane, bicubic with antialiasing (timm's
/// `resample_abs_pos_embed`, PyTorch's `interpolate(..., mode="bicubic", antialias=True)`); the
/// class token's position is kept. The same tensor when the grids agree.
fn resample_positions(t: PackTensor, grid: usize) -> std::result::Result<PackTensor, String> {
    let [1, tokens, d] = t.shape.as_slice()[..] else {
        return Err(format!(
            "positions of shape {:?}, not [1, tokens, dim]",
            t.shape.as_slice()
        ));
    };
    let g = (tokens.saturating_sub(1) as f64).sqrt().round() as usize;
    if g * g + 1 != tokens {
        return Err(format!(
            "{} positions after the class token's are no square grid: cannot resample them",
            tokens.saturating_sub(1)
        ));
    }
    if g == grid {
        return Ok(t);
    }
    let (name, dtype, shape) = (t.name.clone(), t.dtype, t.shape.clone());
    let bytes = t.into_bytes().map_err(|e| e.to_string())?;
    let values: Vec<f32> = TensorData::from_bytes(bytes, shape, dtype)
        .convert::<f32>()
        .try_into_vec()
        .map_err(|e| format!("{e:?}"))?;
    // Token-major [g², d] to channel planes [d, g, g], resampled, and back.
    let planes: Vec<f32> = (0..d * g * g)
        .map(|i| values[(1 + i % (g * g)) * d + i / (g * g)])
        .collect();
    let resized = resize_f32(&planes, d, g, g, grid, grid, Filter::Bicubic);
    let n = grid * grid;
    let mut out = values[..d].to_vec();
    out.extend((0..n * d).map(|i| resized[(i % d) * n + i / d]));
    let bytes = out.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok(PackTensor::new(
        name,
        DType::F32,
        vec![1, 1 + n, d],
        None,
        Bytes::from_bytes_vec(bytes),
    ))
}

/// The part of a checkpoint tensor that one backbone parameter takes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Piece {
    Whole,
    /// Rows `[i·n/3, (i+1)·n/3)` of a fused query/key/value projection (`in_proj_weight`, `qkv`).
    Third(usize),
    /// The tensor flattened (torchvision's `[C, 1, 1]` layer scale is a `[C]` parameter here).
    Flat,
}

impl Piece {
    fn cut(self, t: &PackTensor, path: &str) -> std::result::Result<PackTensor, String> {
        let mut out = match self {
            Piece::Whole => t.clone(),
            Piece::Flat => {
                let mut out = t.clone();
                out.shape = vec![t.shape.iter().product::<usize>()].into();
                out
            }
            Piece::Third(i) => {
                let rows = t.shape.first().copied().unwrap_or(0);
                if rows == 0 || !rows.is_multiple_of(3) {
                    return Err(format!(
                        "shape {:?}: a fused query/key/value projection needs a first dimension divisible by 3",
                        t.shape.as_slice()
                    ));
                }
                let bytes = t.to_bytes().map_err(|e| e.to_string())?;
                let third = bytes.len() / 3;
                let mut shape = t.shape.as_slice().to_vec();
                shape[0] = rows / 3;
                PackTensor::new(
                    String::new(),
                    t.dtype,
                    shape,
                    None,
                    Bytes::from_bytes_vec(bytes[i * third..(i + 1) * third].to_vec()),
                )
            }
        };
        out.name = path.to_string();
        Ok(out)
    }
}

/// One backbone parameter that a checkpoint key loads into.
#[derive(Clone, Debug)]
struct Target {
    path: String,
    piece: Piece,
}

/// Where a checkpoint's tensors go in a backbone, for one key layout.
struct Layout {
    /// "torchvision", "timm", "Hugging Face".
    name: &'static str,
    /// Checkpoint module → backbone module; the tensor's leaf name (`weight`, `bias`, `running_mean`)
    /// is kept.
    modules: BTreeMap<String, String>,
    /// Whole checkpoint keys that load otherwise: renamed, split or reshaped.
    params: BTreeMap<String, Vec<Target>>,
}

impl Layout {
    fn new(name: &'static str) -> Layout {
        Layout {
            name,
            modules: BTreeMap::new(),
            params: BTreeMap::new(),
        }
    }

    fn module(&mut self, torch: impl Into<String>, ours: impl Into<String>) {
        self.modules.insert(torch.into(), ours.into());
    }

    fn param(&mut self, torch: impl Into<String>, ours: impl Into<String>, piece: Piece) {
        self.params.entry(torch.into()).or_default().push(Target {
            path: ours.into(),
            piece,
        });
    }

    /// A fused query/key/value projection (`<torch>_weight`/`_bias` or `<torch>.weight`/`.bias`)
    /// into the three projections of `attn`.
    fn fused_qkv(&mut self, weight: &str, bias: &str, attn: &str) {
        for (torch, leaf) in [(weight, "weight"), (bias, "bias")] {
            for (i, part) in ["query", "key", "value"].into_iter().enumerate() {
                self.param(torch, format!("{attn}.{part}.{leaf}"), Piece::Third(i));
            }
        }
    }

    /// The backbone's own names: every key loads into the parameter of that path.
    fn own<'a>(keys: impl Iterator<Item = &'a String>) -> Layout {
        let mut layout = Layout::new("tunnelbench");
        for key in keys {
            layout.param(key.as_str(), key.as_str(), Piece::Whole);
        }
        layout
    }

    fn targets(&self, key: &str) -> Vec<Target> {
        if let Some(t) = self.params.get(key) {
            return t.clone();
        }
        let (module, leaf) = key.rsplit_once('.').unwrap_or(("", key));
        self.modules
            .get(module)
            .map(|ours| {
                vec![Target {
                    path: format!("{ours}.{leaf}"),
                    piece: Piece::Whole,
                }]
            })
            .unwrap_or_default()
    }

    /// The checkpoint layout of `spec`'s family that `ck` is written in, told by its keys.
    fn of(spec: &ArchSpec, ck: &Checkpoint) -> Result<Layout> {
        let has = |key: &str| ck.tensors.contains_key(key);
        match spec.resolve()? {
            Resolved::Resnet { blocks, expansion, .. } => Ok(resnet_layout(blocks, expansion)),
            Resolved::Vit {
                depth,
                class_token: true,
                ..
            } => Ok(
                match ["vit.", ""]
                    .into_iter()
                    .find(|p| has(&format!("{p}embeddings.patch_embeddings.projection.weight")))
                {
                    Some(prefix) => vit_layout(depth, &HUGGING_FACE_VIT, prefix),
                    None if has("patch_embed.proj.weight") => vit_layout(depth, &TIMM_VIT, ""),
                    None => vit_layout(depth, &TORCHVISION_VIT, ""),
                },
            ),
            Resolved::Convnext { depths, .. } => Ok(
                match ["convnext.", "convnextv2.", ""]
                    .into_iter()
                    .find(|p| has(&format!("{p}embeddings.patch_embeddings.weight")))
                {
                    Some(prefix) => hf_convnext_layout(depths, prefix),
                    None if has("stem.0.weight") => timm_convnext_layout(depths),
                    None => torchvision_convnext_layout(depths),
                },
            ),
            _ => Err(Error::usage(format!(
                "architecture `{}` has no checkpoint layout; weights load into resnet-18, resnet-34, resnet-50 \
                 (torchvision's keys), vit-b-16 (torchvision's, Hugging Face's or timm's), convnext-b (torchvision's, Hugging \
                 Face's or timm's) and convnext-v2-b (Hugging Face's or timm's)",
                spec.name
            ))),
        }
    }

    /// The first few module names of the layout, for an error message.
    fn hint(&self) -> String {
        let mut names: Vec<&str> = self
            .modules
            .keys()
            .chain(self.params.keys())
            .map(String::as_str)
            .collect();
        names.sort_by_key(|n| (n.len(), *n));
        format!(" (it has {}, ...)", names[..names.len().min(4)].join(", "))
    }

    /// The checkpoint key of a backbone parameter path (`units.3.bn.gamma` → `layer1.0.bn3.weight`).
    fn torch_key(&self, path: &str) -> String {
        if let Some((torch, _)) = self.params.iter().find(|(_, ts)| ts.iter().any(|t| t.path == path)) {
            return torch.clone();
        }
        let (module, leaf) = path.rsplit_once('.').unwrap_or(("", path));
        let leaf = match leaf {
            "gamma" => "weight",
            "beta" => "bias",
            other => other,
        };
        match self.modules.iter().find(|(_, ours)| ours.as_str() == module) {
            Some((torch, _)) => format!("{torch}.{leaf}"),
            None => path.to_string(),
        }
    }

    /// Every backbone parameter path named in `text`, as the checkpoint names it.
    fn torch_names(&self, text: &str) -> String {
        text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_'))
            .filter(|w| w.starts_with("units.") || w.starts_with("head.") || w.starts_with("stem."))
            .map(|w| format!("`{}`", self.torch_key(w)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// torchvision's ResNet (`conv1`, `layer2.0.downsample.0`, `fc`).
fn resnet_layout(blocks: [usize; 4], expansion: usize) -> Layout {
    let mut m = Layout::new("torchvision");
    m.module("conv1", "units.0.conv");
    m.module("bn1", "units.0.bn");
    m.module("fc", "head.fc");
    let convs = if expansion == 1 { 2 } else { 3 };
    let mut unit = 1;
    for (stage, &n) in blocks.iter().enumerate() {
        for b in 0..n {
            let block = format!("layer{}.{b}", stage + 1);
            for c in 1..=convs {
                let u = unit + c - 1;
                m.module(format!("{block}.conv{c}"), format!("units.{u}.conv"));
                m.module(format!("{block}.bn{c}"), format!("units.{u}.bn"));
            }
            let last = unit + convs - 1;
            m.module(format!("{block}.downsample.0"), format!("units.{last}.down_conv"));
            m.module(format!("{block}.downsample.1"), format!("units.{last}.down_bn"));
            unit += convs;
        }
    }
    m
}

/// The checkpoint names of a ViT key layout.
struct VitKeys {
    name: &'static str,
    /// The patch conv, the class token, the positions, the final LayerNorm and the classifier.
    proj: &'static str,
    class_token: &'static str,
    positions: &'static str,
    final_norm: &'static str,
    head: &'static str,
    /// Block `i` is `{block}{i}`; its modules (theirs, ours) and its fused projection's weight and
    /// bias, if it has one.
    block: &'static str,
    modules: &'static [(&'static str, &'static str)],
    qkv: Option<[&'static str; 2]>,
}

/// torchvision's `VisionTransformer` (`conv_proj`, `encoder.layers.encoder_layer_0`, `heads.head`).
const TORCHVISION_VIT: VitKeys = VitKeys {
    name: "torchvision",
    proj: "conv_proj",
    class_token: "class_token",
    positions: "encoder.pos_embedding",
    final_norm: "encoder.ln",
    head: "heads.head",
    block: "encoder.layers.encoder_layer_",
    modules: &[
        ("ln_1", "norm1"),
        ("ln_2", "norm2"),
        ("mlp.0", "fc1"),
        ("mlp.3", "fc2"),
        ("self_attention.out_proj", "attn.output"),
    ],
    qkv: Some(["self_attention.in_proj_weight", "self_attention.in_proj_bias"]),
};

/// timm's `VisionTransformer` (`patch_embed.proj`, `blocks.0.attn.qkv`, `norm`, `head`): DINO and
/// MAE checkpoints.
const TIMM_VIT: VitKeys = VitKeys {
    name: "timm",
    proj: "patch_embed.proj",
    class_token: "cls_token",
    positions: "pos_embed",
    final_norm: "norm",
    head: "head",
    block: "blocks.",
    modules: &[
        ("norm1", "norm1"),
        ("norm2", "norm2"),
        ("mlp.fc1", "fc1"),
        ("mlp.fc2", "fc2"),
        ("attn.proj", "attn.output"),
    ],
    qkv: Some(["attn.qkv.weight", "attn.qkv.bias"]),
};

/// Hugging Face's `ViTForImageClassification` as its files on the hub name it (`vit.embeddings`,
/// `vit.encoder.layer.0.attention.attention.query`, `classifier`), e.g.
/// `google/vit-base-patch16-224`, or a bare `ViTModel` (no `vit.`), e.g. `facebook/dino-vitb16`.
const HUGGING_FACE_VIT: VitKeys = VitKeys {
    name: "Hugging Face",
    proj: "embeddings.patch_embeddings.projection",
    class_token: "embeddings.cls_token",
    positions: "embeddings.position_embeddings",
    final_norm: "layernorm",
    head: "classifier",
    block: "encoder.layer.",
    modules: &[
        ("layernorm_before", "norm1"),
        ("layernorm_after", "norm2"),
        ("intermediate.dense", "fc1"),
        ("output.dense", "fc2"),
        ("attention.output.dense", "attn.output"),
        ("attention.attention.query", "attn.query"),
        ("attention.attention.key", "attn.key"),
        ("attention.attention.value", "attn.value"),
    ],
    qkv: None,
};

/// `prefix` goes before every key but the classifier's (Hugging Face's `vit.`).
fn vit_layout(depth: usize, k: &VitKeys, prefix: &str) -> Layout {
    let mut m = Layout::new(k.name);
    m.module(format!("{prefix}{}", k.proj), "stem.proj");
    m.param(format!("{prefix}{}", k.class_token), "stem.class_token", Piece::Whole);
    m.param(format!("{prefix}{}", k.positions), "stem.positions", Piece::Whole);
    for i in 0..depth {
        let (t, u) = (format!("{prefix}{}{i}", k.block), format!("units.{i}"));
        for (theirs, ours) in k.modules {
            m.module(format!("{t}.{theirs}"), format!("{u}.{ours}"));
        }
        if let Some([weight, bias]) = k.qkv {
            m.fused_qkv(&format!("{t}.{weight}"), &format!("{t}.{bias}"), &format!("{u}.attn"));
        }
    }
    m.module(format!("{prefix}{}", k.final_norm), "head.norm");
    m.module(k.head, "head.fc");
    m
}

/// The checkpoint names of a ConvNeXt key layout.
struct ConvnextKeys<'a> {
    name: &'static str,
    /// The stem's conv and LayerNorm; the final LayerNorm and the classifier.
    stem: [String; 2],
    head: [String; 2],
    /// Block `b` of stage `s`, and the downsampling that opens stage `s` (its LayerNorm is `.0`,
    /// its conv `.1`).
    block: &'a dyn Fn(usize, usize) -> String,
    down: &'a dyn Fn(usize) -> String,
    /// A block's modules (theirs, ours), and its parameters that load flattened (theirs, ours): the
    /// layer scale, and Hugging Face's `[1, 1, 1, C]` GRN parameters.
    modules: &'a [(&'a str, &'a str)],
    flat: &'a [(&'a str, &'a str)],
}

fn convnext_layout(depths: [usize; 4], k: ConvnextKeys) -> Layout {
    let mut m = Layout::new(k.name);
    let [conv, norm] = k.stem;
    m.module(conv, "stem.conv");
    m.module(norm, "stem.norm");
    let blocks = depths
        .into_iter()
        .enumerate()
        .flat_map(|(s, n)| (0..n).map(move |b| (s, b)));
    for (u, (s, b)) in blocks.enumerate() {
        let (t, ours) = ((k.block)(s, b), format!("units.{u}"));
        for (theirs, name) in k.modules {
            m.module(format!("{t}.{theirs}"), format!("{ours}.{name}"));
        }
        for (theirs, name) in k.flat {
            m.param(format!("{t}.{theirs}"), format!("{ours}.{name}"), Piece::Flat);
        }
        if s > 0 && b == 0 {
            m.module(format!("{}.0", (k.down)(s)), format!("{ours}.down.norm"));
            m.module(format!("{}.1", (k.down)(s)), format!("{ours}.down.conv"));
        }
    }
    let [norm, fc] = k.head;
    m.module(norm, "head.norm");
    m.module(fc, "head.fc");
    m
}

/// torchvision's `ConvNeXt` (`features.0.0`, `features.1.0.block.0`, `features.2.1`, `classifier.2`).
fn torchvision_convnext_layout(depths: [usize; 4]) -> Layout {
    convnext_layout(
        depths,
        ConvnextKeys {
            name: "torchvision",
            stem: ["features.0.0".into(), "features.0.1".into()],
            head: ["classifier.0".into(), "classifier.2".into()],
            block: &|s, b| format!("features.{}.{b}", 2 * s + 1),
            down: &|s| format!("features.{}", 2 * s),
            modules: &[
                ("block.0", "dwconv"),
                ("block.2", "norm"),
                ("block.3", "fc1"),
                ("block.5", "fc2"),
            ],
            flat: &[("layer_scale", "layer_scale")],
        },
    )
}

/// Hugging Face's `ConvNextForImageClassification` (`convnext.embeddings.patch_embeddings`,
/// `convnext.encoder.stages.0.layers.0.dwconv`, `classifier`), e.g. `facebook/convnext-base-224`,
/// and `ConvNextV2ForImageClassification` (the same under `convnextv2.`, with `grn` instead of
/// `layer_scale_parameter`), e.g. `facebook/convnextv2-base-1k-224`; `prefix` is `convnext.`,
/// `convnextv2.`, or empty for a bare `ConvNextModel` / `ConvNextV2Model`.
fn hf_convnext_layout(depths: [usize; 4], prefix: &str) -> Layout {
    convnext_layout(
        depths,
        ConvnextKeys {
            name: "Hugging Face",
            stem: [
                format!("{prefix}embeddings.patch_embeddings"),
                format!("{prefix}embeddings.layernorm"),
            ],
            head: [format!("{prefix}layernorm"), "classifier".into()],
            block: &|s, b| format!("{prefix}encoder.stages.{s}.layers.{b}"),
            down: &|s| format!("{prefix}encoder.stages.{s}.downsampling_layer"),
            modules: &[
                ("dwconv", "dwconv"),
                ("layernorm", "norm"),
                ("pwconv1", "fc1"),
                ("pwconv2", "fc2"),
            ],
            flat: &[
                ("layer_scale_parameter", "layer_scale"),
                ("grn.weight", "grn.weight"),
                ("grn.bias", "grn.bias"),
            ],
        },
    )
}

/// timm's `ConvNeXt` (`stem.0`, `stages.0.blocks.0.conv_dw`, `mlp.fc1`, `mlp.grn` (V2) or `gamma`
/// (V1), `stages.1.downsample.1`, `head.norm`, `head.fc`), e.g. `convnextv2_base.fcmae_ft_in1k`.
fn timm_convnext_layout(depths: [usize; 4]) -> Layout {
    convnext_layout(
        depths,
        ConvnextKeys {
            name: "timm",
            stem: ["stem.0".into(), "stem.1".into()],
            head: ["head.norm".into(), "head.fc".into()],
            block: &|s, b| format!("stages.{s}.blocks.{b}"),
            down: &|s| format!("stages.{s}.downsample"),
            modules: &[
                ("conv_dw", "dwconv"),
                ("norm", "norm"),
                ("mlp.fc1", "fc1"),
                ("mlp.grn", "grn"),
                ("mlp.fc2", "fc2"),
            ],
            flat: &[("gamma", "layer_scale")],
        },
    )
}
