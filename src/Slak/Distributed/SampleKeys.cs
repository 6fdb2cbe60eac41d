// Per-sample random keys for draws made inside the model (stochastic depth): while a trainer's micro-batch runs, each
// image of the batch is known by its position in the global batch, and a drop-path decision is a pure function of
// (seed, epoch, global batch, global position, the how-many-th drop-path call of this forward). A sample's draw is
// then the same whichever rank computes it and however the global batch is split, so the ranks' work in a step is the
// single process's step. Outside a trainer's micro-batch (no scope) the model's own generator is used.
namespace Slak.Distributed;

/// <summary>The global keys of the images of the micro-batch being computed on this thread.</summary>
internal sealed class SampleKeys
{
    [ThreadStatic]
    private static SampleKeys? _current;

    private readonly ulong _seed;
    private readonly int _firstPosition;
    private int _calls;

    private SampleKeys(ulong seed, int count, int firstPosition)
    {
        _seed = seed;
        Count = count;
        _firstPosition = firstPosition;
    }

    /// <summary>The keys of this thread's current micro-batch (null outside one).</summary>
    public static SampleKeys? Current => _current;

    /// <summary>Images in the micro-batch.</summary>
    public int Count { get; }

    /// <summary>Makes the <paramref name="count"/> images of global batch <paramref name="batch"/> of
    /// <paramref name="epoch"/>, starting at global position <paramref name="firstPosition"/>, current on this thread
    /// until the returned scope is disposed.</summary>
    public static IDisposable Begin(ulong seed, int epoch, int batch, int count, int firstPosition)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(firstPosition);
        var previous = _current;
        _current = new SampleKeys(Data.BatchLoader.SeedFor(seed ^ 0xD509_D509_D509_D509UL, epoch, batch), count, firstPosition);
        return new Scope(previous);
    }

    /// <summary>Uniform [0, 1) draws, one per image, for the next model-internal random call of this forward.</summary>
    public float[] NextUniforms()
    {
        int call = _calls++;
        var u = new float[Count];
        for (int i = 0; i < Count; i++)
            u[i] = new SlakRandom(Data.BatchLoader.SeedFor(_seed, call, _firstPosition + i)).NextFloat();
        return u;
    }

    private sealed class Scope(SampleKeys? previous) : IDisposable
    {
        public void Dispose() => _current = previous;
    }
}
