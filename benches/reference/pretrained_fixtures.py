"""Checkpoints and reference outputs from PyTorch, to test that tunnelbench loads a checkpoint
and computes what PyTorch computes with it (tests/suite/pretrained.rs).

For each model: random weights (ResNet: BatchNorm statistics warmed up in train mode on random
batches, so that they are not the trivial 0/1; ViT and ConvNeXt: every LayerNorm, layer scale,
bias, class token and head drawn at random, so that no part is an identity or zero), saved as a
state dict (.pth) and as .safetensors, a batch of normalised images (.npy) and PyTorch's outputs
on them (.npz): the logits and, at every probe point, the feature tunnelbench probes (a conv
output, 2x2 adaptive-average-pooled when larger than 2x2, flattened; a ViT block's output
through the final LayerNorm, averaged over the patch tokens).

    pip install torch torchvision safetensors numpy [timm transformers]
    python3 benches/reference/pretrained_fixtures.py --out tests/fixtures/pretrained --model resnet50
    python3 benches/reference/pretrained_fixtures.py --out tests/fixtures/pretrained --model vit
    python3 benches/reference/pretrained_fixtures.py --out tests/fixtures/pretrained --model convnext
    python3 benches/reference/pretrained_fixtures.py --out tests/fixtures/pretrained --model convnext-v2   # needs timm
    python3 benches/reference/pretrained_fixtures.py --out /tmp/full --full --model vit   # torchvision vit_b_16

The reduced models keep torchvision's modules and key layout at a size small enough to commit:
ResNet-50 with every width divided by 16 at 64x64; a ViT of 2 blocks, width 64, 2 heads, patch 8
at 32x32; ConvNeXt-B's depths (3, 3, 27, 3) with widths divided by 32 at 64x64, and the same for
timm's ConvNeXt-V2-B (GRN blocks; timm's model is the reference, torchvision has none). With timm
(ViT) or transformers (ViT, ConvNeXt, ConvNeXt-V2) installed, the same weights are also written in
timm's and Hugging Face's key layouts, after checking that those libraries' own models give the
same logits. With timm, the reduced ViT is also written at 16x16 and 48x48 (a 2x2 and a 6x6 patch
grid): images, and PyTorch's outputs with the positions resampled by timm's
`resample_abs_pos_embed`.
"""

import argparse
import pathlib
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torchvision.models import convnext_base, resnet50, vit_b_16
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.resnet import Bottleneck
from torchvision.models.vision_transformer import VisionTransformer


class ReducedResNet50(nn.Module):
    """torchvision's ResNet-50 layout with widths divided by `div` (module names as torchvision's)."""

    def __init__(self, div, classes):
        super().__init__()
        stem = 64 // div
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = stem
        for i, (planes, blocks) in enumerate(zip([64, 128, 256, 512], [3, 4, 6, 3])):
            planes //= div
            stride = 1 if i == 0 else 2
            down = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )
            layers = [Bottleneck(inplanes, planes, stride, down)]
            inplanes = planes * 4
            layers += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def probe_points(model):
    """The main-path convs in forward order: conv1, then layerL.B.conv1/2/3."""
    names = ["conv1"]
    for i in range(1, 5):
        for b in range(len(getattr(model, f"layer{i}"))):
            names += [f"layer{i}.{b}.conv{c}" for c in (1, 2, 3)]
    return names


def probe_feature(y):
    if y.shape[2] > 2:
        y = F.adaptive_avg_pool2d(y, 2)
    return torch.flatten(y, 1)


def vit_probe_points(model):
    return [f"encoder.layers.encoder_layer_{i}" for i in range(len(model.encoder.layers))]


def convnext_probe_points(model):
    """The depthwise 7x7 conv of every block: features.{1,3,5,7}.{b}.block.0."""
    return [f"features.{s}.{b}.block.0" for s in (1, 3, 5, 7) for b in range(len(model.features[s]))]


def outputs(model, x, names, feature=probe_feature):
    feats = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[n].register_forward_hook(lambda m, i, o, n=n: feats.__setitem__(n, feature(o)))
        for n in names
    ]
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    return {"logits": logits, **{n: feats[n] for n in names}}


def randomise(model):
    """Every LayerNorm, layer scale, bias, class token and classifier drawn at random (torchvision
    initialises them to ones, 1e-6, zeros), so that none is an identity and the head is not zero."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 or "layer_scale" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p) if name.endswith("weight") or "layer_scale" in name else 0.1 * torch.randn_like(p))
            elif name in ("class_token", "encoder.pos_embedding"):
                p.copy_(0.5 * torch.randn_like(p))
            elif name.startswith(("heads.", "classifier.", "head.")):
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)


def reduced_vit():
    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=256, num_classes=10)


def reduced_convnext():
    widths = [128 // 32, 256 // 32, 512 // 32, 1024 // 32]
    setting = [CNBlockConfig(w, n, d) for w, n, d in zip(widths, widths[1:] + [None], [3, 3, 27, 3])]
    return ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=10)


def checked(other, state, x, logits, name):
    """`state` loaded into another library's model `other`, which must give `logits` on `x`."""
    state = {k: v.detach().contiguous() for k, v in state.items()}
    other.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = other.eval()(x)
    assert torch.allclose(getattr(out, "logits", out), logits, atol=1e-4, rtol=1e-4), f"{name} disagrees"
    return state


def renamed_vit(model, top, block, modules, qkv):
    """torchvision's ViT weights under another library's key names. `top`: the class token, the
    positions, the patch conv, the final LayerNorm and the classifier; block i is `block.format(i)`,
    `modules` its ln_1, ln_2, attention output, mlp.0 and mlp.3; `qkv(b, weight, bias)` the entries
    of block `b`'s query/key/value projection."""
    enc = model.encoder
    cls, pos, proj, norm, head = top
    state = {cls: model.class_token, pos: enc.pos_embedding}
    for name, m in [(proj, model.conv_proj), (norm, enc.ln), (head, model.heads.head)]:
        state[f"{name}.weight"], state[f"{name}.bias"] = m.weight, m.bias
    for i, layer in enumerate(enc.layers):
        b, attn = block.format(i), layer.self_attention
        for name, m in zip(modules, [layer.ln_1, layer.ln_2, attn.out_proj, layer.mlp[0], layer.mlp[3]]):
            state[f"{b}.{name}.weight"], state[f"{b}.{name}.bias"] = m.weight, m.bias
        state.update(qkv(b, attn.in_proj_weight, attn.in_proj_bias))
    return {k: v.detach().contiguous() for k, v in state.items()}


def timm_vit_state(model, res, x, logits):
    """torchvision's ViT weights in timm's layout, checked against timm's own model."""
    import timm

    state = renamed_vit(
        model,
        ["cls_token", "pos_embed", "patch_embed.proj", "norm", "head"],
        "blocks.{}",
        ["norm1", "norm2", "attn.proj", "mlp.fc1", "mlp.fc2"],
        lambda b, w, bias: {f"{b}.attn.qkv.weight": w, f"{b}.attn.qkv.bias": bias},
    )
    dim, depth = model.hidden_dim, len(model.encoder.layers)
    heads = model.encoder.layers[0].self_attention.num_heads
    t = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=res, patch_size=model.patch_size, embed_dim=dim, depth=depth, num_heads=heads, num_classes=model.heads.head.out_features)
    return checked(t, state, x, logits, "timm's ViT")


def hf_vit_state(model, res, x, logits):
    """torchvision's ViT weights in Hugging Face's layout, checked against transformers' model."""
    from transformers import ViTConfig, ViTForImageClassification

    dim = model.hidden_dim

    def qkv(b, w, bias):
        parts = enumerate(["query", "key", "value"])
        return {f"{b}.attention.attention.{p}.{leaf}": t[j * dim : (j + 1) * dim] for j, p in parts for leaf, t in [("weight", w), ("bias", bias)]}

    # The key names of the files on the hub (`google/vit-base-patch16-224`, `facebook/dino-vitb16`),
    # which transformers 5 renames as it loads them: they are loaded as it loads a downloaded model.
    state = renamed_vit(
        model,
        ["vit.embeddings.cls_token", "vit.embeddings.position_embeddings", "vit.embeddings.patch_embeddings.projection", "vit.layernorm", "classifier"],
        "vit.encoder.layer.{}",
        ["layernorm_before", "layernorm_after", "attention.output.dense", "intermediate.dense", "output.dense"],
        qkv,
    )
    layer = model.encoder.layers[0]
    # LayerNorm epsilon as torchvision's (the hub's ViT configs say 1e-12).
    config = ViTConfig(
        hidden_size=dim,
        num_hidden_layers=len(model.encoder.layers),
        num_attention_heads=layer.self_attention.num_heads,
        intermediate_size=layer.mlp[0].out_features,
        image_size=res,
        patch_size=model.patch_size,
        layer_norm_eps=1e-6,
        num_labels=model.heads.head.out_features,
    )
    with tempfile.TemporaryDirectory() as d:
        save_file(state, f"{d}/model.safetensors", metadata={"format": "pt"})
        config.save_pretrained(d)
        hf = ViTForImageClassification.from_pretrained(d)
    with torch.no_grad():
        assert torch.allclose(hf.eval()(x).logits, logits, atol=1e-4, rtol=1e-4), "transformers' ViT disagrees"
    return state


def resampled_vit(model, res, images):
    """The ViT at `res`x`res`, its positions resampled by timm's `resample_abs_pos_embed` (bicubic,
    antialiased): a batch of images there, and the logits and probe features."""
    from timm.layers import resample_abs_pos_embed

    state = model.state_dict()
    grid = res // model.patch_size
    state["encoder.pos_embedding"] = resample_abs_pos_embed(state["encoder.pos_embedding"], new_size=[grid, grid], num_prefix_tokens=1)
    enc = model.encoder
    layer = enc.layers[0]
    other = VisionTransformer(
        image_size=res,
        patch_size=model.patch_size,
        num_layers=len(enc.layers),
        num_heads=layer.self_attention.num_heads,
        hidden_dim=model.hidden_dim,
        mlp_dim=layer.mlp[0].out_features,
        num_classes=model.heads.head.out_features,
    )
    other.load_state_dict(state, strict=True)
    other.eval()
    x = torch.randn(images, 3, res, res)
    ref = outputs(other, x, vit_probe_points(other), lambda y: other.encoder.ln(y)[:, 1:].mean(1))
    return x, ref


def hf_convnext_state(model, x, logits):
    """torchvision's ConvNeXt weights in Hugging Face's layout, checked against transformers' model."""
    from transformers import ConvNextConfig, ConvNextForImageClassification

    f = model.features
    state = {
        "convnext.embeddings.patch_embeddings.weight": f[0][0].weight,
        "convnext.embeddings.patch_embeddings.bias": f[0][0].bias,
        "convnext.embeddings.layernorm.weight": f[0][1].weight,
        "convnext.embeddings.layernorm.bias": f[0][1].bias,
        "convnext.layernorm.weight": model.classifier[0].weight,
        "convnext.layernorm.bias": model.classifier[0].bias,
        "classifier.weight": model.classifier[2].weight,
        "classifier.bias": model.classifier[2].bias,
    }
    widths, depths = [], []
    for s in range(4):
        stage = f[2 * s + 1]
        widths.append(stage[0].block[0].in_channels)
        depths.append(len(stage))
        t = f"convnext.encoder.stages.{s}"
        if s > 0:
            for i in (0, 1):
                state[f"{t}.downsampling_layer.{i}.weight"] = f[2 * s][i].weight
                state[f"{t}.downsampling_layer.{i}.bias"] = f[2 * s][i].bias
        for b, block in enumerate(stage):
            for ours, i in [("dwconv", 0), ("layernorm", 2), ("pwconv1", 3), ("pwconv2", 5)]:
                state[f"{t}.layers.{b}.{ours}.weight"] = block.block[i].weight
                state[f"{t}.layers.{b}.{ours}.bias"] = block.block[i].bias
            state[f"{t}.layers.{b}.layer_scale_parameter"] = block.layer_scale.reshape(-1)
    # The final LayerNorm's epsilon as torchvision's (the hub's convnext-base-224 says 1e-12).
    config = ConvNextConfig(hidden_sizes=widths, depths=depths, num_labels=model.classifier[2].out_features, layer_norm_eps=1e-6)
    return checked(ConvNextForImageClassification(config), state, x, logits, "transformers' ConvNeXt")


def hf_convnextv2_state(model, x, logits):
    """timm's ConvNeXt-V2 weights in Hugging Face's layout, checked against transformers' model."""
    from transformers import ConvNextV2Config, ConvNextV2ForImageClassification

    rename = [("stem.0.", "embeddings.patch_embeddings."), ("stem.1.", "embeddings.layernorm."), ("head.norm.", "layernorm.")]
    block = [(".conv_dw.", ".dwconv."), (".norm.", ".layernorm."), (".mlp.fc1.", ".pwconv1."), (".mlp.grn.", ".grn."), (".mlp.fc2.", ".pwconv2.")]
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("head.fc."):
            state["classifier." + key[len("head.fc."):]] = value
            continue
        for theirs, ours in rename:
            key = key.replace(theirs, ours) if key.startswith(theirs) else key
        if key.startswith("stages."):
            key = key.replace("stages.", "encoder.stages.", 1).replace(".downsample.", ".downsampling_layer.").replace(".blocks.", ".layers.")
            for theirs, ours in block:
                key = key.replace(theirs, ours)
            if ".grn." in key:
                value = value.reshape(1, 1, 1, -1)
        state["convnextv2." + key] = value
    widths = [len(model.stages[s].blocks[0].norm.weight) for s in range(4)]
    depths = [len(model.stages[s].blocks) for s in range(4)]
    # The final LayerNorm's epsilon as timm's (the hub's convnextv2 configs say 1e-12).
    config = ConvNextV2Config(hidden_sizes=widths, depths=depths, num_labels=model.head.fc.out_features, layer_norm_eps=1e-6)
    return checked(ConvNextV2ForImageClassification(config), state, x, logits, "transformers' ConvNeXt-V2")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--model", choices=["resnet50", "vit", "convnext", "convnext-v2"], default="resnet50")
    ap.add_argument("--full", action="store_true", help="torchvision's full-size model at 224x224 instead of the reduced one")
    ap.add_argument("--images", type=int, default=4)
    args = ap.parse_args()
    torch.manual_seed(0)
    feature = probe_feature
    if args.model == "resnet50":
        model, res, name = (resnet50(weights=None), 224, "resnet50") if args.full else (ReducedResNet50(16, 10), 64, "resnet50-div16")
        names = probe_points(model)
        # BatchNorm statistics that are not the trivial 0/1.
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(8, 3, res, res))
    elif args.model == "vit":
        model, res, name = (vit_b_16(weights=None), 224, "vit_b_16") if args.full else (reduced_vit(), 32, "vit-reduced")
        randomise(model)
        names = vit_probe_points(model)

        def feature(y):
            # The final LayerNorm on the block's output, then the mean over the patch tokens.
            return model.encoder.ln(y)[:, 1:].mean(1)
    elif args.model == "convnext":
        model, res, name = (convnext_base(weights=None), 224, "convnext_base") if args.full else (reduced_convnext(), 64, "convnext-div32")
        randomise(model)
        names = convnext_probe_points(model)
    else:
        # ConvNeXt V2 exists in timm only: timm's model is the reference.
        import timm

        dims = {} if args.full else {"dims": [128 // 32, 256 // 32, 512 // 32, 1024 // 32], "num_classes": 10}
        model, res = timm.create_model("convnextv2_base", pretrained=False, **dims), 224 if args.full else 64
        name = "convnextv2_base" if args.full else "convnextv2-div32"
        randomise(model)
        names = [f"stages.{s}.blocks.{b}.conv_dw" for s in range(4) for b in range(len(model.stages[s].blocks))]
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, args.out / f"{name}.pth")
    save_file(state, args.out / f"{name}.safetensors")
    x = torch.randn(args.images, 3, res, res)
    np.save(args.out / f"{name}-input.npy", x.numpy().astype(np.float32))
    ref = outputs(model, x, names, feature)
    if args.model == "vit":
        # The other token choices of `probe_tokens`: every token, and the class token alone.
        for tokens, pick in [("all", lambda t: t.mean(1)), ("class", lambda t: t[:, 0])]:
            extra = outputs(model, x, names, lambda y: pick(model.encoder.ln(y)))
            ref.update({f"{n}:{tokens}": extra[n] for n in names})
    np.savez(args.out / f"{name}-expected.npz", **{k: v.numpy().astype(np.float32) for k, v in ref.items()})
    if args.model == "vit" and not args.full:
        # The same ViT at a finer and a coarser patch grid, its positions resampled as timm does.
        try:
            for r in (res // 2, res * 3 // 2):
                xr, refr = resampled_vit(model, r, args.images)
                np.save(args.out / f"{name}-{r}-input.npy", xr.numpy().astype(np.float32))
                np.savez(args.out / f"{name}-{r}-expected.npz", **{k: v.numpy().astype(np.float32) for k, v in refr.items()})
        except ImportError:
            print("timm is not installed: no resampled positions written")
    if args.model == "resnet50":
        # A float16 checkpoint, and what PyTorch computes with its (rounded) weights in float32.
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
        save_file(half, args.out / f"{name}-f16.safetensors")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
        np.save(args.out / f"{name}-f16-logits.npy", outputs(model, x, [])["logits"].numpy().astype(np.float32))
    else:
        other = {
            "vit": [("timm", lambda: timm_vit_state(model, res, x, ref["logits"])), ("transformers", lambda: hf_vit_state(model, res, x, ref["logits"]))],
            "convnext": [("transformers", lambda: hf_convnext_state(model, x, ref["logits"]))],
            "convnext-v2": [("transformers", lambda: hf_convnextv2_state(model, x, ref["logits"]))],
        }
        for lib, convert in other[args.model]:
            try:
                save_file(convert(), args.out / f"{name}-{lib}.safetensors")
            except ImportError:
                print(f"{lib} is not installed: no {lib} layout written")
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, {len(names)} probe points -> {args.out}")


if __name__ == "__main__":
    main()
