// Slak.F: the differentiable operators (functional form, like torch.nn.functional). Each operator validates its
// arguments, allocates its output on the inputs' device, runs the backend kernel and, when recording, attaches a
// backward closure. Backward closures return fresh tensors or Detach() views, never the incoming gradient object.
// Families live in F.*.cs.
using Slak.Autograd;

namespace Slak;

/// <summary>Differentiable tensor operators.</summary>
public static partial class F
{
    private static Tensor Like(Tensor t) => Tensor.Empty(t.Shape, t.Device);

    /// <summary>a + b (same shape).</summary>
    public static Tensor Add(Tensor a, Tensor b)
    {
        Check.NotNull(a, nameof(Add), nameof(a));
        Check.SameShape(nameof(Add), a, nameof(a), b, nameof(b));
        var y = Like(a);
        a.Backend.Add(a, b, y);
        return AutogradEngine.Record(y, nameof(Add), [a, b], g => [g.Detach(), g.Detach()]);
    }

    /// <summary>a * b element-wise (same shape).</summary>
    public static Tensor Mul(Tensor a, Tensor b)
    {
        Check.NotNull(a, nameof(Mul), nameof(a));
        Check.SameShape(nameof(Mul), a, nameof(a), b, nameof(b));
        var y = Like(a);
        a.Backend.Mul(a, b, y);
        return AutogradEngine.Record(y, nameof(Mul), [a, b], g =>
        {
            Tensor? ga = null, gb = null;
            if (a.RequiresGrad) { ga = Like(a); a.Backend.Mul(g, b, ga); }
            if (b.RequiresGrad) { gb = Like(b); b.Backend.Mul(g, a, gb); }
            return [ga, gb];
        });
    }

    /// <summary>alpha * x.</summary>
    public static Tensor Scale(Tensor x, float alpha)
    {
        Check.NotNull(x, nameof(Scale), nameof(x));
        var y = Like(x);
        x.Backend.Scale(x, alpha, y);
        return AutogradEngine.Record(y, nameof(Scale), [x], g =>
        {
            var gx = Like(x);
            x.Backend.Scale(g, alpha, gx);
            return [gx];
        });
    }

    /// <summary>Exact GELU, x * Phi(x) (PyTorch's default nn.GELU).</summary>
    public static Tensor Gelu(Tensor x)
    {
        Check.NotNull(x, nameof(Gelu), nameof(x));
        var y = Like(x);
        x.Backend.Gelu(x, y);
        return AutogradEngine.Record(y, nameof(Gelu), [x], g =>
        {
            var gx = Like(x);
            x.Backend.GeluBackward(x, g, gx);
            return [gx];
        });
    }

    /// <summary>Layer scale on a channels-last tensor: y[..., c] = x[..., c] * gamma[c].</summary>
    public static Tensor MulLastDim(Tensor x, Tensor gamma)
    {
        Check.NotNull(x, nameof(MulLastDim), nameof(x));
        if (x.Rank == 0) throw new ArgumentException($"{nameof(MulLastDim)}: x must have rank >= 1", nameof(x));
        Check.Vector(nameof(MulLastDim), gamma, nameof(gamma), x.Size(-1), x, nameof(x));
        var y = Like(x);
        x.Backend.MulLastDim(x, gamma, y);
        return AutogradEngine.Record(y, nameof(MulLastDim), [x, gamma], g =>
        {
            Tensor? gx = x.RequiresGrad ? Like(x) : null;
            Tensor? gg = gamma.RequiresGrad ? Like(gamma) : null;
            x.Backend.MulLastDimBackward(x, gamma, g, gx, gg);
            return [gx, gg];
        });
    }

    /// <summary>Stochastic depth (timm's DropPath): in training, each sample's whole tensor is zeroed with
    /// probability <paramref name="rate"/> and survivors are scaled by 1/(1 - rate); identity otherwise.</summary>
    public static Tensor DropPath(Tensor x, float rate, bool training, SlakRandom rng)
    {
        Check.NotNull(x, nameof(DropPath), nameof(x));
        if (!(rate >= 0 && rate < 1))
            throw new ArgumentOutOfRangeException(nameof(rate), rate, $"{nameof(DropPath)}: rate must be in [0, 1)");
        if (!training || rate == 0f) return Reshape(x, x.ShapeArray); // identity as a fresh view (never x itself)
        if (x.Rank == 0) throw new ArgumentException($"{nameof(DropPath)}: x must have a batch dimension", nameof(x));
        var rows = DropPathScale(x.Size(0), rate, training, rng, x.Device)!;
        var y = Like(x);
        x.Backend.MulRows(x, rows, y);
        return AutogradEngine.Record(y, nameof(DropPath), [x], g =>
        {
            var gx = Like(x);
            x.Backend.MulRows(g, rows, gx);
            return [gx];
        });
    }
}
