// The strip kernels' process-wide switches (DwConvStripKernels.Off, .WgradOff) turned on for a scope and restored to
// what they were when it ends, so that a test can run the fused kernels at a shape the strip plan takes:
//   using (StripKernelsOff.Forward()) { ... }   using (StripKernelsOff.WeightGradient()) { ... }
// The switches are process-wide: a test that uses this must not run in parallel with other device tests.
using Slak.Cuda.Kernels;

namespace Slak.Tests.Support;

internal sealed class StripKernelsOff : IDisposable
{
    private readonly bool _wgrad, _was;

    private StripKernelsOff(bool wgrad)
    {
        _wgrad = wgrad;
        _was = wgrad ? DwConvStripKernels.WgradOff : DwConvStripKernels.Off;
        Set(true);
    }

    /// <summary>The strip forward family (forward, inference sum, input gradient) off until disposed.</summary>
    public static StripKernelsOff Forward() => new(wgrad: false);

    /// <summary>The strip weight gradient off until disposed.</summary>
    public static StripKernelsOff WeightGradient() => new(wgrad: true);

    public void Dispose() => Set(_was);

    private void Set(bool off)
    {
        if (_wgrad) DwConvStripKernels.WgradOff = off;
        else DwConvStripKernels.Off = off;
    }
}
