// The collective operations data-parallel training is built on. Every reduction has a fixed order, so every rank holds
// the same bits and a run repeats bit for bit for a given rank count: Sum adds the values of ranks 0, 1, ..., N-1 in
// that order in float64 on rank 0 and broadcasts the result; StartSum (the gradient buckets) follows the library's
// non-blocking reduction tree, which is fixed for a rank count and a buffer size. Every blocking call ends within
// CollectiveTimeout or stops the whole job (a crashed or hung rank never makes the others wait forever).
namespace Slak.Distributed;

/// <summary>Collectives across the ranks of a data-parallel job.</summary>
internal interface ICollectives : IDisposable
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> - 1.</summary>
    int Rank { get; }

    /// <summary>Number of ranks.</summary>
    int Size { get; }

    /// <summary>Ranks on this machine (for the default thread count).</summary>
    int LocalSize { get; }

    /// <summary>How long one collective may wait for the other ranks before the job is stopped.</summary>
    TimeSpan CollectiveTimeout { get; }

    /// <summary>Replaces <paramref name="values"/> on every rank with the sum over the ranks, in rank order.</summary>
    void Sum(Span<double> values, string what);

    /// <summary>Starts summing <paramref name="send"/> over the ranks into <paramref name="result"/> without waiting
    /// (MPI_Iallreduce): the library's reduction tree for this rank count, the same bits on every rank (see
    /// MpiCollectives). Both arrays must be pinned (allocated with <c>GC.AllocateArray(pinned: true)</c>) and
    /// untouched until the returned reduction has completed.</summary>
    IPendingReduction StartSum(double[] send, double[] result, string what);

    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="values"/> to every rank.</summary>
    void Broadcast(Span<byte> values, int root, string what);

    /// <summary>Stops every rank of the job at once (MPI_Abort) after writing <paramref name="message"/>.</summary>
    void Abort(string message, int exitCode);
}

/// <summary>A reduction in flight.</summary>
internal interface IPendingReduction
{
    /// <summary>Lets the library progress it once (MPI_Test); true when it has completed.</summary>
    bool Poll();

    /// <summary>Waits for it (within the collective timeout, or the job is stopped).</summary>
    void Wait();
}
