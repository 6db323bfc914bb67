//! Kernels of our own for the default CPU backend, where burn's generic ones leave most of the time
//! on the table. burn's `flex` backend computes a convolution's weight gradient as a convolution of
//! the transposed input with the transposed output gradient, and its input gradient as a
//! transposed convolution, both through layout copies; on the small-channel convolutions of a study
//! that is 2–3x the time of the forward pass each. Here one convolution op, registered through
//! burn's backend-extension API with its own backward, runs all three products as per-image
//! im2col + matrix product ([`conv`]).
//!
//! [`conv2d`] is what the models call: on a `flex` device (with or without autodiff) it takes this
//! path, on every other backend burn's own `conv2d`.

pub mod conv;
pub mod norm;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Flex, TensorMetadata, backend_extension};
use burn::backend::DispatchTensor;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};

use conv::ConvGeom;

#[backend_extension(Flex, Autodiff)]
pub trait ConvKernels: Backend {
    /// 2D convolution, groups 1, dilation 1, symmetric padding (checked by [`supported`]).
    fn tb_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self>;

    /// [`tb_conv2d`](ConvKernels::tb_conv2d) plus a per-channel bias.
    fn tb_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Batch norm with batch statistics, then a ReLU when `relu`: (output, batch mean, biased
    /// batch variance), the statistics untracked.
    fn tb_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether [`conv2d`] can take its own kernels for these options and this device.
fn supported(x: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    options.groups == 1
        && options.dilation == [1, 1]
        && !options.is_asymmetric()
        && x.dtype() == DType::F32
        && x.device().inner() == Device::flex()
}

/// `burn::tensor::module::conv2d` with this module's kernels on the default backend.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    if !supported(&x, &options) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    type D = burn::backend::Dispatch;
    Tensor::from_dispatch(match bias {
        Some(b) => D::tb_conv2d_bias(x.into_dispatch(), weight.into_dispatch(), b.into_dispatch(), options),
        None => D::tb_conv2d(x.into_dispatch(), weight.into_dispatch(), options),
    })
}

/// `Conv2d::forward` through [`conv2d`] (explicit or no padding; `Same` padding goes to burn).
pub fn conv2d_module(conv: &burn::nn::conv::Conv2d, input: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return conv.forward(input),
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(input, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), options)
}

/// `relu(bn(x))` (or `bn(x)`) for a batch-norm layer, through this module's kernels when the layer
/// trains on a `flex` device; otherwise `BatchNorm::forward`. The running statistics are updated
/// the way burn's layer does it, from the batch mean and biased variance.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    let device = x.device();
    if std::env::var_os("TB_NO_BN").is_some() || !(device.is_autodiff() && bn.training.is_enabled() && x.dtype() == DType::F32 && device.clone().inner() == Device::flex()) {
        let y = bn.forward(x);
        return if relu { burn::tensor::activation::relu(y) } else { y };
    }
    let (y, mean, var) = <burn::backend::Dispatch as ConvKernels>::tb_batch_norm_train(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
        relu,
    );
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: DispatchTensor| {
        let running = state.value_sync().to_device(&device);
        let batch = Tensor::<1>::from_dispatch(batch).detach();
        state.update(running.mul_scalar(1.0 - bn.momentum).add(batch.mul_scalar(bn.momentum)).detach());
    };
    update(&bn.running_mean, mean);
    update(&bn.running_var, var);
    Tensor::from_dispatch(y)
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> ConvGeom {
    let [batch, cin, h, w] = x.shape().dims();
    let [cout, _, kh, kw] = weight.shape().dims();
    ConvGeom {
        batch,
        cin,
        h,
        w,
        cout,
        kh,
        kw,
        stride: options.stride,
        pad: options.padding_begin(),
    }
}

/// The f32 values of a tensor in row-major order, copying only when its layout is not contiguous.
fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() { t } else { t.to_contiguous() }
}

fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

/// A fresh f32 tensor of `shape`, filled by `fill`. Built from a `Vec<f32>`, which burn takes
/// without a copy (`FlexTensor::empty` copies its zeroed bytes once more to align them).
fn output(shape: Shape, fill: impl FnOnce(&mut [f32])) -> FlexTensor {
    let mut data = vec![0.0f32; shape.num_elements()];
    fill(&mut data);
    FlexTensor::from_data(TensorData::new(data, shape))
}

fn flex_conv2d(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>, options: &ConvOptions<2>) -> FlexTensor {
    let (x, weight, bias) = (contiguous(x), contiguous(weight), bias.map(contiguous));
    let g = geometry(&x, &weight, options);
    output(Shape::new([g.batch, g.cout, g.ho(), g.wo()]), |y| {
        conv::forward(&g, values(&x), values(&weight), bias.as_ref().map(values), y)
    })
}

fn norm_geometry(x: &FlexTensor) -> norm::NormGeom {
    let dims = x.shape().dims::<4>();
    norm::NormGeom {
        batch: dims[0],
        channels: dims[1],
        plane: dims[2] * dims[3],
    }
}

fn vector(v: &[f32]) -> FlexTensor {
    output(Shape::new([v.len()]), |out| out.copy_from_slice(v))
}

/// The forward batch norm: (output, mean, variance) as tensors and the statistics as values.
fn flex_batch_norm(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
    relu: bool,
) -> (FlexTensor, Vec<f32>, Vec<f32>) {
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let g = norm_geometry(&x);
    let mut stats = (Vec::new(), Vec::new());
    let y = output(x.shape(), |y| {
        stats = norm::forward(&g, values(&x), values(&gamma), values(&beta), epsilon, relu, y)
    });
    (y, stats.0, stats.1)
}

impl ConvKernels for Flex {
    fn tb_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (y, mean, var) = flex_batch_norm(x, gamma, beta, epsilon, relu);
        (y, vector(&mean), vector(&var))
    }

    fn tb_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        flex_conv2d(x, weight, None, &options)
    }

    fn tb_conv2d_bias(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        flex_conv2d(x, weight, Some(bias), &options)
    }
}

/// Gradients of the convolution for whichever of input, weight and bias are tracked.
fn conv_backward(
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
    options: &ConvOptions<2>,
    want: [bool; 3],
) -> [Option<FlexTensor>; 3] {
    let (x, weight, grad) = (contiguous(x), contiguous(weight), contiguous(grad));
    let g = geometry(&x, &weight, options);
    let dx = want[0].then(|| {
        output(x.shape(), |dx| conv::backward_input(&g, values(&weight), values(&grad), dx))
    });
    let (dw, db) = if want[1] || want[2] {
        let mut db = want[2].then(|| vec![0.0f32; g.cout]);
        let dw = output(weight.shape(), |dw| {
            conv::backward_weight(&g, values(&x), values(&grad), dw, db.as_deref_mut())
        });
        let db = db.map(|db| output(Shape::new([g.cout]), |out| out.copy_from_slice(&db)));
        (want[1].then_some(dw), db)
    } else {
        (None, None)
    };
    [dx, dw, db]
}

#[derive(Debug)]
struct Conv2dBackward;

impl Backward<Flex, 3> for Conv2dBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(w_state);
        let want = [node_x.is_some(), node_w.is_some(), node_b.is_some()];
        let parents = [node_x, node_w, node_b];
        for (node, g) in parents.into_iter().zip(conv_backward(x, weight, grad, &options, want)) {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct Conv2dNoBiasBackward;

impl Backward<Flex, 2> for Conv2dNoBiasBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(w_state);
        let want = [node_x.is_some(), node_w.is_some(), false];
        let [dx, dw, _] = conv_backward(x, weight, grad, &options, want);
        for (node, g) in [(node_x, dx), (node_w, dw)] {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

/// What the batch-norm backward keeps: the input's checkpoint, γ, the output when a ReLU followed
/// (its mask), the batch statistics and ε.
type NormState = (NodeId, FlexTensor, Option<FlexTensor>, Vec<f32>, Vec<f32>, f64);

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, gamma, y, mean, var, epsilon) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let (gamma, y) = (contiguous(gamma), y.map(contiguous));
        let g = norm_geometry(&x);
        let mut param_grads = (Vec::new(), Vec::new());
        let dx = output(x.shape(), |dx| {
            param_grads = norm::backward(
                &g,
                values(&x),
                y.as_ref().map(values),
                values(&grad),
                values(&gamma),
                &mean,
                &var,
                epsilon,
                dx,
            )
        });
        let (dgamma, dbeta) = param_grads;
        for (node, g) in [(node_x, dx), (node_gamma, vector(&dgamma)), (node_beta, vector(&dbeta))] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

impl<C: CheckpointStrategy> ConvKernels for Autodiff<Flex, C> {
    fn tb_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let gamma_value = gamma.primitive().clone();
        let (y, mean, var) = match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let (y, mean, var) =
                    flex_batch_norm(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon, relu);
                let state = (x_state, gamma_value, relu.then(|| y.clone()), mean.clone(), var.clone(), epsilon);
                (prep.finish(state, y), mean, var)
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) =
                    flex_batch_norm(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon, relu);
                (prep.finish(y), mean, var)
            }
        };
        (y, Self::from_inner(vector(&mean)), Self::from_inner(vector(&var)))
    }

    fn tb_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        match Conv2dNoBiasBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options.clone());
                prep.finish(state, flex_conv2d(x.into_primitive(), weight.into_primitive(), None, &options))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(flex_conv2d(x.into_primitive(), weight.into_primitive(), None, &options))
            }
        }
    }

    fn tb_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match Conv2dBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options.clone());
                let out = flex_conv2d(x.into_primitive(), weight.into_primitive(), Some(bias.into_primitive()), &options);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                Some(bias.into_primitive()),
                &options,
            )),
        }
    }
}
