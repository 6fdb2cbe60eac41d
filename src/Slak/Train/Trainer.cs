// The training loop (slak-facts §3 scaled to small data): per-step LR schedule, AdamW, sparse masks with
// prune/regrow, label smoothing and mixup/cutmix targets, gradient accumulation and clipping, weight EMA, evaluation
// after every epoch on a validation set (best/ is selected on it; the test set is scored after the last epoch, or
// every epoch when asked, and never selects anything), last/best checkpoints (Trainer.Checkpoint.cs) and metrics.jsonl.
// One TensorScope per step keeps memory bounded. Everything random derives from TrainOptions.Seed, so two runs with one
// seed are identical and a run resumed from an epoch checkpoint continues exactly as the uninterrupted run would.
using System.Diagnostics;
using System.Globalization;
using Slak.Autograd;
using Slak.Data;
using Slak.Distributed;
using Slak.Optim;
using Slak.Sparse;

namespace Slak.Train;

/// <summary>Trains a classifier on an in-memory data set.</summary>
public sealed partial class Trainer
{
    private readonly TrainableModel _model;
    private readonly IImageSource _train;
    private readonly IImageSource? _val;
    private readonly IImageSource? _test;
    private readonly BatchLoaderOptions _loaderOptions;
    private readonly AdamW _optimizer;
    private readonly CosineSchedule _schedule;
    private readonly List<EpochMetrics> _metrics = [];
    private Masking? _masking;
    private ModelEma? _ema;
    private int _epoch;      // epochs completed
    private long _step;      // optimizer steps done
    private double _bestTop1 = double.NegativeInfinity;
    private int _bestEpoch;
    private bool _initialized;
    private readonly DataParallel? _dp;

    /// <summary>Creates a trainer writing to <paramref name="runFolder"/> (created when missing; null: no files) that
    /// holds out <see cref="TrainOptions.ValSplit"/> of <paramref name="train"/> (stratified, fixed split seed) as
    /// the validation set. With <see cref="TrainOptions.ValSplit"/> 0 (an .npz in trajectory mode) nothing is held
    /// out and nothing is evaluated: only last/ is written.</summary>
    public Trainer(TrainableModel model, IImageSource train, IImageSource? test, TrainOptions options, string? runFolder)
        : this(model, HoldOut(train, options), test, options, runFolder)
    {
    }

    /// <summary>Creates a trainer with an explicit validation set (e.g. an image folder's <c>val/</c>); a null
    /// <paramref name="test"/> means the data has no test split (nothing is scored at the end).</summary>
    public Trainer(TrainableModel model, IImageSource train, IImageSource val, IImageSource? test, TrainOptions options, string? runFolder)
        : this(model, (train, val), test, options, runFolder)
    {
        ArgumentNullException.ThrowIfNull(val);
    }

    private static (IImageSource Train, IImageSource? Val) HoldOut(IImageSource train, TrainOptions options)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.ValSplit == 0) return (train, null);
        return ValidationSplit.Split(train, options.ValSplit);
    }

    private Trainer(TrainableModel model, (IImageSource Train, IImageSource? Val) split, IImageSource? test, TrainOptions options, string? runFolder)
    {
        var (train, val) = split;
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        foreach (var (other, name) in new[] { (val, "validation"), (test, "test") })
            if (other is not null && (train.ClassCount != other.ClassCount || train.ImageSize != other.ImageSize))
                throw new ArgumentException($"train ({train.Channels}x{train.Height}x{train.Width}, {train.ClassCount} classes) and {name} "
                    + $"({other.Channels}x{other.Height}x{other.Width}, {other.ClassCount} classes) sets differ", name == "test" ? nameof(test) : "val");
        _model = model;
        _train = options.Limit > 0 && options.Limit < train.Count ? train.Subset(Enumerable.Range(0, options.Limit).ToArray()) : train;
        _val = val;
        _test = test;
        Options = options;
        RunFolder = runFolder;
        if (runFolder is not null) Directory.CreateDirectory(runFolder);
        var mix = new MixupOptions { MixupAlpha = options.Mixup, CutmixAlpha = options.Cutmix, Prob = options.MixupProb, SwitchProb = options.MixupSwitchProb };
        _loaderOptions = new BatchLoaderOptions
        {
            BatchSize = options.BatchSize * options.Ranks, Seed = options.Seed, Smoothing = options.Smoothing, Workers = options.Workers,
            SampleStreams = true,
            Mixup = mix.Enabled ? mix : null, Shuffle = options.Shuffle,
            Augment = new AugmentOptions
            {
                CropPadding = options.CropPadding, HorizontalFlip = options.HorizontalFlip, EraseProbability = options.Reprob ?? 0,
                SourceAugmentation = true,
            }.WithNormalization(options.Normalization),
        };
        if (!options.Normalize) _loaderOptions = _loaderOptions with { Augment = _loaderOptions.Augment with { Mean = [0f], Std = [1f] } };
        StepsPerEpoch = BatchLoader.BatchesPerEpoch(_train.Count, options.BatchSize * options.Ranks, dropLast: true) / options.AccumSteps;
        if (StepsPerEpoch < 1)
            throw new ArgumentException($"{_train.Count} training images give no optimizer step per epoch at batch size "
                + $"{options.BatchSize} x {options.AccumSteps} accumulation steps", nameof(options));
        BatchNormGuard.CheckMicroBatches(model.Module, _train.Count, options.BatchSize);
        TotalSteps = StepsPerEpoch * (long)options.Epochs;
        _schedule = CosineSchedule.ForRun(options.Lr, options.MinLr, options.Epochs, StepsPerEpoch, options.WarmupEpochs, options.WarmupSteps);
        _optimizer = new AdamW(model.Module.NamedParameters(), (float)options.Lr, (float)options.WeightDecay);
        model.Random?.SetState(new SlakRandom(BatchLoader.SeedFor(options.Seed, -2, 0)).GetState());
    }

    /// <summary>The options.</summary>
    public TrainOptions Options { get; }

    /// <summary>Data-parallel training (mpirun): this rank's context; its rank count must be
    /// <see cref="TrainOptions.Ranks"/>. Null: one process.</summary>
    internal DataParallel? DataParallel
    {
        get => _dp;
        init
        {
            if (value is not null && value.Size != Options.Ranks)
                throw new ArgumentException($"the options say {Options.Ranks} ranks but the job has {value.Size}", nameof(value));
            _dp = value;
            value?.Attach(_model.Module);
        }
    }

    /// <summary>This process writes the run folder (rank 0 of a data-parallel job, or a single process).</summary>
    private bool Writes => RunFolder is not null && (_dp?.IsWriter ?? true);

    /// <summary>The training loader's options: this rank's shard of each global batch.</summary>
    private BatchLoaderOptions TrainLoaderOptions => _dp is null ? _loaderOptions : _loaderOptions with { ShardCount = _dp.Size, ShardIndex = _dp.Rank };

    /// <summary>Run folder (null: nothing written).</summary>
    public string? RunFolder { get; }

    /// <summary>Optimizer steps per epoch.</summary>
    public int StepsPerEpoch { get; }

    /// <summary>Optimizer steps of the whole run.</summary>
    public long TotalSteps { get; }

    /// <summary>Optimizer steps done.</summary>
    public long Step => _step;

    /// <summary>Epochs completed.</summary>
    public int Epoch => _epoch;

    /// <summary>The optimizer.</summary>
    public AdamW Optimizer => _optimizer;

    /// <summary>The masking (null when dense or before <see cref="Run"/> initialises it).</summary>
    public Masking? Masking => _masking;

    /// <summary>The EMA (null when off).</summary>
    public ModelEma? Ema => _ema;

    /// <summary>Images trained on (after the validation hold-out and <see cref="TrainOptions.Limit"/>).</summary>
    public int TrainCount => _train.Count;

    /// <summary>Validation images (what <c>best/</c> is selected on).</summary>
    public int ValCount => _val?.Count ?? 0;

    /// <summary>The validation set (tests).</summary>
    internal IImageSource? ValData => _val;

    /// <summary>The training set after hold-out and limit (tests).</summary>
    internal IImageSource TrainData => _train;

    /// <summary>Metrics so far.</summary>
    public IReadOnlyList<EpochMetrics> Metrics => _metrics;

    /// <summary>Log lines (run start, the density tables at the start and the end, one line per prune/regrow round,
    /// epoch summaries, errors).</summary>
    public event Action<string>? Log;

    /// <summary>Verbose log lines: the full density table after every prune/regrow round.</summary>
    public event Action<string>? Detail;

    /// <summary>Warnings (images that could not be read). Raised on <see cref="Log"/> when nobody listens
    /// here.</summary>
    public event Action<string>? Warning;

    /// <summary>Raised after every optimizer step, on the training thread.</summary>
    public event Action<StepProgress>? StepCompleted;

    /// <summary>Raised after every epoch's evaluation and checkpoint.</summary>
    public event Action<EpochMetrics>? EpochCompleted;

    /// <summary>Loss of every optimizer step so far in this process (tests compare runs with it).</summary>
    public List<double> StepLosses { get; } = [];

    /// <summary>Stop after this many optimizer steps in this process (tests of interrupted runs; null:
    /// never).</summary>
    public long? StopAfterSteps { get; set; }

    /// <summary>Masks to train with instead of drawing new ones (from --init-weights; parameter name -> 0/1 bytes;
    /// needs <see cref="TrainOptions.Sparse"/>); applied to the weights at <see cref="Initialize"/>. Null:
    /// drawn.</summary>
    public IReadOnlyDictionary<string, byte[]>? InitialMasks { get; init; }

    private void Info(string line) => Log?.Invoke(line);

    private void Warn(string line) => (Warning ?? Log)?.Invoke(line);

    /// <summary>Prepares a fresh run: sparse masks (SNIP uses one batch), optimizer masks, EMA.</summary>
    public void Initialize()
    {
        if (_initialized) throw new InvalidOperationException("the trainer is already initialised");
        _initialized = true;
        using var precision = MixedPrecision.Use(Options.Precision ?? Precision.Fp32); // SNIP's batch too
        if (InitialMasks is not null && !Options.Sparse)
            throw new InvalidOperationException("initial masks were given but the options say dense training (Sparse = false)");
        if (Options.Sparse) InitializeMasking(InitialMasks);
        if (_dp is not null && _masking is not null) _dp.CheckMasks(_masking, "after initialisation");
        if (InitialMasks is not null)
        {
            _masking!.ApplyToWeights();
            Info(_masking.FormatDensityTable("masks from the initial weights"));
        }
        if (Options.Ema > 0) _ema = new ModelEma(_model.Module, Options.Ema);
    }

    private void InitializeMasking(IReadOnlyDictionary<string, byte[]>? saved)
    {
        var sparse = new SparseOptions
        {
            Density = Options.Density, Init = Options.SparseInit, PruneRate = Options.PruneRate,
            UpdateFrequency = Options.UpdateFrequency, Growth = Options.Growth, Semantics = Options.SparseSemantics,
        };
        _masking = new Masking(_model.Module.NamedParameters(), sparse, new SlakRandom(BatchLoader.SeedFor(Options.Seed, -3, 0)))
        {
            Log = Info, RoundTableLog = line => Detail?.Invoke(line), MaskBinder = _model.MaskBinder,
        };
        _masking.SetTotalSteps(TotalSteps);
        if (saved is not null) _masking.LoadMasks(saved);
        else _masking.Initialize(Options.SparseInit == SparseInit.Snip ? SnipGradients() : null);
        _masking.Attach(_optimizer);
    }

    /// <summary>Gradients of plain cross-entropy on one un-mixed training batch, leaving the model (buffers, RNG,
    /// gradients) as it was, as the reference does on a deep copy (slak-facts §2.3).</summary>
    private Dictionary<string, float[]> SnipGradients()
    {
        var module = _model.Module;
        var buffers = module.NamedBuffers().Select(b => b.Tensor.ToArray()).ToList();
        var rngState = _model.Random?.GetState();
        var loader = new BatchLoader(_train, TrainLoaderOptions with { Mixup = null, Smoothing = 0, Seed = Options.Seed ^ 0x5A1F }, 0);
        var batch = loader.Prepare(0);
        module.Train();
        module.ZeroGrad();
        var grads = new Dictionary<string, float[]>(StringComparer.Ordinal);
        using (TensorScope.Begin())
        {
            var x = Tensor.FromArray(batch.Images, batch.Shape, _model.Device);
            using var keys = SampleKeys.Begin(Options.Seed ^ 0x5A1F, -1, 0, batch.Count, (_dp?.Rank ?? 0) * batch.Count);
            var loss = F.CrossEntropy(_model.Forward(x), batch.Labels);
            loss.Backward();
            _dp?.AverageGradients(module.Parameters().ToList(), 0, -1); // SNIP scores the global first batch
            foreach (var (name, p) in module.NamedParameters())
                grads[name] = p.Grad?.ToArray() ?? new float[p.Numel];
        }
        module.ZeroGrad();
        int k = 0;
        foreach (var (_, b) in module.NamedBuffers()) b.Backend.CopyFromHost(buffers[k++], b);
        ModelWeights.StateLoaded(module); // BatchNorm's batch counter follows its restored buffer
        if (rngState is not null) _model.Random!.SetState(rngState);
        return grads;
    }

    /// <summary>Trains from the current state to the last epoch. Stops early (keeping the last good checkpoint) on
    /// a non-finite loss, on cancellation, or after <see cref="StopAfterSteps"/>.</summary>
    public TrainResult Run(CancellationToken cancel = default)
    {
        if (!_initialized) Initialize();
        using var precision = MixedPrecision.Use(Options.Precision ?? Precision.Fp32); // docs/mixed-precision.md
        if (Writes) IO.AtomicFile.WriteAllText(Path.Combine(RunFolder!, "options.json"), Options.ToJson());
        RemoveStaleTemporaries();
        string sparsity = _masking is null ? "dense"
            : FormattableString.Invariant($"density {_masking.OverallDensity:F3} ({Options.SparseSemantics.ToString().ToLowerInvariant()} semantics)");
        Info(FormattableString.Invariant(
            $"training {Options.Epochs} epochs x {StepsPerEpoch} steps (batch {Options.BatchSize} x {Options.AccumSteps}) on {_model.Device}, {_train.Count} train / {(_val is null ? "no" : _val.Count)} validation / {(_test is null ? "no" : _test.Count)} test images, {_model.Module.ParameterCount():N0} parameters, {sparsity}"));
        if (_val is null) Info("no validation set (an .npz holds training data only): evaluation is skipped");
        using var stepLog = Writes ? StepLog.Open(RunFolder!, _step) : null;
        var clock = Stopwatch.StartNew();
        long stepsThisProcess = 0;
        while (_epoch < Options.Epochs)
        {
            var epochClock = Stopwatch.StartNew();
            // Batches are assembled in a pool per epoch of the batches in flight + 1 (page-locked memory on a
            // CUDA GPU).
            var loaderOptions = TrainLoaderOptions;
            using var hostMemory = BatchHostMemory.ForDevice(_model.Device, loaderOptions.Prefetch + 1,
                (long)(loaderOptions.BatchSize / loaderOptions.ShardCount) * _train.ImageSize);
            var loader = new BatchLoader(_train, loaderOptions with { HostMemory = hostMemory }, _epoch);
            _model.Module.Train();
            _model.Module.ZeroGrad();
            double epochLoss = 0, stepLoss = 0;
            int micro = 0, images = 0;
            long epochSteps = 0;
            double lr = _schedule.ValueAt(_step);
            long maxBad = (long)Math.Floor(Options.MaxBadImageFraction * _train.Count);
            foreach (var batch in loader)
            {
                if (epochSteps == StepsPerEpoch) break; // trailing micro-batches that do not fill an accumulation
                cancel.ThrowIfCancellationRequested();
                if (loader.Failures.Count > maxBad || batch.Count == 0)
                {
                    string msg = string.Create(CultureInfo.InvariantCulture,
                        $"{loader.Failures.Count} training images of {_train.Count} could not be read in epoch {_epoch + 1} (more than the allowed fraction {Options.MaxBadImageFraction}{(batch.Count == 0 ? ", a whole batch" : "")}): stopping; {(_epoch == 0 ? "no checkpoint was written" : $"the last good checkpoint (epoch {_epoch}) is kept")}. {ListFailures(loader.Failures)}");
                    Info(msg);
                    _model.Module.ZeroGrad();
                    return new TrainResult(false, msg, _metrics.ToList(), BestTop1);
                }
                double loss;
                // Drop-path draws keyed by each image's position in the global batch (Distributed.SampleKeys).
                using (SampleKeys.Begin(Options.Seed, _epoch, batch.Index, batch.Count, (_dp?.Rank ?? 0) * batch.Count))
                    loss = MicroStep(batch, lastOfStep: micro + 1 == Options.AccumSteps);
                if (!double.IsFinite(loss) && _dp is null) // data parallel: the averaged loss is checked below, on every rank
                {
                    string msg = string.Create(CultureInfo.InvariantCulture,
                        $"loss is {loss} at epoch {_epoch + 1}, step {_step + 1}: stopping; the last good checkpoint (epoch {_epoch}) is kept");
                    Info(msg);
                    _model.Module.ZeroGrad();
                    return new TrainResult(false, msg, _metrics.ToList(), BestTop1);
                }
                stepLoss += loss / Options.AccumSteps;
                images += batch.Count * (_dp?.Size ?? 1); // every rank trains on an equal part: global img/s
                if (++micro < Options.AccumSteps) continue;
                micro = 0;
                if (_dp is not null)
                {
                    stepLoss = _dp.AverageGradients(_model.Module.Parameters().ToList(), stepLoss, _step);
                    if (!double.IsFinite(stepLoss))
                    {
                        string msg = string.Create(CultureInfo.InvariantCulture,
                            $"loss is {stepLoss} at epoch {_epoch + 1}, step {_step + 1} (mean over {_dp.Size} ranks): stopping; the last good checkpoint (epoch {_epoch}) is kept");
                        Info(msg);
                        _model.Module.ZeroGrad();
                        return new TrainResult(false, msg, _metrics.ToList(), BestTop1);
                    }
                }
                lr = _schedule.ValueAt(_step);
                OptimizerStep(lr);
                epochLoss += stepLoss;
                epochSteps++;
                stepsThisProcess++;
                StepLosses.Add(stepLoss);
                stepLog?.Append(_step, stepLoss, lr);
                double ips = images / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds);
                double perStep = clock.Elapsed.TotalSeconds / stepsThisProcess;
                StepCompleted?.Invoke(new StepProgress(_epoch, Options.Epochs, _step, TotalSteps, stepLoss, lr, ips, clock.Elapsed,
                    TimeSpan.FromSeconds(perStep * (TotalSteps - _step))));
                stepLoss = 0;
                if (StopAfterSteps is long stop && stepsThisProcess >= stop)
                    return new TrainResult(false, $"stopped after {stop} steps as requested", _metrics.ToList(), BestTop1);
            }
            double trainSeconds = epochClock.Elapsed.TotalSeconds;
            _dp?.CheckWeights(_model.Module, string.Create(CultureInfo.InvariantCulture, $"after epoch {_epoch + 1}"));
            if (loader.Failures.Count > 0)
                Warn($"epoch {_epoch + 1}: {loader.Failures.Count} training images could not be read and were skipped: {ListFailures(loader.Failures)}");
            _epoch++;
            if (_val is null)
            {
                SaveCheckpoints(best: false);
                Info(FormattableString.Invariant(
                    $"epoch {_epoch}/{Options.Epochs}: train loss {epochLoss / Math.Max(1, epochSteps):F4}, lr {lr:G4}, density {_masking?.OverallDensity ?? 1.0:F3}, {images / Math.Max(1e-9, trainSeconds):F0} img/s, {clock.Elapsed.TotalSeconds:F0} s (not evaluated)"));
                continue;
            }
            var m = EvaluateEpoch(epochLoss / Math.Max(1, epochSteps), lr, clock.Elapsed.TotalSeconds, images / Math.Max(1e-9, trainSeconds));
            if (NonFiniteEpoch(m) is string bad)
            {
                Info(bad);
                return new TrainResult(false, bad, _metrics.ToList(), BestTop1);
            }
            _metrics.Add(m);
            bool best = m.ValTop1 > _bestTop1;
            if (best) { _bestTop1 = m.ValTop1; _bestEpoch = _epoch; }
            SaveCheckpoints(best);
            Info(FormatEpoch(m, Options.Epochs));
            EpochCompleted?.Invoke(m);
        }
        if (_masking is not null) Info(_masking.FormatDensityTable("final masks"));
        return new TrainResult(true, null, _metrics.ToList(), BestTop1);
    }

    /// <summary>Best validation top-1 so far (0 before the first evaluation): the score <c>best/</c> was
    /// selected on.</summary>
    public double BestTop1 => double.IsNegativeInfinity(_bestTop1) ? 0 : _bestTop1;

    /// <summary>The epoch whose weights are in <c>best/</c> (0 before the first evaluation).</summary>
    public int BestEpoch => _bestEpoch;

    /// <summary>The first 20 failures (file: reason), then how many more.</summary>
    public static string ListFailures(IReadOnlyCollection<IO.ImageFileException> failures)
    {
        ArgumentNullException.ThrowIfNull(failures);
        var shown = failures.Take(20).Select(f => f.Message);
        string more = failures.Count > 20 ? $"; and {failures.Count - 20} more" : "";
        return string.Join("; ", shown) + more;
    }

    /// <summary>The log line of an epoch: validation and (where evaluated) test scores apart.</summary>
    public static string FormatEpoch(EpochMetrics m, int epochs)
    {
        ArgumentNullException.ThrowIfNull(m);
        string ema = m.EmaTop1 is double e ? FormattableString.Invariant($", EMA val top-1 {e:F2}%") : "";
        string test = m.TestTop1 is double t1
            ? FormattableString.Invariant($"; test top-1 {t1:F2}%, top-5 {m.TestTop5:F2}%, loss {m.TestLoss:F4}") : "";
        return FormattableString.Invariant(
            $"epoch {m.Epoch}/{epochs}: train loss {m.TrainLoss:F4}; val top-1 {m.ValTop1:F2}%, top-5 {m.ValTop5:F2}%, loss {m.ValLoss:F4}{ema}{test}; lr {m.Lr:G4}, density {m.Density:F3}, {m.ImagesPerSecond:F0} img/s, {m.WallTime:F0} s");
    }

    private double MicroStep(Batch batch, bool lastOfStep)
    {
        using var scope = TensorScope.Begin();
        var device = _model.Device;
        var x = Tensor.FromArray(batch.ImageSpan, batch.Shape, device);
        batch.Dispose(); // uploaded (the copy is synchronous): a pooled buffer goes back to the loader
        var targets = Tensor.FromArray(batch.Targets, [batch.Count, batch.ClassCount], device);
        var logits = _model.Forward(x);
        var loss = F.SoftTargetCrossEntropy(logits, targets);
        float value = loss.Item();
        if (!float.IsFinite(value)) return value;
        // Data parallel: the last backward of a step starts the gradient buckets as they become final.
        using (lastOfStep ? _dp?.BeginBackward(_step) : null)
            (Options.AccumSteps == 1 ? loss : F.Scale(loss, 1f / Options.AccumSteps)).Backward();
        return value;
    }

    private void OptimizerStep(double lr)
    {
        using var scope = TensorScope.Begin();
        using var noGrad = GradMode.NoGrad();
        if (Options.ClipGrad > 0) GradClip.ClipByGlobalNorm(_model.Module.Parameters(), Options.ClipGrad);
        _optimizer.Lr = (float)lr;
        _optimizer.Step();
        _step++;
        if (_masking?.AfterOptimizerStep(_step, _optimizer) == true && _dp is not null)
            _dp.CheckMasks(_masking, string.Create(CultureInfo.InvariantCulture, $"after the prune/regrow round of step {_step}"));
        _ema?.Update(_masking);
        _model.Module.ZeroGrad();
    }

    private EpochMetrics EvaluateEpoch(double trainLoss, double lr, double wall, double ips)
    {
        // Data parallel: each rank scores a shard of the batches; the figures are the single process's (Evaluator).
        int evalBatch = Math.Max(Options.BatchSize, 256);
        var val = _val!;
        var v = Evaluator.Evaluate(_model, val, _loaderOptions.Augment, evalBatch, _dp);
        // The test set is scored for the report only: after the last epoch, or every epoch when asked.
        EvalResult? t = _test is not null && (Options.EvalTestEveryEpoch || _epoch == Options.Epochs)
            ? Evaluator.Evaluate(_model, _test, _loaderOptions.Augment, evalBatch, _dp) : null;
        if (v.Skipped > 0) Warn($"validation: {v.Skipped} images could not be read and were left out: {ListFailures(v.Failures!)}");
        if (t?.Skipped > 0) Warn($"test: {t.Skipped} images could not be read and were left out: {ListFailures(t.Failures!)}");
        EvalResult? e = null;
        if (_ema is not null)
        {
            var saved = _ema.SwapIn();
            try { e = Evaluator.Evaluate(_model, val, _loaderOptions.Augment, evalBatch, _dp); }
            finally { _ema.SwapOut(saved); }
        }
        return new EpochMetrics
        {
            Epoch = _epoch, Step = _step, TrainLoss = trainLoss, ValTop1 = v.Top1, ValTop5 = v.Top5, ValLoss = v.Loss,
            TestTop1 = t?.Top1, TestTop5 = t?.Top5, TestLoss = t?.Loss,
            EmaTop1 = e?.Top1, EmaTop5 = e?.Top5, EmaLoss = e?.Loss, Lr = lr, Density = _masking?.OverallDensity ?? 1.0,
            WallTime = wall, ImagesPerSecond = ips,
        };
    }
}
