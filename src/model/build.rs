//! Building a freshly initialised backbone from its architecture (method §4), each family's
//! layers with the initialisation of the reference implementation.

use burn::module::Param;
use burn::nn::attention::MultiHeadAttentionConfig;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Tensor};

use super::arch::{ArchSpec, Resolved, VggItem};
use super::backbone::{
    Backbone, ConvStem, ConvUnit, ConvnextBlock, DenseUnit, Downsample, Grn, Head, PatchStem, ResFirst, ResSecond,
    Stem, Unit, VitBlock,
};
use crate::error::{Error, Result};

const SQRT_2: f64 = std::f64::consts::SQRT_2;

#[allow(clippy::too_many_arguments)]
fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
    fan_out: bool,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(bias)
        .with_initializer(Initializer::KaimingNormal {
            gain: SQRT_2,
            fan_out_only: fan_out,
        })
        .init(device)
}

fn zero_bias(mut c: Conv2d) -> Conv2d {
    c.bias = c.bias.map(zeroed);
    c
}

/// A bias set to zero that still trains: a tensor made with `zeros_like` tracks no gradient, and
/// the parameter would stay at zero for good.
fn zeroed(b: Param<Tensor<1>>) -> Param<Tensor<1>> {
    b.map(|t| t.zeros_like()).set_require_grad(true)
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

pub(super) fn cnn_head(channels: usize, classes: usize, device: &Device) -> Head {
    let mut fc = LinearConfig::new(channels, classes)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device);
    fc.bias = fc.bias.map(zeroed);
    Head { norm: None, fc }
}

fn vit_linear(din: usize, dout: usize, device: &Device) -> Linear {
    let mut l = LinearConfig::new(din, dout)
        .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
        .init(device);
    l.bias = l.bias.map(zeroed);
    l
}

fn layer_norm(dim: usize, device: &Device) -> burn::nn::LayerNorm {
    LayerNormConfig::new(dim)
        .with_epsilon(crate::kernel::transformer::LAYER_NORM_EPSILON)
        .init(device)
}

pub(super) fn vit_head(dim: usize, classes: usize, device: &Device) -> Head {
    Head {
        norm: Some(layer_norm(dim, device)),
        fc: vit_linear(dim, classes, device),
    }
}

/// A ConvNeXt or ViT conv: normal with std 0.02 (torchvision's truncation at ±2 never bites at
/// that std), zero bias. `groups == cin`: the depthwise 7×7 (stride 1, padding 3); otherwise a
/// patchify conv, stride = kernel, no padding.
fn std_conv(cin: usize, cout: usize, k: usize, groups: usize, device: &Device) -> Conv2d {
    let depthwise = groups > 1;
    let (stride, pad) = if depthwise { (1, k / 2) } else { (k, 0) };
    let c = Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_groups(groups)
        .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
        .init(device);
    zero_bias(c)
}

/// The stochastic-depth rate of block `i` of `n`, rising linearly from 0 to `last`.
fn depth_rate(last: f64, i: usize, n: usize) -> f64 {
    if n > 1 { last * i as f64 / (n - 1) as f64 } else { 0.0 }
}

/// A linear layer initialised as PyTorch's default: weights and biases U(±1/√fan_in).
fn torch_linear(din: usize, dout: usize, device: &Device) -> Linear {
    LinearConfig::new(din, dout)
        .with_initializer(Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        })
        .init(device)
}

impl Backbone {
    /// Build a freshly initialised backbone for `classes` classes and `resolution`² RGB inputs
    /// (only the MLP, whose first layer sees every pixel, and the learned positions of ViT-B/16
    /// depend on the resolution).
    pub fn new(spec: &ArchSpec, classes: usize, resolution: usize, device: &Device) -> Result<Self> {
        if classes < 2 {
            return Err(Error::usage(format!(
                "a classifier needs at least 2 classes, got {classes}"
            )));
        }
        Ok(match spec.resolve()? {
            Resolved::Vgg { items } => {
                let mut units = Vec::new();
                let mut cin = 3;
                for (i, item) in items.iter().enumerate() {
                    if let VggItem::Conv(cout) = *item {
                        let pool = matches!(items.get(i + 1), Some(VggItem::Pool))
                            .then(|| MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init());
                        units.push(Unit::Conv(ConvUnit {
                            conv: zero_bias(conv(cin, cout, 3, 1, 1, true, true, device)),
                            bn: bn(cout, device),
                            pool,
                        }));
                        cin = cout;
                    }
                }
                Backbone {
                    stem: None,
                    units,
                    head: cnn_head(cin, classes, device),
                }
            }
            Resolved::Resnet {
                blocks,
                widths,
                stem_width,
                expansion,
            } => {
                let mut units = vec![Unit::Conv(ConvUnit {
                    conv: conv(3, stem_width, 7, 2, 3, false, false, device),
                    bn: bn(stem_width, device),
                    pool: Some(
                        MaxPool2dConfig::new([3, 3])
                            .with_strides([2, 2])
                            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                            .init(),
                    ),
                })];
                let mut cin = stem_width;
                for (stage, (&n, &w)) in blocks.iter().zip(widths.iter()).enumerate() {
                    for b in 0..n {
                        let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                        let out = w * expansion;
                        let down = stride != 1 || cin != out;
                        let (last_k, last_in) = if expansion == 1 {
                            // BasicBlock: 3×3 with the stride, 3×3.
                            units.push(Unit::ResFirst(ResFirst {
                                conv: conv(cin, w, 3, stride, 1, false, false, device),
                                bn: bn(w, device),
                            }));
                            (3, w)
                        } else {
                            // Bottleneck (torchvision, the stride on the 3×3): 1×1, 3×3, 1×1.
                            units.push(Unit::ResFirst(ResFirst {
                                conv: conv(cin, w, 1, 1, 0, false, false, device),
                                bn: bn(w, device),
                            }));
                            units.push(Unit::ResMid(ResFirst {
                                conv: conv(w, w, 3, stride, 1, false, false, device),
                                bn: bn(w, device),
                            }));
                            (1, w)
                        };
                        units.push(Unit::ResSecond(ResSecond {
                            conv: conv(last_in, out, last_k, 1, last_k / 2, false, false, device),
                            bn: bn(out, device),
                            down_conv: down.then(|| conv(cin, out, 1, stride, 0, false, false, device)),
                            down_bn: down.then(|| bn(out, device)),
                        }));
                        cin = out;
                    }
                }
                Backbone {
                    stem: None,
                    units,
                    head: cnn_head(cin, classes, device),
                }
            }
            Resolved::Mlp { hidden, channels } => {
                let mut din = channels * resolution * resolution;
                if din.saturating_mul(hidden[0]) > 1 << 30 {
                    return Err(Error::usage(format!(
                        "architecture `{}`: {din} inputs ({resolution}² RGB) × {} hidden units is too large a first layer; lower `resolution` or `dim`",
                        spec.name, hidden[0]
                    )));
                }
                let mut units = Vec::new();
                for &dout in &hidden {
                    units.push(Unit::Dense(DenseUnit {
                        fc: torch_linear(din, dout, device),
                    }));
                    din = dout;
                }
                Backbone {
                    stem: None,
                    units,
                    head: Head {
                        norm: None,
                        fc: torch_linear(din, classes, device),
                    },
                }
            }
            Resolved::Vit {
                dim,
                depth,
                heads,
                patch,
                mlp_ratio,
                drop_path,
                class_token,
                probe_tokens,
            } => {
                let grid = resolution / patch;
                let tokens = grid * grid + class_token as usize;
                let units = (0..depth)
                    .map(|i| {
                        Unit::Vit(VitBlock {
                            norm1: layer_norm(dim, device),
                            attn: MultiHeadAttentionConfig::new(dim, heads)
                                .with_dropout(0.0)
                                .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
                                .init(device),
                            norm2: layer_norm(dim, device),
                            fc1: vit_linear(dim, dim * mlp_ratio, device),
                            fc2: vit_linear(dim * mlp_ratio, dim, device),
                            drop_path: depth_rate(drop_path, i, depth),
                        })
                    })
                    .collect();
                Backbone {
                    stem: Some(Stem::Patch(PatchStem {
                        proj: std_conv(3, dim, patch, 1, device),
                        // torchvision: a zero class token, positions N(0, 0.02).
                        class_token: class_token.then(|| Param::from_tensor(Tensor::zeros([1, 1, dim], device))),
                        positions: class_token.then(|| {
                            Param::from_tensor(Tensor::random(
                                [1, tokens, dim],
                                Distribution::Normal(0.0, 0.02),
                                device,
                            ))
                        }),
                        probe_tokens,
                    })),
                    units,
                    head: vit_head(dim, classes, device),
                }
            }
            Resolved::Convnext {
                depths,
                dims,
                drop_path,
                v2,
            } => {
                let total: usize = depths.iter().sum();
                let mut units = Vec::with_capacity(total);
                let mut cin = dims[0];
                for (stage, (&n, &dim)) in depths.iter().zip(dims.iter()).enumerate() {
                    for b in 0..n {
                        units.push(Unit::Convnext(ConvnextBlock {
                            down: (stage > 0 && b == 0).then(|| Downsample {
                                norm: layer_norm(cin, device),
                                conv: std_conv(cin, dim, 2, 1, device),
                            }),
                            dwconv: std_conv(dim, dim, 7, dim, device),
                            norm: layer_norm(dim, device),
                            fc1: vit_linear(dim, 4 * dim, device),
                            // timm: GRN starts as the identity (zero weight and bias).
                            grn: v2.then(|| Grn {
                                weight: Param::from_tensor(Tensor::zeros([4 * dim], device)),
                                bias: Param::from_tensor(Tensor::zeros([4 * dim], device)),
                            }),
                            fc2: vit_linear(4 * dim, dim, device),
                            layer_scale: (!v2).then(|| Param::from_tensor(Tensor::full([dim], 1e-6, device))),
                            drop_path: depth_rate(drop_path, units.len(), total),
                        }));
                        cin = dim;
                    }
                }
                Backbone {
                    stem: Some(Stem::Conv(ConvStem {
                        conv: std_conv(3, dims[0], 4, 1, device),
                        norm: layer_norm(dims[0], device),
                    })),
                    units,
                    head: vit_head(cin, classes, device),
                }
            }
        })
    }
}
