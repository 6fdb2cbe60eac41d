// Benchmarks of the norm family (cuda/kernels/norm.cu, CpuBackend.Norm.cs and CpuBackend.Norm.Batch.cs) on a stage-1
// map: the block's LayerNorm (channels last) and the branches' training BatchNorm.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*NormBench*'
using BenchmarkDotNet.Attributes;

namespace Slak.Bench.Ops;

/// <summary>LayerNorm over the last dimension and training BatchNorm2d, forward and backward.</summary>
public class NormBench : OpBench
{
    private Tensor _rows = null!, _drows = null!, _rowsY = null!, _mean = null!, _rstd = null!;
    private Tensor _x = null!, _dy = null!, _y = null!, _dx = null!;
    private Tensor _w = null!, _b = null!, _dw = null!, _db = null!, _rm = null!, _rv = null!, _sm = null!, _si = null!;

    [GlobalSetup]
    public void Setup()
    {
        _rows = RandN(N * H * H, C); _drows = RandN(N * H * H, C); _rowsY = Empty(N * H * H, C);
        _mean = Empty(N * H * H); _rstd = Empty(N * H * H);
        _x = RandN(N, C, H, H); _dy = RandN(N, C, H, H); _y = Empty(N, C, H, H); _dx = Empty(N, C, H, H);
        _w = RandN(C); _b = RandN(C); _dw = Empty(C); _db = Empty(C);
        _rm = Tensor.Zeros([C], Dev); _rv = Tensor.Full([C], 1f, Dev); _sm = Empty(C); _si = Empty(C);
        Backend.LayerNormLastDim(_rows, _w, _b, 1e-6f, _rowsY, _mean, _rstd);
        Backend.BatchNormTrain(_x, _w, _b, _rm, _rv, 0.1f, 1e-5f, _y, _sm, _si);
    }

    [Benchmark] public void LayerNorm() => Backend.LayerNormLastDim(_rows, _w, _b, 1e-6f, _rowsY, _mean, _rstd);

    [Benchmark]
    public void LayerNormBackward() =>
        Backend.LayerNormLastDimBackward(_rows, _w, _mean, _rstd, _drows, _rowsY, _dw, _db);

    [Benchmark] public void BatchNormTrain() => Backend.BatchNormTrain(_x, _w, _b, _rm, _rv, 0.1f, 1e-5f, _y, _sm, _si);
    [Benchmark] public void BatchNormBackward() => Backend.BatchNormBackward(_x, _w, _sm, _si, _dy, _dx, _dw, _db);
}
