//! Kernels of our own for the default CPU backend, where burn's generic ones leave most of the time
//! on the table. burn's `flex` backend computes a convolution's weight gradient as a convolution of
//! the transposed input with the transposed output gradient, and its input gradient as a
//! transposed convolution, both through layout copies; on the small-channel convolutions of a study
//! that is 2–3x the time of the forward pass each. Its batch norm is a dozen generic tensor ops.
//! Here, registered through burn's backend-extension API, each with its own backward (the
//! convolution's and the batch norm's in `backward.rs`):
//!
//! - one convolution op running all three products ([`conv`]): Winograd F(2x2, 3x3) and direct AVX2
//!   kernels for the 3x3 stride-1 convolutions of the VGG and ResNet stages, one matrix product
//!   over the batch per kernel tap for planes of at most 4 pixels, im2col + matrix product for the
//!   rest;
//! - one op for batch norm with batch statistics + ReLU + 2x2 max-pool, the VGG unit after its
//!   conv, and one for the same with running statistics in inference, alone or with the
//!   convolution before it in the same pass over the output ([`norm`]);
//! - layer norm, GELU and self-attention for the ViTs and ConvNeXts ([`transformer`]);
//! - the AdamW step of a parameter, in place, which has no backward ([`optim`]).
//!
//! [`conv2d`], [`batch_norm`] and [`conv_batch_norm`] are what the models call: on a `flex` device
//! they take these kernels, on every other backend (and with `TUNNELBENCH_KERNELS=burn`) burn's own
//! ops.

/// Registers each gradient whose parent is tracked (`$parents`: an op's parents, `$values`: one
/// gradient per parent).
macro_rules! register {
    ($grads:expr, $parents:expr, $values:expr) => {
        for (node, g) in $parents.into_iter().zip($values) {
            if let Some(node) = node {
                $grads.register::<Flex>(node.id, g);
            }
        }
    };
}

mod backward;
pub mod optim;
pub mod rows;
pub mod transformer;

pub use tunnelbench_kernels::{conv, norm};

use burn::backend::DispatchTensor;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, TensorMetadata, backend_extension};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

use conv::ConvGeom;

/// Process setup for training on the CPU, called once at startup: keeps freed memory (below) and
/// reads `TUNNELBENCH_KERNELS` (`own`, the default, or `burn`: burn's ops instead of this module's,
/// for cross-checks).
pub fn configure() -> crate::error::Result<()> {
    tunnelbench_kernels::alloc::keep_freed_memory();
    match std::env::var("TUNNELBENCH_KERNELS").as_deref() {
        Err(_) | Ok("own") => set_enabled(true),
        Ok("burn") => set_enabled(false),
        Ok(other) => {
            return Err(crate::error::Error::usage(format!(
                "TUNNELBENCH_KERNELS must be `own` or `burn`, got `{other}`"
            )));
        }
    }
    Ok(())
}

#[backend_extension(Flex, Autodiff)]
pub trait Kernels: Backend {
    /// 2D convolution, groups 1, dilation 1, symmetric padding (checked by [`supported`]).
    fn tb_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self>;

    /// [`tb_conv2d`](Kernels::tb_conv2d) plus a per-channel bias.
    fn tb_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Batch norm with batch statistics, then what `after` says: (output, batch mean, biased batch
    /// variance), the statistics untracked.
    fn tb_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        after: norm::After,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// [`tb_batch_norm_train`](Kernels::tb_batch_norm_train) at a residual block's end:
    /// `relu(bn(x) + shortcut)`.
    fn tb_batch_norm_add_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

static OWN_KERNELS: AtomicBool = AtomicBool::new(true);

/// Whether the default backend takes this module's kernels (the default) or burn's own ops, for
/// cross-checks and comparisons; `tunnelbench` sets it from `TUNNELBENCH_KERNELS=burn` at startup.
pub fn set_enabled(on: bool) {
    OWN_KERNELS.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    OWN_KERNELS.load(Ordering::Relaxed)
}

/// The inference-only kernels (no autodiff: the models call them on plain `flex` devices only).
#[backend_extension(Flex)]
pub trait InferenceKernels: Backend {
    /// Batch norm with the given running statistics, then what `after` says.
    fn tb_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
        after: norm::After,
    ) -> FloatTensor<Self>;

    /// [`tb_batch_norm_eval`](InferenceKernels::tb_batch_norm_eval) at a residual block's end:
    /// `relu(bn(x) + shortcut)`.
    fn tb_batch_norm_add_relu_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// A convolution, then [`tb_batch_norm_eval`](InferenceKernels::tb_batch_norm_eval) (with a
    /// shortcut, `after` is [`norm::After::AddRelu`]) in the same pass over the output: each run of
    /// images is normalised as soon as it is computed ([`norm::conv_inference`]). An empty `bias`
    /// or `shortcut` is none (the extension's dispatch does not take optional tensors here).
    #[allow(clippy::too_many_arguments)]
    fn tb_conv2d_batch_norm_eval(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon: f64,
        after: norm::After,
    ) -> FloatTensor<Self>;
}

/// The inference batch norm, then what `after` says; with a shortcut, `after` is
/// [`norm::After::AddRelu`].
#[allow(clippy::too_many_arguments)]
fn flex_batch_norm_eval(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    var: FlexTensor,
    shortcut: Option<FlexTensor>,
    epsilon: f64,
    after: norm::After,
) -> FlexTensor {
    let [x, gamma, beta, mean, var] = [x, gamma, beta, mean, var].map(contiguous);
    let g = norm_geometry(&x);
    let (ho, wo) = g.out_size(after);
    norm_output(Shape::new([g.batch, g.channels, ho, wo]), shortcut, |y| {
        norm::inference(
            &g,
            values(&x),
            values(&gamma),
            values(&beta),
            values(&mean),
            values(&var),
            epsilon,
            after,
            y,
        )
    })
}

impl InferenceKernels for Flex {
    fn tb_batch_norm_eval(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        epsilon: f64,
        after: norm::After,
    ) -> FlexTensor {
        flex_batch_norm_eval(x, gamma, beta, mean, var, None, epsilon, after)
    }

    fn tb_batch_norm_add_relu_eval(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        shortcut: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        flex_batch_norm_eval(x, gamma, beta, mean, var, Some(shortcut), epsilon, norm::After::AddRelu)
    }

    fn tb_conv2d_batch_norm_eval(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        shortcut: FlexTensor,
        epsilon: f64,
        after: norm::After,
    ) -> FlexTensor {
        let [x, weight, gamma, beta, mean, var] = [x, weight, gamma, beta, mean, var].map(contiguous);
        let given = |t: FlexTensor| (t.shape().num_elements() > 0).then(|| contiguous(t));
        let (bias, shortcut) = (given(bias), given(shortcut));
        let g = geometry(&x, &weight, &options);
        let (batch, channels, h, w) = (g.batch, g.cout, g.ho(), g.wo());
        let (ho, wo) = norm::NormGeom { batch, channels, h, w }.out_size(after);
        output(Shape::new([g.batch, g.cout, ho, wo]), |y| {
            norm::conv_inference(
                &g,
                (values(&x), values(&weight), bias.as_ref().map(values)),
                (values(&gamma), values(&beta), values(&mean), values(&var)),
                epsilon,
                after,
                shortcut.as_ref().map(values),
                y,
            )
        })
    }
}

/// Whether [`conv2d`] can take its own kernels for these options and this device.
fn supported(x: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    on_flex(x) && options.groups == 1 && options.dilation == [1, 1] && !options.is_asymmetric()
}

/// Whether a tensor can take this module's kernels: they are on, and it is an f32 tensor on the
/// default backend (tracked or not).
fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    enabled() && x.dtype() == DType::F32 && x.device().inner() == Device::flex()
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
pub fn conv2d_module(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    match conv_options(conv) {
        Some(options) => conv2d(input, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), options),
        None => conv.forward(input),
    }
}

/// A conv layer's options, where its padding is explicit or none.
fn conv_options(conv: &Conv2d) -> Option<ConvOptions<2>> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return None,
    };
    Some(ConvOptions::new_with_padding(
        conv.stride,
        padding,
        conv.dilation,
        conv.groups,
    ))
}

/// [`conv2d_module`], then [`batch_norm`]. In inference on a `flex` device, one op that normalises
/// each run of images as soon as the convolution has computed it, with the bits of the two ops.
pub fn conv_batch_norm(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>, relu: bool, pool: Option<&MaxPool2d>) -> Tensor<4> {
    conv_norm(conv, bn, x, relu, pool, None::<fn() -> Tensor<4>>)
}

/// [`conv2d_module`], then [`batch_norm_add_relu`] with the `shortcut` it computes, as
/// [`conv_batch_norm`] in one op in inference. Where the two ops run apart, the shortcut is
/// computed after the convolution: the order in which an autodiff graph records its ops sets the
/// order in which its gradients are summed, and so their bits.
pub fn conv_batch_norm_add_relu(
    conv: &Conv2d,
    bn: &BatchNorm,
    x: Tensor<4>,
    shortcut: impl FnOnce() -> Tensor<4>,
) -> Tensor<4> {
    conv_norm(conv, bn, x, true, None, Some(shortcut))
}

fn conv_norm(
    conv: &Conv2d,
    bn: &BatchNorm,
    x: Tensor<4>,
    relu: bool,
    pool: Option<&MaxPool2d>,
    shortcut: Option<impl FnOnce() -> Tensor<4>>,
) -> Tensor<4> {
    let options = conv_options(conv).filter(|o| supported(&x, o) && !x.device().is_autodiff());
    let Some(options) = options else {
        let h = conv2d_module(conv, x);
        return norm_layer(bn, h, relu, pool, shortcut.map(|s| s()));
    };
    let shortcut = shortcut.map(|s| s());
    let g = geometry_of(x.dims(), conv.weight.dims(), &options);
    let (after, fused_pool) = after(relu, pool, shortcut.is_some(), (g.ho(), g.wo()));
    let device = x.device();
    let none = || Tensor::<1>::empty([0], &device).into_dispatch();
    let y = <burn::backend::Dispatch as InferenceKernels>::tb_conv2d_batch_norm_eval(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        conv.bias.as_ref().map_or_else(none, |b| b.val().into_dispatch()),
        options,
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.running_mean.value().to_device(&device).into_dispatch(),
        bn.running_var.value().to_device(&device).into_dispatch(),
        shortcut.map_or_else(none, Tensor::into_dispatch),
        bn.epsilon,
        after,
    );
    let y = Tensor::from_dispatch(y);
    match pool {
        Some(p) if fused_pool.is_none() => p.forward(y),
        _ => y,
    }
}

/// What follows a batch norm on `h × w` planes, for the kernels: a shortcut's sum and ReLU, the
/// ReLU and the pool where the kernel takes it (returned too), the ReLU, or nothing.
fn after(
    relu: bool,
    pool: Option<&MaxPool2d>,
    shortcut: bool,
    (h, w): (usize, usize),
) -> (norm::After, Option<norm::Pool>) {
    let fused_pool = pool.filter(|_| relu).and_then(fused_pool).filter(|p| p.fits(h, w));
    let after = match (relu, fused_pool, shortcut) {
        (_, _, true) => norm::After::AddRelu,
        (_, Some(p), false) => norm::After::ReluPool(p),
        (true, None, false) => norm::After::Relu,
        (false, None, false) => norm::After::Nothing,
    };
    (after, fused_pool)
}

/// `pool(relu(bn(x)))`, `relu(bn(x))` or `bn(x)` for a batch-norm layer, as burn's layers compute
/// it: with batch statistics when it trains (on an autodiff device, training enabled), updating
/// the running statistics from the batch mean and biased variance, and with the running
/// statistics otherwise. On a `flex` device, one op of this module for all three; a frozen layer
/// on an autodiff device, any other backend, and a pool the kernel does not take ([`fused_pool`])
/// go (in part) to burn.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>, relu: bool, pool: Option<&MaxPool2d>) -> Tensor<4> {
    norm_layer(bn, x, relu, pool, None)
}

/// `relu(bn(x) + shortcut)`, a residual block's end, with `bn` as in [`batch_norm`]: on a `flex`
/// device one op, with the bits of the three one after another.
pub fn batch_norm_add_relu(bn: &BatchNorm, x: Tensor<4>, shortcut: Tensor<4>) -> Tensor<4> {
    norm_layer(bn, x, true, None, Some(shortcut))
}

/// [`batch_norm`], with a shortcut added before the ReLU where one is given.
fn norm_layer(
    bn: &BatchNorm,
    x: Tensor<4>,
    relu: bool,
    pool: Option<&MaxPool2d>,
    shortcut: Option<Tensor<4>>,
) -> Tensor<4> {
    let device = x.device();
    let flex = on_flex(&x);
    // burn's layer trains on batch statistics on an autodiff device with training enabled, and
    // uses the running statistics otherwise; a frozen layer on an autodiff device stays with burn.
    let training = device.is_autodiff() && bn.training.is_enabled();
    let inference = flex && !device.is_autodiff();
    let [_, _, h, w] = x.dims();
    let (after, fused_pool) = after(relu, pool, shortcut.is_some(), (h, w));
    let rest = |y: Tensor<4>, pooled: bool| match pool {
        Some(p) if !pooled => p.forward(y),
        _ => y,
    };
    let params = || (bn.gamma.val().into_dispatch(), bn.beta.val().into_dispatch());
    if inference {
        let (gamma, beta) = params();
        // Running statistics stay where they were created (burn's layer moves them too).
        let mean = bn.running_mean.value().to_device(&device).into_dispatch();
        let var = bn.running_var.value().to_device(&device).into_dispatch();
        let y = match shortcut {
            Some(s) => <burn::backend::Dispatch as InferenceKernels>::tb_batch_norm_add_relu_eval(
                x.into_dispatch(),
                gamma,
                beta,
                mean,
                var,
                s.into_dispatch(),
                bn.epsilon,
            ),
            None => <burn::backend::Dispatch as InferenceKernels>::tb_batch_norm_eval(
                x.into_dispatch(),
                gamma,
                beta,
                mean,
                var,
                bn.epsilon,
                after,
            ),
        };
        return rest(Tensor::from_dispatch(y), fused_pool.is_some());
    }
    if !(flex && training) {
        let y = bn.forward(x);
        let y = match shortcut {
            Some(s) => burn::tensor::activation::relu(y + s),
            None if relu => burn::tensor::activation::relu(y),
            None => y,
        };
        return rest(y, false);
    }
    let (gamma, beta) = params();
    let (y, mean, var) = match shortcut {
        Some(s) => <burn::backend::Dispatch as Kernels>::tb_batch_norm_add_relu_train(
            x.into_dispatch(),
            gamma,
            beta,
            s.into_dispatch(),
            bn.epsilon,
        ),
        None => {
            <burn::backend::Dispatch as Kernels>::tb_batch_norm_train(x.into_dispatch(), gamma, beta, bn.epsilon, after)
        }
    };
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: DispatchTensor| {
        let running = state.value_sync().to_device(&device);
        let batch = Tensor::<1>::from_dispatch(batch).detach();
        state.update(
            running
                .mul_scalar(1.0 - bn.momentum)
                .add(batch.mul_scalar(bn.momentum))
                .detach(),
        );
    };
    update(&bn.running_mean, mean);
    update(&bn.running_var, var);
    rest(Tensor::from_dispatch(y), fused_pool.is_some())
}

/// The max-pool as the batch-norm kernel's fused pool, where it is one: square, stride equal in
/// both directions, dilation 1, floor mode, the same padding on every side.
fn fused_pool(p: &MaxPool2d) -> Option<norm::Pool> {
    let pad = match p.padding {
        PaddingConfig2d::Valid => 0,
        PaddingConfig2d::Explicit(top, left, bottom, right) if [left, bottom, right] == [top; 3] => top,
        _ => return None,
    };
    let ([size, kw], [stride, sw]) = (p.kernel_size, p.stride);
    (size == kw && stride == sw && p.dilation == [1, 1] && !p.ceil_mode).then_some(norm::Pool { size, stride, pad })
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> ConvGeom {
    geometry_of(x.shape().dims(), weight.shape().dims(), options)
}

/// The convolution of an input and weights of these shapes.
fn geometry_of([batch, cin, h, w]: [usize; 4], [cout, _, kh, kw]: [usize; 4], options: &ConvOptions<2>) -> ConvGeom {
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
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
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

/// [`output`] for a `fill` that writes every element: the buffer is not zeroed first (zeroing a
/// reused allocation is one more pass over memory).
fn output_whole(shape: Shape, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> FlexTensor {
    let n = shape.num_elements();
    let mut data = Vec::<f32>::with_capacity(n);
    fill(&mut data.spare_capacity_mut()[..n]);
    // SAFETY: `fill` wrote all n elements.
    unsafe { data.set_len(n) };
    FlexTensor::from_data(TensorData::new(data, shape))
}

fn flex_conv2d(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>, options: &ConvOptions<2>) -> FlexTensor {
    let (x, weight, bias) = (contiguous(x), contiguous(weight), bias.map(contiguous));
    let g = geometry(&x, &weight, options);
    output(Shape::new([g.batch, g.cout, g.ho(), g.wo()]), |y| {
        conv::forward(&g, values(&x), values(&weight), bias.as_ref().map(values), y)
    })
}

/// A batch norm's output, `fill`ed from zeros or, with a shortcut, from a copy of it (which
/// [`norm::After::AddRelu`] adds to).
fn norm_output(shape: Shape, shortcut: Option<FlexTensor>, fill: impl FnOnce(&mut [f32])) -> FlexTensor {
    match shortcut {
        None => output(shape, fill),
        Some(s) => {
            let mut data = values(&contiguous(s)).to_vec();
            fill(&mut data);
            FlexTensor::from_data(TensorData::new(data, shape))
        }
    }
}

fn norm_geometry(x: &FlexTensor) -> norm::NormGeom {
    let [batch, channels, h, w] = x.shape().dims();
    norm::NormGeom { batch, channels, h, w }
}

fn vector(v: &[f32]) -> FlexTensor {
    output(Shape::new([v.len()]), |out| out.copy_from_slice(v))
}

/// What the backward pass needs of the forward output: nothing, the ReLU's output, or the pool's
/// winners.
#[derive(Clone, Debug)]
enum NormMask {
    Identity,
    Relu(FlexTensor),
    Pool(Vec<u8>, norm::Pool),
}

/// The forward batch norm: the output, the statistics and the backward's mask. With a shortcut,
/// `after` is [`norm::After::AddRelu`].
fn flex_batch_norm(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    shortcut: Option<FlexTensor>,
    epsilon: f64,
    after: norm::After,
) -> (FlexTensor, Vec<f32>, Vec<f32>, NormMask) {
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let g = norm_geometry(&x);
    let (ho, wo) = g.out_size(after);
    let mut result = (Vec::new(), Vec::new(), Vec::new());
    let y = norm_output(Shape::new([g.batch, g.channels, ho, wo]), shortcut, |y| {
        result = norm::forward(&g, values(&x), values(&gamma), values(&beta), epsilon, after, y)
    });
    let (mean, var, winners) = result;
    let mask = match after {
        norm::After::Nothing => NormMask::Identity,
        norm::After::Relu | norm::After::AddRelu => NormMask::Relu(y.clone()),
        norm::After::ReluPool(pool) => NormMask::Pool(winners, pool),
    };
    (y, mean, var, mask)
}

impl Kernels for Flex {
    fn tb_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        after: norm::After,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (y, mean, var, _) = flex_batch_norm(x, gamma, beta, None, epsilon, after);
        (y, vector(&mean), vector(&var))
    }

    fn tb_batch_norm_add_relu_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        shortcut: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (y, mean, var, _) = flex_batch_norm(x, gamma, beta, Some(shortcut), epsilon, norm::After::AddRelu);
        (y, vector(&mean), vector(&var))
    }

    fn tb_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        flex_conv2d(x, weight, None, &options)
    }

    fn tb_conv2d_bias(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        flex_conv2d(x, weight, Some(bias), &options)
    }
}
