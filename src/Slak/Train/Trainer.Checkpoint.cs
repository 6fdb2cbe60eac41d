// Checkpoints of a run folder:
//   <run>/last/{model.safetensors, config.json, trainer.safetensors}   after every epoch (what --resume reads)
//   <run>/best/{model.safetensors, config.json}                         the best validation top-1 so far
//   <run>/metrics.jsonl, <run>/options.json
// trainer.safetensors holds AdamW moments (optim.exp_avg.<p>, optim.exp_avg_sq.<p>), masks (U8 mask.<p>), EMA
// weights (ema.<name>) and, in __metadata__, epoch, step, lr, best, per-parameter step counts, the options and the
// generator states. A checkpoint is written into a temporary folder and swapped in by renames, so a failed write
// leaves the previous checkpoint complete (at worst under <name>.old, which resume also finds).
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
        if (RunFolder is null) return;
        WriteFolder(Path.Combine(RunFolder, "last"), includeTrainer: true);
        if (best) WriteFolder(Path.Combine(RunFolder, "best"), includeTrainer: false);
        AtomicFile.WriteAllText(Path.Combine(RunFolder, "metrics.jsonl"),
            string.Concat(_metrics.Select(m => m.ToJsonLine() + "\n")));
    }

    private void WriteFolder(string target, bool includeTrainer)
    {
        string tmp = target + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);
        ModelWeights.Save(Path.Combine(tmp, "model.safetensors"), _model.Module);
        if (_model.ConfigJson is not null) AtomicFile.WriteAllText(Path.Combine(tmp, "config.json"), _model.ConfigJson);
        if (includeTrainer) TrainerStateWriter().Write(Path.Combine(tmp, "trainer.safetensors"));
        BeforeCheckpointSwap?.Invoke(tmp);
        string old = target + ".old";
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(target)) Directory.Move(target, old);
        Directory.Move(tmp, target);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    private SafeTensorsWriter TrainerStateWriter()
    {
        var w = new SafeTensorsWriter();
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
        return TrainOptions.FromJson(Meta(file, "options"), file.Source);
    }

    private static string Meta(SafeTensorsFile file, string key) =>
        file.Metadata.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{file.Source}: metadata has no '{key}'");

    private static long MetaLong(SafeTensorsFile file, string key) =>
        long.TryParse(Meta(file, key), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v
            : throw new InvalidDataException($"{file.Source}: metadata '{key}' = '{Meta(file, key)}' is not an integer");

    /// <summary>A trainer that continues the run in <paramref name="runFolder"/> from its latest checkpoint, with
    /// the saved options, weights, moments, masks, EMA, generator states and metrics.</summary>
    /// <remarks>With <paramref name="val"/> null the validation set is held out of <paramref name="train"/> as the
    /// saved options say.</remarks>
    public static Trainer Resume(TrainableModel model, IImageSource train, IImageSource? test, string runFolder, IImageSource? val = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        string folder = FindLastCheckpoint(runFolder);
        var file = SafeTensorsFile.Read(Path.Combine(folder, "trainer.safetensors"));
        if (Meta(file, "format") != CheckpointFormat)
            throw new InvalidDataException($"{file.Source}: format '{Meta(file, "format")}' is not {CheckpointFormat}");
        var options = TrainOptions.FromJson(Meta(file, "options"), file.Source);
        var t = val is null ? new Trainer(model, train, test, options, runFolder) : new Trainer(model, train, val, test, options, runFolder);
        t.LoadState(folder, file);
        return t;
    }

    private void LoadState(string folder, SafeTensorsFile file)
    {
        ModelWeights.Load(SafeTensorsFile.Read(Path.Combine(folder, "model.safetensors")), _model.Module);
        _epoch = checked((int)MetaLong(file, "epoch"));
        _step = MetaLong(file, "step");
        if (_step != (long)_epoch * StepsPerEpoch)
            throw new InvalidDataException($"{file.Source}: step {_step} does not match epoch {_epoch} x {StepsPerEpoch} steps per epoch");
        _bestEpoch = checked((int)MetaLong(file, "best_epoch"));
        _bestTop1 = double.Parse(Meta(file, "best_top1"), CultureInfo.InvariantCulture);
        var steps = JsonSerializer.Deserialize<Dictionary<string, long>>(Meta(file, "optim_steps"))
            ?? throw new InvalidDataException($"{file.Source}: optim_steps is null");
        foreach (var s in _optimizer.States)
        {
            string m = "optim.exp_avg." + s.Name, v = "optim.exp_avg_sq." + s.Name;
            if (!file.Contains(m)) continue;
            s.Load(file[m].ToFloat32(), file[v].ToFloat32(), steps.TryGetValue(s.Name, out long n) ? n
                : throw new InvalidDataException($"{file.Source}: no step count for '{s.Name}'"));
        }
        if (Options.Sparse)
        {
            var masks = file.Entries.Where(e => e.Name.StartsWith("mask.", StringComparison.Ordinal))
                .ToDictionary(e => e.Name["mask.".Length..], e => e.ToUInt8());
            InitializeMasking(masks);
            _masking!.Random.SetState(ParseState(Meta(file, "rng.masking"), file.Source));
        }
        if (Options.Ema > 0)
        {
            _ema = new ModelEma(_model.Module, Options.Ema);
            foreach (var (name, _, _) in _ema.Entries.ToList())
                _ema.Load(name, file.TryGet("ema." + name, out var e) ? ModelWeights.ReadFloat32(e)
                    : throw new InvalidDataException($"{file.Source}: no EMA entry 'ema.{name}'"));
        }
        if (_model.Random is not null) _model.Random.SetState(ParseState(Meta(file, "rng.model"), file.Source));
        _initialized = true;
        _metrics.Clear();
        string metrics = Path.Combine(RunFolder!, "metrics.jsonl");
        if (File.Exists(metrics))
            foreach (var line in File.ReadAllLines(metrics).Where(l => l.Trim().Length > 0))
            {
                var m = EpochMetrics.FromJsonLine(line);
                if (m.Epoch <= _epoch) _metrics.Add(m);
            }
        Info($"resumed from {folder}: epoch {_epoch}, step {_step}, best top-1 {BestTop1:F2}%");
    }
}
