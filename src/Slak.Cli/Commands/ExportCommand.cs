// `slak export --onnx OUT.onnx`: a checkpoint as an ONNX model that ONNX Runtime loads (evaluation mode, BatchNorms
// folded, large-kernel branches merged or kept). Parsing and presentation only; the work is in Slak.Export.
using System.CommandLine;
using Slak.Export;

namespace Slak.Cli.Commands;

/// <summary>The export verb.</summary>
internal sealed class ExportCommand : ICliCommand
{
    /// <inheritdoc />
    public int Order => 35;

    /// <inheritdoc />
    public Command Build()
    {
        var onnx = new Option<string>("--onnx")
        {
            Description = "output ONNX file (input 'input' (N, C, H, W) float32, output 'logits' (N, classes))",
            Required = true,
        };
        var config = new Option<string>("--model-config")
        {
            Description = "config.json with the model's constructor arguments", Required = true,
        };
        var weights = new Option<string>("--weights")
        {
            Description = "safetensors checkpoint (reference state_dict names)", Required = true,
        };
        var opset = new Option<int>("--opset")
        {
            Description = $"ai.onnx operator set (only {OnnxExportOptions.SupportedOpset} is supported)",
            DefaultValueFactory = _ => OnnxExportOptions.SupportedOpset,
        };
        var keep = new Option<bool>("--keep-branches")
        {
            Description = "one Conv per large-kernel branch (default: the branches merged into one union kernel)",
        };
        var cmd = new Command("export", "Writes a checkpoint as an ONNX model (evaluation mode, BatchNorms folded)");
        foreach (var o in new Option[] { onnx, config, weights, opset, keep }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var options = new OnnxExportOptions { Opset = parse.GetValue(opset), KeepBranches = parse.GetValue(keep) };
            string output = parse.GetValue(onnx)!;
            var started = System.Diagnostics.Stopwatch.StartNew();
            var (model, ops) = OnnxExporter.ExportCheckpoint(parse.GetValue(config)!, parse.GetValue(weights)!,
                                                               output, options);
            long bytes = new FileInfo(output).Length;
            Console.WriteLine($"wrote {output}: opset {options.Opset}, {ops.Values.Sum()} nodes " +
                $"({string.Join(", ", ops.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} {p.Value}"))}), " +
                $"{bytes / 1e6:0.0} MB, {model.NumClasses} classes, in {started.Elapsed.TotalSeconds:0.00} s");
            return 0;
        });
        return cmd;
    }
}
