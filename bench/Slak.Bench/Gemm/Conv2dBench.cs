// BenchmarkDotNet suite of the dense CPU convolution on SLaK-T's stem (4x4 stride 4, 3 -> 124 channels at 224x224)
// and its downsampling layers (2x2 stride 2), batch 8, forward and both backward passes:
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*Conv2dBench*'
using BenchmarkDotNet.Attributes;
using Slak.Backends.Cpu;

namespace Slak.Bench.Gemm;

/// <summary>CpuConv2d forward / BackwardData / BackwardFilter on SLaK-T's dense (patchify) convolutions.</summary>
public class Conv2dBench
{
    private Conv2dShape _s;
    private float[] _x = [], _w = [], _b = [], _y = [], _dx = [], _dw = [], _db = [];

    /// <summary>stem (3 -> 124, 224 px, 4x4/4) or ds1..ds3 (C -> 2C, 2x2/2 at 56/28/14 px).</summary>
    [Params("stem", "ds1", "ds2", "ds3")]
    public string Layer { get; set; } = "stem";

    /// <summary>GFLOP of one forward call (each backward pass is the same), for reading times as GFLOP/s.</summary>
    public double Gflop => 2.0 * _s.OutputSize * _s.Cin * _s.Kh * _s.Kw / 1e9;

    [GlobalSetup]
    public void Setup()
    {
        _s = Layer switch
        {
            "stem" => new Conv2dShape(8, 3, 224, 224, 124, 4, 4, 4, 4, 0, 0),
            "ds1" => new Conv2dShape(8, 124, 56, 56, 249, 2, 2, 2, 2, 0, 0),
            "ds2" => new Conv2dShape(8, 249, 28, 28, 499, 2, 2, 2, 2, 0, 0),
            _ => new Conv2dShape(8, 499, 14, 14, 998, 2, 2, 2, 2, 0, 0),
        };
        var rng = new Random(42);
        float[] Rand(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _x = Rand(_s.InputSize);
        _w = Rand(_s.WeightSize);
        _b = Rand(_s.Cout);
        _y = Rand(_s.OutputSize);
        _dx = new float[_s.InputSize];
        _dw = new float[_s.WeightSize];
        _db = new float[_s.Cout];
    }

    [Benchmark]
    public void Forward() => CpuConv2d.Forward(_s, _x, _w, _b, _y);

    [Benchmark]
    public void BackwardData() => CpuConv2d.BackwardData(_s, _y, _w, _dx);

    [Benchmark]
    public void BackwardFilter() => CpuConv2d.BackwardFilter(_s, _x, _y, _dw, _db);
}
