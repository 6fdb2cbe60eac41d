// kernels_dwconv_fused.cu: compiles cuda/kernels/dwconv_fused.cu unchanged as its own nvcc translation unit of
// libslak_kernels.so (the fused kernels the decomposed C ABI functions run; see kernels_dwconv.cu for why a wrapper).
#include "../kernels/dwconv_fused.cu"
