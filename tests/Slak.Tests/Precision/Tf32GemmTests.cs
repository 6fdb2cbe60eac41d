// tf32 on cuda-emu: under Precision.Tf32 the CUDA backend's GEMMs run with TF32 math, which the emulator carries out by
// rounding A and B to TF32 (10 mantissa bits, nearest even) before the float32 GEMM. The result must equal a float64
// reference over TF32-rounded inputs (to float32 summation error) and must differ from the fp32 GEMM by far more
// than that (so the rounding is really applied); fp32 again afterwards (the scope restores the math mode). On the CPU
// backend tf32 is fp32: bit-identical results.
using NUnit.Framework;
using Slak.Backends.Cuda;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Precision;

public sealed class Tf32GemmTests
{
    private const int M = 37, N = 29, K = 300;

    private static double[] Reference(float[] a, float[] b, Func<float, float> round)
    {
        var c = new double[M * N];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                double s = 0;
                for (int p = 0; p < K; p++) s += (double)round(a[i * K + p]) * round(b[j * K + p]);
                c[i * N + j] = s;
            }
        return c;
    }

    private static float[] Linear(Device device, float[] a, float[] b, Slak.Precision precision)
    {
        using var x = Tensor.FromArray(a, [M, K], device);
        using var w = Tensor.FromArray(b, [N, K], device);
        using var scope = MixedPrecision.Use(precision);
        using var y = F.Linear(x, w); // no bias: the plain GEMM, x w^T
        return y.ToArray();
    }

    private static double MaxDiff(float[] got, double[] want) => got.Zip(want, (g, w) => Math.Abs(g - w)).Max();

    [Test]
    public void EmulatorGemmUnderTf32EqualsTheReferenceOnTf32RoundedInputs()
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        var rng = TestRandom.ForCurrentTest();
        var a = Enumerable.Range(0, M * K).Select(_ => (float)rng.Uniform(-1, 1)).ToArray();
        var b = Enumerable.Range(0, N * K).Select(_ => (float)rng.Uniform(-1, 1)).ToArray();
        var tf32Ref = Reference(a, b, ReducedFloat.RoundTf32);
        var fp32Ref = Reference(a, b, v => v);
        // float32 accumulation of K=300 products of magnitude <= 1: well below 1e-4 absolute.
        const double sumTolerance = 1e-4;
        var tf32 = Linear(Device.CudaEmu, a, b, Slak.Precision.Tf32);
        Assert.That(MaxDiff(tf32, tf32Ref), Is.LessThan(sumTolerance), rng.Ctx("tf32 GEMM vs float64 on TF32 inputs"));
        // TF32 inputs move each product by ~2^-11 relative: the sums by ~1e-3, ten times the tolerance above.
        Assert.That(MaxDiff(tf32, fp32Ref), Is.GreaterThan(10 * sumTolerance), rng.Ctx("tf32 must differ from fp32"));
        var fp32 = Linear(Device.CudaEmu, a, b, Slak.Precision.Fp32);
        Assert.That(MaxDiff(fp32, fp32Ref), Is.LessThan(sumTolerance), rng.Ctx("fp32 after the tf32 scope"));
        var cpuTf32 = Linear(Device.Cpu, a, b, Slak.Precision.Tf32);
        var cpuFp32 = Linear(Device.Cpu, a, b, Slak.Precision.Fp32);
        Assert.That(cpuTf32, Is.EqualTo(cpuFp32), "tf32 on the CPU is fp32");
    }
}
