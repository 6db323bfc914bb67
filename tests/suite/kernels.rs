//! The default backend's own kernels (src/kernel) against burn's ops, through autodiff: the same
//! outputs, the same gradients for every input, and the same running statistics, for every
//! convolution shape the backbones use, for batch norm with and without ReLU, pool and shortcut,
//! for a convolution and its batch norm as one op in inference, and for the transformer's linear
//! layers, layer norm, GELU and self-attention (odd token counts and head sizes), in training and
//! in inference. One test, because it switches the process-wide
//! kernel choice.

use burn::module::Module;
use burn::nn::attention::MultiHeadAttentionConfig;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, LayerNormConfig, LinearConfig, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use tunnelbench::{
    LAYER_NORM_EPSILON, batch_norm, batch_norm_add_relu, conv_batch_norm, conv_batch_norm_add_relu, conv2d, floats,
    gelu, layer_norm, linear, linear_gelu, self_attention, use_own_kernels,
};

/// Largest |a − b| relative to the largest |b|.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn assert_close(what: &str, ours: &[f32], burn: &[f32]) {
    let d = rel_diff(ours, burn);
    assert!(d < 1e-4, "{what}: relative difference {d}");
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn own_kernels_match_burn_ops() {
    let device = Device::flex().autodiff();
    device.seed(11);

    // (batch, cin, size, cout, kernel, stride, padding, bias): VGG 3x3 (direct; Winograd from 64
    // channels on 8x8), the late 2x2 and 1x1 planes, the ResNet stem, its stride-2 3x3 and 1x1
    // downsample, a ViT patch embedding.
    let convs = [
        (4, 3, 12, 8, 3, 1, 1, true),
        (2, 64, 8, 72, 3, 1, 1, true),
        (5, 8, 2, 6, 3, 1, 1, true),
        (3, 6, 1, 5, 3, 1, 1, true),
        (2, 3, 17, 4, 7, 2, 3, false),
        (3, 4, 9, 6, 3, 2, 1, false),
        (3, 4, 9, 6, 1, 2, 0, false),
        (2, 3, 16, 5, 4, 4, 0, true),
    ];
    for (batch, cin, size, cout, k, stride, pad, bias) in convs {
        let x = random([batch, cin, size, size], &device).require_grad();
        let w = random([cout, cin, k, k], &device).require_grad();
        let b = bias.then(|| random([cout], &device).require_grad());
        let options = ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1);
        let out = (size + 2 * pad - k) / stride + 1;
        let weights = random([batch, cout, out, out], &device);
        let run = |own: bool| {
            use_own_kernels(own);
            let y = conv2d(x.clone(), w.clone(), b.clone(), options.clone());
            let grads = (y.clone() * weights.clone()).sum().backward();
            let mut values = vec![floats(y).unwrap(), floats(x.grad(&grads).unwrap()).unwrap()];
            values.push(floats(w.grad(&grads).unwrap()).unwrap());
            if let Some(b) = &b {
                values.push(floats(b.grad(&grads).unwrap()).unwrap());
            }
            values
        };
        let (ours, theirs) = (run(true), run(false));
        for (what, (o, t)) in ["output", "input grad", "weight grad", "bias grad"]
            .iter()
            .zip(ours.iter().zip(&theirs))
        {
            assert_close(
                &format!("conv {cin}->{cout} k{k} s{stride} p{pad} on {size}px: {what}"),
                o,
                t,
            );
        }
    }

    // Batch norm in training, alone, + ReLU, + ReLU + 2x2 pool (odd size: the last row and
    // column dropped), + ReLU + the ResNet stem's 3x3 stride-2 pool padded by 1 (windows that
    // overlap and reach into the padding), and + a shortcut + ReLU (a residual block's end).
    let pool2 = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    let pool3 = MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init();
    for (relu, pool, size, shortcut) in [
        (false, None, 6, false),
        (true, None, 6, false),
        (true, Some(&pool2), 7, false),
        (true, Some(&pool2), 2, false),
        (true, Some(&pool3), 6, false),
        (true, Some(&pool3), 7, false),
        (true, Some(&pool3), 2, false),
        (true, None, 5, true),
    ] {
        let channels = 5;
        let x = (random([4, channels, size, size], &device) * 2.0 + 0.5).require_grad();
        let s = shortcut.then(|| random([4, channels, size, size], &device).require_grad());
        let layer = |bn: &BatchNorm, x: Tensor<4>, s: Option<Tensor<4>>| match s {
            Some(s) => batch_norm_add_relu(bn, x, s),
            None => batch_norm(bn, x, relu, pool),
        };
        let run = |own: bool| {
            use_own_kernels(own);
            let mut bn = BatchNormConfig::new(channels).init(&device);
            bn.gamma = bn.gamma.map(|g| (g * 1.5 - 0.2).detach().require_grad());
            bn.beta = bn.beta.map(|b| (b + 0.1).detach().require_grad());
            let y = layer(&bn, x.clone(), s.clone());
            let weights = Tensor::<4>::ones(y.shape(), &device)
                + Tensor::arange(0..y.shape().num_elements() as i64, &device)
                    .float()
                    .reshape(y.shape())
                    .sin();
            let grads = (y.clone() * weights).sum().backward();
            let mut values = vec![
                floats(y).unwrap(),
                floats(x.grad(&grads).unwrap()).unwrap(),
                floats(bn.gamma.val().grad(&grads).unwrap()).unwrap(),
                floats(bn.beta.val().grad(&grads).unwrap()).unwrap(),
                floats(bn.running_mean.value()).unwrap(),
                floats(bn.running_var.value()).unwrap(),
            ];
            values.extend(s.as_ref().map(|s| floats(s.grad(&grads).unwrap()).unwrap()));
            values
        };
        // Inference on a plain device, with the running statistics of a layer that has trained.
        let plain = Device::flex();
        let eval = |own: bool| {
            use_own_kernels(own);
            let mut bn = BatchNormConfig::new(channels).init(&plain);
            bn.gamma = bn.gamma.map(|g| g * 1.5 - 0.2);
            bn.beta = bn.beta.map(|b| b + 0.1);
            bn.running_mean.update(random([channels], &plain));
            bn.running_var.update(random([channels], &plain).abs() + 0.5);
            // A clone forked to another backend takes the shared running statistics with it (as
            // a model copied to a GPU does): the layer must fetch them back. Only where a second
            // backend is compiled in (with the default features none is, and nothing can move).
            #[cfg(feature = "ndarray")]
            let _elsewhere = bn.clone().fork(&tunnelbench::BackendKind::Ndarray.device());
            let x = x.clone().inner().to_device(&plain);
            let s = s.clone().map(|s| s.inner().to_device(&plain));
            vec![floats(layer(&bn, x, s)).unwrap()]
        };
        let (ours, theirs) = ([run(true), eval(true)].concat(), [run(false), eval(false)].concat());
        let mut names = vec![
            "output",
            "input grad",
            "gamma grad",
            "beta grad",
            "running mean",
            "running var",
        ];
        if shortcut {
            names.push("shortcut grad");
        }
        names.push("inference output");
        assert_eq!(ours.len(), names.len());
        for (what, (o, t)) in names.iter().zip(ours.iter().zip(&theirs)) {
            assert_close(
                &format!(
                    "batch norm relu={relu} pool={} shortcut={shortcut} on {size}px: {what}",
                    pool.is_some()
                ),
                o,
                t,
            );
        }
    }

    // A convolution and its batch norm as one op in inference (each run of images normalised as
    // the convolution computes it), on every conv shape above: alone, + ReLU, + ReLU + the stem's
    // pool, and + a shortcut + ReLU.
    let plain = Device::flex();
    for (batch, cin, size, cout, k, stride, pad, bias) in convs {
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(bias)
            .init(&plain);
        let mut bn = BatchNormConfig::new(cout).init(&plain);
        bn.gamma = bn.gamma.map(|g| g * 1.5 - 0.2);
        bn.beta = bn.beta.map(|b| b + 0.1);
        bn.running_mean.update(random([cout], &plain));
        bn.running_var.update(random([cout], &plain).abs() + 0.5);
        let out = (size + 2 * pad - k) / stride + 1;
        let x = random([batch, cin, size, size], &plain);
        for (relu, pool, shortcut) in [
            (false, None, false),
            (true, None, false),
            (true, Some(&pool3), false),
            (true, None, true),
        ] {
            let s = shortcut.then(|| random([batch, cout, out, out], &plain));
            let run = |own: bool| {
                use_own_kernels(own);
                let y = match &s {
                    Some(s) => conv_batch_norm_add_relu(&conv, &bn, x.clone(), || s.clone()),
                    None => conv_batch_norm(&conv, &bn, x.clone(), relu, pool),
                };
                floats(y).unwrap()
            };
            assert_close(
                &format!(
                    "conv {cin}->{cout} k{k} s{stride} + batch norm relu={relu} pool={} shortcut={shortcut}, inference",
                    pool.is_some()
                ),
                &run(true),
                &run(false),
            );
        }
    }
    transformer_kernels_match_burn_ops(&device);
    use_own_kernels(true);
}

/// Layer norm, GELU and self-attention: outputs and the gradients of inputs and parameters on an
/// autodiff device, and outputs on a plain one.
fn transformer_kernels_match_burn_ops(device: &Device) {
    let plain = Device::flex();
    let weights = |shape: burn::tensor::Shape| random(shape.dims::<3>(), device);
    let check = |what: &str, ours: Vec<Vec<f32>>, theirs: Vec<Vec<f32>>| {
        assert_eq!(ours.len(), theirs.len());
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_close(&format!("{what}, value {i}"), o, t);
        }
    };

    // Layer norm over 5 and 19 features, 7 and 17 tokens.
    for (batch, tokens, dim) in [(3, 7, 5), (2, 17, 19)] {
        let x = (random([batch, tokens, dim], device) * 2.0 + 0.3).require_grad();
        let w = weights(x.shape());
        let mut ln = LayerNormConfig::new(dim).with_epsilon(LAYER_NORM_EPSILON).init(device);
        ln.gamma = ln
            .gamma
            .map(|g| (g + random([dim], device) * 0.5).detach().require_grad());
        ln.beta = ln
            .beta
            .map(|b| b.map(|b| (b + random([dim], device)).detach().require_grad()));
        let run = |own: bool| {
            use_own_kernels(own);
            let y = layer_norm(&ln, x.clone());
            let grads = (y.clone() * w.clone()).sum().backward();
            let beta = ln.beta.as_ref().unwrap().val();
            let eval = layer_norm(&ln.clone().fork(&plain), x.clone().inner().to_device(&plain));
            vec![
                floats(y).unwrap(),
                floats(x.grad(&grads).unwrap()).unwrap(),
                floats(ln.gamma.val().grad(&grads).unwrap()).unwrap(),
                floats(beta.grad(&grads).unwrap()).unwrap(),
                floats(eval).unwrap(),
            ]
        };
        check(&format!("layer norm {batch}x{tokens}x{dim}"), run(true), run(false));
    }

    // Linear layers: 19 -> 37 features on 7 tokens, 64 -> 33 on 17 (more than one tile of rows
    // and columns).
    for (batch, tokens, d_in, d_out) in [(3, 7, 19, 37), (5, 17, 64, 33)] {
        let mut lin = LinearConfig::new(d_in, d_out).init(device);
        lin.bias = lin
            .bias
            .map(|b| b.map(|b| (b + random([d_out], device)).detach().require_grad()));
        let x = random([batch, tokens, d_in], device).require_grad();
        let w = random([batch, tokens, d_out], device);
        let run = |own: bool| {
            use_own_kernels(own);
            let y = linear(&lin, x.clone());
            let grads = (y.clone() * w.clone()).sum().backward();
            let eval = linear(&lin.clone().fork(&plain), x.clone().inner().to_device(&plain));
            let mut values = vec![
                floats(y).unwrap(),
                floats(x.grad(&grads).unwrap()).unwrap(),
                floats(lin.weight.val().grad(&grads).unwrap()).unwrap(),
                floats(lin.bias.as_ref().unwrap().val().grad(&grads).unwrap()).unwrap(),
                floats(eval).unwrap(),
            ];
            // The GELU fused into the product (on the plain device) and composed (with autodiff).
            let y = linear_gelu(&lin, x.clone());
            let grads = (y.clone() * w.clone()).sum().backward();
            let eval = linear_gelu(&lin.clone().fork(&plain), x.clone().inner().to_device(&plain));
            values.extend([
                floats(y).unwrap(),
                floats(x.grad(&grads).unwrap()).unwrap(),
                floats(lin.weight.val().grad(&grads).unwrap()).unwrap(),
                floats(eval).unwrap(),
            ]);
            values
        };
        check(
            &format!("linear {d_in}->{d_out} on {batch}x{tokens}"),
            run(true),
            run(false),
        );
    }

    // GELU over both tails.
    let x = (random([4, 9, 7], device) * 3.0).require_grad();
    let w = weights(x.shape());
    let run = |own: bool| {
        use_own_kernels(own);
        let y = gelu(x.clone());
        let grads = (y.clone() * w.clone()).sum().backward();
        let eval = gelu(x.clone().inner().to_device(&plain));
        vec![
            floats(y).unwrap(),
            floats(x.grad(&grads).unwrap()).unwrap(),
            floats(eval).unwrap(),
        ]
    };
    check("gelu", run(true), run(false));

    // Self-attention: 3 heads of 5 features over 7 tokens, 2 heads of 8 over 17 (a class token
    // and 16 patches), 1 head of 3 over 1 token, 2 heads of 4 over 261 tokens (three blocks of
    // query rows, the last of 5), and the ViT-T's 3 heads of 64 over 16 tokens.
    for (batch, tokens, heads, head_dim) in [
        (2, 7, 3, 5),
        (3, 17, 2, 8),
        (2, 1, 1, 3),
        (1, 261, 2, 4),
        (4, 16, 3, 64),
    ] {
        let dim = heads * head_dim;
        let mha = MultiHeadAttentionConfig::new(dim, heads).with_dropout(0.0).init(device);
        let x = random([batch, tokens, dim], device).require_grad();
        let w = weights(x.shape());
        let run = |own: bool| {
            use_own_kernels(own);
            let y = self_attention(&mha, x.clone());
            let grads = (y.clone() * w.clone()).sum().backward();
            let mut values = vec![floats(y).unwrap(), floats(x.grad(&grads).unwrap()).unwrap()];
            for l in [&mha.query, &mha.key, &mha.value, &mha.output] {
                values.push(floats(l.weight.val().grad(&grads).unwrap()).unwrap());
            }
            // The key bias adds the same score to every key of a query, which the softmax
            // ignores: its gradient is zero but for rounding, so it is checked against the
            // others' scale.
            let bias = |l: &burn::nn::Linear| floats(l.bias.as_ref().unwrap().val().grad(&grads).unwrap()).unwrap();
            let scale = bias(&mha.query).iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(bias(&mha.key).iter().all(|g| g.abs() <= 1e-5 * scale.max(1e-3)));
            values.extend([bias(&mha.query), bias(&mha.value), bias(&mha.output)]);
            values.push(
                floats(self_attention(
                    &mha.clone().fork(&plain),
                    x.clone().inner().to_device(&plain),
                ))
                .unwrap(),
            );
            values
        };
        check(
            &format!("self-attention {batch}x{tokens}, {heads} heads of {head_dim}"),
            run(true),
            run(false),
        );
    }
}
