// Plain float64 reference implementations of every operator in Slak.F, written as directly from the math as
// possible (no vectorization, no blocking, no cleverness), so that a disagreement points at the library. The erf
// here is computed by Gauss-Legendre quadrature of exp(-t^2), a different algorithm from CpuMath.Erf, so the GELU
// check is independent of the code under test. Families: element-wise and shape ops here; conv, norm and loss in
// Reference.*.cs.
namespace Slak.Tests.Support;

/// <summary>Float64 reference operators.</summary>
public static partial class Reference
{
    private static RefTensor Map(RefTensor x, Func<double, double> f)
    {
        var y = new RefTensor(x.Shape);
        for (int i = 0; i < x.Length; i++) y[i] = f(x[i]);
        return y;
    }

    private static RefTensor Zip(RefTensor a, RefTensor b, Func<double, double, double> f)
    {
        if (a.Length != b.Length) throw new ArgumentException($"reference: {a} and {b} differ in size");
        var y = new RefTensor(a.Shape);
        for (int i = 0; i < a.Length; i++) y[i] = f(a[i], b[i]);
        return y;
    }

    /// <summary>a + b.</summary>
    public static RefTensor Add(RefTensor a, RefTensor b) => Zip(a, b, (u, v) => u + v);

    /// <summary>a * b.</summary>
    public static RefTensor Mul(RefTensor a, RefTensor b) => Zip(a, b, (u, v) => u * v);

    /// <summary>alpha * x.</summary>
    public static RefTensor Scale(RefTensor x, double alpha) => Map(x, u => alpha * u);

    /// <summary>erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, by 5-point Gauss-Legendre on panels of width
    /// at most 1/16 (error far below 1e-15 on the range used).</summary>
    public static double Erf(double x)
    {
        if (x < 0) return -Erf(-x);
        if (x > 8) return 1.0;
        ReadOnlySpan<double> nodes = [0.0, -0.5384693101056831, 0.5384693101056831, -0.9061798459386640, 0.9061798459386640];
        ReadOnlySpan<double> weights = [0.5688888888888889, 0.4786286704993665, 0.4786286704993665, 0.2369268850561891, 0.2369268850561891];
        int panels = Math.Max(1, (int)Math.Ceiling(x * 16));
        double width = x / panels, sum = 0;
        for (int p = 0; p < panels; p++)
        {
            double mid = (p + 0.5) * width, half = 0.5 * width;
            for (int k = 0; k < 5; k++)
            {
                double t = mid + half * nodes[k];
                sum += weights[k] * half * Math.Exp(-t * t);
            }
        }
        return 2.0 / Math.Sqrt(Math.PI) * sum;
    }

    /// <summary>Exact GELU, x * Phi(x).</summary>
    public static double Gelu(double x) => 0.5 * x * (1.0 + Erf(x / Math.Sqrt(2.0)));

    /// <summary>Element-wise exact GELU.</summary>
    public static RefTensor Gelu(RefTensor x) => Map(x, Gelu);

    /// <summary>y[..., c] = x[..., c] * gamma[c].</summary>
    public static RefTensor MulLastDim(RefTensor x, RefTensor gamma)
    {
        int c = gamma.Length;
        var y = new RefTensor(x.Shape);
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * gamma[i % c];
        return y;
    }

    /// <summary>y[n, ...] = x[n, ...] * scale[n].</summary>
    public static RefTensor MulRows(RefTensor x, double[] scale)
    {
        ArgumentNullException.ThrowIfNull(scale);
        int row = x.Length / x.Size(0);
        var y = new RefTensor(x.Shape);
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * scale[i / row];
        return y;
    }

    /// <summary>y[..., c] = x[..., c] + bias[c].</summary>
    public static RefTensor AddLastDim(RefTensor x, RefTensor bias)
    {
        int c = bias.Length;
        var y = new RefTensor(x.Shape);
        for (int i = 0; i < x.Length; i++) y[i] = x[i] + bias[i % c];
        return y;
    }

    /// <summary>Permutation by explicit index arithmetic: y.shape[i] = x.shape[perm[i]].</summary>
    public static RefTensor Permute(RefTensor x, params int[] perm)
    {
        ArgumentNullException.ThrowIfNull(perm);
        int rank = perm.Length;
        var outShape = new int[rank];
        for (int i = 0; i < rank; i++) outShape[i] = x.Shape[perm[i]];
        var y = new RefTensor(outShape);
        var xStride = new int[rank];
        int s = 1;
        for (int d = rank - 1; d >= 0; d--) { xStride[d] = s; s *= x.Shape[d]; }
        var idx = new int[rank];
        for (int o = 0; o < y.Length; o++)
        {
            int rem = o;
            for (int d = rank - 1; d >= 0; d--) { idx[d] = rem % outShape[d]; rem /= outShape[d]; }
            int src = 0;
            for (int d = 0; d < rank; d++) src += idx[d] * xStride[perm[d]];
            y[o] = x[src];
        }
        return y;
    }

    /// <summary>Sum of all elements, as a scalar (shape ()).</summary>
    public static RefTensor Sum(RefTensor x)
    {
        double s = 0;
        foreach (double v in x.Data) s += v;
        return new RefTensor([s], []);
    }

    /// <summary>Mean of all elements, as a scalar.</summary>
    public static RefTensor Mean(RefTensor x) => new([Sum(x)[0] / x.Length], []);

    /// <summary>(N, C, H, W) -> (N, C) spatial mean.</summary>
    public static RefTensor GlobalAvgPool(RefTensor x)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        var y = new RefTensor(n, c);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c; j++)
            {
                double s = 0;
                for (int r = 0; r < h; r++) for (int q = 0; q < w; q++) s += x[i, j, r, q];
                y[i, j] = s / (h * w);
            }
        return y;
    }

    /// <summary>y = x W^T + b over the last dimension; x (..., in), w (out, in), b (out) or null.</summary>
    public static RefTensor Linear(RefTensor x, RefTensor w, RefTensor? b)
    {
        int inF = w.Size(1), outF = w.Size(0), rows = x.Length / inF;
        var shape = (int[])x.Shape.Clone();
        shape[^1] = outF;
        var y = new RefTensor(shape);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = b is null ? 0 : b[o];
                for (int i = 0; i < inF; i++) s += x[r * inF + i] * w[o, i];
                y[r * outF + o] = s;
            }
        return y;
    }

    /// <summary>C (m, n) = alpha * op(A) op(B) + beta * C0, with op(A) (m, k) and op(B) (k, n).</summary>
    public static RefTensor Gemm(bool transA, bool transB, int m, int n, int k, double alpha, RefTensor a, RefTensor b,
                                 double beta, RefTensor c0)
    {
        var c = new RefTensor(m, n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                c[i, j] = alpha * s + (beta == 0 ? 0 : beta * c0[i * n + j]);
            }
        return c;
    }
}
