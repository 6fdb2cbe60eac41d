// kernels_elementwise.cu: compiles cuda/kernels/elementwise.cu unchanged as its own nvcc translation unit of libslak_kernels.so.
// (A wrapper rather than the .cu itself: the emulator target marks cuda/kernels/*.cu as header-only sources for IDEs,
// a directory-wide property that would otherwise keep nvcc from compiling them.)
#include "../kernels/elementwise.cu"
