// The block MLP's strip epilogues (CpuGemm.StripEpilogue.cs, CpuGemm.StripEpilogues; SLAK_MLP_STRIP_EPILOGUE=0 is
// the old path): bias + GELU on the first product's 8-row strips, GELU' + db1's column sums + act on the dact
// product's. They do the old passes' arithmetic per element and add the column sums in the same row order, so the
// MLP's seven results must be the same bits as the old path's, close to float64, and the same bits on a second run,
// at 1, 2 and 3 threads, at the presets' widths (31, 62, 124, 249) and rows of their maps at a small batch. The
// epilogues on their own: against the block-level epilogues and passes bit for bit, strip by strip and (when the
// packed B is too large for strips, or the switch is off) per row block, with NaN-poisoned outputs.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuParallel.Threads, CpuMlp's block settings, CpuGemm.StripEpilogues and its B limit
public unsafe class CpuMlpStripEpilogueTests
{
    private TestRandom _rng = null!;
    private int _threads, _blockFloats, _minBackwardRows;
    private bool _strips;
    private long _stripMaxB;

    [SetUp]
    public void SetUp()
    {
        _rng = TestRandom.ForCurrentTest();
        _threads = CpuParallel.Threads;
        _blockFloats = CpuMlp.HiddenBlockFloats;
        _minBackwardRows = CpuMlp.MinBackwardBlockRows;
        _strips = CpuGemm.StripEpilogues;
        _stripMaxB = CpuGemm.StripEpilogueMaxBFloats;
    }

    [TearDown]
    public void TearDown()
    {
        CpuParallel.Threads = _threads;
        CpuMlp.HiddenBlockFloats = _blockFloats;
        CpuMlp.MinBackwardBlockRows = _minBackwardRows;
        CpuGemm.StripEpilogues = _strips;
        CpuGemm.StripEpilogueMaxBFloats = _stripMaxB;
    }

    private CpuMlpTests.Inputs Make(int rows, int inF, int hidden, int outF) => new(rows, inF, hidden, outF,
        _rng.NormalArray((long)rows * inF), _rng.NormalArray((long)hidden * inF, 1 / Math.Sqrt(inF)),
        _rng.NormalArray(hidden, 0.5), _rng.NormalArray((long)outF * hidden, 1 / Math.Sqrt(hidden)),
        _rng.NormalArray(outF, 0.5), _rng.NormalArray((long)rows * outF));

    // Rows x C: slak_nano64's stages 1-2 at batch 2 (16x16, 8x8 maps), slak_nano's stages at batch 2-4 (8x8 .. 1x1),
    // rows off the strips and blocks (1109, 13), widths off the vector lanes (C = 5); small blocks (16 rows, several
    // per thread, a ragged one) where the last argument is set.
    [TestCase(512, 31, 0)]
    [TestCase(128, 62, 0)]
    [TestCase(256, 31, 0)]
    [TestCase(64, 124, 0)]
    [TestCase(16, 249, 0)]
    [TestCase(1109, 31, 0)]
    [TestCase(1109, 62, 16 * 248)]
    [TestCase(13, 31, 0)]
    [TestCase(301, 5, 16 * 20)]
    public void MlpMatchesTheOldPathBitForBitAndFloat64(int rows, int c, int blockFloats)
    {
        if (blockFloats > 0) CpuMlp.HiddenBlockFloats = blockFloats;
        CpuMlp.MinBackwardBlockRows = 0; // the row-block backward at every width
        var a = Make(rows, c, 4 * c, c);
        var reference = CpuMlpTests.Reference64(a);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            CpuParallel.Threads = threads;
            foreach (bool keepPre in new[] { true, false })
            {
                string ctx = _rng.Ctx($"({rows} x {c} -> {4 * c} -> {c}), {threads} threads, pre {(keepPre ? "kept" : "recomputed")}" +
                    (blockFloats > 0 ? $", {blockFloats} hidden floats per block" : ""));
                CpuGemm.StripEpilogues = false;
                var old = CpuMlpTests.Run(a, composed: false, keepPre);
                CpuGemm.StripEpilogues = true;
                var first = CpuMlpTests.Run(a, composed: false, keepPre);
                CpuMlpTests.ExpectClose(first, reference, 2e-5, $"strip epilogues vs float64, {ctx}");
                var second = CpuMlpTests.Run(a, composed: false, keepPre);
                for (int i = 0; i < CpuMlpTests.Names.Length; i++)
                {
                    Expect.Exactly(first[i], old[i], $"{CpuMlpTests.Names[i]}: strip epilogues vs the old path, {ctx}");
                    Expect.Exactly(second[i], first[i], $"{CpuMlpTests.Names[i]}: second run, {ctx}");
                }
            }
        }
    }

    // The epilogues on one single-threaded product with B packed once (as CpuMlp runs them), m rows x n = 4k columns:
    // strips (the default limit), per row block (a B limit of 0, and the switch off), against the old GEMM + passes.
    [TestCase(1, 31)]
    [TestCase(7, 31)]
    [TestCase(8, 31)]
    [TestCase(528, 31)]
    [TestCase(200, 62)]
    [TestCase(100, 124)]
    [TestCase(33, 249)]
    public void EpiloguesMatchTheBlockEpilogueAndPassesBitForBit(int m, int k)
    {
        int n = 4 * k;
        var a = _rng.NormalArray((long)m * k);
        var w = _rng.NormalArray((long)n * k, 1 / Math.Sqrt(k)); // n x k, B = w^T
        var bias = _rng.NormalArray(n, 0.5);
        var pre = _rng.NormalArray((long)m * n, 1.5);
        foreach (var (strips, limit) in new[] { (true, _stripMaxB), (true, 0L), (false, _stripMaxB) })
        {
            CpuGemm.StripEpilogues = strips;
            CpuGemm.StripEpilogueMaxBFloats = limit;
            string ctx = _rng.Ctx($"m={m} k={k} n={n}, strip epilogues {(strips ? "on" : "off")}, B limit {limit}");
            fixed (float* pa = a, pw = w, pb = bias, ppre = pre)
            {
                using var packed = new CpuGemm.PackedB(true, k, n, pw, k);
                // Forward: pre' = a w^T + bias, y = GELU(pre').
                float[] c1 = Poisoned(m * n), y1 = Poisoned(m * n), c0 = Poisoned(m * n), y0 = Poisoned(m * n);
                fixed (float* pc1 = c1, py1 = y1, pc0 = c0, py0 = y0)
                {
                    CpuGemm.SgemmPackedB(m, packed, 1f, pa, k, 0f, pc1, n, new BiasGeluStripEpilogue(pb, py1));
                    CpuGemm.SgemmPackedB(m, packed, 1f, pa, k, 0f, pc0, n, new BiasGeluEpilogue(pb, py0));
                }
                Expect.Exactly(c1, c0, $"pre, bias + GELU strip epilogue vs block epilogue, {ctx}");
                Expect.Exactly(y1, y0, $"GELU, bias + GELU strip epilogue vs block epilogue, {ctx}");
                // Backward: g = a w^T, then g *= GELU'(pre), sums += g, act = GELU(pre); and without act.
                foreach (bool withAct in new[] { true, false })
                {
                    float[] g1 = Poisoned(m * n), act1 = Poisoned(m * n), sums1 = new float[n];
                    fixed (float* pg1 = g1, pact1 = act1, ps1 = sums1)
                        CpuGemm.SgemmPackedB(m, packed, 1f, pa, k, 0f, pg1, n,
                            new GeluGradStripEpilogue(ppre, withAct ? pact1 : null, ps1));
                    float[] g0 = Poisoned(m * n), act0 = Poisoned(m * n), sums0 = new float[n];
                    fixed (float* pg0 = g0, ps0 = sums0)
                    {
                        CpuGemm.SgemmPackedB(m, packed, 1f, pa, k, 0f, pg0, n);
                        CpuGelu.Backward(pre, g0, g0);
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < n; j++) sums0[j] += g0[i * n + j];
                    }
                    CpuGelu.Forward(pre, act0);
                    string what = $"{ctx}, act {(withAct ? "written" : "not asked")}";
                    Expect.Exactly(g1, g0, $"dpre, GELU' strip epilogue vs product + pass, {what}");
                    Expect.Exactly(sums1, sums0, $"column sums, GELU' strip epilogue vs row-order sums, {what}");
                    if (withAct) Expect.Exactly(act1, act0, $"act, GELU' strip epilogue vs GELU pass, {what}");
                    else Assert.That(act1.All(float.IsNaN), Is.True, $"act untouched when not asked, {what}");
                }
                // And against float64 (the product's and GELU's stated errors): dpre = (a w^T) GELU'(pre).
                var g = Poisoned(m * n);
                var s = new float[n];
                fixed (float* pg = g, ps = s)
                    CpuGemm.SgemmPackedB(m, packed, 1f, pa, k, 0f, pg, n, new GeluGradStripEpilogue(ppre, null, ps));
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double dot = 0;
                        for (int p = 0; p < k; p++) dot += (double)a[i * k + p] * w[j * k + p];
                        double expected = dot * GeluDerivative(pre[i * n + j]);
                        Assert.That(g[i * n + j], Is.EqualTo(expected).Within(2e-5 * (1 + Math.Abs(dot)) * Math.Sqrt(k)),
                            $"dpre[{i}, {j}] vs float64, {ctx}");
                    }
            }
        }
    }

    private static float[] Poisoned(int n) => Enumerable.Repeat(float.NaN, n).ToArray();

    private static double GeluDerivative(double x) =>
        0.5 * (1 + Reference.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);
}
