// Checkpoints of a run folder:
//   <run>/last/{model.safetensors, config.json, trainer.safetensors, metrics.jsonl}   after every epoch (--resume)
//   <run>/best/{model.safetensors, config.json, metrics.jsonl}                        the best validation top-1 so far
//   <run>/metrics.jsonl (a copy of last/metrics.jsonl), <run>/options.json, <run>/.lock (RunLock)
// trainer.safetensors holds AdamW moments (optim.exp_avg.<p>, optim.exp_avg_sq.<p>), masks (U8 mask.<p>), EMA
// weights (ema.<name>) and, in __metadata__, epoch, step, lr, best, per-parameter step counts, the masked layers, the
// options and the generator states; every file carries per-tensor checksums (TensorChecksums).
// Commit order: the weights are checked finite first; then every folder of the epoch (last, and best when it
// improved) is written completely into <name>.tmp with its metrics.jsonl, and only then swapped in by renames (best
// before last, so a crash in between redoes the epoch deterministically); a failed write removes its temporary
// folders and leaves the previous checkpoint complete (at worst under <name>.old, which resume also finds).
// Loading is strict: every expected entry with its dtype and shape, nothing unknown, every metadata value parsed,
// each problem an InvalidDataException naming the file and the entry.
using System.Globalization;
using System.Text.Json;
using Slak.Data;
using Slak.IO;

namespace Slak.Train;

public sealed partial class Trainer
{
    /// <summary>Trainer checkpoint format tag.</summary>
    public const string CheckpointFormat = "slak-trainer/1";

    /// <summary>Test hook: called with the temporary folder just before it replaces the checkpoint.</summary>
    internal Action<string>? BeforeCheckpointSwap { get; set; }

    private void SaveCheckpoints(bool best)
    {
        if (!Writes) return; // rank 0 alone writes a data-parallel run
        string metrics = string.Concat(_metrics.Select(m => m.ToJsonLine() + "\n"));
        string last = Path.Combine(RunFolder!, "last"), bestFolder = Path.Combine(RunFolder!, "best");
        var written = new List<string>();
        try
        {
            written.Add(WriteTemporary(last, includeTrainer: true, metrics));
            if (best) written.Add(WriteTemporary(bestFolder, includeTrainer: false, metrics));
            foreach (var tmp in written) BeforeCheckpointSwap?.Invoke(tmp);
        }
        catch
        {
            foreach (var tmp in written.Append(last + ".tmp").Append(bestFolder + ".tmp")) TryDeleteFolder(tmp);
            throw;
        }
        if (best) Swap(bestFolder);
        Swap(last);
        AtomicFile.WriteAllText(Path.Combine(RunFolder!, "metrics.jsonl"), metrics);
    }

    private string WriteTemporary(string target, bool includeTrainer, string metrics)
    {
        string tmp = target + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);
        ModelWeights.Save(Path.Combine(tmp, "model.safetensors"), _model.Module);
        if (_model.ConfigJson is not null) AtomicFile.WriteAllText(Path.Combine(tmp, "config.json"), _model.ConfigJson);
        if (includeTrainer) TrainerStateWriter().Write(Path.Combine(tmp, "trainer.safetensors"));
        AtomicFile.WriteAllText(Path.Combine(tmp, "metrics.jsonl"), metrics);
        return tmp;
    }

    private static void Swap(string target)
    {
        string tmp = target + ".tmp", old = target + ".old";
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(target)) Directory.Move(target, old);
        Directory.Move(tmp, target);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    /// <summary>Removes the temporary folders a killed process may have left (the run folder's lock holder owns
    /// them).</summary>
    private void RemoveStaleTemporaries()
    {
        if (!Writes) return;
        foreach (var name in new[] { "last.tmp", "best.tmp" }) TryDeleteFolder(Path.Combine(RunFolder!, name));
    }

    private static void TryDeleteFolder(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original failure matters more than a leftover temporary folder (the next write replaces it).
        }
    }

    /// <summary>The first parameter, buffer or EMA value that is NaN or infinite, as "'name'" (null: all
    /// finite).</summary>
    private string? FirstNonFiniteState()
    {
        foreach (var (name, t) in _model.Module.StateDict())
            if (!t.ToArray().All(float.IsFinite)) return $"weight '{name}'";
        if (_ema is not null)
            foreach (var (name, values, _) in _ema.Entries)
                if (!values.All(float.IsFinite)) return $"EMA weight '{name}'";
        return null;
    }

    /// <summary>Why the epoch just evaluated must not be checkpointed (a non-finite weight or metric), or
    /// null.</summary>
    private string? NonFiniteEpoch(EpochMetrics m)
    {
        string? what = FirstNonFiniteState()
            ?? (!double.IsFinite(m.TrainLoss) ? $"train loss {m.TrainLoss}" : null)
            ?? (!double.IsFinite(m.ValLoss) ? $"validation loss {m.ValLoss}" : null)
            ?? (m.TestLoss is double t && !double.IsFinite(t) ? $"test loss {t}" : null)
            ?? (m.EmaLoss is double e && !double.IsFinite(e) ? $"EMA validation loss {e}" : null);
        return what is null ? null : string.Create(CultureInfo.InvariantCulture,
            $"{what} is not finite after epoch {m.Epoch}: stopping before the checkpoint; the last good checkpoint (epoch {m.Epoch - 1}) is kept");
    }

    private SafeTensorsWriter TrainerStateWriter()
    {
        var w = new SafeTensorsWriter { Checksums = true };
        var steps = new Dictionary<string, long>();
        foreach (var s in _optimizer.States)
        {
            steps[s.Name] = s.Step;
            if (s.ExpAvg is null) continue;
            w.AddFloat32("optim.exp_avg." + s.Name, s.ExpAvg.ToArray(), s.Parameter.ShapeArray);
            w.AddFloat32("optim.exp_avg_sq." + s.Name, s.ExpAvgSq!.ToArray(), s.Parameter.ShapeArray);
        }
        if (_masking is not null)
            foreach (var l in _masking.Layers) w.AddUInt8("mask." + l.Name, l.MaskBytes(), l.Parameter.ShapeArray);
        if (_ema is not null)
            foreach (var (name, values, shape) in _ema.Entries) w.AddFloat32("ema." + name, values, shape);
        string I(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        w.SetMetadata("format", CheckpointFormat)
         .SetMetadata("epoch", _epoch.ToString(CultureInfo.InvariantCulture))
         .SetMetadata("step", _step.ToString(CultureInfo.InvariantCulture))
         .SetMetadata("lr", I(_schedule.ValueAt(Math.Max(0, _step - 1))))
         .SetMetadata("warmup_steps", _schedule.WarmupSteps.ToString(CultureInfo.InvariantCulture))
         .SetMetadata("total_steps", TotalSteps.ToString(CultureInfo.InvariantCulture))
         .SetMetadata("prune_rate", _masking is null ? "0" : I(_masking.PruneRateAt(_step)))
         .SetMetadata("best_top1", I(BestTop1))
         .SetMetadata("best_epoch", _bestEpoch.ToString(CultureInfo.InvariantCulture))
         .SetMetadata("optim_steps", JsonSerializer.Serialize(steps))
         .SetMetadata("options", Options.ToJson());
        if (_masking is not null) w.SetMetadata("masked_layers", JsonSerializer.Serialize(_masking.Layers.Select(l => l.Name).ToArray()));
        if (_model.Random is not null) w.SetMetadata("rng.model", FormatState(_model.Random.GetState()));
        if (_masking is not null) w.SetMetadata("rng.masking", FormatState(_masking.Random.GetState()));
        return w;
    }

    private static string FormatState(ulong[] state) => string.Join(",", state.Select(v => v.ToString(CultureInfo.InvariantCulture)));

    private static ulong[] ParseState(string text, string source)
    {
        var parts = text.Split(',');
        var result = new ulong[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!ulong.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out result[i]))
                throw new InvalidDataException($"{source}: generator state '{text}' is not a list of integers");
        return result;
    }

    /// <summary>The folder holding the latest complete checkpoint of <paramref name="runFolder"/>.</summary>
    public static string FindLastCheckpoint(string runFolder)
    {
        ArgumentNullException.ThrowIfNull(runFolder);
        if (File.Exists(runFolder)) throw new IOException($"'{runFolder}' is a file, not a run folder");
        if (!Directory.Exists(runFolder)) throw new DirectoryNotFoundException($"run folder '{runFolder}' does not exist");
        foreach (var name in new[] { "last", "last.old" })
        {
            string f = Path.Combine(runFolder, name);
            if (File.Exists(Path.Combine(f, "trainer.safetensors")) && File.Exists(Path.Combine(f, "model.safetensors"))) return f;
        }
        throw new FileNotFoundException($"no checkpoint to resume in '{runFolder}' (expected last/trainer.safetensors and last/model.safetensors)");
    }

    /// <summary>The options saved in the latest checkpoint of <paramref name="runFolder"/> (build the model from
    /// them before <see cref="Resume"/>).</summary>
    public static TrainOptions ReadCheckpointOptions(string runFolder)
    {
        var file = SafeTensorsFile.Read(Path.Combine(FindLastCheckpoint(runFolder), "trainer.safetensors"));
        return SavedOptions(file);
    }

    private static TrainOptions SavedOptions(SafeTensorsFile file)
    {
        if (Meta(file, "format") != CheckpointFormat)
            throw new InvalidDataException($"{file.Source}: format '{Meta(file, "format")}' is not {CheckpointFormat}");
        try
        {
            return TrainOptions.FromJson(Meta(file, "options"), file.Source + " metadata 'options'");
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{file.Source}: the saved options are invalid: {e.Message}", e);
        }
    }

    private static string Meta(SafeTensorsFile file, string key) =>
        file.Metadata.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{file.Source}: metadata has no '{key}'");

    private static long MetaLong(SafeTensorsFile file, string key) =>
        long.TryParse(Meta(file, key), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v >= 0 ? v
            : throw new InvalidDataException($"{file.Source}: metadata '{key}' = '{Meta(file, key)}' is not a non-negative integer");

    private static int MetaInt(SafeTensorsFile file, string key) =>
        MetaLong(file, key) is long v && v <= int.MaxValue ? (int)v
            : throw new InvalidDataException($"{file.Source}: metadata '{key}' = '{Meta(file, key)}' is too large");

    private static double MetaDouble(SafeTensorsFile file, string key) =>
        double.TryParse(Meta(file, key), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v
            : throw new InvalidDataException($"{file.Source}: metadata '{key}' = '{Meta(file, key)}' is not a finite number");

    private static T MetaJson<T>(SafeTensorsFile file, string key) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(Meta(file, key))
                ?? throw new InvalidDataException($"{file.Source}: metadata '{key}' is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file.Source}: metadata '{key}' = '{Meta(file, key)}' is not valid: {e.Message}", e);
        }
    }

    /// <summary>A trainer that continues the run in <paramref name="runFolder"/> from its latest checkpoint, with
    /// the saved options, weights, moments, masks, EMA, generator states and metrics. <paramref name="options"/>:
    /// null for the saved options, else options that may differ from them only as <see cref="ResumeOptions.Reconcile"/>
    /// allows (more epochs, another device). <paramref name="test"/> is null for data without a test split.</summary>
    /// <remarks>With <paramref name="val"/> null the validation set is held out of <paramref name="train"/> as the
    /// saved options say.</remarks>
    public static Trainer Resume(TrainableModel model, IImageSource train, IImageSource? test, string runFolder,
                                 TrainOptions? options = null, IImageSource? val = null) =>
        ResumeRank(model, train, test, runFolder, options, val, null);

    /// <summary><see cref="Resume(TrainableModel, IImageSource, IImageSource?, string, TrainOptions?, IImageSource?)"/>
    /// on one rank of a data-parallel job: every rank reads the checkpoint and rank 0 alone writes.</summary>
    internal static Trainer ResumeRank(TrainableModel model, IImageSource train, IImageSource? test, string runFolder,
                                       TrainOptions? options, IImageSource? val, Distributed.DataParallel? dataParallel)
    {
        ArgumentNullException.ThrowIfNull(model);
        string folder = FindLastCheckpoint(runFolder);
        var file = SafeTensorsFile.Read(Path.Combine(folder, "trainer.safetensors"));
        var saved = SavedOptions(file);
        if (options is not null) ResumeOptions.Reconcile(saved, options, null);
        var o = options ?? saved;
        var t = val is null ? new Trainer(model, train, test, o, runFolder) { DataParallel = dataParallel }
            : new Trainer(model, train, val, test, o, runFolder) { DataParallel = dataParallel };
        t.LoadState(folder, file);
        if (dataParallel is not null && t._masking is not null) dataParallel.CheckMasks(t._masking, "after the resume");
        return t;
    }

    private void LoadState(string folder, SafeTensorsFile file)
    {
        var weights = SafeTensorsFile.Read(Path.Combine(folder, "model.safetensors"));
        _epoch = MetaInt(file, "epoch");
        _step = MetaLong(file, "step");
        if (_step != (long)_epoch * StepsPerEpoch)
            throw new InvalidDataException($"{file.Source}: step {_step} does not match epoch {_epoch} x {StepsPerEpoch} steps per epoch");
        if (_epoch > Options.Epochs)
            throw new InvalidDataException($"{file.Source}: the checkpoint is at epoch {_epoch}, past the run's {Options.Epochs} epochs");
        _bestEpoch = MetaInt(file, "best_epoch");
        _bestTop1 = MetaDouble(file, "best_top1");
        if (_bestEpoch > _epoch)
            throw new InvalidDataException($"{file.Source}: best_epoch {_bestEpoch} is after the checkpoint's epoch {_epoch}");
        var steps = MetaJson<Dictionary<string, long>>(file, "optim_steps");
        string[] masked = Options.Sparse ? MetaJson<string[]>(file, "masked_layers") : [];
        CheckEntries(file, ExpectedEntries(file, steps, masked));

        ModelWeights.Load(weights, _model.Module);
        foreach (var s in _optimizer.States)
            if (steps[s.Name] > 0)
                s.Load(file["optim.exp_avg." + s.Name].ToFloat32(), file["optim.exp_avg_sq." + s.Name].ToFloat32(), steps[s.Name]);
        if (Options.Sparse)
        {
            InitializeMasking(masked.ToDictionary(n => n, n => file["mask." + n].ToUInt8(), StringComparer.Ordinal));
            _masking!.Random.SetState(ParseState(Meta(file, "rng.masking"), file.Source));
        }
        if (Options.Ema > 0)
        {
            _ema = new ModelEma(_model.Module, Options.Ema);
            foreach (var (name, _, _) in _ema.Entries.ToList()) _ema.Load(name, file["ema." + name].ToFloat32());
        }
        if (_model.Random is not null) _model.Random.SetState(ParseState(Meta(file, "rng.model"), file.Source));
        _initialized = true;
        _metrics.Clear();
        _metrics.AddRange(ReadMetrics(folder));
        if (!weights.Verified || !file.Verified)
            Info($"note: the checkpoint in {folder} carries no checksums; its tensors are unverified");
        Info($"resumed from {folder}: epoch {_epoch}, step {_step}, best top-1 {BestTop1:F2}%");
    }

    /// <summary>Every entry trainer.safetensors must hold, with its dtype and shape.</summary>
    private Dictionary<string, (SafeTensorsDType DType, int[] Shape)> ExpectedEntries(SafeTensorsFile file,
        Dictionary<string, long> steps, string[] masked)
    {
        var expected = new Dictionary<string, (SafeTensorsDType, int[])>(StringComparer.Ordinal);
        var parameters = _model.Module.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ShapeArray, StringComparer.Ordinal);
        var unknownSteps = steps.Keys.Where(k => !parameters.ContainsKey(k)).ToList();
        if (unknownSteps.Count > 0)
            throw new InvalidDataException($"{file.Source}: optim_steps names parameters the model lacks: [{string.Join(", ", unknownSteps)}]");
        foreach (var s in _optimizer.States)
        {
            if (!steps.TryGetValue(s.Name, out long n))
                throw new InvalidDataException($"{file.Source}: optim_steps has no step count for '{s.Name}'");
            if (n < 0 || n > _step)
                throw new InvalidDataException($"{file.Source}: optim_steps gives '{s.Name}' {n} steps, outside [0, {_step}]");
            if (n == 0) continue;
            expected["optim.exp_avg." + s.Name] = (SafeTensorsDType.F32, s.Parameter.ShapeArray);
            expected["optim.exp_avg_sq." + s.Name] = (SafeTensorsDType.F32, s.Parameter.ShapeArray);
        }
        foreach (var name in masked)
        {
            if (!parameters.TryGetValue(name, out var shape))
                throw new InvalidDataException($"{file.Source}: masked_layers names '{name}', which is not a parameter of the model");
            if (!expected.TryAdd("mask." + name, (SafeTensorsDType.U8, shape)))
                throw new InvalidDataException($"{file.Source}: masked_layers names '{name}' twice");
        }
        if (Options.Ema > 0)
            foreach (var (name, t) in _model.Module.StateDict()) expected["ema." + name] = (SafeTensorsDType.F32, t.ShapeArray);
        return expected;
    }

    /// <summary>Throws one message listing every missing, unknown or mis-typed entry.</summary>
    private static void CheckEntries(SafeTensorsFile file, Dictionary<string, (SafeTensorsDType DType, int[] Shape)> expected)
    {
        var missing = expected.Keys.Where(k => !file.Contains(k)).ToList();
        var unknown = file.Names.Where(n => !expected.ContainsKey(n)).ToList();
        var wrong = new List<string>();
        foreach (var e in file.Entries)
            if (expected.TryGetValue(e.Name, out var want) && (e.DType != want.DType || !e.Shape.SequenceEqual(want.Shape)))
                wrong.Add($"'{e.Name}' is {e.DType.Code()} {e.ShapeText}, expected {want.DType.Code()} ({string.Join(", ", want.Shape)})");
        if (missing.Count == 0 && unknown.Count == 0 && wrong.Count == 0) return;
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"missing: [{string.Join(", ", missing)}]");
        if (unknown.Count > 0) parts.Add($"unknown: [{string.Join(", ", unknown)}]");
        if (wrong.Count > 0) parts.Add(string.Join("; ", wrong));
        throw new InvalidDataException($"{file.Source}: the trainer state does not match the run; {string.Join("; ", parts)}");
    }

    /// <summary>Metrics of epochs 1..epoch, from the checkpoint's own metrics.jsonl (runs written before it had one:
    /// the run folder's); they must agree with the checkpoint.</summary>
    private List<EpochMetrics> ReadMetrics(string folder)
    {
        string path = Path.Combine(folder, "metrics.jsonl");
        bool own = File.Exists(path);
        if (!own) path = Path.Combine(RunFolder!, "metrics.jsonl");
        var result = new List<EpochMetrics>();
        if (!File.Exists(path))
            throw new InvalidDataException($"{folder}: the checkpoint (epoch {_epoch}) has no metrics.jsonl");
        int lineNumber = 0;
        foreach (var line in File.ReadAllLines(path))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            EpochMetrics m;
            try
            {
                m = EpochMetrics.FromJsonLine(line);
            }
            catch (Exception e) when (e is JsonException or InvalidDataException)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: not a metrics line: {e.Message}", e);
            }
            if (m.Epoch <= _epoch) result.Add(m);
        }
        // A run without a validation set (an .npz in trajectory mode) evaluates nothing: its metrics are empty.
        int expected = _val is null ? 0 : _epoch;
        if (result.Count != expected || result.Select((m, i) => m.Epoch != i + 1).Any(b => b))
            throw new InvalidDataException($"{path}: holds epochs [{string.Join(", ", result.Select(m => m.Epoch))}], "
                + $"the checkpoint is at epoch {_epoch} (expected {(expected == 0 ? "none: the run is not evaluated" : $"1..{_epoch}")})");
        return result;
    }
}
