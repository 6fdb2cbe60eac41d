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
        var list = new Option<bool>("--list") { Description = "list the presets" };
        var cmd = new Command("summary", "Per-stage shapes, parameters and MACs (dense and sparse) of a model");
        foreach (var o in new Option[] { preset, config, size, density, list }) cmd.Options.Add(o);
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
            Console.Write(d < 1.0
                ? summary.Render(ModelSummary.Uniform(d), $"{d.ToString("0.##", CultureInfo.InvariantCulture)}")
                : summary.Render());
            return 0;
        });
        return cmd;
    }
}
