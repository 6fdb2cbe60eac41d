"""Modules: SLaK's large-kernel block on the slak operators, and the swap of a reference SLaK model's large kernels.

DecomposedDepthwiseConv2d has the structure (and so the state_dict keys) of the reference ReparamLargeKernelConv
(tools/slak_reference_model.py, VITA-Group/SLaK): branches LoRA1 (K x N) + LoRA2 (N x K) when decomposed, else
lkb_origin (K x K), plus small_conv (N x N) when N < K; each branch is a Sequential-like module with `conv` (an
nn.Conv2d holding the weight, never called) and an optional `bn` (BatchNorm2d). Each branch runs
torch.ops.slak.dwconv2d(x, conv.weight, mask) and its BatchNorm; the outputs are summed. Masks are buffers `mask`
of each branch (0/1 float32, the weight's shape; all ones = dense), non-persistent so that state_dict() keeps the
reference's keys and official checkpoints load strictly (SLaK keeps masks apart from the model too).

fuse() (inference) folds every BatchNorm into its branch and merges the branches into one centred union kernel
(the taps of all masks): one torch.ops.slak.dwconv2d call plus a bias, sparse-aware on the CPU engine.
"""
from typing import Dict, Optional

import torch
from torch import nn


class _Branch(nn.Module):
    """One branch: conv.weight (C, 1, kh, kw), mask buffer, optional BatchNorm."""

    def __init__(self, conv: nn.Conv2d, bn: Optional[nn.BatchNorm2d], mask: Optional[torch.Tensor],
                 persistent_mask: bool, masked_grad: bool = True):
        super().__init__()
        c, one, kh, kw = conv.weight.shape
        if one != 1 or conv.groups != c or kh % 2 == 0 or kw % 2 == 0 or conv.bias is not None:
            raise ValueError(f"DecomposedDepthwiseConv2d: a branch must be a depthwise conv without bias with odd "
                             f"kernel (groups=C), got weight {list(conv.weight.shape)}, groups {conv.groups}, "
                             f"bias {conv.bias is not None}")
        if conv.stride != (1, 1) or conv.dilation != (1, 1) or tuple(conv.padding) != (kh // 2, kw // 2):
            raise ValueError(f"DecomposedDepthwiseConv2d: a branch must have stride 1, dilation 1 and padding "
                             f"(kh//2, kw//2) = {(kh // 2, kw // 2)}, got stride {conv.stride}, dilation "
                             f"{conv.dilation}, padding {conv.padding}")
        self.conv = conv
        self.bn = bn
        if mask is None:
            mask = torch.ones_like(conv.weight, dtype=torch.float32, requires_grad=False)
        elif mask.shape != conv.weight.shape:
            raise ValueError(f"DecomposedDepthwiseConv2d: mask of shape {list(mask.shape)} for weight "
                             f"{list(conv.weight.shape)}")
        elif mask.dtype != torch.float32 or mask.device != conv.weight.device:
            mask = mask.to(device=conv.weight.device, dtype=torch.float32)
        self.register_buffer("mask", mask, persistent=persistent_mask)
        self.masked_grad = masked_grad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.slak.dwconv2d(x, self.conv.weight, self.mask, self.masked_grad)
        if self.bn is not None:
            y = self.bn(y)
        return y

    def folded(self):
        """(weight * mask * scale, bias) with this branch's BatchNorm (eval statistics) folded in."""
        w = self.conv.weight.detach() * self.mask
        c = w.shape[0]
        if self.bn is None:
            return w, torch.zeros(c, dtype=w.dtype, device=w.device)
        bn = self.bn
        std = (bn.running_var + bn.eps).sqrt()
        gamma = bn.weight.detach() if bn.weight is not None else torch.ones_like(std)
        beta = bn.bias.detach() if bn.bias is not None else torch.zeros_like(std)
        scale = gamma / std
        return w * scale.view(c, 1, 1, 1), beta - bn.running_mean * scale


def _conv(channels, kh, kw):
    return nn.Conv2d(channels, channels, (kh, kw), padding=(kh // 2, kw // 2), groups=channels, bias=False)


class DecomposedDepthwiseConv2d(nn.Module):
    """SLaK's large depthwise kernel on torch.ops.slak: LoRA1 (K x N) + LoRA2 (N x K) (decom=True) or lkb_origin
    (K x K), plus small_conv (N x N) when N < K, each with an optional BatchNorm2d (bn=True) and a 0/1 mask buffer.
    Input (N, C, H, W) float32 on cpu or cuda; output of the same shape."""

    def __init__(self, channels: int, kernel_size: int, small_kernel: Optional[int] = None, decom: bool = True,
                 bn: bool = True, persistent_masks: bool = True):
        super().__init__()
        if kernel_size % 2 == 0 or (small_kernel is not None and small_kernel % 2 == 0):
            raise ValueError(f"DecomposedDepthwiseConv2d: kernel sizes must be odd, got {kernel_size}, {small_kernel}")
        if decom and small_kernel is None:
            raise ValueError("DecomposedDepthwiseConv2d: decom=True needs small_kernel (the N of K x N)")
        k, n = kernel_size, small_kernel

        def branch(kh, kw):
            return _Branch(_conv(channels, kh, kw), nn.BatchNorm2d(channels) if bn else None, None, persistent_masks)

        self.kernel_size = kernel_size
        self.small_kernel = small_kernel
        self.LoRA1 = branch(k, n) if decom else None
        self.LoRA2 = branch(n, k) if decom else None
        self.lkb_origin = None if decom else branch(k, k)
        self.small_conv = branch(n, n) if n is not None and n < k else None
        self._init_fused()

    def _init_fused(self):
        self.fused = False
        self.register_buffer("fused_weight", torch.empty(0), persistent=False)
        self.register_buffer("fused_mask", torch.empty(0), persistent=False)
        self.register_buffer("fused_bias", torch.empty(0), persistent=False)

    @classmethod
    def from_reference(cls, module: nn.Module, masks: Optional[Dict[str, torch.Tensor]] = None,
                       prefix: str = "", sparse_weight_grad: bool = False) -> "DecomposedDepthwiseConv2d":
        """The same block over the same weight Parameters and BatchNorm modules (shared, not copied: an optimizer
        holding them keeps working) of a reference ReparamLargeKernelConv. masks: {parameter name: 0/1 mask} as
        the reference's Masking keeps them (names with `prefix`, e.g. 'stages.0.0.large_kernel.'); missing = dense.
        Float32 masks on the weight's device are used as they are (the same tensor: in-place mask updates are
        seen); others are converted. Weight gradients are those of the reference (dense: a conv2d over the
        already-masked weight, which SLaK's gradient-based regrowth reads at masked taps); sparse_weight_grad=True
        skips the masked taps instead (written 0: faster, the same trajectory of the live weights when the masks
        are re-applied after each step, as the reference does)."""
        masks = masks or {}
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.kernel_size = getattr(module, "kernel_size", None)
        self.small_kernel = getattr(module, "small_kernel", None)
        for name in ("LoRA1", "LoRA2", "lkb_origin", "small_conv"):
            seq = getattr(module, name, None)
            if seq is None:
                setattr(self, name, None)
                continue
            mask = masks.get(f"{prefix}{name}.conv.weight")
            setattr(self, name, _Branch(seq.conv, getattr(seq, "bn", None), mask, persistent_mask=False,
                                        masked_grad=sparse_weight_grad))
        if self.LoRA1 is None and self.lkb_origin is None:
            raise ValueError(f"DecomposedDepthwiseConv2d.from_reference: {type(module).__name__} has neither "
                             f"LoRA1/LoRA2 nor lkb_origin")
        self._init_fused()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return torch.ops.slak.dwconv2d(x, self.fused_weight, self.fused_mask) + self.fused_bias.view(1, -1, 1, 1)
        if self.LoRA1 is not None and self.LoRA2 is not None:
            out = self.LoRA1(x) + self.LoRA2(x)
        elif self.lkb_origin is not None:
            out = self.lkb_origin(x)
        else:
            raise RuntimeError("DecomposedDepthwiseConv2d: no large-kernel branch")
        if self.small_conv is not None:
            out = out + self.small_conv(x)
        return out

    def branches(self):
        return [b for b in (self.LoRA1, self.LoRA2, self.lkb_origin, self.small_conv) if b is not None]

    @torch.no_grad()
    def fuse(self) -> "DecomposedDepthwiseConv2d":
        """Inference: folds the BatchNorms (their running statistics) into the branches and merges the branches
        into one kernel of the largest height x width (each centred), with the union of the masks; forward is then
        one dwconv2d + bias. Returns self (in eval mode). Training after fuse() is not meaningful."""
        folded = [b.folded() for b in self.branches()]
        kh = max(w.shape[2] for w, _ in folded)
        kw = max(w.shape[3] for w, _ in folded)
        c = folded[0][0].shape[0]
        ref = folded[0][0]
        weight = torch.zeros(c, 1, kh, kw, dtype=ref.dtype, device=ref.device)
        mask = torch.zeros_like(weight)
        bias = torch.zeros(c, dtype=ref.dtype, device=ref.device)
        for (w, b), branch in zip(folded, self.branches()):
            i, j = (kh - w.shape[2]) // 2, (kw - w.shape[3]) // 2
            weight[:, :, i:i + w.shape[2], j:j + w.shape[3]] += w
            mask[:, :, i:i + w.shape[2], j:j + w.shape[3]] += branch.mask
            bias += b
        self.fused_weight = weight
        self.fused_mask = (mask > 0).to(weight.dtype)
        self.fused_bias = bias
        self.fused = True
        return self.eval()


def _is_reference_large_kernel(module):
    lora = all(isinstance(getattr(module, n, None), nn.Module) and hasattr(getattr(module, n), "conv")
               for n in ("LoRA1", "LoRA2"))
    origin = isinstance(getattr(module, "lkb_origin", None), nn.Module) and hasattr(module.lkb_origin, "conv")
    return (lora or origin) and not isinstance(module, DecomposedDepthwiseConv2d)


def replace_large_kernels(model: nn.Module, masks: Optional[Dict[str, torch.Tensor]] = None,
                          fuse: bool = False, sparse_weight_grad: bool = False) -> nn.Module:
    """Swaps, in place, every large-kernel module of a model built with the reference SLaK code (a module with
    LoRA1/LoRA2 or lkb_origin, and optional small_conv, each with `conv` and optional `bn`: ReparamLargeKernelConv)
    for a DecomposedDepthwiseConv2d over the same Parameters and BatchNorms. masks: the reference Masking's
    {parameter name: mask} (e.g. 'stages.0.0.large_kernel.LoRA1.conv.weight'), missing names are dense. fuse=True
    also fuses each (inference). sparse_weight_grad: see DecomposedDepthwiseConv2d.from_reference (default: the
    reference's gradients exactly). Modules replaced by an earlier call are kept (and fused with fuse=True).
    Returns the model; its state_dict keys are unchanged."""
    replaced = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, DecomposedDepthwiseConv2d):  # replaced before: only fused now, when asked
            if fuse and not module.fused:
                module.fuse()
            replaced += 1
            continue
        if not _is_reference_large_kernel(module):
            continue
        new = DecomposedDepthwiseConv2d.from_reference(module, masks, prefix=f"{name}." if name else "",
                                                       sparse_weight_grad=sparse_weight_grad)
        if fuse:
            new.fuse()
        if name == "":
            return new
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
        replaced += 1
    if replaced == 0:
        raise ValueError(f"replace_large_kernels: no reference large-kernel module (LoRA1/LoRA2 or lkb_origin) in "
                         f"{type(model).__name__}")
    return model
