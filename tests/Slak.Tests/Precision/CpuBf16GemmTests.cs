// The CPU bf16 GEMM (CpuBf16Gemm): bf16 operands, fp32 accumulation, on both paths where this CPU has AVX512-BF16
// (the native VDPBF16PS microkernel and the portable rounding + fp32 GEMM), on the portable path alone elsewhere. Each
// must equal a float64 GEMM over the bf16-rounded operands to fp32 summation error (products of two bf16 values are
// exact in fp32), with beta applied, and edge shapes: odd k (the zero-padded pair), n not a multiple of 16 or 32,
// m not a multiple of the 6-row microkernel, k beyond the 512-element k block, row strides larger than the rows.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Precision;

public sealed class CpuBf16GemmTests
{
    private static IEnumerable<bool> Paths() => CpuBf16Gemm.IsSupported ? [true, false] : [false];

    [TestCase(1, 1, 1)]
    [TestCase(7, 33, 5)]
    [TestCase(128, 31, 124)]
    [TestCase(13, 70, 600)]
    [TestCase(64, 496, 124)]
    public void EqualsTheFloat64ProductOfTheRoundedOperands(int m, int n, int k)
    {
        TestContext.Out.WriteLine($"AVX512-BF16 native path available: {CpuBf16Gemm.IsSupported}");
        var rng = TestRandom.ForCurrentTest();
        int lda = k + 3, ldb = n + 1, ldc = n + 2;
        var a = Enumerable.Range(0, m * lda).Select(_ => (float)rng.Uniform(-1, 1)).ToArray();
        var b = Enumerable.Range(0, k * ldb).Select(_ => (float)rng.Uniform(-1, 1)).ToArray();
        var c0 = Enumerable.Range(0, m * ldc).Select(_ => (float)rng.Uniform(-1, 1)).ToArray();
        const float beta = 0.5f;
        foreach (bool native in Paths())
        {
            var c = (float[])c0.Clone();
            CpuBf16Gemm.Gemm(m, n, k, a, lda, b, ldb, beta, c, ldc, native);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double want = beta * (double)c0[i * ldc + j];
                    for (int p = 0; p < k; p++) want += (double)ReducedFloat.RoundBf16(a[i * lda + p]) * ReducedFloat.RoundBf16(b[p * ldb + j]);
                    // fp32 accumulation of k terms of magnitude <= 1: k * 2^-24 * (running sum) is below 1e-6 * k.
                    Assert.That(c[i * ldc + j], Is.EqualTo(want).Within(1e-6 * (k + 1)),
                        rng.Ctx($"{(native ? "native" : "portable")} C[{i},{j}] ({m}x{n}x{k})"));
                }
            for (int i = 0; i < m; i++)
                for (int j = n; j < ldc; j++)
                    Assert.That(c[i * ldc + j], Is.EqualTo(c0[i * ldc + j]), $"{(native ? "native" : "portable")}: padding of C row {i} untouched");
        }
    }

    [Test]
    public void BadShapesAreRefusedNamingThem()
    {
        var e = Assert.Throws<ArgumentException>(() => CpuBf16Gemm.Gemm(2, 2, 2, new float[3], 2, new float[4], 2, 0f, new float[4], 2))!;
        Assert.That(e.Message, Does.Contain("A has 3 elements"));
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuBf16Gemm.Gemm(2, 2, 4, new float[8], 3, new float[8], 2, 0f, new float[4], 2));
    }
}
