// SLaK-T's MLP GEMM shapes (pointwise convs as Linear over N*H*W rows), forward and the two backward products, at
// batch 8 on 224x224 inputs: stage widths 124/249/499/998 (SLaK-T, width factor 1.3) at 56/28/14/7 pixels.
namespace Slak.Bench.Gemm;

/// <summary>One GEMM problem: C(M,N) = op(A)(M,K) * op(B)(K,N).</summary>
internal readonly record struct GemmShape(string Name, int M, int N, int K, bool TransA, bool TransB)
{
    public double Flops => 2.0 * M * N * K;

    public override string ToString() => $"{Name} {(TransA ? 'T' : 'N')}{(TransB ? 'T' : 'N')} M={M} N={N} K={K}";
}

internal static class GemmShapes
{
    public static readonly (int C, int Hw)[] Stages = [(124, 56), (249, 28), (499, 14), (998, 7)];

    /// <summary>Forward of pwconv1 (C -> 4C) and pwconv2 (4C -> C), plus the backward products of pwconv1:
    /// dX = dY * W (NN with W stored (4C, C)) and dW = dY^T * X (TN). Linear stores W as (out, in), so the
    /// forward is X * W^T (NT).</summary>
    public static IEnumerable<GemmShape> Slak(int batch = 8)
    {
        foreach (var (c, hw) in Stages)
        {
            int rows = batch * hw * hw;
            yield return new GemmShape($"s{c} fc1 fwd", rows, 4 * c, c, false, true);
            yield return new GemmShape($"s{c} fc2 fwd", rows, c, 4 * c, false, true);
            yield return new GemmShape($"s{c} fc1 dX", rows, c, 4 * c, false, false);
            yield return new GemmShape($"s{c} fc1 dW", 4 * c, c, rows, true, false);
        }
    }

    /// <summary>Cache-resident problems (a few hundred KiB): the micro-kernel's own rate, for reading against fma-peak.</summary>
    public static IEnumerable<GemmShape> CacheResident()
    {
        yield return new GemmShape("L2-resident", 192, 256, 256, false, false);
        yield return new GemmShape("L2-resident", 384, 512, 256, false, false);
    }

    /// <summary>The two shapes of issue 2's "Done when", in plain NN layout.</summary>
    public static IEnumerable<GemmShape> Issue()
    {
        yield return new GemmShape("issue (8*56*56,124,496)", 8 * 56 * 56, 496, 124, false, false);
        yield return new GemmShape("issue (8*7*7,998,3992)", 8 * 7 * 7, 3992, 998, false, false);
    }
}
