// Typed launchers for cuda/kernels/precision.cu: float32 rounded to bfloat16 (kept in float32 storage), and float32
// packed to / unpacked from 16-bit bf16 buffers. The ElementwiseKernels template: validate, then one grid-stride
// launch with a pointer per parameter of exactly the kernel's type.
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the bfloat16 conversion kernels.</summary>
internal static unsafe class PrecisionKernels
{
    /// <summary>output[i] = input[i] rounded to the nearest bfloat16 (ties to even), as float32; output may be
    /// input.</summary>
    public static void RoundBf16(IGpuDevice dev, DevicePtr output, DevicePtr input, long n) =>
        Convert(dev, "round_bf16_kernel", nameof(RoundBf16), output, sizeof(float), input, sizeof(float), n);

    /// <summary>output (n bf16, 2 bytes each) = input (n float32) rounded to nearest even.</summary>
    public static void Float32ToBf16(IGpuDevice dev, DevicePtr output, DevicePtr input, long n) =>
        Convert(dev, "f32_to_bf16_kernel", nameof(Float32ToBf16), output, sizeof(ushort), input, sizeof(float), n);

    /// <summary>output (n float32) = input (n bf16) exactly.</summary>
    public static void Bf16ToFloat32(IGpuDevice dev, DevicePtr output, DevicePtr input, long n) =>
        Convert(dev, "bf16_to_f32_kernel", nameof(Bf16ToFloat32), output, sizeof(float), input, sizeof(ushort), n);

    private static void Convert(IGpuDevice dev, string kernel, string op, DevicePtr output, int outputAlign,
                                DevicePtr input, int inputAlign, long n)
    {
        ArgumentNullException.ThrowIfNull(dev);
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), $"{op}: element count must be >= 0, got n={n}");
        if (n == 0) return;
        Require(op, output, outputAlign, nameof(output), n);
        Require(op, input, inputAlign, nameof(input), n);
        ulong o = output.Address, i = input.Address;
        nint* args = stackalloc nint[] { (nint)(&o), (nint)(&i), (nint)(&n) };
        var plan = LaunchPlans.GridStride(n, DeviceLimits.For(dev));
        dev.Launch(dev.GetKernel(kernel), plan.Grid, plan.Block, plan.SmemDynamic, new ReadOnlySpan<nint>(args, 3));
    }

    private static void Require(string op, DevicePtr ptr, int align, string name, long n)
    {
        if (ptr.IsNull) throw new ArgumentException($"{op}: {name} is the null device pointer (n={n})", name);
        if (ptr.Address % (ulong)align != 0)
            throw new ArgumentException($"{op}: {name}={ptr} is not {align}-byte aligned", name);
    }
}
