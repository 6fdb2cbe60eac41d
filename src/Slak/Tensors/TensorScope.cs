// Deterministic release of temporaries without `using` on every intermediate: a scope collects every tensor created
// on its thread while it is open and disposes them when it closes, except the ones kept (Keep) or created while
// tracking is suspended (Untracked: parameters' gradients, optimizer state). The training loop opens one scope per
// step; inference one per batch. On the CPU this only returns arrays to the pool early; on CUDA it is what keeps
// device memory bounded without waiting for the garbage collector.
namespace Slak;

/// <summary>Collects tensors created on this thread and disposes them at the end of the scope.</summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? _current;
    [ThreadStatic] private static int _suspended;

    private readonly List<Tensor> _tensors = [];
    private readonly HashSet<Tensor> _kept = new(ReferenceEqualityComparer.Instance);
    private readonly TensorScope? _outer;
    private bool _closed;

    private TensorScope(TensorScope? outer) => _outer = outer;

    /// <summary>Opens a scope on the current thread (scopes nest).</summary>
    public static TensorScope Begin()
    {
        var scope = new TensorScope(_current);
        _current = scope;
        return scope;
    }

    /// <summary>Suspends tracking until the returned handle is disposed (for long-lived tensors).</summary>
    public static UntrackedRegion Untracked()
    {
        _suspended++;
        return new UntrackedRegion();
    }

    /// <summary>Number of tensors this scope will dispose.</summary>
    public int Count => _tensors.Count - _kept.Count;

    /// <summary>Excludes <paramref name="tensor"/> from disposal by this scope and hands it to the outer scope
    /// (if any); returns it for chaining. A tensor this scope does not track is left alone (an outer scope must not
    /// start owning, say, a parameter created outside every scope).</summary>
    public Tensor Keep(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (_tensors.Contains(tensor) && _kept.Add(tensor)) _outer?._tensors.Add(tensor);
        return tensor;
    }

    internal static void Track(Tensor tensor)
    {
        if (_suspended == 0) _current?._tensors.Add(tensor);
    }

    /// <summary>Disposes every tracked tensor that was not kept, and closes the scope.</summary>
    public void Dispose()
    {
        if (_closed) return;
        if (!ReferenceEquals(_current, this))
            throw new InvalidOperationException("TensorScope closed out of order (scopes must nest and close on the thread that opened them)");
        _closed = true;
        _current = _outer;
        using var profile = Diagnostics.OpProfiler.Measure("TensorScope.Dispose");
        foreach (var t in _tensors)
            if (!_kept.Contains(t)) t.Dispose();
        _tensors.Clear();
    }

    /// <summary>Handle returned by <see cref="Untracked"/>.</summary>
    public readonly struct UntrackedRegion : IDisposable
    {
        /// <summary>Resumes tracking.</summary>
        public void Dispose() => _suspended--;
    }
}
