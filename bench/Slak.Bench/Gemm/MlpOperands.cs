// The operands of one block MLP call (C -> 4C -> C on `rows` rows) for the MLP benchmarks (mlp-phases, mlp-ab,
// mlp-in-step): random inputs and weights at the scales of an initialised block, zeroed outputs.
using Slak.Backends;
using Slak.Backends.Cpu;

namespace Slak.Bench.Gemm;

/// <summary>x, the weights and dy drawn from <c>rng</c>; pre, y and the five gradients zero.</summary>
internal sealed class MlpOperands : IDisposable
{
    public MlpOperands(int rows, int c, Random rng)
    {
        int h = 4 * c;
        Tensor T(int[] shape, double scale) =>
            Tensor.FromArray(BenchData.Uniform(rng, shape.Aggregate(1, (p, d) => p * d), scale), shape, Device.Cpu);
        X = T([rows, c], 1);
        W1 = T([h, c], 1 / Math.Sqrt(c));
        B1 = T([h], 0.5);
        W2 = T([c, h], 1 / Math.Sqrt(h));
        B2 = T([c], 0.5);
        Dy = T([rows, c], 1);
        Pre = T([rows, h], 0);
        Y = T([rows, c], 0);
        Dx = T([rows, c], 0);
        Dw1 = T([h, c], 0);
        Db1 = T([h], 0);
        Dw2 = T([c, h], 0);
        Db2 = T([c], 0);
    }

    public Tensor X { get; }
    public Tensor W1 { get; }
    public Tensor B1 { get; }
    public Tensor W2 { get; }
    public Tensor B2 { get; }
    public Tensor Dy { get; }
    public Tensor Pre { get; }
    public Tensor Y { get; }
    public Tensor Dx { get; }
    public Tensor Dw1 { get; }
    public Tensor Db1 { get; }
    public Tensor Dw2 { get; }
    public Tensor Db2 { get; }

    /// <summary>CpuBackend.MlpForward; <paramref name="keepPre"/> false passes no pre (the backward recomputes it).
    /// </summary>
    public void Forward(bool keepPre = true) =>
        CpuBackend.Instance.MlpForward(X, W1, B1, W2, B2, keepPre ? Pre : null, Y);

    /// <summary>CpuBackend.MlpBackward, with or without the forward's pre.</summary>
    public void Backward(bool keepPre = true) =>
        CpuBackend.Instance.MlpBackward(Dy, X, W1, B1, W2, keepPre ? Pre : null, Dx, Dw1, Db1, Dw2, Db2);

    public void Dispose()
    {
        foreach (var t in new[] { X, W1, B1, W2, B2, Dy, Pre, Y, Dx, Dw1, Db1, Dw2, Db2 }) t.Dispose();
    }
}
