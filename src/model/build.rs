//! Building a freshly initialised backbone from its architecture (method §4), each family's
//! layers with the initialisation of the reference implementation.

use burn::nn::attention::MultiHeadAttentionConfig;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Device;

use super::arch::{ArchSpec, Resolved, VggItem};
use super::backbone::{Backbone, ConvUnit, DenseUnit, Head, PatchStem, ResFirst, ResSecond, Unit, VitBlock};
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
    if let Some(b) = c.bias.take() {
        c.bias = Some(b.map(|t| t.zeros_like()));
    }
    c
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

pub(super) fn cnn_head(channels: usize, classes: usize, device: &Device) -> Head {
    let mut fc = LinearConfig::new(channels, classes)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device);
    fc.bias = fc.bias.map(|b| b.map(|t| t.zeros_like()));
    Head { norm: None, fc }
}

fn vit_linear(din: usize, dout: usize, device: &Device) -> Linear {
    let mut l = LinearConfig::new(din, dout)
        .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
        .init(device);
    l.bias = l.bias.map(|b| b.map(|t| t.zeros_like()));
    l
}

pub(super) fn vit_head(dim: usize, classes: usize, device: &Device) -> Head {
    Head {
        norm: Some(LayerNormConfig::new(dim).with_epsilon(1e-6).init(device)),
        fc: vit_linear(dim, classes, device),
    }
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
    /// (only the MLP, whose first layer sees every pixel, depends on the resolution).
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
            Resolved::Mlp { hidden } => {
                let mut din = 3 * resolution * resolution;
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
            } => {
                let mut proj = Conv2dConfig::new([3, dim], [patch, patch])
                    .with_stride([patch, patch])
                    .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
                    .init(device);
                proj.bias = proj.bias.map(|b| b.map(|t| t.zeros_like()));
                let units = (0..depth)
                    .map(|i| {
                        let rate = if depth > 1 {
                            drop_path * i as f64 / (depth - 1) as f64
                        } else {
                            0.0
                        };
                        Unit::Vit(VitBlock {
                            norm1: LayerNormConfig::new(dim).with_epsilon(1e-6).init(device),
                            attn: MultiHeadAttentionConfig::new(dim, heads)
                                .with_dropout(0.0)
                                .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
                                .init(device),
                            norm2: LayerNormConfig::new(dim).with_epsilon(1e-6).init(device),
                            fc1: vit_linear(dim, dim * mlp_ratio, device),
                            fc2: vit_linear(dim * mlp_ratio, dim, device),
                            drop_path: rate,
                        })
                    })
                    .collect();
                Backbone {
                    stem: Some(PatchStem { proj }),
                    units,
                    head: vit_head(dim, classes, device),
                }
            }
        })
    }
}
