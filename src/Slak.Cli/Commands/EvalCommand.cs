// `slak eval`: top-1, top-5 and loss of a checkpoint (a run folder's best or last weights, or an explicit config.json +
// safetensors pair) on Fashion-MNIST or an image folder (EvalSplits). Parsing and presentation only.
using System.CommandLine;
using System.Globalization;
using Slak.Cli.Training;
using Slak.Data;
using Slak.Inference;
using Slak.Models;
using Slak.Train;

namespace Slak.Cli.Commands;

/// <summary>The eval verb.</summary>
internal sealed class EvalCommand : ICliCommand
{
    /// <inheritdoc />
    public int Order => 20;

    /// <inheritdoc />
    public Command Build()
    {
        var run = new Option<string?>("--run") { Description = "run folder written by slak train" };
        var which = new Option<string>("--checkpoint") { Description = "best or last (with --run)", DefaultValueFactory = _ => "best" };
        which.AcceptOnlyFromAmong("best", "last");
        var config = new Option<string?>("--model-config") { Description = "config.json (instead of --run)" };
        var weights = new Option<string?>("--weights") { Description = "model safetensors (instead of --run)" };
        var data = new Option<string?>("--data") { Description = $"Fashion-MNIST folder (default: {Slak.IO.FashionMnist.DefaultFolder}) or an image folder (train/<class>/<images>, optional val/ and test/)" };
        var split = new Option<string>("--split") { Description = "test, val (val/, else the --val-split hold-out of train as slak train makes it) or train", DefaultValueFactory = _ => "test" };
        split.AcceptOnlyFromAmong("test", "val", "train");
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, cuda:N or cuda-emu", DefaultValueFactory = _ => "auto" };
        var batch = new Option<int>("--batch-size") { Description = "images per forward pass", DefaultValueFactory = _ => 256 };
        var precision = PrecisionChoice.CreateOption();
        var size = new Option<int?>("--input-size")
        {
            Description = "input side the images are brought to (default: the run's; Fashion-MNIST otherwise 32, image folders the matching preset's, at most 224)",
        };
        var cmd = new Command("eval", "Evaluate a checkpoint on Fashion-MNIST or an image folder: top-1, top-5 and loss");
        foreach (var o in new Option[] { run, which, config, weights, data, split, device, batch, size, precision }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            string? folder = parse.GetValue(run);
            string cfg, w;
            if (folder is not null)
            {
                if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"--run folder '{folder}' does not exist");
                string sub = Path.Combine(folder, parse.GetValue(which)!);
                cfg = Path.Combine(sub, "config.json");
                w = Path.Combine(sub, "model.safetensors");
            }
            else
            {
                cfg = parse.GetValue(config) ?? throw new ArgumentException("give --run, or --model-config and --weights", "--model-config");
                w = parse.GetValue(weights) ?? throw new ArgumentException("--model-config needs --weights", "--weights");
            }
            int batchSize = parse.GetValue(batch);
            if (batchSize < 1) throw new ArgumentOutOfRangeException("--batch-size", batchSize, "--batch-size must be >= 1");
            var (dev, note) = DeviceChoice.Resolve(parse.GetValue(device)!);
            if (note is not null) Console.WriteLine(note);
            var arithmetic = PrecisionChoice.Resolve(parse.GetValue(precision), dev);
            WeightChecks.CheckDataFolder(parse.GetValue(data));
            WeightChecks.NoteUnverified(w);
            var modelConfig = ModelConfig.Load(cfg);
            var runOptions = folder is not null && File.Exists(Path.Combine(folder, "options.json"))
                ? TrainOptions.FromJson(File.ReadAllText(Path.Combine(folder, "options.json"))) : null;
            var eval = EvalSplits.Load(parse.GetValue(data), parse.GetValue(split)!, parse.GetValue(size), runOptions, modelConfig);
            var model = SlakInference.LoadModel(modelConfig, w, dev);
            Console.WriteLine($"data: {eval.Description}");
            var started = System.Diagnostics.Stopwatch.StartNew();
            using var scope = MixedPrecision.Use(arithmetic);
            var r = Evaluator.Evaluate(SlakTrainable.From(model), eval.Images, new AugmentOptions().WithNormalization(eval.Normalization), batchSize);
            WeightChecks.CheckFinite(r.Loss, "the loss", w);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{w}: {parse.GetValue(split)} top-1 {r.Top1:F2}%, top-5 {r.Top5:F2}%, loss {r.Loss:F4} ({r.Count} images, {started.Elapsed.TotalSeconds:F1} s on {dev})"));
            return 0;
        });
        return cmd;
    }
}
