// Synchronous data-parallel training on top of ICollectives (host MPI: start-up checks, hashes) and ITensorCollective
// (gradients, SyncBatchNorm statistics: MPI on host buffers or NCCL on device buffers): what the Trainer calls at its
// few hooks. Gradients are averaged in flat buckets started while the last backward pass of each optimizer step runs
// (GradientBuckets), and the step's loss with them, so the logged loss is the global batch's mean; masks are compared
// by hash after every prune/regrow round and at start-up, the weights after every epoch; the run's options, the code
// and the data set are compared at start-up (docs/data-parallel.md).
using System.Globalization;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using Slak.Autograd;
using Slak.Sparse;

namespace Slak.Distributed;

/// <summary>The data-parallel context of one rank.</summary>
internal sealed class DataParallel
{
    private ITensorCollective? _tensors;
    private GradientBuckets? _gradients;
    private NN.Module? _module;

    /// <summary>Creates the context over <paramref name="collectives"/>.</summary>
    public DataParallel(ICollectives collectives, bool syncBatchNorm)
    {
        ArgumentNullException.ThrowIfNull(collectives);
        Collectives = collectives;
        SyncBatchNorm = syncBatchNorm;
    }

    /// <summary>The collectives.</summary>
    public ICollectives Collectives { get; }

    /// <summary>This rank.</summary>
    public int Rank => Collectives.Rank;

    /// <summary>Number of ranks.</summary>
    public int Size => Collectives.Size;

    /// <summary>True on rank 0, the only rank that writes files and prints progress.</summary>
    public bool IsWriter => Rank == 0;

    /// <summary>BatchNorm statistics are computed over the global batch (SyncBatchNorm) rather than per rank.</summary>
    public bool SyncBatchNorm { get; }

    /// <summary>Where gradients and SyncBatchNorm statistics are reduced (host MPI unless the job chose device
    /// buffers: CollectiveChoice). Set before the trainer starts.</summary>
    public ITensorCollective Tensors
    {
        get => _tensors ??= new HostTensorCollective(Collectives, "MPI");
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (_gradients is not null) throw new InvalidOperationException("the collective is chosen before the first gradient exchange");
            _tensors = value;
        }
    }

    /// <summary>The gradient buckets' overlap statistics ("" before any exchange).</summary>
    public string GradientSummary => _gradients?.Summary() ?? "";

    /// <summary>Arms the gradient exchange for the backward pass that follows, the last of optimizer step
    /// <paramref name="step"/>: buckets start while it runs (GradientBuckets). Dispose after the pass.</summary>
    public IDisposable BeginBackward(long step) => Gradients(_module?.Parameters().ToList() ?? []).BeginBackward(step);

    /// <summary>Averages every parameter's gradient over the ranks (a rank without a gradient for a parameter adds
    /// zeros; the gradient is created on every rank when any rank had one) and returns the mean of
    /// <paramref name="loss"/> over the ranks: the buckets not started during backward start now, and all are
    /// waited for. <paramref name="step"/> (optimizer steps done) names the call in a timeout message.</summary>
    public double AverageGradients(IReadOnlyList<Tensor> parameters, double loss, long step)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return Gradients(parameters).Finish(loss, step);
    }

    private GradientBuckets Gradients(IReadOnlyList<Tensor> parameters)
    {
        if (_gradients is null || !_gradients.Parameters.SequenceEqual(parameters, ReferenceEqualityComparer.Instance))
            _gradients = new GradientBuckets(parameters, Tensors, GradientBuckets.BucketElementsFromEnvironment(),
                GradientBuckets.OverlapFromEnvironment());
        return _gradients;
    }

    /// <summary>Makes every BatchNorm2d of <paramref name="module"/> take its training statistics over all ranks
    /// (when <see cref="SyncBatchNorm"/> is on and there is more than one rank), and lays out the gradient buckets
    /// over its parameters.</summary>
    public void Attach(NN.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        _module = module;
        if (!SyncBatchNorm || Size == 1) return;
        foreach (var (_, m) in module.NamedModules())
            if (m is NN.BatchNorm2d bn) bn.Sync = this;
    }

    /// <summary>Compares a hash of every parameter of <paramref name="module"/> with rank 0's and throws
    /// <see cref="RanksDifferException"/> on every rank when they differ (the ranks must take identical
    /// steps).</summary>
    public void CheckWeights(NN.Module module, string when)
    {
        ArgumentNullException.ThrowIfNull(module);
        var hash = new XxHash64();
        foreach (var (name, p) in module.NamedParameters())
        {
            hash.Append(Encoding.UTF8.GetBytes(name));
            hash.Append(MemoryMarshal.AsBytes(p.ToArray().AsSpan()));
        }
        CheckSame($"weights {when}", hash.GetCurrentHashAsUInt64().ToString("x16", CultureInfo.InvariantCulture), "the ranks' weights "
            + "differ (their averaged gradients were not the same bits); this is a bug: please report it with the command line");
    }

    /// <summary>Sums <paramref name="values"/> over the ranks in rank order (SyncBatchNorm's statistics).</summary>
    public void Sum(Span<double> values, string what) => Collectives.Sum(values, what);

    /// <summary>Compares every rank's masks with rank 0's by hash and throws <see cref="RanksDifferException"/> on
    /// every rank, naming the ranks that differ, when they are not identical.</summary>
    public void CheckMasks(Masking masking, string when)
    {
        ArgumentNullException.ThrowIfNull(masking);
        var hash = new XxHash64();
        foreach (var layer in masking.Layers)
        {
            hash.Append(Encoding.UTF8.GetBytes(layer.Name));
            hash.Append(layer.MaskBytes());
        }
        CheckSame($"masks {when}", hash.GetCurrentHashAsUInt64().ToString("x16", CultureInfo.InvariantCulture), "the sparse masks differ "
            + "(prune/regrow saw different weights or gradients); this is a bug: please report it with the command line");
    }

    /// <summary>Compares <paramref name="value"/> (any text) with rank 0's on every rank; when some rank's differs,
    /// throws <see cref="RanksDifferException"/> on every rank naming those ranks, and (on those ranks) the first
    /// difference.</summary>
    public void CheckSame(string what, string value, string hint)
    {
        ArgumentNullException.ThrowIfNull(value);
        var mine = Encoding.UTF8.GetBytes(value);
        // The phase as a timeout names it ("no answer from the other ranks for 8 s in <phase>"): the check runs at
        // start-up and after every prune/regrow round, so it is named by what it compares, not by when.
        string phase = $"the check that every rank holds the same {what}";
        Span<byte> length = stackalloc byte[4];
        BitConverter.TryWriteBytes(length, mine.Length);
        Collectives.Broadcast(length, 0, phase);
        var root = new byte[BitConverter.ToInt32(length)];
        if (Rank == 0) mine.CopyTo(root, 0);
        Collectives.Broadcast(root, 0, phase);
        string rootText = Encoding.UTF8.GetString(root);
        var differs = new double[Size];
        differs[Rank] = rootText == value ? 0 : 1;
        Collectives.Sum(differs, phase);
        var ranks = Enumerable.Range(0, Size).Where(r => differs[r] != 0).ToList();
        if (ranks.Count == 0) return;
        string detail = rootText == value ? "" : $"; here: {FirstDifference(rootText, value)}";
        throw new RanksDifferException($"rank {Rank}: {what} of rank{(ranks.Count > 1 ? "s" : "")} {string.Join(", ", ranks)} differ from rank 0's{detail}: {hint}");
    }

    /// <summary>The first line (of a JSON or line-per-item text) where <paramref name="mine"/> differs from
    /// rank 0's.</summary>
    private static string FirstDifference(string root, string mine)
    {
        var a = root.Split('\n');
        var b = mine.Split('\n');
        for (int i = 0; i < Math.Max(a.Length, b.Length); i++)
        {
            string x = i < a.Length ? a[i].Trim() : "(nothing)", y = i < b.Length ? b[i].Trim() : "(nothing)";
            if (x != y) return $"{y.TrimEnd(',')} (rank 0: {x.TrimEnd(',')})";
        }
        return "(no line differs)";
    }

    /// <summary>A hash of the files of the loaded Slak assemblies (the code version every rank must share).</summary>
    public static string CodeIdentity(params Type[] types)
    {
        ArgumentNullException.ThrowIfNull(types);
        var lines = new List<string>();
        foreach (var asm in types.Select(t => t.Assembly).Prepend(typeof(DataParallel).Assembly).Distinct())
        {
            string path = asm.Location;
            string hash = path.Length > 0 && File.Exists(path)
                ? XxHash64.HashToUInt64(File.ReadAllBytes(path)).ToString("x16", CultureInfo.InvariantCulture) : "(no file)";
            lines.Add($"{asm.GetName().Name} {asm.GetName().Version} {hash}");
        }
        return string.Join('\n', lines);
    }

    /// <summary>A description of a data set every rank must share: size, image shape, classes, a hash of every label
    /// and of the first images' pixels.</summary>
    public static string DataIdentity(Data.IImageSource data, string name)
    {
        ArgumentNullException.ThrowIfNull(data);
        var labels = new int[data.Count];
        for (int i = 0; i < labels.Length; i++) labels[i] = data.LabelAt(i);
        var pixels = new XxHash64();
        var image = new float[data.ImageSize];
        for (int i = 0; i < Math.Min(16, data.Count); i++)
        {
            try { data.ReadImage(i, image); }
            catch (IO.ImageFileException) { image.AsSpan().Clear(); }
            pixels.Append(MemoryMarshal.AsBytes(image.AsSpan()));
        }
        return string.Create(CultureInfo.InvariantCulture,
            $"{name}: {data.Count} images {data.Channels}x{data.Height}x{data.Width}, {data.ClassCount} classes, labels {XxHash64.HashToUInt64(MemoryMarshal.AsBytes(labels.AsSpan())):x16}, first images {pixels.GetCurrentHashAsUInt64():x16}");
    }

    private static string Where(string what, long step) => string.Create(CultureInfo.InvariantCulture, $"the {what} of step {step + 1}");
}

/// <summary>The ranks disagree (options, code, data or masks); thrown on every rank at the same point, so the job can
/// end cleanly.</summary>
internal sealed class RanksDifferException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public RanksDifferException() { }

    /// <summary>Creates the exception with a message.</summary>
    public RanksDifferException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public RanksDifferException(string message, Exception inner) : base(message, inner) { }
}
