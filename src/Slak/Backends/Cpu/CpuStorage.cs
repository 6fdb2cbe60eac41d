// Host memory of the CPU backend: a float[] from a small size-keyed pool, so the allocation pattern of a training
// step (the same shapes every step) reuses arrays instead of churning the garbage collector's large-object heap.
using System.Collections.Concurrent;

namespace Slak.Backends.Cpu;

/// <summary>CPU storage over a pooled float array.</summary>
internal sealed class CpuStorage : Storage
{
    private const long PoolCapBytes = 2L << 30;
    private static readonly ConcurrentDictionary<int, ConcurrentBag<float[]>> Pool = new();
    private static long _pooledBytes;

    private float[]? _array;

    internal CpuStorage(long length) : base(length)
    {
        if (length > System.Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"CPU tensors hold at most {System.Array.MaxLength} elements");
        int n = (int)length;
        if (n > 0 && Pool.TryGetValue(n, out var bag) && bag.TryTake(out var reused))
        {
            Interlocked.Add(ref _pooledBytes, -4L * n);
            _array = reused;
        }
        else _array = n == 0 ? [] : GC.AllocateUninitializedArray<float>(n);
    }

    /// <summary>The backing array (length == Length).</summary>
    public float[] Array => _array ?? throw new ObjectDisposedException(nameof(CpuStorage));

    /// <inheritdoc />
    internal override IBackend Backend => CpuBackend.Instance;

    /// <inheritdoc />
    internal override Span<float> HostSpan => Array;

    /// <inheritdoc />
    internal override bool IsHost => true;

    /// <inheritdoc />
    protected override void Free()
    {
        var a = Interlocked.Exchange(ref _array, null);
        if (a is null || a.Length < 1024) return;
        if (Interlocked.Add(ref _pooledBytes, 4L * a.Length) > PoolCapBytes)
        {
            Interlocked.Add(ref _pooledBytes, -4L * a.Length);
            return;
        }
        Pool.GetOrAdd(a.Length, _ => []).Add(a);
    }
}
