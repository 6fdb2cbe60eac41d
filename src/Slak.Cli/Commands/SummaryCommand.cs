// `slak summary`: per-stage output shapes, parameters and MACs of a preset or a config.json, dense and at a density
// (the preset's intended one by default). Builds a shape-only model, so even slak_base costs no weight memory.
using System.CommandLine;
using System.Globalization;
using Slak.Models;

namespace Slak.Cli.Commands;

/// <summary>The summary verb.</summary>
internal sealed class SummaryCommand : ICliCommand
{
    /// <inheritdoc />
    public int Order => 40;

    /// <inheritdoc />
    public Command Build()
    {
        var preset = new Option<string?>("--preset")
        {
            Description = $"model preset: {string.Join(", ", ModelPresets.Names)}",
        };
        var config = new Option<string?>("--model-config") { Description = "config.json instead of a preset" };
        var size = new Option<int?>("--input-size")
        {
            Description = "square input side (default: the preset's, 224 for a config)",
        };
        var density = new Option<double?>("--density")
        {
            Description = "density of every 2-D/4-D weight for the sparse columns (default: the preset's)",
        };
        var weights = new Option<string?>("--weights")
        {
            Description = "a trained model.safetensors (or a checkpoint's trainer.safetensors with mask.* entries): " +
                          "the sparse columns use each weight's real density instead of --density",
        };
        var list = new Option<bool>("--list") { Description = "list the presets" };
        var cmd = new Command("summary", "Per-stage shapes, parameters and MACs (dense and sparse) of a model");
        foreach (var o in new Option[] { preset, config, size, density, weights, list }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(list))
            {
                foreach (var p in ModelPresets.Presets)
                    Console.WriteLine($"{p.Name,-16} input {p.InputSize,3}  density " +
                        $"{p.Density.ToString("0.##", CultureInfo.InvariantCulture),-4}  {p.Description}");
                return 0;
            }
            string? presetName = parse.GetValue(preset), configPath = parse.GetValue(config);
            if ((presetName is null) == (configPath is null))
                throw new ArgumentException("give exactly one of --preset or --model-config (or --list)");
            ModelConfig model;
            int inputSize;
            double d;
            if (presetName is not null)
            {
                var p = ModelPresets.Get(presetName);
                model = p.Config;
                inputSize = parse.GetValue(size) ?? p.InputSize;
                d = parse.GetValue(density) ?? p.Density;
                Console.WriteLine($"preset {p.Name}: {p.Description}");
            }
            else
            {
                model = ModelConfig.Load(configPath!);
                (inputSize, d) = (parse.GetValue(size) ?? 224, parse.GetValue(density) ?? 1.0);
            }
            var summary = ModelSummary.Of(model, inputSize, inputSize);
            if (parse.GetValue(weights) is { } weightsPath)
            {
                var real = RealDensities(weightsPath, summary);
                Console.Write(summary.Render(real, "trained"));
                return 0;
            }
            Console.Write(d < 1.0
                ? summary.Render(ModelSummary.Uniform(d), $"{d.ToString("0.##", CultureInfo.InvariantCulture)}")
                : summary.Render());
            return 0;
        });
        return cmd;
    }

    /// <summary>Per-weight densities of a trained model: the checkpoint's masks where it has them (`mask.NAME`),
    /// otherwise the fraction of nonzero elements (pruned weights are exact zeros, as the reference's FLOPs counter
    /// assumes). Weights of the summary missing from the file are an error, not silently dense.</summary>
    internal static Func<string, double> RealDensities(string path, ModelSummary summary)
    {
        var file = Slak.IO.SafeTensorsFile.Read(path);
        var values = new Dictionary<string, float[]>();
        foreach (var key in summary.Layers.Select(l => l.WeightKey).OfType<string>())
        {
            if (file.Contains("mask." + key))
                values[key] = file["mask." + key].ToUInt8().Select(b => (float)b).ToArray();
            else if (file.Contains(key))
                values[key] = file[key].ToFloat32();
            else if (file.Entries.Any(e => e.Name.StartsWith("mask.", StringComparison.Ordinal)))
                continue; // a trainer state file: weights without a mask are dense
            else
                throw new ArgumentException($"{path} has neither '{key}' nor 'mask.{key}'", nameof(path));
        }
        return ModelSummary.FromMasks(values);
    }
}
