// An in-process stand-in for MPI in unit tests: this process plays rank `rank` of `size`, and what the other ranks
// would add to each reduction comes from a delegate (given this rank's values and the call's name). Every call is
// recorded; non-blocking sums complete at once.
using Slak.Distributed;

namespace Slak.Tests.Distributed;

internal sealed class FakeCollectives(int rank, int size) : ICollectives
{
    /// <summary>The other ranks' total contribution to a reduction of <c>values</c> named <c>what</c> (null:
    /// zeros).</summary>
    public Func<double[], string, double[]>? Others { get; set; }

    /// <summary>Called at each non-blocking start (tests record when it happened).</summary>
    public Action<string>? Started { get; set; }

    public List<string> Calls { get; } = [];

    public int Rank => rank;

    public int Size => size;

    public int LocalSize => size;

    public TimeSpan CollectiveTimeout => TimeSpan.FromSeconds(5);

    public void Sum(Span<double> values, string what)
    {
        Calls.Add(what);
        var add = Others?.Invoke(values.ToArray(), what);
        if (add is not null) for (int i = 0; i < values.Length; i++) values[i] += add[i];
    }

    public IPendingReduction StartSum(double[] send, double[] result, string what)
    {
        Calls.Add(what);
        Started?.Invoke(what);
        var add = Others?.Invoke((double[])send.Clone(), what);
        for (int i = 0; i < send.Length; i++) result[i] = send[i] + (add?[i] ?? 0);
        return new Done();
    }

    public void Broadcast(Span<byte> values, int root, string what) => Calls.Add(what);

    public void Abort(string message, int exitCode) => throw new InvalidOperationException(message);

    public void Dispose() { }

    private sealed class Done : IPendingReduction
    {
        public bool Poll() => true;

        public void Wait() { }
    }
}
