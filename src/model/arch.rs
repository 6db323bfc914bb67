//! Architecture descriptions: the named backbones of method §4 with width/depth knobs, as plain
//! data (serde) so that scenarios can name them and `tunnelbench models` can list them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The backbone families of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// VGGm (method §4.1): VGG conv stack, BN, max-pools, GAP head.
    Vggm,
    /// VGGm† (method §4.2): VGGm without the max-pools of its first two stages.
    VggmDagger,
    /// torchvision ResNet: BasicBlocks (ResNet-18/34, method §4.3) or Bottlenecks (ResNet-50).
    Resnet,
    /// ViT: the paper's (patch stem, fixed sin-cos positions, no class token, GAP head; method
    /// §4.4) or torchvision's ViT-B/16 (class token, learned positions, class-token head).
    Vit,
    /// ConvNeXt: patchify stem, stages of depthwise 7×7 blocks; torchvision's V1 (layer scale)
    /// or timm's V2 (global response normalisation in the MLP, no layer scale).
    Convnext,
    /// A multilayer perceptron on the flattened image: `depth` hidden ReLU layers of `dim` units.
    Mlp,
}

/// A fully resolved architecture: family, depth and every width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSpec {
    /// Named architecture, e.g. `vggm-11`, `vggm-dagger-17`, `resnet-18`, `vit-t-plus`.
    pub name: String,
    /// Channel multiplier for CNNs (1.0 = paper size); embedding-dimension multiplier for ViTs.
    #[serde(default = "one")]
    pub width: f64,
    /// ViT: number of transformer blocks (default 12 for ViT-T, 18 for ViT-T+); MLP: number of
    /// hidden layers (default 2).
    #[serde(default)]
    pub depth: Option<usize>,
    /// ViT: embedding dimension before the width multiplier (default 192); MLP: hidden units per
    /// layer before the width multiplier (default 400).
    #[serde(default)]
    pub dim: Option<usize>,
    /// MLP only: the image channels it reads (default 3); 1 reads their mean, a grey image's
    /// plane, as the continual-learning literature's MLPs on MNIST do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_channels: Option<usize>,
    /// ViT only: number of attention heads (default 3).
    #[serde(default)]
    pub heads: Option<usize>,
    /// ViT only: patch size (default 8).
    #[serde(default)]
    pub patch: Option<usize>,
    /// ViT and ConvNeXt: stochastic-depth rate at the last block (default 0.1 for the paper's
    /// ViTs, 0 for ViT-B/16, 0.5 for the ConvNeXts).
    #[serde(default)]
    pub drop_path: Option<f64>,
    /// ViT only: the tokens a block's probe feature averages (after the final LayerNorm):
    /// `patches` (default; every token but the class token), `all`, or `class` (the class token
    /// alone; models with one only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_tokens: Option<ProbeTokens>,
    /// A checkpoint to start from: a PyTorch state dict (`.pth`, `.pt`) or `.safetensors` in
    /// torchvision's layout (docs/pretrained.md). Without `[train]`, the network is probed as loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Stripped from every checkpoint key (`module.`, `backbone.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Checkpoint keys (after the prefix) starting with one of these are left out, e.g. the
    /// projection head of a self-supervised checkpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_keys: Vec<String>,
    /// ViT only: a checkpoint's learned positions for another patch grid than the resolution's are
    /// resampled to it (bicubic, antialiased, as timm does) instead of refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resample_positions: bool,
}

/// Which tokens a ViT block's probe feature averages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeTokens {
    #[default]
    Patches,
    All,
    Class,
}

fn one() -> f64 {
    1.0
}

/// Every named architecture, in the order `tunnelbench models` prints them.
pub const NAMED: &[&str] = &[
    "vggm-11",
    "vggm-17",
    "vggm-dagger-11",
    "vggm-dagger-17",
    "resnet-18",
    "resnet-34",
    "resnet-50",
    "vit-t",
    "vit-t-plus",
    "vit-b-16",
    "convnext-b",
    "convnext-v2-b",
    "mlp",
];

/// The VGG layer lists, written as the papers' code writes them: a number is a 3×3 convolution
/// with that many output channels (before the width multiplier), `M` a 2×2 max-pool (method §4.1, §4.2).
const VGGM_11: &str = "64 64 M 128 128 M 256 256 M 512 512 M 512 512 M";
const VGGM_17: &str = "64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M";
const VGGM_DAGGER_11: &str = "64 64 128 128 256 256 M 512 512 M 512 512 M";
const VGGM_DAGGER_17: &str = "64 64 128 128 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M";

/// One entry of a VGG configuration: a conv with this many output channels, or a 2x2 max-pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VggItem {
    Conv(usize),
    Pool,
}

/// The resolved, family-specific structure that the builder turns into modules.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    Vgg {
        items: Vec<VggItem>,
    },
    /// `widths` are the blocks' inner widths; a block's output has `expansion` times as many
    /// channels (1: BasicBlock, two 3×3 convs; 4: torchvision's Bottleneck, 1×1, 3×3 with the
    /// stride, 1×1).
    Resnet {
        blocks: [usize; 4],
        widths: [usize; 4],
        stem_width: usize,
        expansion: usize,
    },
    /// `class_token`: torchvision's layout, a class token in front of the patch tokens, learned
    /// positions and the head on the class token; otherwise the paper's (fixed sin-cos
    /// positions, the head on the mean token).
    Vit {
        dim: usize,
        depth: usize,
        heads: usize,
        patch: usize,
        mlp_ratio: usize,
        drop_path: f64,
        class_token: bool,
        probe_tokens: ProbeTokens,
    },
    /// Blocks per stage and the stages' widths; stochastic depth rises linearly over all blocks
    /// to `drop_path`. `v2`: GRN after the MLP's GELU instead of a layer scale.
    Convnext {
        depths: [usize; 4],
        dims: [usize; 4],
        drop_path: f64,
        v2: bool,
    },
    /// The hidden layers' widths, and the image channels the first one reads (1: their mean).
    Mlp {
        hidden: Vec<usize>,
        channels: usize,
    },
}

impl ArchSpec {
    pub fn named(name: &str) -> Self {
        ArchSpec {
            name: name.to_string(),
            width: 1.0,
            depth: None,
            dim: None,
            input_channels: None,
            heads: None,
            patch: None,
            drop_path: None,
            probe_tokens: None,
            weights: None,
            key_prefix: None,
            ignore_keys: Vec::new(),
            resample_positions: false,
        }
    }

    pub fn with_width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }

    pub fn family(&self) -> Result<Family> {
        match self.name.as_str() {
            "vggm-11" | "vggm-17" => Ok(Family::Vggm),
            "vggm-dagger-11" | "vggm-dagger-17" => Ok(Family::VggmDagger),
            "resnet-18" | "resnet-34" | "resnet-50" => Ok(Family::Resnet),
            "vit-t" | "vit-t-plus" | "vit-b-16" => Ok(Family::Vit),
            "convnext-b" | "convnext-v2-b" => Ok(Family::Convnext),
            "mlp" => Ok(Family::Mlp),
            other => Err(Error::usage(format!(
                "unknown architecture `{other}`; allowed: {}",
                NAMED.join(", ")
            ))),
        }
    }

    /// The depth code of method §4.5 (11/17, 18/34, 12/18).
    pub fn depth_code(&self) -> Result<usize> {
        Ok(match self.name.as_str() {
            "vggm-11" | "vggm-dagger-11" => 11,
            "vggm-17" | "vggm-dagger-17" => 17,
            "resnet-18" => 18,
            "resnet-34" => 34,
            "resnet-50" => 50,
            "vit-t" => self.depth.unwrap_or(12),
            "vit-t-plus" => self.depth.unwrap_or(18),
            "vit-b-16" => self.depth.unwrap_or(12),
            "convnext-b" | "convnext-v2-b" => 36,
            "mlp" => self.depth.unwrap_or(2),
            _ => return Err(self.family().err().unwrap_or_else(|| Error::Internal("depth".into()))),
        })
    }

    /// Stem code (first-filter or patch size) and spatial reduction φ of method §4.5.
    pub fn stem_and_reduction(&self) -> Result<(usize, f64)> {
        Ok(match self.family()? {
            Family::Vggm => (3, 0.5),
            Family::VggmDagger => (3, 1.0),
            Family::Resnet => (7, 0.25),
            Family::Vit => (self.patch.unwrap_or(self.default_patch()), 1.0),
            Family::Convnext => (4, 0.25),
            Family::Mlp => {
                return Err(Error::usage(format!(
                    "architecture `{}` has no stem code or spatial reduction (method §4.5 covers CNNs and ViTs)",
                    self.name
                )));
            }
        })
    }

    pub fn is_transformer(&self) -> bool {
        matches!(self.family(), Ok(Family::Vit))
    }

    fn default_patch(&self) -> usize {
        if self.name == "vit-b-16" { 16 } else { 8 }
    }

    /// The resolution the architecture is made for: 224 for the ImageNet-1K models (ViT-B/16's
    /// learned positions fit it), 32 for the paper's own.
    pub fn native_resolution(&self) -> usize {
        match self.name.as_str() {
            "resnet-50" | "vit-b-16" | "convnext-b" | "convnext-v2-b" => 224,
            _ => 32,
        }
    }

    fn scaled(&self, channels: usize) -> usize {
        ((channels as f64 * self.width).round() as usize).max(1)
    }

    /// Check the knobs and resolve the structure.
    pub fn resolve(&self) -> Result<Resolved> {
        let family = self.family()?;
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return Err(Error::usage(format!(
                "architecture `{}`: width must be in (0, 16], got {}",
                self.name, self.width
            )));
        }
        if family != Family::Vit
            && (self.heads.is_some() || self.patch.is_some() || self.probe_tokens.is_some() || self.resample_positions)
        {
            return Err(Error::usage(format!(
                "architecture `{}`: heads/patch/probe_tokens/resample_positions apply to ViTs only",
                self.name
            )));
        }
        if family != Family::Mlp && self.input_channels.is_some() {
            return Err(Error::usage(format!(
                "architecture `{}`: input_channels applies to the MLP only",
                self.name
            )));
        }
        if !matches!(family, Family::Vit | Family::Convnext) && self.drop_path.is_some() {
            return Err(Error::usage(format!(
                "architecture `{}`: drop_path applies to ViTs and ConvNeXt only",
                self.name
            )));
        }
        if let Some(rate) = self.drop_path
            && !(0.0..1.0).contains(&rate)
        {
            return Err(Error::usage(format!(
                "architecture `{}`: drop_path must be in [0, 1), got {rate}",
                self.name
            )));
        }
        if !matches!(family, Family::Vit | Family::Mlp) && (self.depth.is_some() || self.dim.is_some()) {
            return Err(Error::usage(format!(
                "architecture `{}`: depth/dim apply to ViTs and the MLP only",
                self.name
            )));
        }
        let vgg = |layers: &str| Resolved::Vgg {
            items: layers
                .split(' ')
                .map(|l| match l {
                    "M" => VggItem::Pool,
                    n => VggItem::Conv(self.scaled(n.parse().expect("a channel count"))),
                })
                .collect(),
        };
        Ok(match self.name.as_str() {
            "vggm-11" => vgg(VGGM_11),
            "vggm-17" => vgg(VGGM_17),
            "vggm-dagger-11" => vgg(VGGM_DAGGER_11),
            "vggm-dagger-17" => vgg(VGGM_DAGGER_17),
            "resnet-18" | "resnet-34" | "resnet-50" => Resolved::Resnet {
                blocks: if self.name == "resnet-18" {
                    [2, 2, 2, 2]
                } else {
                    [3, 4, 6, 3]
                },
                widths: [self.scaled(64), self.scaled(128), self.scaled(256), self.scaled(512)],
                stem_width: self.scaled(64),
                expansion: if self.name == "resnet-50" { 4 } else { 1 },
            },
            "convnext-b" | "convnext-v2-b" => Resolved::Convnext {
                depths: [3, 3, 27, 3],
                dims: [self.scaled(128), self.scaled(256), self.scaled(512), self.scaled(1024)],
                drop_path: self.drop_path.unwrap_or(0.5),
                v2: self.name == "convnext-v2-b",
            },
            "mlp" => {
                let depth = self.depth.unwrap_or(2);
                let dim = self.scaled(self.dim.unwrap_or(400));
                if depth == 0 || depth > 64 || dim > 65_536 {
                    return Err(Error::usage(format!(
                        "architecture `{}`: depth {depth} must be in 1..=64 and the hidden width {dim} at most 65536",
                        self.name
                    )));
                }
                let channels = self.input_channels.unwrap_or(3);
                if !matches!(channels, 1 | 3) {
                    return Err(Error::usage(format!(
                        "architecture `{}`: input_channels must be 1 or 3, got {channels}",
                        self.name
                    )));
                }
                Resolved::Mlp {
                    hidden: vec![dim; depth],
                    channels,
                }
            }
            _ => {
                let class_token = self.name == "vit-b-16";
                let (heads, dim, drop_path) = if class_token { (12, 768, 0.0) } else { (3, 192, 0.1) };
                let heads = self.heads.unwrap_or(heads);
                let dim = self.scaled(self.dim.unwrap_or(dim));
                let depth = self.depth_code()?;
                let patch = self.patch.unwrap_or(self.default_patch());
                let drop_path = self.drop_path.unwrap_or(drop_path);
                let probe_tokens = self.probe_tokens.unwrap_or_default();
                if probe_tokens == ProbeTokens::Class && !class_token {
                    return Err(Error::usage(format!(
                        "architecture `{}`: probe_tokens = \"class\" needs a class token (vit-b-16)",
                        self.name
                    )));
                }
                if heads == 0 || !dim.is_multiple_of(heads) {
                    return Err(Error::usage(format!(
                        "architecture `{}`: embedding dim {dim} (after width) must be a positive multiple of heads {heads}",
                        self.name
                    )));
                }
                if !class_token && !dim.is_multiple_of(4) {
                    return Err(Error::usage(format!(
                        "architecture `{}`: embedding dim {dim} must be a multiple of 4 (2D sin-cos positions)",
                        self.name
                    )));
                }
                // Bounds far above any ViT-T variant, so that a typo cannot ask for an allocation
                // that aborts the process.
                if dim > 8192 || depth > 1024 || patch > 1024 {
                    return Err(Error::usage(format!(
                        "architecture `{}`: embedding dim {dim} (at most 8192), depth {depth} (at most 1024) \
                         or patch {patch} (at most 1024) is too large",
                        self.name
                    )));
                }
                if depth == 0 || patch == 0 {
                    return Err(Error::usage(format!(
                        "architecture `{}`: depth and patch must be > 0",
                        self.name
                    )));
                }
                Resolved::Vit {
                    dim,
                    depth,
                    heads,
                    patch,
                    mlp_ratio: 4,
                    drop_path,
                    class_token,
                    probe_tokens,
                }
            }
        })
    }

    /// Number of probed layers L (method §3.1).
    pub fn probed_layers(&self) -> Result<usize> {
        Ok(match self.resolve()? {
            Resolved::Vgg { items } => items.iter().filter(|i| matches!(i, VggItem::Conv(_))).count(),
            Resolved::Resnet { blocks, expansion, .. } => {
                1 + if expansion == 1 { 2 } else { 3 } * blocks.iter().sum::<usize>()
            }
            Resolved::Vit { depth, .. } => depth,
            Resolved::Convnext { depths, .. } => depths.iter().sum(),
            Resolved::Mlp { hidden, .. } => hidden.len(),
        })
    }

    /// Whether the architecture takes images of `resolution`²: from the smallest its downsampling
    /// allows to 1024, and for a ViT a whole number of patches (a remainder would be cut off).
    /// The error says why not, after the resolution.
    pub fn check_resolution(&self, resolution: usize) -> Result<()> {
        let resolved = self.resolve()?;
        let min = match resolved {
            Resolved::Vgg { ref items } => 1 << items.iter().filter(|i| matches!(i, VggItem::Pool)).count(),
            Resolved::Resnet { .. } => 32,
            Resolved::Vit { patch, .. } => patch,
            Resolved::Convnext { .. } => 32,
            Resolved::Mlp { .. } => 1,
        };
        if !(min..=1024).contains(&resolution) {
            return Err(Error::usage(format!(
                "{resolution} is outside what `{}` accepts ({min}..=1024)",
                self.name
            )));
        }
        match resolved {
            Resolved::Vit { patch, .. } if !resolution.is_multiple_of(patch) => Err(Error::usage(format!(
                "{resolution} is not a multiple of `{}`'s patch size {patch}",
                self.name
            ))),
            _ => Ok(()),
        }
    }
}
