// The precision operators run under: an ambient setting (per asynchronous flow, like the sample keys of a micro-batch)
// that a trainer, an evaluation or an inference holds for its duration through Use(...). Tensor.Backend consults it:
// under bf16 it hands out the Bf16Backend decorator over the device's backend, so every operator rounds at the same
// points without opting in; under tf32 the CUDA backend sets the cuBLAS (or emulated) TF32 math mode per GEMM.
using Slak.Backends;

namespace Slak;

/// <summary>The precision in force for operators (float32 unless a scope says otherwise).</summary>
internal static class MixedPrecision
{
    private static readonly AsyncLocal<Precision> Ambient = new();

    /// <summary>The precision operators run under now.</summary>
    public static Precision Current => Ambient.Value;

    /// <summary>Runs operators under <paramref name="precision"/> until the returned scope is disposed (which restores
    /// the previous precision; scopes nest).</summary>
    public static Scope Use(Precision precision)
    {
        if (!Enum.IsDefined(precision))
            throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown precision");
        var previous = Ambient.Value;
        Ambient.Value = precision;
        return new Scope(previous);
    }

    /// <summary>The backend operators use for a tensor on <paramref name="backend"/> under the current
    /// precision.</summary>
    internal static IBackend Apply(IBackend backend) =>
        Ambient.Value == Precision.Bf16 ? Bf16Backend.Wrap(backend) : backend;

    /// <summary>Restores the precision that was in force before <see cref="Use"/>.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly Precision _previous;

        internal Scope(Precision previous) => _previous = previous;

        /// <summary>Restores the previous precision.</summary>
        public void Dispose() => Ambient.Value = _previous;
    }
}
