// `slak eval`: top-1, top-5 and loss of a checkpoint on Fashion-MNIST (a run folder's best or last weights, or an
// explicit config.json + safetensors pair). Parsing and presentation only.
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
        var data = new Option<string?>("--data") { Description = $"Fashion-MNIST folder (default: {Slak.IO.FashionMnist.DefaultFolder})" };
        var split = new Option<string>("--split") { Description = "test or train", DefaultValueFactory = _ => "test" };
        split.AcceptOnlyFromAmong("test", "train");
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, cuda:N or cuda-emu", DefaultValueFactory = _ => "auto" };
        var batch = new Option<int>("--batch-size") { Description = "images per forward pass", DefaultValueFactory = _ => 256 };
        var size = new Option<int?>("--input-size")
        {
            Description = "input side the images are brought to (default: the run's preset's, else 32)",
        };
        var cmd = new Command("eval", "Evaluate a checkpoint on Fashion-MNIST: top-1, top-5 and loss");
        foreach (var o in new Option[] { run, which, config, weights, data, split, device, batch, size }) cmd.Options.Add(o);
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
            WeightChecks.CheckDataFolder(parse.GetValue(data));
            WeightChecks.NoteUnverified(w);
            var model = SlakInference.LoadModel(ModelConfig.Load(cfg), w, dev);
            int side = parse.GetValue(size) ?? (folder is not null && File.Exists(Path.Combine(folder, "options.json"))
                ? DataSets.SideFor(ModelPresets.Get(TrainOptions.FromJson(File.ReadAllText(Path.Combine(folder, "options.json"))).Preset))
                : DataSets.PaddedSide(28));
            if (side < 28) throw new ArgumentOutOfRangeException("--input-size", side, "--input-size must be >= 28 (the images are 28x28)");
            var (train, test) = DataSets.FashionMnist(parse.GetValue(data), side);
            var set = parse.GetValue(split) == "train" ? train : test;
            var started = System.Diagnostics.Stopwatch.StartNew();
            var r = Evaluator.Evaluate(SlakTrainable.From(model), set, new AugmentOptions(), batchSize);
            WeightChecks.CheckFinite(r.Loss, "the loss", w);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{w}: {parse.GetValue(split)} top-1 {r.Top1:F2}%, top-5 {r.Top5:F2}%, loss {r.Loss:F4} ({r.Count} images, {started.Elapsed.TotalSeconds:F1} s on {dev})"));
            return 0;
        });
        return cmd;
    }
}
