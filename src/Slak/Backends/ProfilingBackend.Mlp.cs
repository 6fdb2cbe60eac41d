// Profiling forwarders of the block MLP's operators (IBackend.Mlp.cs), one region each.
namespace Slak.Backends;

internal sealed partial class ProfilingBackend
{
    /// <inheritdoc/>
    public void MlpForward(Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor? pre, Tensor y)
    {
        using var r = Region(nameof(MlpForward), x);
        _inner.MlpForward(x, w1, b1, w2, b2, pre, y);
    }

    /// <inheritdoc/>
    public void MlpBackward(Tensor dy, Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor? pre,
        Tensor dx, Tensor dw1, Tensor db1, Tensor dw2, Tensor db2)
    {
        using var r = Region(nameof(MlpBackward), dy);
        _inner.MlpBackward(dy, x, w1, b1, w2, pre, dx, dw1, db1, dw2, db2);
    }
}
