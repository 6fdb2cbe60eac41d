"""The decomposed depthwise convolution as PyTorch operators, registered with torch.library.

    torch.ops.slak.decomposed_dwconv2d(x, w_long, w_wide, w_small=None, m_long=None, m_wide=None, m_small=None)
    torch.ops.slak.dwconv2d(x, w, mask=None)

y = sum_b conv2d(x, w_b * m_b, padding=(kh_b // 2, kw_b // 2), groups=C): x (N, C, H, W) float32, weights
(C, 1, kh, kw) with odd kh, kw, masks 0/1 tensors of the weights' shapes (SLaK's sparse masks) or None (dense).

Why the Python registration API (torch.library.Library define/impl) and not a C++ extension: the installed torch
(Debian's 1.13) has it, it needs no compiler or libtorch headers at install time, and an operator defined this way
is a real dispatcher operator -- torch.jit.script/trace record it by name (saved TorchScript files load wherever
slak_torch is imported), torch.fx sees it as one call, and torch.onnx can be given a symbolic for it (_onnx.py).
Kernels per dispatch key: CPU (the C# CPU engine, libslak_kernels_cpu.so; or the CUDA kernels on the host emulator
when cpu_backend("emulator") is active), CUDA (libslak_kernels.so on torch.cuda.current_stream()), Meta (shapes
only), and Autograd (a torch.autograd.Function whose backward runs the input and weight gradient kernels; a second
derivative raises).
"""
import contextlib
import ctypes
import threading

import torch

from . import _lib

# ---- which library runs CPU tensors ----

_cpu_backend = threading.local()


def _current_cpu_backend():
    return getattr(_cpu_backend, "name", "cpu")


@contextlib.contextmanager
def cpu_backend(name):
    """Runs CPU tensors on 'cpu' (the C# CPU engine, the default) or 'emulator' (the CUDA kernels on the host CUDA
    emulator: slow, for parity tests) inside the with block, on this thread."""
    if name not in ("cpu", "emulator"):
        raise ValueError(f"cpu_backend: expected 'cpu' or 'emulator', got {name!r}")
    old = _current_cpu_backend()
    _cpu_backend.name = name
    try:
        yield
    finally:
        _cpu_backend.name = old


def set_num_threads(threads):
    """Threads the CPU engine uses (process-wide; default SLAK_NUM_THREADS, else the number of cores)."""
    lib = _lib.load("cpu")
    status = lib.lib.slak_cpu_set_num_threads(int(threads))
    if status != 0:
        raise _lib.SlakError("slak_cpu_set_num_threads", status, lib.lib.slak_last_error().decode(errors="replace"))


def get_num_threads():
    """Threads the CPU engine uses."""
    return _lib.load("cpu").lib.slak_cpu_num_threads()


def _backend_for(t):
    if t.device.type == "cpu":
        return _current_cpu_backend()
    if t.device.type == "cuda":
        return "cuda"
    raise TypeError(f"slak: tensors on {t.device} are not supported (cpu and cuda are)")


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


def _arrays(tensors):
    arr = _lib._FloatPtrArray()
    for i, t in enumerate(tensors):
        arr[i] = t.data_ptr() if t is not None else None
    return arr


# ---- argument checks (before any kernel runs) ----

def _check(op, x, weights, masks):
    if x.dim() != 4:
        raise RuntimeError(f"{op}: expected 4-dimensional input (N, C, H, W), got {x.dim()}-dimensional input of "
                           f"size {list(x.shape)}")
    c = x.shape[1]
    for i, w in enumerate(weights):
        if w.dim() != 4:
            # conv2d's wording, so that a wrong rank reads as it does there.
            raise RuntimeError(f"{op}: expected 4-dimensional weight for 4-dimensional input {list(x.shape)}, but "
                               f"got {w.dim()}-dimensional weight {i} of size {list(w.shape)}")
        if x.dtype != torch.float32 or w.dtype != torch.float32:
            raise TypeError(f"{op}: the SLaK kernels are float32 only, got x {x.dtype}, weight {i} {w.dtype}")
        if w.device != x.device:
            raise ValueError(f"{op}: weight {i} is on {w.device}, x on {x.device}")
        if w.shape[0] != c or w.shape[1] != 1:
            raise ValueError(f"{op}: weight {i} must be (C, 1, kh, kw) with C={c} (depthwise, groups=C), got "
                             f"{list(w.shape)}")
        if w.shape[2] % 2 == 0 or w.shape[3] % 2 == 0:
            raise ValueError(f"{op}: weight {i} must have odd kh, kw (same padding kh//2, kw//2), got "
                             f"{tuple(w.shape[2:])}")
        m = masks[i]
        if m is not None and (m.shape != w.shape or m.device != w.device or m.dtype != torch.float32):
            raise ValueError(f"{op}: mask {i} must be float32 of weight {i}'s shape {list(w.shape)} on {w.device}, "
                             f"got {m.dtype} {list(m.shape)} on {m.device}")


def _branches(w_long, w_wide, w_small, m_long, m_wide, m_small):
    weights = [w for w in (w_long, w_wide, w_small) if w is not None]
    if w_small is not None and (w_long is None or w_wide is None):
        raise ValueError("slak::decomposed_dwconv2d: w_small given without w_long and w_wide")
    masks = [m_long, m_wide, m_small][: len(weights)]
    return weights, masks


# ---- the kernels through the C ABI ----

def _conv(x, weights, masks, flip):
    """Forward (flip False: x -> y) or input gradient (flip True: dy -> dx), all branches summed. Inputs that are
    not contiguous (NCHW) are copied first."""
    x = x.contiguous()
    weights = [w.contiguous() for w in weights]
    masks = [m.contiguous() if m is not None else None for m in masks]
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    if x.numel() == 0:
        return y
    lib = _lib.load(_backend_for(x))
    p = _params(x, weights)
    size = ctypes.c_size_t()
    lib.call("slak_decomposed_dwconv2d_workspace_size", ctypes.byref(p), ctypes.byref(size))
    ws = torch.empty(max(size.value, 1), dtype=torch.uint8, device=x.device)
    name = "slak_decomposed_dwconv2d_bwd_data" if flip else "slak_decomposed_dwconv2d_fwd"
    lib.call(name, ctypes.byref(p), _ptr(y), _ptr(x), _arrays(weights), _arrays(masks), _ptr(ws), size.value,
             _stream_for(x))
    return y


def _wgrad(x, dy, weights, masks):
    """Gradients of the filters (d loss / d w_b, already multiplied by the masks: 0 at masked taps)."""
    x, dy = x.contiguous(), dy.contiguous()
    masks = [m.contiguous() if m is not None else None for m in masks]
    if x.numel() == 0:
        return [torch.zeros(w.shape, dtype=torch.float32, device=x.device) for w in weights]
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
    return dws if skip else [dw * m if m is not None else dw for dw, m in zip(dws, masks)]


class _DecomposedFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_long, w_wide, w_small, m_long, m_wide, m_small, masked_grad):
        weights, masks = _branches(w_long, w_wide, w_small, m_long, m_wide, m_small)
        ctx.save_for_backward(x, *weights, *[m if m is not None else torch.empty(0) for m in masks])
        ctx.has_mask = [m is not None for m in masks]
        ctx.masked_grad = masked_grad
        ctx.nb = len(weights)
        return _conv(x, weights, masks, flip=False)

    @staticmethod
    def backward(ctx, dy):
        if torch.is_grad_enabled():
            raise RuntimeError("slak::decomposed_dwconv2d / slak::dwconv2d: double backward (a gradient computed with "
                               "create_graph=True, e.g. for a gradient penalty) is not implemented; its gradient "
                               "would be silently missing, so it is refused. Use torch.nn.functional.conv2d(groups=C) "
                               "for that part of the model.")
        saved = ctx.saved_tensors
        nb = ctx.nb
        x, weights = saved[0], list(saved[1:1 + nb])
        masks = [m if has else None for m, has in zip(saved[1 + nb:], ctx.has_mask)]
        dx = _conv(dy, weights, masks, flip=True) if ctx.needs_input_grad[0] else None
        # masked_grad False: the gradient with respect to the effective filter w * mask, everywhere (what a dense
        # conv2d over already-masked weights computes; gradient-based regrowth reads it at the masked taps).
        grad_masks = masks if ctx.masked_grad else [None] * nb
        dws = _wgrad(x, dy, weights, grad_masks) if any(ctx.needs_input_grad[1:4]) else [None] * nb
        dws = list(dws) + [None] * (3 - nb)
        return (dx, dws[0], dws[1], dws[2], None, None, None, None)


# ---- registration ----

def _make_library():
    try:
        return torch.library.Library("slak", "FRAGMENT")
    except ValueError:  # torch 1.13 knows only "DEF" and "IMPL"
        return torch.library.Library("slak", "DEF")


_LIBRARY = _make_library()
_LIBRARY.define("decomposed_dwconv2d(Tensor x, Tensor w_long, Tensor w_wide, Tensor? w_small=None, "
                "Tensor? m_long=None, Tensor? m_wide=None, Tensor? m_small=None, bool masked_grad=True) -> Tensor")
_LIBRARY.define("dwconv2d(Tensor x, Tensor w, Tensor? mask=None, bool masked_grad=True) -> Tensor")


def _decomposed_kernel(x, w_long, w_wide, w_small=None, m_long=None, m_wide=None, m_small=None, masked_grad=True):
    weights, masks = _branches(w_long, w_wide, w_small, m_long, m_wide, m_small)
    _check("slak::decomposed_dwconv2d", x, weights, masks)
    return _conv(x, weights, masks, flip=False)


def _decomposed_autograd(x, w_long, w_wide, w_small=None, m_long=None, m_wide=None, m_small=None, masked_grad=True):
    weights, masks = _branches(w_long, w_wide, w_small, m_long, m_wide, m_small)
    _check("slak::decomposed_dwconv2d", x, weights, masks)
    if x.device.type == "meta":  # shapes only (AutogradMeta comes before Meta)
        return _decomposed_meta(x, w_long, w_wide)
    return _DecomposedFunction.apply(x, w_long, w_wide, w_small, m_long, m_wide, m_small, masked_grad)


def _decomposed_meta(x, w_long, w_wide, w_small=None, m_long=None, m_wide=None, m_small=None, masked_grad=True):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _single_kernel(x, w, mask=None, masked_grad=True):
    _check("slak::dwconv2d", x, [w], [mask])
    return _conv(x, [w], [mask], flip=False)


def _single_autograd(x, w, mask=None, masked_grad=True):
    _check("slak::dwconv2d", x, [w], [mask])
    if x.device.type == "meta":
        return _single_meta(x, w)
    return _DecomposedFunction.apply(x, w, None, None, mask, None, None, masked_grad)


def _single_meta(x, w, mask=None, masked_grad=True):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


for _key in ("CPU", "CUDA"):
    _LIBRARY.impl("decomposed_dwconv2d", _decomposed_kernel, _key)
    _LIBRARY.impl("dwconv2d", _single_kernel, _key)
_LIBRARY.impl("decomposed_dwconv2d", _decomposed_autograd, "Autograd")
_LIBRARY.impl("dwconv2d", _single_autograd, "Autograd")
_LIBRARY.impl("decomposed_dwconv2d", _decomposed_meta, "Meta")
_LIBRARY.impl("dwconv2d", _single_meta, "Meta")


# ---- the functional API ----

def decomposed_dwconv2d(x, w_long, w_wide, w_small=None, masks=None, masked_grad=True):
    """Sum of depthwise "same" convolutions of x (N, C, H, W) with w_long (C, 1, kh, ks), w_wide (C, 1, ks, kw) and
    optionally w_small (C, 1, ks, ks); masks: None or a sequence (one per weight, in that order) of 0/1 tensors or
    None. Differentiable in x and the weights (once). Weight gradients are d loss / d w of conv(x, w * mask): 0 at
    masked taps, which are not computed (the sparse-aware path); masked_grad=False gives instead the gradient with
    respect to the effective filter w * mask at every tap (what conv2d over already-masked weights computes).
    torch.ops.slak.decomposed_dwconv2d with the masks as a list."""
    n_weights = 2 if w_small is None else 3
    masks = list(masks) if masks is not None else []
    if len(masks) > n_weights:
        raise ValueError(f"decomposed_dwconv2d: {len(masks)} masks for {n_weights} weights")
    masks = masks + [None] * (3 - len(masks))
    return torch.ops.slak.decomposed_dwconv2d(x, w_long, w_wide, w_small, masks[0], masks[1], masks[2], masked_grad)


def dwconv2d(x, w, mask=None, masked_grad=True):
    """One depthwise "same" convolution: conv2d(x, w * mask, padding=(kh//2, kw//2), groups=C), differentiable
    (torch.ops.slak.dwconv2d)."""
    return torch.ops.slak.dwconv2d(x, w, mask, masked_grad)
