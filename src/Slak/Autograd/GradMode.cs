// Turning graph recording off (evaluation, optimizer updates, EMA, mask application). Thread-local like PyTorch's.
namespace Slak.Autograd;

/// <summary>Controls whether operators record the autograd graph on the current thread.</summary>
public static class GradMode
{
    [ThreadStatic] private static int _disabled;

    /// <summary>True when operators record the graph.</summary>
    public static bool IsEnabled => _disabled == 0;

    /// <summary>Disables recording until the returned handle is disposed (nests).</summary>
    public static NoGradRegion NoGrad()
    {
        _disabled++;
        return new NoGradRegion();
    }

    /// <summary>Handle returned by <see cref="NoGrad"/>.</summary>
    public readonly struct NoGradRegion : IDisposable
    {
        /// <summary>Re-enables recording.</summary>
        public void Dispose() => _disabled--;
    }
}
