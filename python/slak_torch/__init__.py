"""slak_torch: SLaK's large-kernel depthwise convolution kernels (Slak.Cuda's cuda/kernels) as PyTorch operators.

    from slak_torch import decomposed_dwconv2d
    y = decomposed_dwconv2d(x, w_long, w_wide, w_small, masks=[m_long, m_wide, m_small])

The kernels are reached through the C ABI (include/slak/slak.h) with ctypes; see docs/plug-in.md for building the
libraries and SLAK_KERNELS_LIBRARY.
"""
from ._lib import ABI_VERSION, SlakError, load
from ._ops import decomposed_dwconv2d, dwconv2d

__all__ = ["decomposed_dwconv2d", "dwconv2d", "SlakError", "load", "ABI_VERSION"]
