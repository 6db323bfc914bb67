//! The backbone modules. A backbone is a stem, a sequence of probed units and a head, so that one
//! forward pass yields the logits and the probe features of every probed layer (method §3.1–3.2),
//! and surgery (truncation, extractor/tunnel swaps) is slicing the unit list.

use burn::module::{Module, Param};
use burn::nn::attention::MultiHeadAttention;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, LayerNorm, Linear};
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use super::arch::{ArchSpec, ProbeTokens, Resolved, VggItem};
use super::build::{cnn_head, vit_head};
use crate::error::{Error, Result};
use crate::kernel::transformer::{layer_norm, linear, linear_gelu, self_attention};
use crate::kernel::{batch_norm, batch_norm_add_relu, conv_batch_norm, conv_batch_norm_add_relu, conv2d_module};

/// conv -> [probe] -> BN -> ReLU -> optional max-pool. VGG layers and the ResNet stem.
#[derive(Module, Debug)]
pub struct ConvUnit {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub pool: Option<MaxPool2d>,
}

/// First conv of a BasicBlock: conv -> [probe] -> BN -> ReLU; the block input rides along.
#[derive(Module, Debug)]
pub struct ResFirst {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// Second conv of a BasicBlock: conv -> [probe] -> BN -> + shortcut -> ReLU.
#[derive(Module, Debug)]
pub struct ResSecond {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub down_conv: Option<Conv2d>,
    pub down_bn: Option<BatchNorm>,
}

/// A hidden layer of the MLP: Linear -> ReLU -> [probe].
#[derive(Module, Debug)]
pub struct DenseUnit {
    pub fc: Linear,
}

/// Pre-norm transformer block: x + Attn(LN x), then x + MLP(LN x), with stochastic depth.
#[derive(Module, Debug)]
pub struct VitBlock {
    pub norm1: LayerNorm,
    pub attn: MultiHeadAttention,
    pub norm2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    pub drop_path: f64,
}

/// ConvNeXt block (torchvision's `CNBlock`, timm's V2 block), after the stage's downsampling if
/// it opens one: depthwise 7×7 -> [probe] -> LayerNorm -> Linear 4× -> GELU -> [GRN] -> Linear ->
/// [layer scale], added to the block input with stochastic depth.
#[derive(Module, Debug)]
pub struct ConvnextBlock {
    pub down: Option<Downsample>,
    pub dwconv: Conv2d,
    pub norm: LayerNorm,
    pub fc1: Linear,
    pub grn: Option<Grn>,
    pub fc2: Linear,
    pub layer_scale: Option<Param<Tensor<1>>>,
    pub drop_path: f64,
}

/// Global response normalisation (ConvNeXt V2), channels last: each channel's L2 norm over the
/// map, divided by its mean over the channels (+1e-6), scales the input: x + β + γ·(x·n).
#[derive(Module, Debug)]
pub struct Grn {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
}

impl Grn {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let g = x.clone().powi_scalar(2).sum_dim(1).sum_dim(2).sqrt();
        let n = g.clone() / (g.mean_dim(3) + 1e-6);
        let scaled = (x.clone() * n) * self.weight.val().unsqueeze::<4>();
        x + scaled + self.bias.val().unsqueeze::<4>()
    }
}

/// ConvNeXt's downsampling between stages: channel LayerNorm, then a 2×2 stride-2 conv.
#[derive(Module, Debug)]
pub struct Downsample {
    pub norm: LayerNorm,
    pub conv: Conv2d,
}

#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Unit {
    Conv(ConvUnit),
    ResFirst(ResFirst),
    /// The middle conv of a Bottleneck: conv -> [probe] -> BN -> ReLU; the block input rides on.
    ResMid(ResFirst),
    ResSecond(ResSecond),
    Vit(VitBlock),
    Convnext(ConvnextBlock),
    Dense(DenseUnit),
}

/// ViT patch embedding (conv k = stride = patch): with the paper's fixed 2D sin-cos positions, or
/// torchvision's class token in front and learned positions.
#[derive(Module, Debug)]
pub struct PatchStem {
    pub proj: Conv2d,
    pub class_token: Option<Param<Tensor<3>>>,
    /// `[1, tokens, dim]`; none: fixed sin-cos positions.
    pub positions: Option<Param<Tensor<3>>>,
    #[module(skip)]
    pub probe_tokens: ProbeTokens,
}

/// ConvNeXt's patchify stem: a 4×4 stride-4 conv, then a channel LayerNorm.
#[derive(Module, Debug)]
pub struct ConvStem {
    pub conv: Conv2d,
    pub norm: LayerNorm,
}

/// What comes before the first probed unit, if anything.
#[derive(Module, Debug)]
pub enum Stem {
    Patch(PatchStem),
    Conv(ConvStem),
}

/// The classifier: CNNs pool globally then a linear layer (ConvNeXt normalises the pooled
/// vector first); ViTs apply the final LayerNorm to every token, then pool.
#[derive(Module, Debug)]
pub struct Head {
    pub norm: Option<LayerNorm>,
    pub fc: Linear,
}

#[derive(Module, Debug)]
pub struct Backbone {
    pub stem: Option<Stem>,
    pub units: Vec<Unit>,
    pub head: Head,
}

/// What flows between units.
#[allow(clippy::large_enum_variant)]
enum Flow {
    Map {
        x: Tensor<4>,
        identity: Option<Tensor<4>>,
    },
    Tokens(Tensor<3>),
    /// The MLP's activations, one row per image.
    Flat(Tensor<2>),
}

/// Static description of one probed layer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LayerInfo {
    /// 1-based probed-layer index.
    pub index: usize,
    /// Stable name, following the reference implementation's module names.
    pub name: String,
}

/// Output of a forward pass with probe features.
pub struct ForwardOut {
    pub logits: Tensor<2>,
    /// One `[batch, feature_dim]` matrix per probed layer, in forward order (empty if not asked for).
    pub features: Vec<Tensor<2>>,
}

impl Backbone {
    /// Number of probed layers L.
    pub fn n_layers(&self) -> usize {
        self.units.len()
    }

    /// The side of the patch grid of a ViT's learned positions (`[1, 1 + grid², dim]`, a class
    /// token first); none without learned positions.
    pub fn position_grid(&self) -> Option<usize> {
        let Some(Stem::Patch(PatchStem {
            positions: Some(p),
            class_token: Some(_),
            ..
        })) = &self.stem
        else {
            return None;
        };
        Some(((p.shape().dims::<3>()[1] - 1) as f64).sqrt().round() as usize)
    }

    /// Output channels (or embedding dim) of unit `k` (0-based).
    fn unit_channels(&self, k: usize) -> usize {
        match &self.units[k] {
            Unit::Conv(u) => u.bn.gamma.shape().dims::<1>()[0],
            Unit::ResFirst(u) | Unit::ResMid(u) => u.bn.gamma.shape().dims::<1>()[0],
            Unit::ResSecond(u) => u.bn.gamma.shape().dims::<1>()[0],
            Unit::Vit(u) => u.norm2.gamma.shape().dims::<1>()[0],
            Unit::Convnext(u) => u.dwconv.weight.shape().dims::<4>()[0],
            Unit::Dense(u) => u.fc.weight.shape().dims::<2>()[1],
        }
    }

    /// Number of classes of the head.
    pub fn n_classes(&self) -> usize {
        self.head.fc.weight.shape().dims::<2>()[1]
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.run(x, false).logits
    }

    /// Forward pass returning the logits and every probed layer's features.
    pub fn forward_features(&self, x: Tensor<4>) -> ForwardOut {
        self.run(x, true)
    }

    fn run(&self, x: Tensor<4>, want_features: bool) -> ForwardOut {
        let training = x.device().is_autodiff();
        let (mut flow, tokens) = match &self.stem {
            None => (Flow::Map { x, identity: None }, None),
            Some(Stem::Patch(stem)) => (Flow::Tokens(stem.forward(x)), Some(stem.token_pool())),
            Some(Stem::Conv(stem)) => (
                Flow::Map {
                    x: channel_norm(&stem.norm, conv2d_module(&stem.conv, x)),
                    identity: None,
                },
                None,
            ),
        };
        let mut features = Vec::new();
        for unit in &self.units {
            let (next, feature) = unit.forward(flow, want_features, training, self.head.norm.as_ref(), tokens);
            flow = next;
            if let Some(f) = feature {
                features.push(f);
            }
        }
        let pooled = match flow {
            Flow::Map { x, .. } => {
                let [b, c, _, _] = x.dims();
                let pooled = adaptive_avg_pool2d(x, [1, 1]).reshape([b, c]);
                match &self.head.norm {
                    Some(n) => layer_norm(n, pooled),
                    None => pooled,
                }
            }
            Flow::Tokens(t) => {
                let t = match &self.head.norm {
                    Some(n) => layer_norm(n, t),
                    None => t,
                };
                // The class token where there is one (torchvision's head), else the mean token.
                match tokens {
                    Some(TokenPool { class_token: true, .. }) => t.narrow(1, 0, 1).squeeze_dim(1),
                    _ => t.mean_dim(1).squeeze_dim(1),
                }
            }
            Flow::Flat(h) => h,
        };
        ForwardOut {
            logits: self.head.fc.forward(pooled),
            features,
        }
    }

    /// The network without its tunnel: the first `k` probed layers and a fresh head (DESIGN surgery).
    pub fn truncated(&self, k: usize, device: &Device) -> Result<Backbone> {
        if k == 0 || k > self.n_layers() {
            return Err(Error::usage(format!(
                "cannot truncate at layer {k}: the network has {} probed layers",
                self.n_layers()
            )));
        }
        let classes = self.n_classes();
        let channels = self.unit_channels(k - 1);
        let head = match &self.head.norm {
            Some(_) => vit_head(channels, classes, device),
            None => cnn_head(channels, classes, device),
        };
        Ok(Backbone {
            stem: self.stem.clone(),
            units: self.units[..k].to_vec(),
            head,
        })
    }

    /// The network with its extractor (the stem and probed layers 1..k; every layer for k ≥ L)
    /// frozen: no gradients, and batch norm on its running statistics.
    pub fn freeze_extractor(mut self, k: usize) -> Backbone {
        let k = k.min(self.units.len());
        self.stem = self.stem.map(|s| s.freeze());
        self.units = freeze_units(self.units, 0..k);
        self
    }

    /// The network with its tunnel (probed layers k+1..L) frozen, as [`Backbone::freeze_extractor`].
    pub fn freeze_tunnel(mut self, k: usize) -> Backbone {
        let n = self.units.len();
        self.units = freeze_units(self.units, k.min(n)..n);
        self
    }

    /// The network with probed layers k+1..L taken from `fresh` (a newly initialised network of
    /// the same architecture): its tunnel re-initialised.
    pub fn with_tunnel_of(mut self, fresh: Backbone, k: usize) -> Result<Backbone> {
        if fresh.n_layers() != self.n_layers() || k > self.n_layers() {
            return Err(Error::Internal(format!(
                "re-initialising the tunnel at layer {k} of {} from a network of {} layers",
                self.n_layers(),
                fresh.n_layers()
            )));
        }
        self.units.truncate(k);
        self.units.extend(fresh.units.into_iter().skip(k));
        Ok(self)
    }

    /// Recombine: stem and layers 1..k from `extractor`, layers k+1..L from `tunnel`, and `head`.
    pub fn combine(extractor: &Backbone, tunnel: &Backbone, k: usize, head: &Head) -> Result<Backbone> {
        if extractor.n_layers() != tunnel.n_layers() || k == 0 || k > extractor.n_layers() {
            return Err(Error::usage(format!(
                "cannot combine networks of {} and {} layers at layer {k}",
                extractor.n_layers(),
                tunnel.n_layers()
            )));
        }
        let mut units = extractor.units[..k].to_vec();
        units.extend(tunnel.units[k..].iter().cloned());
        Ok(Backbone {
            stem: extractor.stem.clone(),
            units,
            head: head.clone(),
        })
    }
}

fn freeze_units(units: Vec<Unit>, range: std::ops::Range<usize>) -> Vec<Unit> {
    units
        .into_iter()
        .enumerate()
        .map(|(i, u)| if range.contains(&i) { u.freeze() } else { u })
        .collect()
}

/// Stable names of the probed layers of an architecture (method §3.1 module names).
pub fn layer_names(spec: &ArchSpec) -> Result<Vec<LayerInfo>> {
    let mut names = Vec::new();
    match spec.resolve()? {
        Resolved::Vgg { items } => {
            let mut torch_index = 0;
            for item in items {
                match item {
                    VggItem::Conv(_) => {
                        names.push(format!("features.{torch_index}"));
                        torch_index += 3;
                    }
                    VggItem::Pool => torch_index += 1,
                }
            }
        }
        Resolved::Resnet { blocks, expansion, .. } => {
            names.push("conv1".to_string());
            let convs = if expansion == 1 { 2 } else { 3 };
            for (stage, n) in blocks.iter().enumerate() {
                for b in 0..*n {
                    names.extend((1..=convs).map(|c| format!("layer{}.{b}.conv{c}", stage + 1)));
                }
            }
        }
        Resolved::Vit { depth, class_token, .. } => names.extend((0..depth).map(|i| {
            if class_token {
                format!("encoder.layers.encoder_layer_{i}")
            } else {
                format!("blocks.{i}")
            }
        })),
        Resolved::Convnext { depths, v2, .. } => {
            for (stage, &n) in depths.iter().enumerate() {
                names.extend((0..n).map(|b| {
                    if v2 {
                        format!("stages.{stage}.blocks.{b}.conv_dw")
                    } else {
                        format!("features.{}.{b}.block.0", 2 * stage + 1)
                    }
                }));
            }
        }
        Resolved::Mlp { hidden, .. } => names.extend((0..hidden.len()).map(|i| format!("fc.{i}"))),
    }
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, name)| LayerInfo { index: i + 1, name })
        .collect())
}

/// CNN probe feature (method §3.2): 2x2 adaptive average pool when H > 2, flattened channel-major.
fn cnn_feature(x: &Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    if h > 2 {
        adaptive_avg_pool2d(x.clone().detach(), [2, 2]).reshape([b, c * 4])
    } else {
        x.clone().detach().reshape([b, c * h * w])
    }
}

impl Unit {
    fn forward(
        &self,
        flow: Flow,
        want_features: bool,
        training: bool,
        final_norm: Option<&LayerNorm>,
        tokens: Option<TokenPool>,
    ) -> (Flow, Option<Tensor<2>>) {
        match (self, flow) {
            (Unit::Conv(u), Flow::Map { x, .. }) => {
                let (h, f) = conv_bn(&u.conv, &u.bn, x, want_features, u.pool.as_ref());
                (Flow::Map { x: h, identity: None }, f)
            }
            (Unit::ResFirst(u), Flow::Map { x, .. }) => {
                let (h, f) = conv_bn(&u.conv, &u.bn, x.clone(), want_features, None);
                (
                    Flow::Map {
                        x: h,
                        identity: Some(x),
                    },
                    f,
                )
            }
            (Unit::ResMid(u), Flow::Map { x, identity }) => {
                let (h, f) = conv_bn(&u.conv, &u.bn, x, want_features, None);
                (Flow::Map { x: h, identity }, f)
            }
            (Unit::ResSecond(u), Flow::Map { x, identity }) => {
                // A truncated network may start a block without its first conv only through
                // `combine`, which keeps units paired; the identity is then always present.
                let identity = identity.expect("ResSecond follows ResFirst");
                // Computed after the block's conv where the two run apart (see
                // `conv_batch_norm_add_relu`).
                let shortcut = || match (&u.down_conv, &u.down_bn) {
                    (Some(c), Some(b)) => conv_batch_norm(c, b, identity, false, None),
                    _ => identity,
                };
                let (h, f) = if want_features {
                    let h = conv2d_module(&u.conv, x);
                    let f = cnn_feature(&h);
                    (batch_norm_add_relu(&u.bn, h, shortcut()), Some(f))
                } else {
                    (conv_batch_norm_add_relu(&u.conv, &u.bn, x, shortcut), None)
                };
                (Flow::Map { x: h, identity: None }, f)
            }
            (Unit::Vit(u), Flow::Tokens(t)) => {
                let a = self_attention(&u.attn, layer_norm(&u.norm1, t.clone()));
                let t = t + drop_path(a, u.drop_path, training);
                let m = linear(&u.fc2, linear_gelu(&u.fc1, layer_norm(&u.norm2, t.clone())));
                let t = t + drop_path(m, u.drop_path, training);
                let f = want_features.then(|| {
                    let n = match final_norm {
                        Some(n) => layer_norm(n, t.clone().detach()),
                        None => t.clone().detach(),
                    };
                    tokens.unwrap_or_default().probe_feature(n)
                });
                (Flow::Tokens(t), f)
            }
            (Unit::Convnext(u), Flow::Map { x, .. }) => {
                let x = match &u.down {
                    Some(d) => conv2d_module(&d.conv, channel_norm(&d.norm, x)),
                    None => x,
                };
                let h = conv2d_module(&u.dwconv, x.clone());
                let f = want_features.then(|| cnn_feature(&h));
                // Channels last for the LayerNorm and the two linear layers, as torchvision does.
                let h = linear_gelu(&u.fc1, layer_norm(&u.norm, h.permute([0, 2, 3, 1])));
                let h = match &u.grn {
                    Some(g) => g.forward(h),
                    None => h,
                };
                let h = linear(&u.fc2, h);
                let h = match &u.layer_scale {
                    Some(s) => h * s.val().unsqueeze::<4>(),
                    None => h,
                };
                let h = h.permute([0, 3, 1, 2]);
                (
                    Flow::Map {
                        x: x + drop_path(h, u.drop_path, training),
                        identity: None,
                    },
                    f,
                )
            }
            (Unit::Dense(u), flow) => {
                let x = match flow {
                    // A first layer that reads one channel takes the mean of the image's.
                    Flow::Map { x, .. } if u.fc.weight.dims()[0] == x.dims()[2] * x.dims()[3] => {
                        let [b, _, h, w] = x.dims();
                        x.mean_dim(1).reshape([b, h * w])
                    }
                    Flow::Map { x, .. } => {
                        let [b, c, h, w] = x.dims();
                        x.reshape([b, c * h * w])
                    }
                    Flow::Flat(x) => x,
                    Flow::Tokens(_) => unreachable!("an MLP has no patch stem"),
                };
                let h = relu(u.fc.forward(x));
                let f = want_features.then(|| h.clone().detach());
                (Flow::Flat(h), f)
            }
            _ => unreachable!("unit sequence built by Backbone::new is consistent"),
        }
    }
}

/// Stochastic depth: drop the whole residual branch per sample with probability `rate`.
fn drop_path<const D: usize>(x: Tensor<D>, rate: f64, training: bool) -> Tensor<D> {
    if !training || rate <= 0.0 {
        return x;
    }
    let mut shape = [1; D];
    shape[0] = x.dims()[0];
    let keep = 1.0 - rate;
    let mask = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &x.device());
    x * mask.div_scalar(keep)
}

/// A CNN unit's conv, then its batch norm and ReLU (and `pool`), with the conv output's probe
/// feature where it is wanted: then the conv's output is kept for it, and the two run one after
/// the other.
fn conv_bn(
    conv: &Conv2d,
    bn: &BatchNorm,
    x: Tensor<4>,
    want_features: bool,
    pool: Option<&MaxPool2d>,
) -> (Tensor<4>, Option<Tensor<2>>) {
    if !want_features {
        return (conv_batch_norm(conv, bn, x, true, pool), None);
    }
    let h = conv2d_module(conv, x);
    let f = cnn_feature(&h);
    (batch_norm(bn, h, true, pool), Some(f))
}

/// LayerNorm over the channels of an NCHW map (torchvision's `LayerNorm2d`).
fn channel_norm(norm: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
    layer_norm(norm, x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
}

/// How a ViT's tokens are pooled: whether token 0 is a class token, and which tokens a probe
/// feature averages.
#[derive(Clone, Copy, Debug, Default)]
struct TokenPool {
    class_token: bool,
    probe: ProbeTokens,
}

impl TokenPool {
    /// `[b, tokens, dim]` (after the final LayerNorm) -> `[b, dim]`.
    fn probe_feature(self, t: Tensor<3>) -> Tensor<2> {
        let n = t.dims()[1];
        let t = match (self.class_token, self.probe) {
            (true, ProbeTokens::Class) => t.narrow(1, 0, 1),
            (true, ProbeTokens::Patches) => t.narrow(1, 1, n - 1),
            _ => t,
        };
        t.mean_dim(1).squeeze_dim(1)
    }
}

impl PatchStem {
    fn token_pool(&self) -> TokenPool {
        TokenPool {
            class_token: self.class_token.is_some(),
            probe: self.probe_tokens,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let p = conv2d_module(&self.proj, x);
        let [b, d, gh, gw] = p.dims();
        let tokens = p.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let tokens = match &self.class_token {
            Some(c) => Tensor::cat(vec![c.val().expand([b as i64, 1, d as i64]), tokens], 1),
            None => tokens,
        };
        match &self.positions {
            Some(pos) => tokens + pos.val(),
            None => {
                let pos = sincos_positions(d, gh, gw, &tokens.device());
                tokens + pos.unsqueeze_dim(0)
            }
        }
    }
}

/// Fixed 2D sin-cos position embedding (method §4.4): concat(sin xω, cos xω, sin yω, cos yω).
pub fn sincos_positions(dim: usize, gh: usize, gw: usize, device: &Device) -> Tensor<2> {
    let q = dim / 4;
    let omega: Vec<f64> = (0..q)
        .map(|k| {
            let e = if q > 1 { k as f64 / (q - 1) as f64 } else { 0.0 };
            1.0 / 10000f64.powf(e)
        })
        .collect();
    let mut data = Vec::with_capacity(gh * gw * dim);
    for y in 0..gh {
        for x in 0..gw {
            for f in [f64::sin, f64::cos] {
                data.extend(omega.iter().map(|w| f(x as f64 * w) as f32));
            }
            for f in [f64::sin, f64::cos] {
                data.extend(omega.iter().map(|w| f(y as f64 * w) as f32));
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [gh * gw, dim]), device)
}

/// Number of trainable parameters: burn's count minus the BatchNorm running statistics, which
/// PyTorch (and the paper's Table 11) does not count as parameters.
pub fn parameter_count(model: &Backbone) -> usize {
    let running: usize = model
        .units
        .iter()
        .map(|u| match u {
            Unit::Conv(u) => u.bn.gamma.shape().dims::<1>()[0],
            Unit::ResFirst(u) | Unit::ResMid(u) => u.bn.gamma.shape().dims::<1>()[0],
            Unit::ResSecond(u) => {
                u.bn.gamma.shape().dims::<1>()[0] + u.down_bn.as_ref().map_or(0, |b| b.gamma.shape().dims::<1>()[0])
            }
            Unit::Vit(_) | Unit::Convnext(_) | Unit::Dense(_) => 0,
        })
        .sum();
    model.num_params() - 2 * running
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter of every family trains on the autodiff device (biases that start at zero
    /// too); only the batch-norm running statistics track no gradient.
    #[test]
    fn every_parameter_trains() {
        struct Frozen {
            path: Vec<String>,
            frozen: Vec<String>,
        }
        impl burn::module::ModuleVisitor for Frozen {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                let path = self.path.join(".");
                if !param.val().is_require_grad() && !path.ends_with("running_mean") && !path.ends_with("running_var") {
                    self.frozen.push(path);
                }
            }
        }
        let device = Device::flex().autodiff();
        for name in ["vggm-11", "resnet-18", "vit-t", "convnext-b", "mlp"] {
            let spec = ArchSpec::named(name).with_width(0.125);
            let model = Backbone::new(&spec, 5, 32, &device).unwrap();
            let mut visitor = Frozen {
                path: Vec::new(),
                frozen: Vec::new(),
            };
            model.visit(&mut visitor);
            assert!(visitor.frozen.is_empty(), "{name}: {:?}", visitor.frozen);
        }
    }

    fn input(b: usize, res: usize, device: &Device) -> Tensor<4> {
        Tensor::<4>::random([b, 3, res, res], Distribution::Normal(0.0, 1.0), device)
    }

    fn dims(spec: &ArchSpec, res: usize) -> Vec<usize> {
        let device = Device::flex();
        let model = Backbone::new(spec, 10, res, &device).unwrap().valid();
        let out = model.forward_features(input(2, res, &device));
        assert_eq!(out.logits.dims(), [2, 10]);
        out.features.iter().map(|f| f.dims()[1]).collect()
    }

    #[test]
    fn probe_feature_dimensions_follow_method_3_2() {
        // method §3.2: VGGm per stage 256, 512, 1024, 2048, 2048 at 32² (full width, 4C after 2x2 pooling).
        let vgg = dims(&ArchSpec::named("vggm-11"), 32);
        assert_eq!(vgg, vec![256, 256, 512, 512, 1024, 1024, 2048, 2048, 2048, 2048]);
        // ResNet at 32²: conv1 256, layer1 256, layer2 512, layer3 1024 (2x2), layer4 512 (1x1).
        let resnet = dims(&ArchSpec::named("resnet-18"), 32);
        assert_eq!(
            resnet,
            vec![
                256, 256, 256, 256, 256, 512, 512, 512, 512, 1024, 1024, 1024, 1024, 512, 512, 512, 512
            ]
        );
        // ViT: the embedding dimension at every block.
        let vit = dims(
            &ArchSpec {
                depth: Some(3),
                ..ArchSpec::named("vit-t")
            },
            32,
        );
        assert_eq!(vit, vec![192, 192, 192]);
    }

    #[test]
    fn resnet_50_is_torchvisions() {
        let spec = ArchSpec::named("resnet-50");
        // torchvision.models.resnet50(): 25,557,032 parameters with its 1000-class head.
        let model = Backbone::new(&spec, 1000, 32, &Device::flex()).unwrap();
        assert_eq!(parameter_count(&model), 25_557_032);
        let names = layer_names(&spec).unwrap();
        assert_eq!(names.len(), 49);
        assert_eq!(spec.probed_layers().unwrap(), 49);
        assert_eq!(
            [&names[1].name, &names[3].name, &names[48].name],
            ["layer1.0.conv1", "layer1.0.conv3", "layer4.2.conv3"]
        );
        // Probe features (2x2-pooled, 4C) at 64²: the bottleneck's inner width, then its output.
        let small = spec.clone().with_width(0.125);
        let d = dims(&small, 64);
        assert_eq!(&d[..5], [32, 32, 32, 128, 32]);
        assert_eq!(d[48], 256 * 2 * 2);
    }

    #[test]
    fn vit_b_16_and_the_convnexts_are_torchvisions_and_timms() {
        let device = Device::flex();
        // torchvision.models.vit_b_16() and convnext_base(), 1000 classes: 86,567,656 and
        // 88,591,464 parameters.
        for (name, params, layers, first, last) in [
            (
                "vit-b-16",
                86_567_656,
                12,
                "encoder.layers.encoder_layer_0",
                "encoder.layers.encoder_layer_11",
            ),
            (
                "convnext-b",
                88_591_464,
                36,
                "features.1.0.block.0",
                "features.7.2.block.0",
            ),
            // timm.create_model("convnextv2_base"): 88,717,800.
            (
                "convnext-v2-b",
                88_717_800,
                36,
                "stages.0.blocks.0.conv_dw",
                "stages.3.blocks.2.conv_dw",
            ),
        ] {
            let spec = ArchSpec::named(name);
            let model = Backbone::new(&spec, 1000, 224, &device).unwrap();
            assert_eq!(parameter_count(&model), params, "{name}");
            let names = layer_names(&spec).unwrap();
            assert_eq!((names.len(), spec.probed_layers().unwrap()), (layers, layers));
            assert_eq!([&names[0].name, &names[layers - 1].name], [first, last]);
        }
        // Probe features: the embedding per ViT block; the depthwise conv's 2x2-pooled output
        // per ConvNeXt block (4C while the map is larger than 2x2, then C·H·W).
        let vit = ArchSpec {
            depth: Some(2),
            dim: Some(64),
            heads: Some(2),
            patch: Some(8),
            ..ArchSpec::named("vit-b-16")
        };
        assert_eq!(dims(&vit, 32), vec![64, 64]);
        let convnext = dims(&ArchSpec::named("convnext-b").with_width(0.03125), 64);
        assert_eq!(convnext.len(), 36);
        assert_eq!([convnext[0], convnext[3], convnext[6], convnext[33]], [16, 32, 64, 128]);
        // The class token alone is a choice only where there is one.
        let class = Some(ProbeTokens::Class);
        assert!(
            ArchSpec {
                probe_tokens: class,
                ..vit
            }
            .resolve()
            .is_ok()
        );
        assert!(
            ArchSpec {
                probe_tokens: class,
                ..ArchSpec::named("vit-t")
            }
            .resolve()
            .is_err()
        );
    }

    #[test]
    fn the_mlp_probes_every_hidden_layer() {
        let spec = ArchSpec {
            depth: Some(3),
            dim: Some(50),
            ..ArchSpec::named("mlp")
        };
        assert_eq!(dims(&spec, 28), vec![50, 50, 50]);
        let names: Vec<String> = layer_names(&spec).unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["fc.0", "fc.1", "fc.2"]);
        // 3·28·28 inputs: (2352 + 1)·50 + 2·(50 + 1)·50 + (50 + 1)·10 parameters.
        let model = Backbone::new(&spec, 10, 28, &Device::flex()).unwrap();
        assert_eq!(parameter_count(&model), 2353 * 50 + 2 * 51 * 50 + 51 * 10);
        // Reading one channel (their mean): 28·28 inputs, and the same features as the 3-channel
        // network whose three copies of each first-layer weight are a third of its weight.
        let grey = ArchSpec {
            input_channels: Some(1),
            ..spec.clone()
        };
        let device = Device::flex();
        let one = Backbone::new(&grey, 10, 28, &device).unwrap().valid();
        assert_eq!(parameter_count(&one), 785 * 50 + 2 * 51 * 50 + 51 * 10);
        let mut three = one.clone();
        if let Unit::Dense(u) = &mut three.units[0] {
            let w = u.fc.weight.val().div_scalar(3.0);
            u.fc.weight = Param::from_tensor(Tensor::cat(vec![w.clone(), w.clone(), w], 0));
        }
        let x = input(2, 28, &device);
        let (a, b) = (one.forward_features(x.clone()), three.forward_features(x));
        for (fa, fb) in a.features.into_iter().zip(b.features) {
            let diff = (fa - fb).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-4, "{diff}");
        }
        assert!(
            ArchSpec {
                input_channels: Some(2),
                ..spec.clone()
            }
            .resolve()
            .is_err()
        );
        assert!(
            ArchSpec {
                heads: Some(2),
                ..spec.clone()
            }
            .resolve()
            .is_err()
        );
    }

    #[test]
    fn truncation_and_recombination() {
        let device = Device::flex();
        let spec = ArchSpec::named("resnet-18").with_width(0.125);
        let a = Backbone::new(&spec, 5, 32, &device).unwrap();
        let b = Backbone::new(&spec, 5, 32, &device).unwrap();
        for k in [1, 2, 3, 9, 17] {
            let t = a.truncated(k, &device).unwrap();
            assert_eq!(t.n_layers(), k);
            let out = t.valid().forward_features(input(2, 32, &device));
            assert_eq!(out.features.len(), k);
            assert_eq!(out.logits.dims(), [2, 5]);
        }
        assert!(a.truncated(0, &device).is_err());
        assert!(a.truncated(18, &device).is_err());
        // E_a + T_b: layers 1..k from a, the rest from b; forward works at every cut.
        for k in 1..17 {
            let c = Backbone::combine(&a, &b, k, &b.head).unwrap();
            assert_eq!(c.n_layers(), 17);
            let same = |x: &Unit, y: &Unit| match (x, y) {
                (Unit::ResFirst(p), Unit::ResFirst(q)) => p.conv.weight.id == q.conv.weight.id,
                (Unit::ResSecond(p), Unit::ResSecond(q)) => p.conv.weight.id == q.conv.weight.id,
                (Unit::Conv(p), Unit::Conv(q)) => p.conv.weight.id == q.conv.weight.id,
                _ => false,
            };
            assert!(same(&c.units[k - 1], &a.units[k - 1]) && same(&c.units[k], &b.units[k]));
            let _ = c.valid().forward(input(2, 32, &device));
        }
    }
}
