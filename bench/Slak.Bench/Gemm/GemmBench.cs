// BenchmarkDotNet suite of CpuGemm on SLaK-T's MLP shapes (batch 8, 224x224), with OpenBLAS as the baseline:
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*GemmBench*'
// Pass: fwd = pwconv1 forward X(M,C) * W(4C,C)^T; dX = dY(M,4C) * W(4C,C); dW = dY(M,4C)^T * X(M,C).
using BenchmarkDotNet.Attributes;
using Slak.Backends.Cpu;
using Slak.Bench.Peers;

namespace Slak.Bench.Gemm;

/// <summary>CpuGemm vs OpenBLAS sgemm on the pointwise-conv GEMMs of each SLaK-T stage.</summary>
[MemoryDiagnoser]
public class GemmBench
{
    private float[] _a = [], _b = [], _c = [];
    private int _m, _n, _k, _lda, _ldb;
    private bool _transA, _transB;

    /// <summary>Stage width (SLaK-T: 124, 249, 499, 998 at 56, 28, 14, 7 pixels).</summary>
    [Params(124, 249, 499, 998)]
    public int C { get; set; }

    /// <summary>Which product of the pwconv1 layer: fwd, dX or dW.</summary>
    [Params("fwd", "dX", "dW")]
    public string Pass { get; set; } = "fwd";

    /// <summary>GFLOP of one call, for reading the times as GFLOP/s.</summary>
    public double Gflop => 2.0 * _m * _n * _k / 1e9;

    [GlobalSetup]
    public void Setup()
    {
        int hw = C switch { 124 => 56, 249 => 28, 499 => 14, _ => 7 };
        int rows = 8 * hw * hw;
        (_m, _n, _k, _transA, _transB) = Pass switch
        {
            "fwd" => (rows, 4 * C, C, false, true),
            "dX" => (rows, C, 4 * C, false, false),
            _ => (4 * C, C, rows, true, false),
        };
        _lda = _transA ? _m : _k;
        _ldb = _transB ? _k : _n;
        var rng = new Random(42);
        _a = Enumerable.Range(0, _m * _k).Select(_ => (float)rng.NextDouble()).ToArray();
        _b = Enumerable.Range(0, _k * _n).Select(_ => (float)rng.NextDouble()).ToArray();
        _c = new float[_m * _n];
        if (OpenBlas.IsAvailable) OpenBlas.SetNumThreads(CpuParallel.Threads);
    }

    [Benchmark(Baseline = true)]
    public void OpenBlasSgemm()
        => OpenBlas.Sgemm(_transA, _transB, _m, _n, _k, 1f, _a, _lda, _b, _ldb, 0f, _c, _n);

    [Benchmark]
    public void CpuGemmSgemm()
        => CpuGemm.Sgemm(_transA, _transB, _m, _n, _k, 1f, _a, _lda, _b, _ldb, 0f, _c, _n);
}
