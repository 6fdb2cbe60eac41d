// The SLaK block's epilogue as one operator (IBackend.Residual.cs): layer scale, DropPath, the permute back to NCHW
// and the residual add. Same values as F.Add(input, F.DropPath(F.ToChannelsFirst(F.MulLastDim(y, gamma)))) with the
// same DropPath draws, in one pass each way.
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>input + permute(y * gamma) * scale: input (N, C, H, W); y (N, H, W, C); gamma (C) or null;
    /// scale (N: the per-sample DropPath factors, <see cref="DropPathScale"/>) or null.</summary>
    internal static Tensor ChannelsLastResidual(Tensor input, Tensor y, Tensor? gamma, Tensor? scale)
    {
        const string op = nameof(ChannelsLastResidual);
        Check.Rank(input, 4, op, nameof(input), "(N, C, H, W)");
        Check.Rank(y, 4, op, nameof(y), "(N, H, W, C)");
        int n = input.Size(0), c = input.Size(1);
        if (y.Size(0) != n || y.Size(1) != input.Size(2) || y.Size(2) != input.Size(3) || y.Size(3) != c)
            throw new ArgumentException(
                $"{op}: y has shape {Shapes.Format(y.Shape)} but must be input {Shapes.Format(input.Shape)} in channels-last order (N, H, W, C)",
                nameof(y));
        Check.SameDevice(op, input, nameof(input), y, nameof(y));
        if (gamma is not null) Check.Vector(op, gamma, nameof(gamma), c, input, nameof(input));
        if (scale is not null) Check.Vector(op, scale, nameof(scale), n, input, nameof(input));
        var output = Like(input);
        var be = input.Backend;
        be.ChannelsLastResidual(input, y, gamma, scale, output);
        Tensor[] inputs = gamma is null ? [input, y] : [input, y, gamma];
        return AutogradEngine.Record(output, op, inputs, g =>
        {
            Tensor? gy = y.RequiresGrad ? Like(y) : null;
            Tensor? gg = gamma is { RequiresGrad: true } ? Like(gamma) : null;
            if (gy is not null || gg is not null) be.ChannelsLastResidualBackward(y, gamma, scale, g, gy, gg);
            return gamma is null ? [g.Detach(), gy] : [g.Detach(), gy, gg];
        });
    }

    /// <summary>The per-sample factors of DropPath (timm's stochastic depth) for a batch of <paramref name="n"/>:
    /// 0 with probability <paramref name="rate"/>, else 1 / (1 - rate), drawn as <see cref="DropPath"/> draws them
    /// (keyed by each image's global position inside a trainer's micro-batch); null when nothing is dropped (not
    /// training, or rate 0), which consumes no draw.</summary>
    internal static Tensor? DropPathScale(int n, float rate, bool training, SlakRandom rng, Device device)
    {
        if (!(rate >= 0 && rate < 1))
            throw new ArgumentOutOfRangeException(nameof(rate), rate, $"{nameof(DropPath)}: rate must be in [0, 1)");
        if (!training || rate == 0f) return null;
        ArgumentNullException.ThrowIfNull(rng);
        var scale = new float[n];
        float keep = 1f - rate;
        // In a trainer's micro-batch each image's draw is keyed by its global position (data parallel: any split).
        var keyed = Distributed.SampleKeys.Current is { } keys && keys.Count == n ? keys.NextUniforms() : null;
        for (int i = 0; i < n; i++) scale[i] = (keyed?[i] ?? rng.NextFloat()) < keep ? 1f / keep : 0f;
        return Tensor.FromArray(scale, [n], device);
    }
}
