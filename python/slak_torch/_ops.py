"""The decomposed depthwise convolution as a differentiable PyTorch operator over the SLaK C ABI.

y = sum_b conv2d(x, w_b * m_b, padding=(kh_b // 2, kw_b // 2), groups=C) for the branches b = long (kh x k_small),
wide (k_small x kw) and, optionally, small; masks are 0/1 tensors of the weights' shapes (SLaK's sparse masks), None
for dense. Float32, NCHW. The weight gradient is the sparse-aware one (taps whose mask is 0 are not computed).

With torch >= 2.4 the three passes are torch.library custom ops (slak::dwconv2d_fwd / _bwd_data / _bwd_filter) with
fake (meta) implementations and a registered autograd formula, so torch.compile/export can trace them; older torch
(Debian's 1.13) gets the same kernels through a torch.autograd.Function.
"""
import ctypes
from typing import List, Optional, Sequence, Tuple

import torch

from . import _lib


def _backend_for(t):
    if t.device.type == "cpu":
        return "emulator"
    if t.device.type == "cuda":
        return "cuda"
    raise TypeError(f"slak_torch: tensors on {t.device} are not supported (cpu via the emulator, cuda via nvcc)")


def _stream_for(t):
    return ctypes.c_void_p(torch.cuda.current_stream(t.device).cuda_stream) if t.device.type == "cuda" else None


def _ptr(t):
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


def _params(x, weights):
    p = _lib.DecomposedParams()
    p.n, p.c, p.h, p.w = x.shape
    for d in range(4):
        p.x_stride[d] = p.y_stride[d] = x.stride(d)
    p.num_branches = len(weights)
    for b, w in enumerate(weights):
        p.kh[b], p.kw[b] = w.shape[-2], w.shape[-1]
    return p


def _check(x, weights, masks, what):
    if x.dim() != 4:
        raise ValueError(f"{what}: x must be (N, C, H, W), got shape {tuple(x.shape)}")
    c = x.shape[1]
    for i, w in enumerate(weights):
        if w.dtype != torch.float32 or x.dtype != torch.float32:
            raise TypeError(f"{what}: the SLaK kernels are float32 only, got x {x.dtype}, w[{i}] {w.dtype}")
        if w.device != x.device:
            raise ValueError(f"{what}: w[{i}] is on {w.device}, x on {x.device}")
        if w.numel() != c * w.shape[-2] * w.shape[-1] or w.shape[0] != c:
            raise ValueError(f"{what}: w[{i}] must be (C, 1, kh, kw) with C={c}, got shape {tuple(w.shape)}")
        if w.shape[-2] % 2 == 0 or w.shape[-1] % 2 == 0:
            raise ValueError(f"{what}: w[{i}] must have odd kh, kw, got {tuple(w.shape[-2:])}")
        m = masks[i]
        if m is not None and (m.shape != w.shape or m.device != w.device or m.dtype != torch.float32):
            raise ValueError(f"{what}: mask[{i}] must be float32 of w's shape {tuple(w.shape)} on {w.device}, got "
                             f"{m.dtype} {tuple(m.shape)} on {m.device}")


def _arrays(tensors):
    arr = _lib._FloatPtrArray()
    for i, t in enumerate(tensors):
        arr[i] = t.data_ptr() if t is not None else None
    return arr


def _conv(x, weights, masks, flip):
    """fwd (flip False: x -> y) or input gradient (flip True: dy -> dx), all branches summed."""
    x = x.contiguous()
    weights = [w.contiguous() for w in weights]
    masks = [m.contiguous() if m is not None else None for m in masks]
    lib = _lib.load(_backend_for(x))
    p = _params(x, weights)
    size = ctypes.c_size_t()
    lib.call("slak_decomposed_dwconv2d_workspace_size", ctypes.byref(p), ctypes.byref(size))
    ws = torch.empty(max(size.value, 1), dtype=torch.uint8, device=x.device)
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    name = "slak_decomposed_dwconv2d_bwd_data" if flip else "slak_decomposed_dwconv2d_fwd"
    lib.call(name, ctypes.byref(p), _ptr(y), _ptr(x), _arrays(weights), _arrays(masks), _ptr(ws), size.value,
             _stream_for(x))
    return y


def _wgrad(x, dy, weights, masks):
    """Gradients of the filters (d loss / d w_b, already multiplied by the masks)."""
    x, dy = x.contiguous(), dy.contiguous()
    masks = [m.contiguous() if m is not None else None for m in masks]
    lib = _lib.load(_backend_for(x))
    p = _params(x, weights)
    size = ctypes.c_size_t()
    lib.call("slak_decomposed_dwconv2d_bwd_filter_workspace_size", ctypes.byref(p), ctypes.byref(size))
    ws = torch.empty(max(size.value, 1), dtype=torch.uint8, device=x.device)
    dws = [torch.empty(w.shape, dtype=torch.float32, device=x.device) for w in weights]
    # Sparse-aware when every branch has a mask: masked taps are skipped (written 0), which is exactly dw * mask.
    skip = all(m is not None for m in masks)
    lib.call("slak_decomposed_dwconv2d_bwd_filter", ctypes.byref(p), _arrays(dws), _ptr(x), _ptr(dy),
             _arrays(masks), 1 if skip else 0, _ptr(ws), size.value, _stream_for(x))
    return [dw * m if m is not None else dw for dw, m in zip(dws, masks)]


class _DecomposedFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_long, w_wide, w_small, m_long, m_wide, m_small):
        weights = [w for w in (w_long, w_wide, w_small) if w is not None]
        masks = [m_long, m_wide, m_small][: len(weights)]
        ctx.save_for_backward(x, *weights, *[m if m is not None else torch.empty(0) for m in masks])
        ctx.has_mask = [m is not None for m in masks]
        ctx.nb = len(weights)
        return _conv(x, weights, masks, flip=False)

    @staticmethod
    def backward(ctx, dy):
        saved = ctx.saved_tensors
        nb = ctx.nb
        x, weights = saved[0], list(saved[1:1 + nb])
        masks = [m if has else None for m, has in zip(saved[1 + nb:], ctx.has_mask)]
        dx = _conv(dy, weights, masks, flip=True) if ctx.needs_input_grad[0] else None
        dws = _wgrad(x, dy, weights, masks) if any(ctx.needs_input_grad[1:4]) else [None] * nb
        dws = list(dws) + [None] * (3 - nb)
        return (dx, dws[0], dws[1], dws[2], None, None, None)


def _define_custom_ops():
    """torch.library custom ops (torch >= 2.4); returns the forward op, or None on older torch."""
    custom_op = getattr(torch.library, "custom_op", None)
    if custom_op is None or not hasattr(torch.library, "register_autograd"):
        return None

    @custom_op("slak::dwconv2d_fwd", mutates_args=())
    def fwd(x: torch.Tensor, w_long: torch.Tensor, w_wide: torch.Tensor, w_small: Optional[torch.Tensor],
            m_long: Optional[torch.Tensor], m_wide: Optional[torch.Tensor],
            m_small: Optional[torch.Tensor]) -> torch.Tensor:
        ws = [w for w in (w_long, w_wide, w_small) if w is not None]
        return _conv(x, ws, [m_long, m_wide, m_small][: len(ws)], flip=False)

    @custom_op("slak::dwconv2d_bwd_data", mutates_args=())
    def bwd_data(dy: torch.Tensor, w_long: torch.Tensor, w_wide: torch.Tensor, w_small: Optional[torch.Tensor],
                 m_long: Optional[torch.Tensor], m_wide: Optional[torch.Tensor],
                 m_small: Optional[torch.Tensor]) -> torch.Tensor:
        ws = [w for w in (w_long, w_wide, w_small) if w is not None]
        return _conv(dy, ws, [m_long, m_wide, m_small][: len(ws)], flip=True)

    @custom_op("slak::dwconv2d_bwd_filter", mutates_args=())
    def bwd_filter(x: torch.Tensor, dy: torch.Tensor, w_long: torch.Tensor, w_wide: torch.Tensor,
                   w_small: Optional[torch.Tensor], m_long: Optional[torch.Tensor], m_wide: Optional[torch.Tensor],
                   m_small: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ws = [w for w in (w_long, w_wide, w_small) if w is not None]
        dws = _wgrad(x, dy, ws, [m_long, m_wide, m_small][: len(ws)])
        if len(dws) == 2:
            dws.append(x.new_empty(0))
        return tuple(dws)

    @fwd.register_fake
    def _(x, w_long, w_wide, w_small, m_long, m_wide, m_small):
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    @bwd_data.register_fake
    def _(dy, w_long, w_wide, w_small, m_long, m_wide, m_small):
        return torch.empty_like(dy, memory_format=torch.contiguous_format)

    @bwd_filter.register_fake
    def _(x, dy, w_long, w_wide, w_small, m_long, m_wide, m_small):
        return (torch.empty_like(w_long), torch.empty_like(w_wide),
                torch.empty_like(w_small) if w_small is not None else x.new_empty(0))

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*[t if t is not None else None for t in inputs])

    def backward(ctx, dy):
        x, w_long, w_wide, w_small, m_long, m_wide, m_small = ctx.saved_tensors
        dx = bwd_data(dy, w_long, w_wide, w_small, m_long, m_wide, m_small)
        d_long, d_wide, d_small = bwd_filter(x, dy, w_long, w_wide, w_small, m_long, m_wide, m_small)
        return dx, d_long, d_wide, (d_small if w_small is not None else None), None, None, None

    fwd.register_autograd(backward, setup_context=setup_context)
    return fwd


try:
    _CUSTOM_OP = _define_custom_ops()
except Exception:  # an API drift in a torch we could not test: fall back to the autograd.Function
    _CUSTOM_OP = None


def decomposed_dwconv2d(x: torch.Tensor, w_long: torch.Tensor, w_wide: torch.Tensor,
                        w_small: Optional[torch.Tensor] = None,
                        masks: Optional[Sequence[Optional[torch.Tensor]]] = None) -> torch.Tensor:
    """Sum of depthwise "same" convolutions of x (N, C, H, W) with w_long (C, 1, kh, ks), w_wide (C, 1, ks, kw) and
    optionally w_small (C, 1, ks, ks); masks: None or a sequence (one per weight, in that order) of 0/1 tensors or
    None. Differentiable in x and the weights. CPU tensors run on the host emulator build of the kernels (slow: for
    tests and small shapes), CUDA tensors on the nvcc build (libslak_kernels.so)."""
    weights = [w for w in (w_long, w_wide, w_small) if w is not None]
    masks = list(masks) if masks is not None else []
    if len(masks) > len(weights):
        raise ValueError(f"decomposed_dwconv2d: {len(masks)} masks for {len(weights)} weights")
    masks = masks + [None] * (3 - len(masks))
    _check(x, weights, masks, "decomposed_dwconv2d")
    if _CUSTOM_OP is not None:
        return _CUSTOM_OP(x, w_long, w_wide, w_small, *masks)
    return _DecomposedFunction.apply(x, w_long, w_wide, w_small, *masks)


def dwconv2d(x: torch.Tensor, w: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One depthwise "same" convolution: conv2d(x, w * mask, padding=(kh//2, kw//2), groups=C), differentiable
    (a one-branch call of the same C ABI)."""
    _check(x, [w], [mask], "dwconv2d")
    return _SingleFunction.apply(x, w, mask)


class _SingleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, m):
        ctx.save_for_backward(x, w, m if m is not None else torch.empty(0))
        ctx.has_mask = m is not None
        return _conv(x, [w], [m], flip=False)

    @staticmethod
    def backward(ctx, dy):
        x, w, m = ctx.saved_tensors
        m = m if ctx.has_mask else None
        dx = _conv(dy, [w], [m], flip=True) if ctx.needs_input_grad[0] else None
        dw = _wgrad(x, dy, [w], [m])[0] if ctx.needs_input_grad[1] else None
        return dx, dw, None
