// ICollectives on Open MPI (MpiLibrary). Sum gathers the values on rank 0 (MPI_Igather), adds the ranks' values in rank
// order in float64 and broadcasts the result (MPI_Ibcast): a fixed reduction order, so every rank gets identical bits.
// StartSum is MPI_Iallreduce (the gradient buckets), left in flight for the caller to poll. Every request is completed
// by polling MPI_Test against a deadline (the watchdog): when another rank has crashed or hangs, the waiting rank
// writes one line naming the call and the timeout and calls MPI_Abort, which makes mpirun stop every rank. A rank
// killed outright is also noticed by mpirun itself, which then ends the job.
using System.Diagnostics;
using System.Globalization;

namespace Slak.Distributed;

/// <summary>Collectives over MPI_COMM_WORLD.</summary>
internal sealed unsafe class MpiCollectives : ICollectives
{
    /// <summary>Environment variable: seconds one collective may wait for the others (default 300).</summary>
    public const string TimeoutVariable = "SLAK_DP_TIMEOUT";

    private readonly MpiLibrary _mpi;
    private bool _disposed;

    private MpiCollectives(MpiLibrary mpi, int rank, int size, int localSize, TimeSpan timeout)
    {
        _mpi = mpi;
        Rank = rank;
        Size = size;
        LocalSize = localSize;
        CollectiveTimeout = timeout;
    }

    /// <summary>True when this process was started by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE is set).</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>"Open MPI v4.1.4 (libmpi.so.40)" or why the library does not load (for `slak info`).</summary>
    public static string DescribeLibrary() => MpiLibrary.TryLoad(out string why)
        ? $"{MpiLibrary.Api.Version()} ({MpiLibrary.Api.Path}); mpirun -np N slak train trains data parallel" : $"not available: {why}";

    /// <summary>Initialises MPI (MPI_THREAD_SERIALIZED: collectives are called from one thread at a time).</summary>
    public static MpiCollectives Initialize()
    {
        var mpi = MpiLibrary.Api;
        int provided = 0, rank = 0, size = 0;
        mpi.Check("MPI_Init_thread", mpi.MPI_Init_thread(null, null, MpiLibrary.ThreadSerialized, &provided));
        if (provided < MpiLibrary.ThreadSerialized)
        {
            mpi.MPI_Finalize();
            throw new MpiException($"MPI provides thread level {provided}; slak needs MPI_THREAD_SERIALIZED ({MpiLibrary.ThreadSerialized})");
        }
        mpi.Check("MPI_Comm_rank", mpi.MPI_Comm_rank(mpi.CommWorld, &rank));
        mpi.Check("MPI_Comm_size", mpi.MPI_Comm_size(mpi.CommWorld, &size));
        int local = int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), NumberStyles.Integer,
            CultureInfo.InvariantCulture, out int l) && l > 0 ? l : size;
        return new MpiCollectives(mpi, rank, size, local, ReadTimeout());
    }

    private static TimeSpan ReadTimeout()
    {
        string? text = Environment.GetEnvironmentVariable(TimeoutVariable);
        if (text is null) return TimeSpan.FromSeconds(300);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || !(s > 0) || double.IsInfinity(s))
            throw new ArgumentException($"{TimeoutVariable}={text}: expected a positive number of seconds");
        return TimeSpan.FromSeconds(s);
    }

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int Size { get; }

    /// <inheritdoc />
    public int LocalSize { get; }

    /// <inheritdoc />
    public TimeSpan CollectiveTimeout { get; }

    /// <summary>The library's version string.</summary>
    public string LibraryVersion => _mpi.Version();

    /// <inheritdoc />
    public void Sum(Span<double> values, string what)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Size == 1 || values.Length == 0) return;
        var gathered = Rank == 0 ? new double[(long)values.Length * Size] : [];
        fixed (double* local = values)
        fixed (double* all = gathered)
        {
            nint request;
            _mpi.Check("MPI_Igather", _mpi.MPI_Igather(local, values.Length, _mpi.Double, all, values.Length, _mpi.Double, 0, _mpi.CommWorld, &request));
            Complete(&request, what);
            if (Rank == 0)
                for (int i = 0; i < values.Length; i++)
                {
                    double s = 0;
                    for (int r = 0; r < Size; r++) s += all[(long)r * values.Length + i];
                    local[i] = s;
                }
            _mpi.Check("MPI_Ibcast", _mpi.MPI_Ibcast(local, values.Length, _mpi.Double, 0, _mpi.CommWorld, &request));
            Complete(&request, what);
        }
    }

    /// <inheritdoc />
    /// <remarks>Open MPI's MPI_Iallreduce (coll/libnbc) reduces along a binomial tree to rank 0 and broadcasts the
    /// result (fewer than 4 ranks or small buffers), or around a ring whose segments are then gathered: either way each
    /// sum is computed once and copied, so every rank gets the same bits, and the tree depends only on the rank count
    /// and the buffer size, so a run repeats bit for bit. With 2 ranks a + b is the rank-order sum itself.</remarks>
    public IPendingReduction StartSum(double[] send, double[] result, string what)
    {
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(result);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (send.Length != result.Length)
            throw new ArgumentException($"StartSum: send has {send.Length} values, result {result.Length}", nameof(result));
        nint request;
        fixed (double* s = send)
        fixed (double* r = result)
            _mpi.Check("MPI_Iallreduce", _mpi.MPI_Iallreduce(s, r, send.Length, _mpi.Double, _mpi.Sum, _mpi.CommWorld, &request));
        return new Pending(this, request, what);
    }

    /// <summary>An MPI request completed by polling (the arrays are pinned by the caller).</summary>
    private sealed class Pending(MpiCollectives owner, nint request, string what) : IPendingReduction
    {
        private nint _request = request;
        private bool _done;

        public bool Poll()
        {
            if (_done) return true;
            int flag = 0;
            nint r = _request;
            owner._mpi.Check("MPI_Test", owner._mpi.MPI_Test(&r, &flag, null));
            _request = r;
            return _done = flag != 0;
        }

        public void Wait()
        {
            if (_done) return;
            nint r = _request;
            owner.Complete(&r, what);
            _request = r;
            _done = true;
        }
    }

    /// <inheritdoc />
    public void Broadcast(Span<byte> values, int root, string what)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        if (Size == 1 || values.Length == 0) return;
        fixed (byte* p = values)
        {
            nint request;
            _mpi.Check("MPI_Ibcast", _mpi.MPI_Ibcast(p, values.Length, _mpi.Byte, root, _mpi.CommWorld, &request));
            Complete(&request, what);
        }
    }

    /// <inheritdoc />
    public void Abort(string message, int exitCode)
    {
        Console.Error.WriteLine(message);
        Console.Error.Flush();
        Console.Out.Flush();
        _mpi.MPI_Abort(_mpi.CommWorld, exitCode);
        Environment.Exit(exitCode); // MPI_Abort does not return; in case it does
    }

    /// <summary>Polls a request to completion; past the timeout, stops the job naming the call.</summary>
    private void Complete(nint* request, string what)
    {
        var clock = Stopwatch.StartNew();
        int spins = 0;
        while (true)
        {
            int done = 0;
            _mpi.Check("MPI_Test", _mpi.MPI_Test(request, &done, null));
            if (done != 0) return;
            if (clock.Elapsed > CollectiveTimeout)
                Abort(string.Create(CultureInfo.InvariantCulture,
                    $"slak: error: rank {Rank} of {Size}: no answer from the other ranks for {CollectiveTimeout.TotalSeconds:F0} s in {what} "
                    + $"(a rank crashed or hangs; {TimeoutVariable} sets the limit): stopping every rank (MPI_Abort); the last completed checkpoint is kept"), 3);
            if (++spins < 200) Thread.SpinWait(20);
            else Thread.Sleep(spins < 2000 ? 0 : 1);
        }
    }

    /// <summary>Finalises MPI (after a last barrier, so that no rank leaves while another still sends).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        int finalized = 0;
        if (_mpi.MPI_Finalized(&finalized) == MpiLibrary.Success && finalized == 0)
        {
            nint request;
            if (_mpi.MPI_Ibarrier(_mpi.CommWorld, &request) == MpiLibrary.Success) Complete(&request, "the closing barrier");
            _mpi.MPI_Finalize();
        }
    }
}
