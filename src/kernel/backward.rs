//! The backward passes of the convolution and the batch norm: the ops of [`Kernels`] on
//! `Autodiff<Flex>`, each recording its state for a backward step that runs the kernels' gradients.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex, TensorMetadata};
use burn::tensor::ops::ConvOptions;

use super::{
    Kernels, NormMask, contiguous, conv, flex_batch_norm, flex_conv2d, geometry, norm, norm_geometry, output, values,
    vector,
};

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
        output(x.shape(), |dx| {
            conv::backward_input(&g, values(&weight), values(&grad), dx)
        })
    });
    let (dw, db) = if want[1] || want[2] {
        let mut db = want[2].then(|| vec![0.0f32; g.cout]);
        let dw = output(weight.shape(), |dw| {
            conv::backward_weight(&g, values(&x), values(&grad), dw, db.as_deref_mut())
        });
        let db = db.as_deref().map(vector);
        (want[1].then_some(dw), db)
    } else {
        (None, None)
    };
    [dx, dw, db]
}

/// What the convolution backward keeps: the checkpoints of the input and the weight, the options.
type ConvState = (NodeId, NodeId, ConvOptions<2>);

/// The backward step of the convolution with `N` parents.
fn conv_step<const N: usize>(ops: Ops<ConvState, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
    let grad = grads.consume::<Flex>(&ops.node);
    let (x_state, w_state, options) = ops.state;
    let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
    let weight = checkpointer.retrieve_node_output::<FlexTensor>(w_state);
    let mut want = [false; 3];
    for (w, parent) in want.iter_mut().zip(&ops.parents) {
        *w = parent.is_some();
    }
    for (node, g) in ops
        .parents
        .into_iter()
        .zip(conv_backward(x, weight, grad, &options, want))
    {
        if let (Some(node), Some(g)) = (node, g) {
            grads.register::<Flex>(node.id, g);
        }
    }
}

/// The convolution's backward with `N` parents: input and weight, and the bias when `N` is 3.
#[derive(Debug)]
struct Conv2dBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for Conv2dBackward<N> {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        conv_step(ops, grads, checkpointer)
    }
}

/// What the batch-norm backward keeps: the input's checkpoint, γ, the mask of what followed, the
/// batch statistics and ε.
type NormState = (NodeId, FlexTensor, NormMask, Vec<f32>, Vec<f32>, f64);

/// The batch norm's backward with `N` parents: input, γ and β, and the shortcut when `N` is 4 (its
/// gradient: the output gradient where the ReLU passed it).
#[derive(Debug)]
struct BatchNormBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for BatchNormBackward<N> {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let mut parents = ops.parents.into_iter();
        let [node_x, node_gamma, node_beta] = std::array::from_fn(|_| parents.next().flatten());
        let node_shortcut = parents.next().flatten();
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, gamma, mask, mean, var, epsilon) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let gamma = contiguous(gamma);
        // The ReLU's output is the forward's own (contiguous) tensor.
        let mask = match &mask {
            NormMask::Pool(winners, pool) => norm::Mask::Pool(winners, *pool),
            NormMask::Relu(y) => norm::Mask::Relu(values(y)),
            NormMask::Identity => norm::Mask::Identity,
        };
        let g = norm_geometry(&x);
        let mut param_grads = (Vec::new(), Vec::new());
        let dx = output(x.shape(), |dx| {
            param_grads = norm::backward(
                &g,
                values(&x),
                mask,
                values(&grad),
                values(&gamma),
                &mean,
                &var,
                epsilon,
                dx,
            )
        });
        let (dgamma, dbeta) = param_grads;
        if let (Some(node), norm::Mask::Relu(y)) = (node_shortcut, mask) {
            let ds = output(grad.shape(), |ds| norm::relu_gradient(y, values(&grad), ds));
            grads.register::<Flex>(node.id, ds);
        }
        register!(
            grads,
            [node_x, node_gamma, node_beta],
            [dx, vector(&dgamma), vector(&dbeta)]
        );
    }
}

/// A tensor of the default backend under autodiff.
type Tracked<C> = FloatTensor<Autodiff<Flex, C>>;

/// The tracked batch norm with `N` parents (input, γ, β, and a shortcut when `N` is 4): its output
/// and the batch statistics, untracked.
fn tracked_batch_norm<C: CheckpointStrategy, const N: usize>(
    tensors: [Tracked<C>; N],
    epsilon: f64,
    after: norm::After,
) -> (Tracked<C>, Tracked<C>, Tracked<C>) {
    let forward = |tensors: [Tracked<C>; N]| {
        let mut inner = tensors.into_iter().map(|t| t.into_primitive());
        let [x, gamma, beta] = std::array::from_fn(|_| inner.next().expect("input, γ and β"));
        flex_batch_norm(x, gamma, beta, inner.next(), epsilon, after)
    };
    let (y, mean, var) = match BatchNormBackward::<N>
        .prepare::<C>(tensors.each_ref().map(|t| t.node()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let (x_state, gamma_value) = (prep.checkpoint(&tensors[0]), tensors[1].primitive().clone());
            let (y, mean, var, mask) = forward(tensors);
            let state = (x_state, gamma_value, mask, mean.clone(), var.clone(), epsilon);
            (prep.finish(state, y), mean, var)
        }
        OpsKind::UnTracked(prep) => {
            let (y, mean, var, _) = forward(tensors);
            (prep.finish(y), mean, var)
        }
    };
    let statistic = |v: &[f32]| Autodiff::<Flex, C>::from_inner(vector(v));
    (y, statistic(&mean), statistic(&var))
}

impl<C: CheckpointStrategy> Kernels for Autodiff<Flex, C> {
    fn tb_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        after: norm::After,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        tracked_batch_norm::<C, 3>([x, gamma, beta], epsilon, after)
    }

    fn tb_batch_norm_add_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        tracked_batch_norm::<C, 4>([x, gamma, beta, shortcut], epsilon, norm::After::AddRelu)
    }

    fn tb_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        let forward = |x: FloatTensor<Self>, weight: FloatTensor<Self>| {
            flex_conv2d(x.into_primitive(), weight.into_primitive(), None, &options)
        };
        match Conv2dBackward::<2>
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options.clone());
                prep.finish(state, forward(x, weight))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x, weight)),
        }
    }

    fn tb_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let forward = |x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>| {
            flex_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                Some(bias.into_primitive()),
                &options,
            )
        };
        match Conv2dBackward::<3>
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options.clone());
                prep.finish(state, forward(x, weight, bias))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x, weight, bias)),
        }
    }
}
