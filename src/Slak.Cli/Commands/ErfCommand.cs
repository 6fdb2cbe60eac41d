// `slak erf`: the effective receptive field of a checkpoint (slak-facts §4.7): writes erf.npy (raw mean map),
// erf.png (heat map of log10(x + 1) / max) and erf.json (images, skipped NaN maps, area ratios), prints the ratios.
// Data: Fashion-MNIST (the test split, enlarged by nearest neighbour and padded to --size like training, then
// normalised with the training mean and std) or an .npy batch (N, C, H, W) of already normalised images used as is.
// Parsing, data preparation and presentation only; the analysis is in Slak.Analysis.
using System.CommandLine;
using System.Globalization;
using Slak.Analysis;
using Slak.Cli.Analysis;
using Slak.Cli.Training;
using Slak.Data;
using Slak.Inference;
using Slak.IO;
using Slak.Models;

namespace Slak.Cli.Commands;

/// <summary>The erf verb.</summary>
internal sealed class ErfCommand : ICliCommand
{
    /// <inheritdoc />
    public int Order => 45;

    /// <inheritdoc />
    public Command Build()
    {
        var config = new Option<string>("--model-config")
        {
            Description = "config.json with the model's constructor arguments", Required = true,
        };
        var weights = new Option<string>("--weights")
        {
            Description = "safetensors checkpoint (reference state_dict names)", Required = true,
        };
        var data = new Option<string?>("--data")
        {
            Description = "a Fashion-MNIST folder (default: " + FashionMnist.DefaultFolder + ") or an .npy batch " +
                "(N, C, H, W) of normalised images, used as is",
        };
        var images = new Option<int>("--images") { Description = "images to average", DefaultValueFactory = _ => 50 };
        var size = new Option<int?>("--size")
        {
            Description = "image side for image data (default: 1024 for 224-px models, 4x the training size for the " +
                "nano family)",
        };
        var device = new Option<string>("--device")
        {
            Description = "cpu, cuda, cuda:N or cuda-emu", DefaultValueFactory = _ => "cpu",
        };
        var batch = new Option<int>("--batch-size")
        {
            Description = "images per backward pass", DefaultValueFactory = _ => 1,
        };
        var outDir = new Option<string>("--out") { Description = "output folder", DefaultValueFactory = _ => "erf" };
        var cmd = new Command("erf", "Effective receptive field of a checkpoint: erf.npy, erf.png, erf.json and the " +
            "high-contribution area ratios");
        foreach (var o in new Option[] { config, weights, data, images, size, device, batch, outDir }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            int count = parse.GetValue(images);
            if (count < 1) throw new ArgumentOutOfRangeException("--images", count, "--images must be >= 1");
            int batchSize = parse.GetValue(batch);
            if (batchSize < 1) throw new ArgumentOutOfRangeException("--batch-size", batchSize, "--batch-size must be >= 1");
            string cfgPath = parse.GetValue(config)!, weightsPath = parse.GetValue(weights)!;
            var cfg = ModelConfig.Load(cfgPath);
            var (x, shape, source) = LoadImages(parse.GetValue(data), count, parse.GetValue(size), cfg, weightsPath);
            var (dev, note) = DeviceChoice.Resolve(parse.GetValue(device)!);
            if (note is not null) Console.WriteLine(note);
            var model = SlakInference.LoadModel(cfg, weightsPath, dev);
            Console.WriteLine($"ERF of {weightsPath} on {shape[0]} images {shape[2]}x{shape[3]} ({source}) on {dev}");
            var started = System.Diagnostics.Stopwatch.StartNew();
            var map = EffectiveReceptiveField.Compute(model, x, shape, batchSize);
            var ratios = ErfRatios.Compute(map);
            string folder = parse.GetValue(outDir)!;
            var (npy, json) = ErfReport.Write(folder, map, ratios);
            string png = Path.Combine(folder, "erf.png");
            ErfPlot.Write(map, ratios, Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(weightsPath))) ?? "", png);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{map.Images} images averaged, {map.SkippedNaN} skipped (NaN), {started.Elapsed.TotalSeconds:0.0} s"));
            foreach (var (t, r) in ratios)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  r({t}) = {(r is double v ? v.ToString("0.000000", CultureInfo.InvariantCulture) : "null (no square reaches it)")}"));
            Console.WriteLine($"wrote {npy}, {png}, {json}");
            return 0;
        });
        return cmd;
    }

    // The image batch: an .npy used as is, or Fashion-MNIST's test split prepared like training at the ERF size.
    private static (float[] Images, int[] Shape, string Source) LoadImages(string? data, int count, int? size,
                                                                           ModelConfig config, string weightsPath)
    {
        if (data is not null && data.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            if (!File.Exists(data)) throw new FileNotFoundException($"--data '{data}' does not exist", data);
            var array = Npy.Read(data);
            var shape = array.GetShape();
            if (array.DType is not (NpyDType.Float32 or NpyDType.Float64) || shape.Length != 4)
                throw new InvalidDataException(
                    $"{data}: an ERF batch must be float32 or float64 (N, C, H, W), got {array.DType} {array.ShapeText}");
            if (shape[1] != config.InChans)
                throw new InvalidDataException(
                    $"{data}: {shape[1]} channels but the model expects in_chans={config.InChans}");
            if (size is int s && (s != shape[2] || s != shape[3]))
                throw new ArgumentException(
                    $"--size {s} does not match the .npy batch's {shape[2]}x{shape[3]}: an .npy batch is used as is " +
                    "(no resize); leave --size out", "--size");
            int n = Math.Min(count, shape[0]);
            var all = array.ToFloat32();
            int per = shape[1] * shape[2] * shape[3];
            return (all.AsSpan(0, n * per).ToArray(), [n, shape[1], shape[2], shape[3]], data);
        }
        if (data is not null && Directory.Exists(data) && !FashionMnist.IsAvailable(data))
            throw new NotSupportedException(
                $"--data '{data}' is not a Fashion-MNIST folder; image folders: not yet supported by slak erf " +
                "(use Fashion-MNIST or an .npy batch (N, C, H, W) of normalised images)");
        if (data is not null && !Directory.Exists(data))
            throw new FileNotFoundException($"--data '{data}' is neither an .npy file nor a folder", data);
        if (config.InChans != 1)
            throw new ArgumentException(
                $"Fashion-MNIST images have 1 channel but the model expects in_chans={config.InChans}; give an .npy " +
                "batch with --data", "--data");
        int side = size ?? DefaultSize(config, weightsPath);
        if (side < 28) throw new ArgumentOutOfRangeException("--size", side, "--size must be >= 28 (the images are 28x28)");
        TrainTestData split;
        try
        {
            split = FashionMnist.Load(data);
        }
        catch (FileNotFoundException e)
        {
            throw new IOException($"{e.Message} {FashionMnist.InstallHint}", e);
        }
        var test = ImageDataset.FromLabeledImages(split.Test, count);
        int factor = Math.Max(1, side / Math.Max(test.Height, test.Width));
        test = test.UpsampleNearest(factor).PadTo(side, side);
        var norm = new AugmentOptions().ForEvaluation();
        var x = new float[test.Images.Length];
        for (int i = 0; i < test.Count; i++)
            Augment.AugmentImage(test.Images.AsSpan(i * test.ImageSize, test.ImageSize),
                                 x.AsSpan(i * test.ImageSize, test.ImageSize), 1, side, side, norm, null);
        return (x, [test.Count, 1, side, side], $"Fashion-MNIST test, {factor}x enlarged and padded");
    }

    // --size default: the preset recognised from the config, or the preset of the run the weights come from
    // (run/{best,last}/model.safetensors next to run/options.json).
    private static int DefaultSize(ModelConfig config, string weightsPath)
    {
        var preset = ErfInputSize.MatchPreset(config);
        if (preset is null)
        {
            string? run = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(weightsPath)));
            string options = run is null ? "" : Path.Combine(run, "options.json");
            if (File.Exists(options))
                preset = ModelPresets.Get(Slak.Train.TrainOptions.FromJson(File.ReadAllText(options)).Preset);
        }
        if (preset is null)
            throw new ArgumentException(
                "--size is required: the model's architecture is not a known preset and its training input size is " +
                "unknown", "--size");
        return ErfInputSize.ForTrainingSize(preset.InputSize);
    }
}
