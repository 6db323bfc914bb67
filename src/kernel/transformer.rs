//! The transformer kernels ([`tunnelbench_kernels::transformer`]) as burn ops on the default
//! backend, each with its backward: layer norm, GELU and multi-head self-attention. burn computes
//! a layer norm with half a dozen generic tensor ops, the GELU with a scalar `erf`, and attention
//! with head-major copies of the queries, keys and values and many small batched products; on
//! the ViT-T at 32² those took about 40% of a training step.
//!
//! [`layer_norm`], [`gelu`] and [`self_attention`] are what the models call: on a `flex` device
//! they take these kernels, on every other backend (and with `TUNNELBENCH_KERNELS=burn`) burn's
//! own ops.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::attention::{MhaInput, MultiHeadAttention};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Shape, Tensor};

use tunnelbench_kernels::linear::{self as products, Mat, Then};
use tunnelbench_kernels::transformer::{self as kernels, Attention};

use super::{contiguous, on_flex, output_whole, values, vector};

/// The ε of every layer norm the models build (torchvision's and timm's ViTs and ConvNeXts use
/// 1e-6). burn's `LayerNorm` keeps its ε private, so [`layer_norm`] takes it from here.
pub const LAYER_NORM_EPSILON: f64 = 1e-6;

#[backend_extension(Flex, Autodiff)]
pub trait TransformerKernels: Backend {
    /// Layer norm over the last axis with ε = `epsilon`.
    fn tb_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// The exact GELU, `x · Φ(x)`.
    fn tb_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x · weight + bias` over the last axis of `x`, `weight` being `[d_in, d_out]`.
    fn tb_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `gelu(x · weight + bias)`: in one pass without autodiff (each task of the product applies
    /// the GELU to its block while it is in cache), as the two ops with it.
    fn tb_linear_gelu(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `softmax(q·kᵀ / sqrt(head_dim)) · v` per image and head, on `[batch, tokens, 3 · dim]`
    /// queries, keys and values side by side (as one linear layer gives them), each holding
    /// `heads` heads side by side; the output is `[batch, tokens, dim]`.
    fn tb_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self>;
}

/// `norm.forward(x)`, through the kernel on the default backend. `norm` must have been built with
/// ε = [`LAYER_NORM_EPSILON`].
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    match &norm.beta {
        Some(beta) if on_flex(&x) => Tensor::from_dispatch(Dispatch::tb_layer_norm(
            x.into_dispatch(),
            norm.gamma.val().into_dispatch(),
            beta.val().into_dispatch(),
            LAYER_NORM_EPSILON,
        )),
        _ => norm.forward(x),
    }
}

/// `linear.forward(x)`, through the kernel on the default backend (layers with a bias).
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    linear_then(linear, x, false)
}

/// `gelu(linear.forward(x))`, through the kernels on the default backend (layers with a bias: in
/// one pass without autodiff).
pub fn linear_gelu<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    linear_then(linear, x, true)
}

fn linear_then<const D: usize>(linear: &Linear, x: Tensor<D>, then_gelu: bool) -> Tensor<D> {
    match &linear.bias {
        Some(bias) if on_flex(&x) => {
            let (x, weight, bias) = (
                x.into_dispatch(),
                linear.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            );
            Tensor::from_dispatch(if then_gelu {
                Dispatch::tb_linear_gelu(x, weight, bias)
            } else {
                Dispatch::tb_linear(x, weight, bias)
            })
        }
        _ if then_gelu => gelu(linear.forward(x)),
        _ => linear.forward(x),
    }
}

/// burn's `gelu`, through the kernel on the default backend.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex(&x) {
        Tensor::from_dispatch(Dispatch::tb_gelu(x.into_dispatch()))
    } else {
        burn::tensor::activation::gelu(x)
    }
}

/// `mha.forward(MhaInput::self_attn(x)).context` for `x` of `[batch, tokens, dim]`: the query,
/// key and value projections as one product (their weights side by side), attention through the
/// kernel on the default backend, and the output projection. Attention dropout, the quiet softmax
/// and projections without a bias go to burn.
pub fn self_attention(mha: &MultiHeadAttention, x: Tensor<3>) -> Tensor<3> {
    let projections = [&mha.query, &mha.key, &mha.value];
    let biases: Option<Vec<_>> = projections.iter().map(|l| l.bias.as_ref().map(|b| b.val())).collect();
    let biases = match biases {
        Some(biases) if on_flex(&x) && mha.dropout.prob == 0.0 && !mha.quiet_softmax => biases,
        _ => return mha.forward(MhaInput::self_attn(x)).context,
    };
    let weight = Tensor::cat(projections.iter().map(|l| l.weight.val()).collect(), 1);
    let qkv = Dispatch::tb_linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        Tensor::cat(biases, 0).into_dispatch(),
    );
    linear(
        &mha.output,
        Tensor::from_dispatch(Dispatch::tb_attention(qkv, mha.n_heads)),
    )
}

fn attention_geometry(qkv: &FlexTensor, heads: usize) -> Attention {
    let [batch, tokens, width] = qkv.shape().dims();
    let dim = width / 3;
    assert_eq!(
        (width % 3, dim % heads),
        (0, 0),
        "{width} features do not split into queries, keys and values of {heads} heads"
    );
    Attention {
        batch,
        tokens,
        heads,
        head_dim: dim / heads,
    }
}

fn last_dim(x: &FlexTensor) -> usize {
    let shape = x.shape();
    shape[shape.num_dims() - 1]
}

/// The forward layer norm: the output and each row's (mean, 1/std).
fn flex_layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> (FlexTensor, Vec<f32>) {
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let d = last_dim(&x);
    let mut stats = vec![0.0f32; x.shape().num_elements() / d.max(1) * 2];
    let y = output_whole(x.shape(), |y| {
        let p = kernels::LayerNormParams {
            gamma: values(&gamma),
            beta: Some(values(&beta)),
            epsilon,
        };
        kernels::layer_norm_forward(p, values(&x), y, &mut stats)
    });
    (y, stats)
}

fn flex_gelu(x: FlexTensor) -> FlexTensor {
    let x = contiguous(x);
    output_whole(x.shape(), |y| kernels::gelu_forward(values(&x), y))
}

/// `[.., d_in] · [d_in, d_out] + bias`, then `then`.
fn flex_linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, then: Then) -> FlexTensor {
    let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
    let [d_in, d_out] = weight.shape().dims();
    let rows = x.shape().num_elements() / d_in.max(1);
    let mut shape = x.shape();
    let last = shape.num_dims() - 1;
    shape[last] = d_out;
    output_whole(shape, |y| {
        products::matmul(
            rows,
            d_out,
            d_in,
            Mat {
                data: values(&x),
                rs: d_in,
                cs: 1,
            },
            Mat {
                data: values(&weight),
                rs: d_out,
                cs: 1,
            },
            Some(values(&bias)),
            then,
            y,
        )
    })
}

/// The forward attention: the output, and the softmax statistics when `keep` (for a backward
/// pass).
fn flex_attention(qkv: FlexTensor, heads: usize, keep: bool) -> (FlexTensor, Vec<f32>) {
    let qkv = contiguous(qkv);
    let a = attention_geometry(&qkv, heads);
    let mut stats = keep.then(|| vec![0.0f32; a.stats_len()]);
    let shape = Shape::new([a.batch, a.tokens, a.dim()]);
    let out = output_whole(shape, |out| {
        kernels::attention_forward(&a, values(&qkv), stats.as_deref_mut(), out)
    });
    (out, stats.unwrap_or_default())
}

impl TransformerKernels for Flex {
    fn tb_layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> FlexTensor {
        flex_layer_norm(x, gamma, beta, epsilon).0
    }

    fn tb_gelu(x: FlexTensor) -> FlexTensor {
        flex_gelu(x)
    }

    fn tb_linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        flex_linear(x, weight, bias, Then::Nothing)
    }

    fn tb_linear_gelu(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        flex_linear(x, weight, bias, Then::Gelu)
    }

    fn tb_attention(qkv: FlexTensor, heads: usize) -> FlexTensor {
        flex_attention(qkv, heads, false).0
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    /// The input's checkpoint, γ and the rows' (mean, 1/std).
    type State = (NodeId, FlexTensor, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, gamma, stats) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let gamma = contiguous(gamma);
        let mut params = (Vec::new(), Vec::new());
        let dx = output_whole(x.shape(), |dx| {
            params = kernels::layer_norm_backward(values(&gamma), values(&x), &stats, values(&grad), dx)
        });
        register!(grads, ops.parents, [dx, vector(&params.0), vector(&params.1)]);
    }
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = NodeId;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(ops.state));
        let dx = output_whole(x.shape(), |dx| kernels::gelu_backward(values(&x), values(&grad), dx));
        register!(grads, ops.parents, [dx]);
    }
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// The checkpoints of the input and the weight.
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(ops.state.0));
        let weight = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(ops.state.1));
        let [d_in, d_out] = weight.shape().dims();
        let rows = x.shape().num_elements() / d_in.max(1);
        let [node_x, node_w, node_b] = ops.parents;
        let (dy, w) = (values(&grad), values(&weight));
        if let Some(node) = node_x {
            // dX = dY · Wᵀ.
            let dx = output_whole(x.shape(), |dx| {
                let wt = Mat {
                    data: w,
                    rs: 1,
                    cs: d_out,
                };
                products::matmul(
                    rows,
                    d_in,
                    d_out,
                    Mat {
                        data: dy,
                        rs: d_out,
                        cs: 1,
                    },
                    wt,
                    None,
                    Then::Nothing,
                    dx,
                )
            });
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_w {
            // dW = Xᵀ · dY, a sum over the rows.
            let dw = output_whole(weight.shape(), |dw| {
                let xt = Mat {
                    data: values(&x),
                    rs: 1,
                    cs: d_in,
                };
                products::matmul(
                    d_in,
                    d_out,
                    rows,
                    xt,
                    Mat {
                        data: dy,
                        rs: d_out,
                        cs: 1,
                    },
                    None,
                    Then::Nothing,
                    dw,
                )
            });
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, vector(&products::column_sums(d_out, dy)));
        }
    }
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 1> for AttentionBackward {
    /// The checkpoint of the queries, keys and values, the softmax statistics and the number of
    /// heads.
    type State = (NodeId, Vec<f32>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (input, stats, heads) = ops.state;
        let qkv = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(input));
        let a = attention_geometry(&qkv, heads);
        let dqkv = output_whole(qkv.shape(), |dqkv| {
            kernels::attention_backward(&a, values(&qkv), &stats, values(&grad), dqkv)
        });
        register!(grads, ops.parents, [dqkv]);
    }
}

impl<C: CheckpointStrategy> TransformerKernels for Autodiff<Flex, C> {
    fn tb_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        match LayerNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, gamma_value) = (prep.checkpoint(&x), gamma.primitive().clone());
                let (y, stats) = flex_layer_norm(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                prep.finish((x_state, gamma_value, stats), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(
                flex_layer_norm(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                )
                .0,
            ),
        }
    }

    fn tb_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, flex_gelu(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_gelu(x.into_primitive())),
        }
    }

    fn tb_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        match LinearBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                prep.finish(
                    state,
                    flex_linear(
                        x.into_primitive(),
                        weight.into_primitive(),
                        bias.into_primitive(),
                        Then::Nothing,
                    ),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_linear(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                Then::Nothing,
            )),
        }
    }

    fn tb_linear_gelu(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::tb_gelu(Self::tb_linear(x, weight, bias))
    }

    fn tb_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
        match AttentionBackward.prepare::<C>([qkv.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let input = prep.checkpoint(&qkv);
                let (out, stats) = flex_attention(qkv.into_primitive(), heads, true);
                prep.finish((input, stats, heads), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_attention(qkv.into_primitive(), heads, false).0),
        }
    }
}
