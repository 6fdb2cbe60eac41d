"""slak_torch: SLaK's decomposed large-kernel depthwise convolution (Slak.Cuda) as PyTorch operators and modules.

    import slak_torch                                   # registers torch.ops.slak.* (and their ONNX export)
    y = torch.ops.slak.decomposed_dwconv2d(x, w_long, w_wide, w_small, m_long, m_wide, m_small)
    model = slak_torch.replace_large_kernels(model)     # a reference SLaK model's large kernels on this operator

CPU tensors run on the C# CPU engine (libslak_kernels_cpu.so, multithreaded and sparse-aware), CUDA tensors on the
CUDA kernels (libslak_kernels.so). pip install puts the libraries inside the package; see docs/plug-in.md.
"""
from ._lib import ABI_VERSION, SlakError, load
from ._ops import cpu_backend, decomposed_dwconv2d, dwconv2d, get_num_threads, set_num_threads
from . import _onnx  # noqa: F401  (registers the ONNX symbolics)
from .nn import DecomposedDepthwiseConv2d, replace_large_kernels

__all__ = ["decomposed_dwconv2d", "dwconv2d", "DecomposedDepthwiseConv2d", "replace_large_kernels", "cpu_backend",
           "set_num_threads", "get_num_threads", "SlakError", "load", "ABI_VERSION"]
