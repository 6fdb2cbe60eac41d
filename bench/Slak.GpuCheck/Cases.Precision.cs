// Rows of precision.cu (bf16 conversions of mixed precision), at SLaK-T stage-1 map sizes, compared with the CPU
// backend's rounding (ReducedFloat: round to nearest even, the same as the device's cvt.rn.bf16.f32). The pack and
// unpack kernels are checked as a round trip through a 16-bit buffer (float32 -> bf16 -> float32), which must equal
// the rounding exactly.
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Kernels;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static IEnumerable<GpuCase> Precision()
    {
        const string g = "precision";
        yield return new GpuCase("round_bf16_kernel", g, "RoundToBf16", ctx => Map(ctx, 0, 1, (be, x, o) => be.RoundToBf16(T(x[0], be), o[0])));
        // Sampled, both conversions run the same blocks (the same grid-stride plan and seed give the same sample), so
        // every float the sampled unpack writes was packed by a sampled block; the rest stays poison.
        string[] roundTrip = ["f32_to_bf16_kernel", "bf16_to_f32_kernel"];
        yield return new GpuCase("f32_to_bf16_kernel", g, "PrecisionKernels.Float32ToBf16 (round trip)", ctx => Map(ctx, 0, 1, Bf16RoundTrip))
            { SampledKernels = roundTrip };
        yield return new GpuCase("bf16_to_f32_kernel", g, "PrecisionKernels.Bf16ToFloat32 (round trip)", ctx => Map(ctx, 0, 1, Bf16RoundTrip))
            { SampledKernels = roundTrip };
        foreach (var c in Bf16Depthwise(g)) yield return c; // the depthwise kernels' bf16 instantiations and instances
    }

    // float32 -> 16-bit bf16 -> float32 on a GPU; the rounding itself on the CPU.
    private static void Bf16RoundTrip(IBackend be, (Tensor Cpu, Tensor Gpu)[] x, Tensor[] o)
    {
        var input = T(x[0], be);
        if (be is not CudaBackend gpu)
        {
            be.RoundToBf16(input, o[0]);
            return;
        }
        long n = input.Numel;
        var half = gpu.Gpu.Allocate(n * sizeof(ushort));
        try
        {
            PrecisionKernels.Float32ToBf16(gpu.Gpu, half, Ptr(input), n);
            PrecisionKernels.Bf16ToFloat32(gpu.Gpu, Ptr(o[0]), half, n);
        }
        finally
        {
            gpu.Gpu.Free(half);
        }
    }
}
