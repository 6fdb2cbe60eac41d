// The data-parallel side of `slak train` under mpirun: MPI is initialised when Open MPI's launcher started the
// process (OMPI_COMM_WORLD_SIZE set); ranks above 0 print nothing to stdout (rank 0 shows the one progress display)
// and write no file; the options get the rank count (a resume on another count keeps the global batch); every rank's
// options, code and data are compared with rank 0's before training starts, and a difference is refused by name.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Slak.Backends.Cpu;
using Slak.Distributed;
using Slak.Train;

namespace Slak.Cli.Training;

/// <summary>Starts and checks a data-parallel training job.</summary>
internal sealed class DataParallelStart : IDisposable
{
    private readonly MpiCollectives _mpi;
    private IDeviceAllReduce? _deviceReduce;

    private DataParallelStart(MpiCollectives mpi) => _mpi = mpi;

    /// <summary>The rank's context (set by <see cref="Configure"/>).</summary>
    public DataParallel? Context { get; private set; }

    /// <summary>True on rank 0 (the only rank that prints, locks and writes the run folder).</summary>
    public bool IsWriter => _mpi.Rank == 0;

    /// <summary>Initialises MPI when this process was started by mpirun; null otherwise (one process).</summary>
    public static DataParallelStart? Begin()
    {
        if (!MpiCollectives.LaunchedByMpirun) return null;
        var mpi = MpiCollectives.Initialize();
        if (mpi.Rank > 0) Console.SetOut(TextWriter.Null); // one progress display: rank 0's
        return new DataParallelStart(mpi);
    }

    /// <summary>Gives <paramref name="o"/> this job's rank count and BatchNorm mode, sets the threads per rank
    /// (cores / ranks on this machine unless <paramref name="threadsGiven"/>), and prints the effective batch. On a
    /// resume with another rank count the per-rank batch changes so that the global batch stays the
    /// saved one.</summary>
    public TrainOptions Configure(TrainOptions o, bool resume, bool noSyncBn, bool threadsGiven)
    {
        ArgumentNullException.ThrowIfNull(o);
        int size = _mpi.Size;
        if (resume && o.Ranks != size)
        {
            int global = o.BatchSize * o.Ranks;
            if (global % size != 0)
                throw new ArgumentException($"the run was saved with {o.Ranks} ranks x batch {o.BatchSize} = global batch {global}, which "
                    + $"{size} ranks cannot share equally; resume it on a rank count that divides {global}", "--resume");
            Console.WriteLine($"data parallel: resuming a {o.Ranks}-rank run on {size} ranks: batch {global / size} per rank keeps the global batch {global}");
            o = o with { BatchSize = global / size, Ranks = size };
        }
        else if (!resume)
            o = o with { Ranks = size, SyncBn = !noSyncBn };
        else if (noSyncBn && o.SyncBn)
            throw new ArgumentException("--no-sync-bn: the run was saved with synchronised BatchNorm; a resumed run keeps it", "--no-sync-bn");
        if (!threadsGiven && Environment.GetEnvironmentVariable("SLAK_NUM_THREADS") is null)
            CpuParallel.Threads = Math.Max(1, Environment.ProcessorCount / Math.Max(1, _mpi.LocalSize));
        Context = new DataParallel(_mpi, o.SyncBn);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"data parallel: {size} ranks ({_mpi.LibraryVersion}) x batch {o.BatchSize} x {o.AccumSteps} accumulation = "
            + $"effective batch {o.BatchSize * size * o.AccumSteps} (the learning rate {o.Lr:G4} is not rescaled); BatchNorm statistics "
            + $"{(o.SyncBn ? "synchronised over the ranks" : "per rank (--no-sync-bn)")}; {CpuParallel.Threads} CPU threads per rank, {_mpi.LocalSize} ranks on this machine; "
            + $"collective timeout {_mpi.CollectiveTimeout.TotalSeconds:F0} s ({MpiCollectives.TimeoutVariable})"));
        return o;
    }

    /// <summary>This rank's device: with several ranks on one machine, <c>--device cuda</c> (or <c>auto</c> choosing
    /// the first GPU) means the GPU of this rank's local rank (NCCL needs one GPU per rank); an explicit cuda:N is
    /// kept.</summary>
    public Device LocalDevice(string spec, Device resolved)
    {
        int localRank = int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK"), NumberStyles.Integer,
            CultureInfo.InvariantCulture, out int r) && r >= 0 ? r : 0;
        var device = RankDevice(spec, resolved, localRank, _mpi.LocalSize);
        if (device != resolved) Slak.Backends.BackendRegistry.For(device); // says why when that GPU is missing
        return device;
    }

    /// <summary>The rule of <see cref="LocalDevice"/>.</summary>
    internal static Device RankDevice(string spec, Device resolved, int localRank, int localSize)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string s = spec.Trim().ToLowerInvariant();
        if (localSize <= 1 || resolved != Device.Cuda0 || s is not ("cuda" or "auto")) return resolved;
        return new Device(DeviceType.Cuda, localRank);
    }

    /// <summary>Decides with the other ranks where gradients and SyncBatchNorm statistics are reduced: on device
    /// buffers with NCCL when every rank trains on cuda and NCCL loads on every rank (on cuda-emu, the stand-in of
    /// SLAK_DP_FAKE_NCCL=1), otherwise on host buffers over MPI; prints one line saying which (and why not
    /// NCCL).</summary>
    public void ChooseCollective(Device device)
    {
        var dp = Context ?? throw new InvalidOperationException("Configure the job first");
        bool fake = Environment.GetEnvironmentVariable(StagedDeviceAllReduce.Variable) == "1";
        var all = CollectiveChoice.Gather(_mpi, CollectiveChoice.Local(device, NcclLoads, fake));
        if (CollectiveChoice.UseDevice(all, out string why))
        {
            _deviceReduce = device.Type == DeviceType.CudaEmu ? new StagedDeviceAllReduce(_mpi) : NcclAllReduce.Create(_mpi, device);
            dp.Tensors = new DeviceTensorCollective(_deviceReduce);
        }
        else
            dp.Tensors = new HostTensorCollective(_mpi, _mpi.LibraryVersion);
        bool anyCuda = all.Any(c => c != CollectiveChoice.Capability.NotCuda) || device.IsCudaBackend;
        Console.WriteLine($"data parallel: gradients and SyncBatchNorm statistics reduced with {dp.Tensors.Description}"
            + (dp.Tensors.OnDevice || !anyCuda ? "" : $" ({why})"));
    }

    private static bool NcclLoads()
    {
        try
        {
            _ = Slak.Cuda.Interop.Nccl.Api;
            return true;
        }
        catch (Slak.Cuda.Interop.CudaLibraryNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Refuses to start when any rank's options (all but the device and the log interval), code or data
    /// differ from rank 0's, naming the difference.</summary>
    public void CheckSameEverywhere(TrainOptions o, string? dataArgument, Slak.Data.IImageSource train, Slak.Data.IImageSource? val,
                                    Slak.Data.IImageSource? test)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(train);
        var dp = Context ?? throw new InvalidOperationException("Configure the job first");
        var json = JsonNode.Parse(o.ToJson())!.AsObject();
        foreach (string free in ResumeOptions.Free) json.Remove(free);
        dp.CheckSame("the training options", json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }),
            "start every rank with the same command line and options file");
        dp.CheckSame("the code (Slak assemblies)", DataParallel.CodeIdentity(typeof(DataParallelStart), typeof(Trainer), typeof(Slak.Cuda.Runtime.NcclInfo)),
            "every rank must run the same build: build once before mpirun (./slak builds under a lock)");
        string data = string.Join('\n', new[] { DataParallel.DataIdentity(train, "train"), val is null ? "val: none" : DataParallel.DataIdentity(val, "val"),
            test is null ? "test: none" : DataParallel.DataIdentity(test, "test") });
        dp.CheckSame($"the data set ({dataArgument ?? "default"})", data, "every rank must see the same files (a shared folder or identical copies)");
        // Every rank must start the same collectives in the same order: the same buckets, started at the same points.
        dp.CheckSame("the gradient exchange", string.Create(CultureInfo.InvariantCulture,
            $"{GradientBuckets.BucketVariable} {GradientBuckets.BucketElementsFromEnvironment()} values\n{GradientBuckets.OverlapVariable} {GradientBuckets.OverlapFromEnvironment()}"),
            $"start every rank with the same {GradientBuckets.BucketVariable} and {GradientBuckets.OverlapVariable}");
    }

    /// <summary>Runs a verb's body with the job's context (null without mpirun). When the body fails on one rank of
    /// several, that rank prints its error and stops the whole job (MPI_Abort) so no rank waits for it; when the ranks
    /// disagree (thrown on every rank at once) each prints its line and the job ends cleanly with exit
    /// code 1.</summary>
    public static int Run(Func<DataParallelStart?, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var dp = Begin();
        if (dp is null) return body(null);
        int code;
        try
        {
            code = body(dp);
        }
        catch (RanksDifferException e)
        {
            Console.Error.WriteLine($"slak: error: {e.Message}");
            dp.Dispose();
            return 1;
        }
        catch (Exception e) when (dp._mpi.Size > 1)
        {
            bool interrupted = e is OperationCanceledException;
            dp._mpi.Abort(string.Create(CultureInfo.InvariantCulture,
                $"slak: {(interrupted ? "interrupted" : "error: " + Program.Describe(e))} (rank {dp._mpi.Rank} of {dp._mpi.Size}): stopping every rank"),
                interrupted ? 130 : 1);
            throw;
        }
        catch
        {
            dp.Dispose();
            throw;
        }
        dp.Dispose();
        return code;
    }

    /// <summary>Rank 0's <paramref name="folder"/> on every rank.</summary>
    public string ShareFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        var bytes = System.Text.Encoding.UTF8.GetBytes(folder);
        Span<byte> length = stackalloc byte[4];
        BitConverter.TryWriteBytes(length, bytes.Length);
        _mpi.Broadcast(length, 0, "sharing the run folder's name");
        var root = new byte[BitConverter.ToInt32(length)];
        if (_mpi.Rank == 0) bytes.CopyTo(root, 0);
        _mpi.Broadcast(root, 0, "sharing the run folder's name");
        return System.Text.Encoding.UTF8.GetString(root);
    }

    /// <summary>Prints (rank 0) how much of the gradient exchange overlapped backward, closes NCCL,
    /// finalises MPI.</summary>
    public void Dispose()
    {
        if (Context?.GradientSummary is { Length: > 0 } summary) Console.WriteLine($"data parallel: gradient exchange: {summary}");
        _deviceReduce?.Dispose();
        _deviceReduce = null;
        _mpi.Dispose();
    }
}
