// The register row loops of CpuGemm.RowOps.cs (bias rows and column sums of the GEMM epilogues and the block MLP)
// against plain scalar loops written here, in the same order of additions, so the same bits; at widths below, at and
// across the 16-lane vectors and the 64-column chunks (1, 15, 16, 31, 62, 64, 65, 124, 249), with a row stride wider
// than the block, 1 row and 0 rows; floats past the block's columns in each row must be left untouched (a sentinel
// value around the block; NaN in the source beside the summed columns) and with CpuRowOps.Legacy the per-row
// TensorPrimitives loops must give the same bits.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuRowOps.Legacy
public unsafe class CpuRowOpsTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void SetUp() => _rng = TestRandom.ForCurrentTest();

    [TearDown]
    public void TearDown() => CpuRowOps.Legacy = false;

    // Written around the block: must come back as it was (NaN cannot be compared bit for bit by Expect.Exactly).
    private const float Untouched = 7777.25f;

    private static readonly int[] Widths = [1, 15, 16, 31, 62, 64, 65, 124, 249];

    [Test]
    public void AddBiasMatchesTheScalarLoop([Values(0, 1, 7, 33)] int rows, [Values(false, true)] bool legacy)
    {
        CpuRowOps.Legacy = legacy;
        foreach (int cols in Widths)
        {
            int ld = cols + 3;
            float[] c = _rng.NormalArray((long)rows * ld + 3);
            for (int i = 0; i < rows; i++)
                for (int j = cols; j < ld; j++) c[i * ld + j] = Untouched; // outside the block
            float[] bias = _rng.NormalArray(cols);
            float[] expected = (float[])c.Clone();
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) expected[i * ld + j] = c[i * ld + j] + bias[j];
            fixed (float* pc = c)
            fixed (float* pb = bias)
                CpuRowOps.AddBias(pc, ld, rows, cols, pb);
            Expect.Exactly(c, expected, $"AddBias, {rows} x {cols}, stride {ld}, legacy {legacy}");
        }
    }

    [Test]
    public void AccumulateColumnsMatchesTheScalarLoop([Values(0, 1, 7, 33)] int rows, [Values(false, true)] bool legacy)
    {
        CpuRowOps.Legacy = legacy;
        foreach (int cols in Widths)
        {
            int ld = cols + 5;
            float[] src = _rng.NormalArray((long)Math.Max(rows, 1) * ld);
            for (int i = 0; i < rows; i++)
                for (int j = cols; j < ld; j++) src[i * ld + j] = float.NaN; // outside the block: never summed
            float[] acc = _rng.NormalArray(cols + 4);
            for (int j = cols; j < acc.Length; j++) acc[j] = Untouched; // past the sums
            float[] expected = (float[])acc.Clone();
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) expected[j] += src[i * ld + j];
            fixed (float* ps = src)
            fixed (float* pa = acc)
                CpuRowOps.AccumulateColumns(ps, ld, rows, cols, pa);
            Expect.Exactly(acc, expected, $"AccumulateColumns, {rows} x {cols}, stride {ld}, legacy {legacy}");
        }
    }
}
