// The collective operations data-parallel training is built on. Every reduction has a fixed order: the values of
// ranks 0, 1, ..., N-1 are added in that order in float64 on rank 0 and the result is broadcast, so every rank holds
// the same bits and a run repeats bit for bit for a given rank count. Every blocking call ends within
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

    /// <summary>Replaces <paramref name="values"/> on every rank with the mean over the ranks: the sum in rank order
    /// in float64, divided by <see cref="Size"/>, rounded to float32 once. <paramref name="what"/> names the call in
    /// a timeout message.</summary>
    void Average(Span<float> values, string what);

    /// <summary>Replaces <paramref name="values"/> on every rank with the sum over the ranks, in rank order.</summary>
    void Sum(Span<double> values, string what);

    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="values"/> to every rank.</summary>
    void Broadcast(Span<byte> values, int root, string what);

    /// <summary>Stops every rank of the job at once (MPI_Abort) after writing <paramref name="message"/>.</summary>
    void Abort(string message, int exitCode);
}
