"""PyTorch re-implementation of the reference SLaK model (VITA-Group/SLaK, models/SLaK.py at 44b4aab).

Why this file exists: Slak.Cuda's C# model must produce the same state_dict keys (names, order, shapes) and the
same evaluation-mode logits as the reference code. The reference needs a CUDA extension (its depthwise op); this
file is a plain-PyTorch twin written from docs/slak-facts.md sections 1 and 7, with the depthwise convolutions done
by nn.Conv2d with "same" padding (kh//2, kw//2), which is what the reference CUDA op computes.

Used by:
  tools/make_state_dict_fixture.py  -> tests/TestData/state_dict/slak_{tiny,small,base}.txt
  tools/make_infer_fixture.py       -> tests/TestData/infer/<fixture>/

Run the scripts with Debian's torch:  /usr/bin/python3 tools/<script>.py   (no GPU, no network needed).
Self-check of this module:            /usr/bin/python3 tools/slak_reference_model.py
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def drop_path(x, drop_prob, training):
    """Per-sample stochastic depth (timm semantics): identity in eval mode or at rate 0."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)


class LayerNorm(nn.Module):
    """LayerNorm with channels_last (N, H, W, C) or channels_first (N, C, H, W) input; biased variance."""

    def __init__(self, normalized_shape, eps=1e-6, data_format="channels_last"):
        super().__init__()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"data_format must be channels_last or channels_first, got {data_format!r}")
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps
        self.data_format = data_format
        self.normalized_shape = (normalized_shape,)

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def conv_bn(channels, kernel_hw, bn):
    """Depthwise conv (no bias) + optional BatchNorm2d, as an nn.Sequential with children 'conv' and 'bn'.

    Padding is (kh//2, kw//2): the reference CUDA op always pads that way whatever padding argument it gets."""
    kh, kw = kernel_hw
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(channels, channels, kernel_size=(kh, kw), stride=1,
                                     padding=(kh // 2, kw // 2), groups=channels, bias=False))
    if bn:
        seq.add_module("bn", nn.BatchNorm2d(channels))  # eps 1e-5, momentum 0.1 (SyncBatchNorm in the reference)
    return seq


class ReparamLargeKernelConv(nn.Module):
    """Depthwise large kernel: Decom -> LoRA1 (K,N) + LoRA2 (N,K); else lkb_origin (K,K); plus small_conv (N,N)
    when N < K. Branch outputs are summed."""

    def __init__(self, channels, kernel_size, small_kernel, Decom=None, bn=True):
        super().__init__()
        self.kernel_size = kernel_size
        self.small_kernel = small_kernel
        self.Decom = bool(Decom)
        if self.Decom:
            self.LoRA1 = conv_bn(channels, (kernel_size, small_kernel), bn)
            self.LoRA2 = conv_bn(channels, (small_kernel, kernel_size), bn)
        else:
            self.lkb_origin = conv_bn(channels, (kernel_size, kernel_size), bn)
        if small_kernel is not None and small_kernel < kernel_size:
            self.small_conv = conv_bn(channels, (small_kernel, small_kernel), bn)

    def forward(self, x):
        if self.Decom:
            out = self.LoRA1(x) + self.LoRA2(x)
        else:
            out = self.lkb_origin(x)
        if hasattr(self, "small_conv"):
            out = out + self.small_conv(x)
        return out


class Block(nn.Module):
    """large_kernel -> permute NHWC -> LN -> Linear(C,4C) -> GELU -> Linear(4C,C) -> gamma -> permute -> residual."""

    def __init__(self, dim, drop_path=0.0, layer_scale_init_value=1e-6, kernel_size=(7, 5), Decom=None, bn=True):
        super().__init__()
        self.large_kernel = ReparamLargeKernelConv(dim, kernel_size[0], kernel_size[1], Decom=Decom, bn=bn)
        self.norm = LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        # A parameter of the Block itself, so it comes first in the block's state_dict (before its children).
        self.gamma = (nn.Parameter(layer_scale_init_value * torch.ones(dim), requires_grad=True)
                      if layer_scale_init_value > 0 else None)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x):
        inp = x
        x = self.large_kernel(x)
        x = x.permute(0, 2, 3, 1)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        if self.gamma is not None:
            x = self.gamma * x
        x = x.permute(0, 3, 1, 2)
        return inp + self.drop_path(x)


class SLaK(nn.Module):
    """The SLaK classifier with the reference constructor arguments."""

    def __init__(self, in_chans=3, num_classes=1000, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768),
                 drop_path_rate=0.0, layer_scale_init_value=1e-6, head_init_scale=1.0,
                 kernel_size=(51, 49, 47, 13, 5), width_factor=1.0, Decom=None, bn=True):
        super().__init__()
        if len(depths) != 4 or len(dims) != 4 or len(kernel_size) != 5:
            raise ValueError(f"need 4 depths, 4 dims and 5 kernel sizes, got {depths}, {dims}, {kernel_size}")
        dims = [int(x * width_factor) for x in dims]  # plain truncation, as the reference
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
            LayerNorm(dims[0], eps=1e-6, data_format="channels_first")))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm(dims[i], eps=1e-6, data_format="channels_first"),
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList()
        rates = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        cur = 0
        for i in range(4):
            self.stages.append(nn.Sequential(*[
                Block(dims[i], drop_path=rates[cur + j], layer_scale_init_value=layer_scale_init_value,
                      kernel_size=(kernel_size[i], kernel_size[-1]), Decom=Decom, bn=bn)
                for j in range(depths[i])]))
            cur += depths[i]
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
        self.apply(self._init_weights)
        self.head.weight.data.mul_(head_init_scale)
        self.head.bias.data.mul_(head_init_scale)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x):
        for i in range(4):
            x = self.downsample_layers[i](x)
            x = self.stages[i](x)
        return self.norm(x.mean([-2, -1]))  # global average pool, then LN on (N, C)

    def forward(self, x):
        return self.head(self.forward_features(x))


# The paper's presets (slak-facts.md 1.2): width 1.3, kernels [51, 49, 47, 13, 5], Decom=True, bn=True.
PRESETS = {
    "slak_tiny": dict(depths=[3, 3, 9, 3], dims=[96, 192, 384, 768]),
    "slak_small": dict(depths=[3, 3, 27, 3], dims=[96, 192, 384, 768]),
    "slak_base": dict(depths=[3, 3, 27, 3], dims=[128, 256, 512, 1024]),
}


def preset(name, **overrides):
    args = dict(kernel_size=[51, 49, 47, 13, 5], width_factor=1.3, Decom=True, bn=True)
    args.update(PRESETS[name])
    args.update(overrides)
    return SLaK(**args)


if __name__ == "__main__":
    torch.manual_seed(0)
    m = SLaK(in_chans=1, num_classes=10, depths=[1, 1, 1, 1], dims=[8, 16, 16, 32],
             kernel_size=[7, 7, 5, 3, 3], width_factor=1.3, Decom=True).eval()
    y = m(torch.randn(2, 1, 36, 40))
    assert y.shape == (2, 10), y.shape
    print("ok", len(m.state_dict()), "keys; logits", tuple(y.shape), "sum", float(y.sum()))
    assert math.isfinite(float(y.sum()))
