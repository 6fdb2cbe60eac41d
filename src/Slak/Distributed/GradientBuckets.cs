// The gradient exchange of data-parallel training, overlapped with backward (DDP's design). The parameters are laid
// out in reverse registration order (roughly the order in which backward finishes them) and cut into flat buckets of at
// most BucketElements values; a parameter never straddles two buckets (one larger than a bucket gets its own). During
// the last backward pass of an optimizer step the autograd engine's gradient-ready hook (AutogradEngine.OnLeafGradient)
// reports each parameter whose gradient is final; as soon as every parameter of the next bucket in line is final, its
// gradients are copied into the bucket's flat tensor and the bucket's all-reduce (a mean) is started. Buckets start
// strictly in bucket order, so every rank starts the same collectives in the same order (MPI and NCCL require it).
// Every hook call also polls the reductions in flight (MPI_Test): Open MPI without a progress thread moves a
// non-blocking collective forward only inside MPI calls. After backward, Finish starts the buckets not started yet
// (a bucket waiting for a parameter that got no gradient this pass), then the step's loss, waits for all, and copies
// the means back into the gradients. Each bucket also carries one presence value per parameter (1 where this rank has a
// gradient), so a parameter gets a gradient after the exchange when any rank had one and keeps none when no rank had.
// The bucket layout does not depend on the overlap: with or without it the same buckets are reduced by the same
// collectives, so the results are the same bits.
using System.Diagnostics;
using System.Globalization;
using Slak.Autograd;

namespace Slak.Distributed;

/// <summary>Bucketed, backward-overlapped gradient averaging.</summary>
internal sealed class GradientBuckets
{
    /// <summary>Environment variable: bucket size in MiB of float32 gradients (default 4).</summary>
    public const string BucketVariable = "SLAK_DP_BUCKET_MB";

    /// <summary>Environment variable: 0 turns the overlap off (every bucket starts after backward).</summary>
    public const string OverlapVariable = "SLAK_DP_OVERLAP";

    private readonly Tensor[] _parameters;
    private readonly Dictionary<Tensor, int> _position = new(ReferenceEqualityComparer.Instance);
    private readonly Bucket[] _buckets;
    private readonly (int Bucket, int Slot)[] _where;
    private readonly bool[] _final;
    private readonly ITensorCollective _collective;
    private Tensor? _loss;
    private int _next;
    private long _step = -1; // the step armed or being finished (-1: none)
    private bool _armed;
    private readonly Statistics _stats = new();

    /// <summary>Lays out <paramref name="parameters"/> (registration order) in buckets of at most
    /// <paramref name="bucketElements"/> values, reduced by <paramref name="collective"/>.</summary>
    public GradientBuckets(IReadOnlyList<Tensor> parameters, ITensorCollective collective, long bucketElements, bool overlap)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(collective);
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketElements, 1);
        _parameters = [.. parameters];
        _collective = collective;
        Overlap = overlap;
        for (int i = 0; i < _parameters.Length; i++)
            if (!_position.TryAdd(_parameters[i], i)) throw new ArgumentException($"parameter {i} ({_parameters[i].Describe()}) is listed twice", nameof(parameters));
        var buckets = new List<List<int>>();
        long filled = 0;
        for (int i = _parameters.Length - 1; i >= 0; i--)
        {
            long n = _parameters[i].Numel;
            if (buckets.Count == 0 || (filled > 0 && filled + n > bucketElements)) { buckets.Add([]); filled = 0; }
            buckets[^1].Add(i);
            filled += n;
        }
        _buckets = buckets.Select(m => new Bucket([.. m], _parameters)).ToArray();
        _where = new (int, int)[_parameters.Length];
        for (int b = 0; b < _buckets.Length; b++)
            for (int s = 0; s < _buckets[b].Members.Length; s++) _where[_buckets[b].Members[s]] = (b, s);
        _final = new bool[_parameters.Length];
    }

    /// <summary>The bucket size from <see cref="BucketVariable"/> (default 4 MiB), in float32 values.</summary>
    public static long BucketElementsFromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable(BucketVariable);
        if (text is null) return 1L << 20;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double mib) || !(mib > 0) || mib > 2048)
            throw new ArgumentException($"{BucketVariable}={text}: expected a bucket size in MiB, above 0 and at most 2048");
        return Math.Max(1, (long)(mib * (1 << 20) / sizeof(float)));
    }

    /// <summary>False when <see cref="OverlapVariable"/> is 0.</summary>
    public static bool OverlapFromEnvironment() => Environment.GetEnvironmentVariable(OverlapVariable) is not "0";

    /// <summary>Buckets start during backward (false: all after it).</summary>
    public bool Overlap { get; }

    /// <summary>The parameters (registration order).</summary>
    public IReadOnlyList<Tensor> Parameters => _parameters;

    /// <summary>The buckets' members (parameter indices in registration order), bucket by bucket.</summary>
    public IReadOnlyList<IReadOnlyList<int>> Layout => _buckets.Select(b => (IReadOnlyList<int>)b.Members).ToArray();

    /// <summary>Buckets started so far in the current step (tests).</summary>
    internal int Started => _next;

    /// <summary>Arms the exchange for the backward pass that follows (the last one of optimizer step
    /// <paramref name="step"/>): until the returned scope is disposed, buckets start as their gradients become
    /// final.</summary>
    public IDisposable BeginBackward(long step)
    {
        Reset(step);
        _armed = true;
        return Overlap ? AutogradEngine.OnLeafGradient(OnGradientReady) : NoScope.Instance;
    }

    /// <summary>Starts what is left, waits for every bucket and the loss, writes the means into the gradients and
    /// returns the mean of <paramref name="loss"/> over the ranks.</summary>
    public double Finish(double loss, long step)
    {
        if (_step != step) Reset(step); // no armed backward this step (SNIP's batch, a non-finite loss)
        var clock = Stopwatch.StartNew();
        int startedInBackward = _next, doneBefore = 0;
        for (int b = 0; b < _next; b++) if (_buckets[b].Pending!.Poll()) doneBefore++;
        while (_next < _buckets.Length) Start(_next++);
        var device = _parameters.Length > 0 ? _parameters[0].Device : Device.Cpu;
        if (_loss is null || _loss.Device != device)
            using (TensorScope.Untracked()) _loss = Tensor.Empty([1], device);
        _loss.Backend.CopyFromHost([(float)loss], _loss);
        var lossPending = _collective.StartAverage(_loss, Where("loss", step));
        foreach (var bucket in _buckets) bucket.Pending!.Wait();
        lossPending.Wait();
        foreach (var bucket in _buckets) bucket.Unpack();
        if (_armed) _stats.Add(_buckets.Length, startedInBackward, doneBefore, clock.Elapsed.TotalSeconds); // optimizer steps only
        _armed = false;
        _step = -1;
        return _loss.Item();
    }

    /// <summary>Over the optimizer steps so far: "N buckets per step; x% started during backward, y% complete when
    /// backward returned; z ms per step spent after backward finishing the exchange".</summary>
    public string Summary() => _stats.Describe();

    private void Reset(long step)
    {
        _step = step;
        _next = 0;
        Array.Clear(_final);
        foreach (var b in _buckets) { b.Ready = 0; b.Pending = null; }
    }

    private void OnGradientReady(Tensor leaf)
    {
        if (!_position.TryGetValue(leaf, out int i) || _final[i]) return;
        _final[i] = true;
        _buckets[_where[i].Bucket].Ready++;
        while (_next < _buckets.Length && _buckets[_next].Ready == _buckets[_next].Members.Length) Start(_next++);
        for (int b = 0; b < _next; b++) _buckets[b].Pending!.Poll();
    }

    private void Start(int b)
    {
        var bucket = _buckets[b];
        bucket.Pack();
        bucket.Pending = _collective.StartAverage(bucket.Flat!, Where(string.Create(CultureInfo.InvariantCulture, $"gradient all-reduce (bucket {b + 1} of {_buckets.Length})"), _step));
    }

    private static string Where(string what, long step) => string.Create(CultureInfo.InvariantCulture, $"the {what} of step {step + 1}");

    /// <summary>One bucket: its parameters, its flat tensor (the gradients end to end, then one presence value per
    /// parameter) and the reduction in flight.</summary>
    private sealed class Bucket
    {
        private readonly Tensor[] _parameters;
        private Tensor[]? _views;
        private Tensor? _presence;

        public Bucket(int[] members, Tensor[] parameters)
        {
            Members = members;
            _parameters = parameters;
            Elements = members.Sum(m => parameters[m].Numel);
        }

        public int[] Members { get; }

        public long Elements { get; }

        public int Ready { get; set; }

        public Tensor? Flat { get; private set; }

        public IPendingReduction? Pending { get; set; }

        /// <summary>Copies the gradients (zeros where there is none) and the presence values into the flat
        /// tensor.</summary>
        public void Pack()
        {
            var device = _parameters[Members[0]].Device;
            if (Flat is null || Flat.Device != device) Allocate(device);
            var presence = new float[Members.Length];
            for (int s = 0; s < Members.Length; s++)
            {
                var view = _views![s];
                if (_parameters[Members[s]].Grad is { } g) { g.Backend.Copy(g, view); presence[s] = 1; }
                else view.Backend.Fill(view, 0f);
            }
            _presence!.Backend.CopyFromHost(presence, _presence);
        }

        /// <summary>Copies the means back into the gradients of the parameters some rank had a gradient for.</summary>
        public void Unpack()
        {
            var presence = _presence!.ToArray();
            for (int s = 0; s < Members.Length; s++)
            {
                if (presence[s] == 0) continue; // no rank had a gradient
                var p = _parameters[Members[s]];
                if (p.Grad is null)
                    using (TensorScope.Untracked()) p.Grad = Tensor.Empty(p.Shape, p.Device);
                p.Grad.Backend.Copy(_views![s], p.Grad);
            }
        }

        private void Allocate(Device device)
        {
            using var untracked = TensorScope.Untracked();
            Flat = Tensor.Empty([checked((int)(Elements + Members.Length))], device);
            _views = new Tensor[Members.Length];
            long offset = 0;
            for (int s = 0; s < Members.Length; s++)
            {
                long n = _parameters[Members[s]].Numel;
                _views[s] = Flat.SliceBatch(checked((int)offset), checked((int)n));
                offset += n;
            }
            _presence = Flat.SliceBatch(checked((int)Elements), Members.Length);
        }
    }

    /// <summary>How much of the exchange overlapped backward, over the steps so far.</summary>
    private sealed class Statistics
    {
        private long _steps, _buckets, _startedInBackward, _doneBeforeFinish;
        private double _waitSeconds;

        public void Add(int buckets, int startedInBackward, int doneBeforeFinish, double seconds)
        {
            _steps++;
            _buckets += buckets;
            _startedInBackward += startedInBackward;
            _doneBeforeFinish += doneBeforeFinish;
            _waitSeconds += seconds;
        }

        public string Describe()
        {
            if (_steps == 0) return "no step yet";
            string buckets = FormattableString.Invariant($"{(double)_buckets / _steps:F0} buckets per step");
            string started = FormattableString.Invariant($"{100.0 * _startedInBackward / _buckets:F0}% started during backward");
            string done = FormattableString.Invariant($"{100.0 * _doneBeforeFinish / _buckets:F0}% complete when backward returned");
            string wait = FormattableString.Invariant($"{1000 * _waitSeconds / _steps:F1} ms per step spent after backward finishing the exchange");
            return $"{buckets}; {started}, {done}; {wait}";
        }
    }

    private sealed class NoScope : IDisposable
    {
        public static readonly NoScope Instance = new();

        public void Dispose() { }
    }
}
