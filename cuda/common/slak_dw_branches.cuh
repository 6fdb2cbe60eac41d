// slak_dw_branches.cuh: the compile-time branch sizes of the depthwise kernels' per-shape specialisation.
// A launcher that specialises a module defines SLAK_DW_KH<b> / SLAK_DW_KW<b> for branch b (b = 0, 1, 2) as NVRTC
// defines, which are part of the kernel-cache key; a size left undefined is 0, meaning "not specialised: take the
// size from the params" (the emulator, a shape nobody specialised). Included by dwconv_fused.cu and dwconv_small.cu,
// so both read the same defines the same way.
#pragma once

#ifndef SLAK_DW_KH0
#define SLAK_DW_KH0 0
#define SLAK_DW_KW0 0
#endif
#ifndef SLAK_DW_KH1
#define SLAK_DW_KH1 0
#define SLAK_DW_KW1 0
#endif
#ifndef SLAK_DW_KH2
#define SLAK_DW_KH2 0
#define SLAK_DW_KW2 0
#endif
