// Mixed precision on the CUDA backend: bf16 rounding as a kernel (precision.cu), and the TF32 math mode of the GEMMs
// set from the precision in force (MixedPrecision): cuBLAS TF32 tensor-op math on a GPU, inputs rounded to TF32 on
// the emulator.
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void RoundToBf16(Tensor x, Tensor y)
    {
        if (TryWidenInto(x, y)) return; // x is held as bf16: its values are bf16 already
        PrecisionKernels.RoundBf16(Gpu, P(y), P(x), y.Numel);
    }

    // Before each GEMM: TF32 math exactly when the precision in force is tf32.
    private void SetGemmMathMode()
    {
        bool tf32 = MixedPrecision.Current == Precision.Tf32;
        switch (Gpu)
        {
            case CudaDriverDevice gpu when gpu.AllowTf32 != tf32:
                gpu.AllowTf32 = tf32;
                break;
            case EmulatedDevice emu:
                emu.AllowTf32 = tf32;
                break;
        }
    }
}
